//! The connect timeout of every new connection, driven by one task instead of one per
//! connection.
//!
//! Every connection gets the same timeout, so deadlines come in the order connections open: a
//! FIFO queue is enough, and the task sleeps until the front entry. The task runs only while
//! the queue holds entries. An entry is a deadline and a weak reference (24 bytes), where a task
//! with its sleep cost about 300 bytes of each connection's memory.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::client::Conn;

#[derive(Default)]
struct Queue {
    entries: VecDeque<(Instant, Weak<Conn>)>,
    /// Whether the task is running; only changed under the lock.
    running: bool,
}

/// The connections that must join a namespace by a deadline.
#[derive(Default)]
pub(crate) struct ConnectTimeouts {
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for ConnectTimeouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectTimeouts").finish_non_exhaustive()
    }
}

impl ConnectTimeouts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes `conn` after `timeout` unless it joined a namespace by then. `timeout` must be the
    /// same for every call (the queue is kept in deadline order by arrival).
    pub(crate) fn watch(self: &Arc<Self>, conn: &Arc<Conn>, timeout: Duration) {
        let mut queue = self.lock();
        queue
            .entries
            .push_back((Instant::now() + timeout, Arc::downgrade(conn)));
        if !queue.running {
            queue.running = true;
            tokio::spawn(drive(self.clone()));
        }
    }
}

async fn drive(timeouts: Arc<ConnectTimeouts>) {
    let mut due = Vec::new();
    loop {
        let next = {
            let mut queue = timeouts.lock();
            let now = Instant::now();
            while let Some((deadline, _)) = queue.entries.front() {
                if *deadline > now {
                    break;
                }
                if let Some((_, conn)) = queue.entries.pop_front() {
                    due.push(conn);
                }
            }
            let next = queue.entries.front().map(|(deadline, _)| *deadline);
            if next.is_none() {
                queue.running = false;
            }
            next
        };
        for conn in due.drain(..) {
            if let Some(conn) = conn.upgrade() {
                if conn.is_open() && conn.data.is_empty() {
                    tracing::debug!(sid = %conn.id(), "no namespace joined in time: closing");
                    conn.close();
                }
            }
        }
        match next {
            Some(deadline) => {
                tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
            }
            None => return,
        }
    }
}
