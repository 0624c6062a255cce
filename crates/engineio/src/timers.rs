//! One timer task per engine for every session's heartbeat and closing grace, instead of one
//! task (and one timer) per session.
//!
//! A task per session cost about 600 bytes of an idle connection's memory (the task, its future
//! and its sleep). Here a session is one entry in a heap ordered by deadline: the task sleeps
//! until the earliest entry, pops what is due and asks the session's [`Heartbeat`] what to do.
//! Entries are never removed early: a pong that moves a session's next deadline later leaves
//! the old entry in place, and when it comes up the heartbeat answers "nothing yet" and the
//! session is queued again at its new deadline, so each session has at most one heartbeat entry.
//!
//! [`Heartbeat`]: ferrio_engineio_proto::Heartbeat

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ferrio_engineio_proto::{HeartbeatAction, Packet};
use tokio::sync::Notify;

use crate::socket::Farewell;
use crate::{DisconnectReason, Socket};

/// What is due for a session at an entry's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Ask the heartbeat (send a ping, or close a silent session).
    Heartbeat,
    /// The session started closing this long ago: complete the close even if its transport
    /// never wrote the farewell.
    Grace,
}

struct Entry<D> {
    deadline: Instant,
    /// Breaks ties in insertion order.
    seq: u64,
    due: Due,
    socket: Weak<Socket<D>>,
}

impl<D> PartialEq for Entry<D> {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}

impl<D> Eq for Entry<D> {}

impl<D> PartialOrd for Entry<D> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<D> Ord for Entry<D> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

struct Queue<D> {
    heap: BinaryHeap<Reverse<Entry<D>>>,
    seq: u64,
}

/// The timers of an engine's sessions, driven by one task.
pub(crate) struct Timers<D> {
    queue: Mutex<Queue<D>>,
    /// Woken when an entry earlier than every other is queued, or on shutdown.
    changed: Notify,
    started: AtomicBool,
    stopped: AtomicBool,
    /// How long a closing session's transport gets to write its farewell.
    grace: Duration,
}

impl<D> std::fmt::Debug for Timers<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("entries", &self.lock().heap.len())
            .finish_non_exhaustive()
    }
}

impl<D> Timers<D> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<D>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<D: Send + Sync + 'static> Timers<D> {
    pub(crate) fn new(grace: Duration) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue {
                heap: BinaryHeap::new(),
                seq: 0,
            }),
            changed: Notify::new(),
            started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            grace,
        })
    }

    /// Starts driving a new session's heartbeat. The first call starts the task, so the engine
    /// can be created outside a runtime.
    pub(crate) fn watch(self: &Arc<Self>, socket: &Arc<Socket<D>>) {
        if !self.started.swap(true, AtomicOrdering::AcqRel) {
            tokio::spawn(drive(self.clone()));
        }
        if let Some(deadline) = socket.lock_heartbeat().poll_timeout() {
            self.push(deadline, Due::Heartbeat, socket);
        }
    }

    /// Gives a session that started closing the grace period to finish.
    pub(crate) fn closing(&self, socket: &Arc<Socket<D>>) {
        self.push(Instant::now() + self.grace, Due::Grace, socket);
    }

    /// Stops the task (the engine is gone).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, AtomicOrdering::Release);
        self.changed.notify_one();
    }

    fn push(&self, deadline: Instant, due: Due, socket: &Arc<Socket<D>>) {
        let earliest = {
            let mut queue = self.lock();
            queue.seq += 1;
            let entry = Entry {
                deadline,
                seq: queue.seq,
                due,
                socket: Arc::downgrade(socket),
            };
            let earliest = queue
                .heap
                .peek()
                .is_none_or(|Reverse(first)| deadline < first.deadline);
            queue.heap.push(Reverse(entry));
            earliest
        };
        if earliest {
            self.changed.notify_one();
        }
    }

    /// The next entry due at `now`, or the deadline of the earliest one.
    fn pop_due(&self, now: Instant) -> Result<Entry<D>, Option<Instant>> {
        let mut queue = self.lock();
        match queue.heap.peek() {
            Some(Reverse(first)) if first.deadline <= now => {
                queue.heap.pop().map(|Reverse(entry)| entry).ok_or(None)
            }
            Some(Reverse(first)) => Err(Some(first.deadline)),
            None => Err(None),
        }
    }

    fn fire(&self, entry: Entry<D>, now: Instant) {
        let Some(socket) = entry.socket.upgrade() else {
            return;
        };
        match entry.due {
            Due::Grace => {
                if !socket.is_closed() {
                    socket.finish_close();
                }
            }
            Due::Heartbeat => {
                if !socket.is_open() {
                    // Closing: its grace entry completes it.
                    return;
                }
                let action = socket.lock_heartbeat().poll_action(now);
                match action {
                    Some(HeartbeatAction::SendPing) => {
                        // A full queue means the client is not reading: the pong will not come
                        // and the next deadline closes the session.
                        let _ = socket.send_packet(Packet::Ping(bytes::Bytes::new()));
                    }
                    Some(HeartbeatAction::TimedOut) => {
                        socket.close_with(DisconnectReason::PingTimeout, Farewell::None);
                        return;
                    }
                    None => {}
                }
                let next = socket.lock_heartbeat().poll_timeout();
                if let Some(deadline) = next {
                    self.push(deadline, Due::Heartbeat, &socket);
                }
            }
        }
    }
}

/// The timer task: fires what is due, then sleeps until the earliest entry or a change.
async fn drive<D: Send + Sync + 'static>(timers: Arc<Timers<D>>) {
    loop {
        if timers.stopped.load(AtomicOrdering::Acquire) {
            return;
        }
        let now = Instant::now();
        match timers.pop_due(now) {
            Ok(entry) => timers.fire(entry, now),
            Err(next) => {
                // Subscribed before sleeping: a push between `pop_due` and here is not missed
                // (`notify_one` stores a permit).
                let changed = timers.changed.notified();
                match next {
                    Some(deadline) => {
                        let sleep =
                            tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
                        tokio::select! {
                            () = sleep => {}
                            () = changed => {}
                        }
                    }
                    None => changed.await,
                }
            }
        }
    }
}
