//! Publishing to durable rooms: each message is appended to the history of its rooms, and fans
//! out only once the store has it on disk. Fan-outs happen in the order of the appends (one
//! task awaits them in turn), so live clients and the history see the same order, while the
//! store still commits many appends in one batch.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use ferrio_history::{Appended, HistoryError, HistoryStore, NewMessage, Offset};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::HistoryService;

/// Event names the Socket.IO protocol reserves (the server refuses to emit them): refused before
/// anything is stored, so that history never holds a message nobody could receive.
pub(crate) const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Why a durable publish failed.
#[derive(Debug)]
pub(crate) enum PublishError {
    /// The store did not take the message: nothing was sent to anyone.
    Store(HistoryError),
    /// Stored, but the fan-out refused the event (e.g. a reserved event name).
    Emit(String),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(error) => write!(f, "the message could not be stored: {error}"),
            Self::Emit(error) => f.write_str(error),
        }
    }
}

impl std::error::Error for PublishError {}

/// What a publish waits for, then does.
struct Pending {
    appended: Vec<(String, Appended)>,
    fan_out: Box<dyn FnOnce(Offset) -> Result<(), String> + Send>,
    done: oneshot::Sender<Result<Vec<(String, Offset)>, PublishError>>,
}

/// The queue of publishes waiting for the disk, and the task draining it.
#[derive(Default)]
pub(crate) struct Publisher {
    queue: OnceLock<mpsc::UnboundedSender<Pending>>,
    /// Held while appending and queueing, so that the queue's order is the offsets' order.
    order: Mutex<()>,
}

impl Publisher {
    /// The queue; its task is started on first use (inside the runtime).
    fn queue(&self) -> &mpsc::UnboundedSender<Pending> {
        self.queue.get_or_init(|| {
            let (sender, mut receiver) = mpsc::unbounded_channel::<Pending>();
            tokio::spawn(async move {
                while let Some(pending) = receiver.recv().await {
                    let mut offsets = Vec::with_capacity(pending.appended.len());
                    let mut failure = None;
                    for (room, appended) in pending.appended {
                        match appended.await {
                            Ok(offset) => offsets.push((room, offset)),
                            Err(error) => failure = Some(error),
                        }
                    }
                    // The live event carries the largest of its offsets: one publish's appends
                    // are made together under `order`, so for each of its rooms, reading that
                    // room's history after it returns exactly the later messages.
                    let live = offsets.iter().map(|(_, offset)| *offset).max();
                    let result = match (failure, live) {
                        (Some(error), _) => Err(PublishError::Store(error)),
                        (None, None) => Err(PublishError::Emit("no room to publish to".to_owned())),
                        (None, Some(live)) => (pending.fan_out)(live)
                            .map(|()| offsets)
                            .map_err(PublishError::Emit),
                    };
                    let _ = pending.done.send(result);
                }
            });
            sender
        })
    }
}

impl HistoryService {
    /// Appends `event(args)` to the history of each of `rooms` (of `namespace`), then, once all
    /// are on disk, runs `fan_out` (the broadcast) with the offset the live event is to carry
    /// (the largest of them; see `BroadcastOperator::with_offset`). Resolves with each room's
    /// offset after the fan-out. A store failure sends nothing. Dropping the future does not
    /// cancel the publish.
    pub(crate) async fn publish(
        &self,
        namespace: &str,
        rooms: &[String],
        event: &str,
        args: Vec<Value>,
        fan_out: impl FnOnce(Offset) -> Result<(), String> + Send + 'static,
    ) -> Result<Vec<(String, Offset)>, PublishError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(PublishError::Emit(format!(
                "the event name {event:?} is reserved"
            )));
        }
        let (done, result) = oneshot::channel();
        {
            let _order = self
                .publisher
                .order
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let at = SystemTime::now();
            let store: &Arc<dyn HistoryStore> = &self.store;
            let appended = rooms
                .iter()
                .map(|room| {
                    let message = NewMessage {
                        event: event.to_owned(),
                        args: args.clone(),
                        at,
                    };
                    (room.clone(), store.append(namespace, room, message))
                })
                .collect();
            let pending = Pending {
                appended,
                fan_out: Box::new(fan_out),
                done,
            };
            if self.publisher.queue().send(pending).is_err() {
                return Err(PublishError::Store(HistoryError::Closed));
            }
        }
        result
            .await
            .unwrap_or(Err(PublishError::Store(HistoryError::Closed)))
    }
}
