//! Acknowledgements in both directions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::{AckError, EmitError, Payload, Socket, SocketId};

/// Answers the client's acknowledgement request of one event. Dropping it unanswered sends
/// nothing, as in the reference server.
#[derive(Debug)]
pub struct AckSender {
    socket: Arc<Socket>,
    id: u64,
}

impl AckSender {
    pub(crate) fn new(socket: Arc<Socket>, id: u64) -> Self {
        Self { socket, id }
    }

    /// Acknowledges with these arguments.
    pub fn send(self, payload: Payload) -> Result<(), EmitError> {
        self.socket.send_ack(self.id, payload)
    }

    /// Acknowledges with one JSON argument.
    pub fn send_json(self, value: impl serde::Serialize) -> Result<(), EmitError> {
        self.send(Payload::json(value)?)
    }
}

/// One socket's answer to a broadcast that asked for acknowledgements.
#[derive(Debug, Clone, PartialEq)]
pub struct AckResponse {
    /// The socket that answered (or did not).
    pub socket: SocketId,
    /// Its acknowledgement arguments, or why none came.
    pub result: Result<Payload, AckError>,
}

/// The acknowledgements a socket waits for, by packet id.
#[derive(Debug, Default)]
pub(crate) struct PendingAcks {
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<Payload, AckError>>>>,
}

impl PendingAcks {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<Payload, AckError>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a wait for the acknowledgement of packet `id`.
    pub(crate) fn register(&self, id: u64) -> oneshot::Receiver<Result<Payload, AckError>> {
        let (sender, receiver) = oneshot::channel();
        self.lock().insert(id, sender);
        receiver
    }

    /// Forgets a wait (it timed out).
    pub(crate) fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Delivers an acknowledgement; unknown ids (late or forged) are ignored.
    pub(crate) fn resolve(&self, id: u64, payload: Payload) {
        if let Some(sender) = self.lock().remove(&id) {
            let _ = sender.send(Ok(payload));
        }
    }

    /// Fails every wait: the socket is gone.
    pub(crate) fn fail_all(&self) {
        for (_, sender) in self.lock().drain() {
            let _ = sender.send(Err(AckError::Disconnected));
        }
    }
}

/// Waits for an acknowledgement with a timeout, forgetting the wait if it expires.
pub(crate) async fn wait_for_ack(
    socket: &Socket,
    id: u64,
    receiver: oneshot::Receiver<Result<Payload, AckError>>,
    timeout: std::time::Duration,
) -> Result<Payload, AckError> {
    match tokio::time::timeout(timeout, receiver).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(AckError::Disconnected),
        Err(_) => {
            socket.pending_acks().forget(id);
            Err(AckError::Timeout)
        }
    }
}
