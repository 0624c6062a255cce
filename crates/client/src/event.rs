//! An event received from the server, and the way to acknowledge it.

use std::fmt;

use ferrio_socketio_proto::Packet;
use serde::Serialize;

use crate::codec::to_engine;
use crate::manager::Command;
use crate::{EmitError, Payload, Socket};

/// An event the server emitted to a namespace socket.
#[derive(Debug)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The arguments after the name.
    ///
    /// With connection state recovery on, the server appends the event's offset (a string) as
    /// the last argument of events it may replay, as the JS client sees them too.
    pub payload: Payload,
    /// Present when the server asked for an acknowledgement.
    pub ack: Option<AckSender>,
}

/// Answers one event the server sent with an ack id. Sending consumes it; dropping it sends
/// nothing, and the server's wait for the acknowledgement times out.
pub struct AckSender {
    pub(crate) socket: Socket,
    pub(crate) id: u64,
    /// The connection the event came on: the server only takes the answer on it.
    pub(crate) connection: u64,
}

impl fmt::Debug for AckSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSender")
            .field("nsp", &self.socket.nsp())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AckSender {
    /// Sends the acknowledgement with these arguments (binary ones included).
    ///
    /// Fails with [`EmitError::Disconnected`] when the socket was disconnected since the event
    /// came: the server forgot the event with the connection.
    pub fn send(self, payload: Payload) -> Result<(), EmitError> {
        let packet = Packet::ack(self.socket.nsp(), payload.into_ack_data(), self.id);
        let packets = to_engine(&packet);
        let shared = self.socket.shared();
        let inner = shared.lock();
        if inner.connection() != Some(self.connection) {
            return Err(EmitError::Disconnected);
        }
        self.socket
            .send_command(Command::Send {
                connection: self.connection,
                packets,
            })
            .map_err(|_| EmitError::Shutdown)
    }

    /// Sends the acknowledgement with one JSON argument.
    pub fn send_json(self, value: impl Serialize) -> Result<(), EmitError> {
        let payload = Payload::json(value)?;
        self.send(payload)
    }

    /// The ack id the server gave the event.
    pub fn id(&self) -> u64 {
        self.id
    }
}
