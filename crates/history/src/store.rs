//! The [`HistoryStore`] trait and the values it stores.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use serde_json::Value;

use crate::HistoryError;

/// A position in a store's sequence. Every message and recovery packet gets a new one, never
/// handed out before; in a store alone it is larger than every one before it. A store whose
/// history is shared by several processes (the Redis store of `ferrio-redis-adapter`) keeps two
/// growing sequences that never meet: the room messages', in append order, and its recovery
/// packets' (blocks drawn from the same counter, [`crate::OffsetBlocks`]).
pub type Offset = u64;

/// The largest `limit` a read accepts.
pub const MAX_READ_LIMIT: usize = 1000;

/// A message to append to a room's history: an event and its JSON arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The event name.
    pub event: String,
    /// The arguments after the name.
    pub args: Vec<Value>,
    /// When it was published.
    pub at: SystemTime,
}

/// A message read back from a room's history.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Its offset, to pass as `after` to read what came next.
    pub offset: Offset,
    /// The event name.
    pub event: String,
    /// The arguments after the name.
    pub args: Vec<Value>,
    /// When it was published.
    pub at: SystemTime,
}

/// Which messages of a room to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadQuery {
    /// Messages after this offset, oldest first; `None`: the newest `limit` messages, oldest
    /// first.
    pub after: Option<Offset>,
    /// Most messages returned, 1 to [`MAX_READ_LIMIT`].
    pub limit: usize,
}

impl ReadQuery {
    /// Checks the limit.
    pub fn validate(&self) -> Result<(), HistoryError> {
        if self.limit == 0 || self.limit > MAX_READ_LIMIT {
            return Err(HistoryError::LimitOutOfRange {
                limit: self.limit,
                max: MAX_READ_LIMIT,
            });
        }
        Ok(())
    }
}

/// One page of a room's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The messages, oldest first.
    pub messages: Vec<StoredMessage>,
    /// Where to read on from: the last message's offset, or the query's `after` when there was
    /// nothing to return.
    pub next: Option<Offset>,
    /// Whether more messages follow `next` already.
    pub more: bool,
}

/// A packet kept for connection state recovery: whom it was sent to, and its encoding (opaque
/// to the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPacket {
    /// The rooms it went to; every socket of the namespace when empty.
    pub rooms: Vec<String>,
    /// The rooms it did not go to.
    pub except: Vec<String>,
    /// The packet, as the server encodes it for itself.
    pub data: Vec<u8>,
    /// When it was sent.
    pub at: SystemTime,
}

/// A recovery packet read back, with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPacket {
    /// The offset handed out when it was recorded.
    pub offset: Offset,
    /// The packet.
    pub packet: RecoveryPacket,
}

/// A socket's session, kept so that its client can recover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoverySession {
    /// The private id the client reconnects with.
    pub pid: String,
    /// The socket id it gets back.
    pub sid: String,
    /// The rooms it is in (its own included).
    pub rooms: Vec<String>,
    /// When it was disconnected; `None` while it is connected. A connected session found when
    /// a store is opened belonged to a process that stopped without saying so.
    pub disconnected_at: Option<SystemTime>,
}

/// What a namespace of a new process takes over from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryState {
    /// The packets recorded since the time asked for, in the order they were recorded (the
    /// order they were sent in). It differs from offset order for a packet recorded with
    /// [`HistoryStore::record_packet_at`] after packets with larger offsets: a durable message
    /// sent once its append was on disk.
    pub packets: Vec<StoredPacket>,
    /// The sessions, connected or not.
    pub sessions: Vec<RecoverySession>,
}

/// Storage of room history and recovery state. Implementations are shared by every namespace
/// of a server (one sequence for all), and are cheap to call from async code except where a
/// method says it blocks.
pub trait HistoryStore: Send + Sync + 'static {
    /// Appends a message to the history of `room` in `namespace`. The returned future resolves
    /// with the message's offset once the message is stored as durably as the store can (on
    /// disk, for [`crate::SqliteStore`]); retention applies right after.
    fn append(&self, namespace: &str, room: &str, message: NewMessage) -> Appended;

    /// Reads a room's history. Blocks on I/O: from async code, call it on a blocking thread.
    fn read(&self, namespace: &str, room: &str, query: ReadQuery) -> Result<Page, HistoryError>;

    /// Records a packet for connection state recovery and returns its offset at once; it is
    /// written with the next batch, not awaited (the live client does not wait for the disk).
    fn record_packet(&self, namespace: &str, packet: RecoveryPacket) -> Offset;

    /// Records a packet for connection state recovery under an offset this store already
    /// handed out for something else: the offset of the history message the packet carries,
    /// so that a live client sees one offset for it, valid as `after` for the room's history.
    /// Written with the next batch, like [`HistoryStore::record_packet`]. An offset recorded
    /// twice keeps the later packet.
    fn record_packet_at(&self, namespace: &str, offset: Offset, packet: RecoveryPacket);

    /// Saves (or replaces) a session, with the next batch.
    fn save_session(&self, namespace: &str, session: RecoverySession);

    /// Forgets a session, with the next batch.
    fn remove_session(&self, namespace: &str, pid: &str);

    /// Forgets the packets and disconnected sessions of `namespace` older than `before`, with
    /// the next batch.
    fn prune_recovery(&self, namespace: &str, before: SystemTime);

    /// The packets of `namespace` recorded at or after `since` and all its sessions. Blocks on
    /// I/O; called once when a namespace is created.
    fn load_recovery(
        &self,
        namespace: &str,
        since: SystemTime,
    ) -> Result<RecoveryState, HistoryError>;

    /// Waits until everything recorded so far is stored. Blocks: call it before a process
    /// exits.
    fn flush(&self) -> Result<(), HistoryError>;
}

/// The offset of an appended message, once it is stored: a future. Dropping it does not
/// cancel the append.
#[derive(Debug)]
pub struct Appended {
    state: AppendedState,
}

#[derive(Debug)]
enum AppendedState {
    Ready(Option<Result<Offset, HistoryError>>),
    Waiting(tokio::sync::oneshot::Receiver<Result<Offset, HistoryError>>),
}

impl Appended {
    /// An append already done (or failed).
    pub fn ready(result: Result<Offset, HistoryError>) -> Self {
        Self {
            state: AppendedState::Ready(Some(result)),
        }
    }

    /// An append whose result `receiver` will carry.
    pub fn waiting(receiver: tokio::sync::oneshot::Receiver<Result<Offset, HistoryError>>) -> Self {
        Self {
            state: AppendedState::Waiting(receiver),
        }
    }
}

impl Future for Appended {
    type Output = Result<Offset, HistoryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            AppendedState::Ready(result) => {
                Poll::Ready(result.take().unwrap_or(Err(HistoryError::Closed)))
            }
            AppendedState::Waiting(receiver) => Pin::new(receiver)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(HistoryError::Closed))),
        }
    }
}
