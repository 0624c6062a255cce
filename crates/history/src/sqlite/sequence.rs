//! The offsets of a SQLite store: handed out in memory, from blocks reserved on disk first.
//!
//! Recovery packets get their offset before they are written (the client must not wait for
//! the disk), so a crash can lose a packet whose offset a client already saw. If the next
//! process handed out that offset again, the client would recover from the wrong place. So
//! the store writes "offsets below N may be in use" before handing out any offset below N,
//! and a new process starts at N.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::Offset;

/// How many offsets one reservation covers.
pub(crate) const BLOCK: u64 = 1 << 20;

/// How long an allocation waits for a reservation before going on regardless (logged): only
/// when the disk is stuck for that long.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The allocator.
#[derive(Debug)]
pub(crate) struct Sequence {
    next: AtomicU64,
    /// Offsets below this are reserved on disk.
    reserved: AtomicU64,
    /// Whether the writer was asked for a new reservation that it has not written yet.
    extending: AtomicBool,
    wait_lock: Mutex<()>,
    extended: Condvar,
}

impl Sequence {
    /// Starts at `first`, with offsets below `reserved` reserved on disk.
    pub(crate) fn new(first: Offset, reserved: Offset) -> Self {
        Self {
            next: AtomicU64::new(first),
            reserved: AtomicU64::new(reserved),
            extending: AtomicBool::new(false),
            wait_lock: Mutex::new(()),
            extended: Condvar::new(),
        }
    }

    /// Hands out the next offset. Calls `request_extension` once when the reservation runs
    /// low, and waits for it if the reservation is used up (the writer is a whole block behind).
    pub(crate) fn allocate(&self, request_extension: impl FnOnce()) -> Offset {
        let offset = self.next.fetch_add(1, Ordering::SeqCst);
        let reserved = self.reserved.load(Ordering::SeqCst);
        if offset + BLOCK / 2 >= reserved && !self.extending.swap(true, Ordering::SeqCst) {
            request_extension();
        }
        if offset < reserved {
            return offset;
        }
        let deadline = Instant::now() + MAX_WAIT;
        let mut guard = self.wait_lock.lock().unwrap_or_else(|p| p.into_inner());
        while self.reserved.load(Ordering::SeqCst) <= offset {
            let now = Instant::now();
            if now >= deadline {
                tracing::error!(
                    offset,
                    "history: offsets handed out before their reservation is on disk"
                );
                break;
            }
            guard = self
                .extended
                .wait_timeout(guard, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        offset
    }

    /// The end a new reservation should have: a block past the next offset.
    pub(crate) fn wanted_reservation(&self) -> Offset {
        self.next.load(Ordering::SeqCst) + BLOCK
    }

    /// The writer stored a reservation up to `end`.
    pub(crate) fn reserved_up_to(&self, end: Offset) {
        let _guard = self.wait_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.reserved.fetch_max(end, Ordering::SeqCst);
        self.extending.store(false, Ordering::SeqCst);
        self.extended.notify_all();
    }

    /// Whether a new reservation was asked for and not yet stored.
    #[cfg(test)]
    pub(crate) fn extension_pending(&self) -> bool {
        self.extending.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_an_extension_once_when_half_used() {
        let sequence = Sequence::new(1, 1 + BLOCK);
        let mut asked = 0;
        for _ in 0..BLOCK / 2 - 1 {
            sequence.allocate(|| asked += 1);
        }
        assert_eq!(asked, 0);
        sequence.allocate(|| asked += 1);
        sequence.allocate(|| asked += 1);
        assert_eq!(asked, 1);
        assert!(sequence.extension_pending());
        sequence.reserved_up_to(sequence.wanted_reservation());
        assert!(!sequence.extension_pending());
    }
}
