//! Acknowledgements in both directions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use crate::ids::BuildIdHasher;
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
    waiting: Mutex<AckMap>,
}

/// Waits by packet id. The ids are the server's own counter, so the hasher need not resist
/// chosen keys, and it keeps no state in every socket.
type AckMap = HashMap<u64, oneshot::Sender<Result<Payload, AckError>>, BuildIdHasher>;

impl PendingAcks {
    fn lock(&self) -> std::sync::MutexGuard<'_, AckMap> {
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

/// The round trip of server-emitted acknowledgements, from the packet queued to the client's
/// answer handled, in seconds: `ferrio_ack_duration_seconds` (a histogram). Answers that never
/// came are counted in [`ACK_TIMEOUTS_TOTAL`] instead.
pub const ACK_DURATION_SECONDS: &str = "ferrio_ack_duration_seconds";

/// Server-emitted acknowledgements that timed out: `ferrio_ack_timeouts_total`.
pub const ACK_TIMEOUTS_TOTAL: &str = "ferrio_ack_timeouts_total";

/// Waits for an acknowledgement with a timeout, forgetting the wait if it expires. `sent` is when
/// the packet was queued: the round trip is measured from there.
pub(crate) async fn wait_for_ack(
    socket: &Socket,
    id: u64,
    receiver: oneshot::Receiver<Result<Payload, AckError>>,
    timeout: std::time::Duration,
    sent: Instant,
) -> Result<Payload, AckError> {
    match tokio::time::timeout(timeout, receiver).await {
        Ok(Ok(result)) => {
            if result.is_ok() {
                metrics::histogram!(ACK_DURATION_SECONDS).record(sent.elapsed().as_secs_f64());
            }
            result
        }
        Ok(Err(_)) => Err(AckError::Disconnected),
        Err(_) => {
            socket.pending_acks().forget(id);
            metrics::counter!(ACK_TIMEOUTS_TOTAL).increment(1);
            Err(AckError::Timeout)
        }
    }
}
