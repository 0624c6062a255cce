//! The offsets of a SQLite store: handed out in memory, from blocks reserved first.
//!
//! Recovery packets get their offset before they are written (the client must not wait for
//! the disk), so a crash can lose a packet whose offset a client already saw. If the next
//! process handed out that offset again, the client would recover from the wrong place. So
//! the store writes "offsets below N may be in use" before handing out any offset below N,
//! and a new process starts at N.
//!
//! A store alone on its file reserves contiguous blocks on its own disk. A store that draws its
//! blocks from a shared source ([`crate::OffsetBlocks`]) gets blocks with gaps between them
//! (other processes took the offsets in between): the next block waits beside the current one
//! and takes over when the current one is used up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::Offset;

/// How many offsets one reservation covers.
pub(crate) const BLOCK: u64 = 1 << 20;

/// How long an allocation waits for a reservation before going on regardless (logged): only
/// when the disk (or the shared source) is stuck for that long.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// The allocator.
///
/// The fast path is lock-free: `next` moves by compare-and-swap while it is below `end`. When
/// the block is used up, the allocation takes `wait_lock` and switches to the next block.
/// `next` is always stored before `end`, so a thread that reads a `next` and then an `end`
/// never takes an offset of the gap between two blocks: its compare-and-swap fails instead.
#[derive(Debug)]
pub(crate) struct Sequence {
    next: AtomicU64,
    /// The end (exclusive) of the block `next` is in.
    end: AtomicU64,
    /// Whether a new block was asked for and is not yet in use (asked and not written, or
    /// written and waiting for the current block to be used up).
    extending: AtomicBool,
    /// The next block when it does not follow the current one: `start..end`.
    wait_lock: Mutex<Option<(Offset, Offset)>>,
    extended: Condvar,
}

impl Sequence {
    /// Starts at `first`, with offsets below `end` reserved.
    pub(crate) fn new(first: Offset, end: Offset) -> Self {
        Self {
            next: AtomicU64::new(first),
            end: AtomicU64::new(end),
            extending: AtomicBool::new(false),
            wait_lock: Mutex::new(None),
            extended: Condvar::new(),
        }
    }

    fn upcoming(&self) -> MutexGuard<'_, Option<(Offset, Offset)>> {
        self.wait_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands out the next offset. Calls `request_extension` once when the block runs low, and
    /// waits for the next block if this one is used up (the writer is a whole block behind).
    pub(crate) fn allocate(&self, request_extension: impl FnOnce()) -> Offset {
        let mut request = Some(request_extension);
        let mut ask = |sequence: &Self| {
            if !sequence.extending.swap(true, Ordering::SeqCst) {
                if let Some(request) = request.take() {
                    request();
                }
            }
        };
        loop {
            let offset = self.next.load(Ordering::SeqCst);
            let end = self.end.load(Ordering::SeqCst);
            if offset < end {
                if self
                    .next
                    .compare_exchange(offset, offset + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    continue;
                }
                if offset + BLOCK / 2 >= end {
                    ask(self);
                }
                return offset;
            }
            ask(self);
            match self.wait_for_block() {
                Some(offset) => return offset,
                None => continue,
            }
        }
    }

    /// With the current block used up: takes the first offset of the next block once there is
    /// one (`Some`), or returns `None` when another thread made room meanwhile (allocate
    /// again). After [`MAX_WAIT`] without a block it goes on past the reservation, logged.
    fn wait_for_block(&self) -> Option<Offset> {
        let deadline = Instant::now() + MAX_WAIT;
        let mut upcoming = self.upcoming();
        loop {
            let next = self.next.load(Ordering::SeqCst);
            if next < self.end.load(Ordering::SeqCst) {
                return None;
            }
            if let Some((start, end)) = upcoming.take() {
                // `next` first: see the type's doc.
                self.next.store(start + 1, Ordering::SeqCst);
                self.end.store(end, Ordering::SeqCst);
                self.extending.store(false, Ordering::SeqCst);
                return Some(start);
            }
            let now = Instant::now();
            if now >= deadline {
                let offset = self.next.fetch_add(1, Ordering::SeqCst);
                tracing::error!(
                    offset,
                    "history: offsets handed out before their reservation is stored"
                );
                return Some(offset);
            }
            upcoming = self
                .extended
                .wait_timeout(upcoming, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// The end a new reservation of the store's own file should have: a block past the next
    /// offset.
    pub(crate) fn wanted_reservation(&self) -> Offset {
        self.next.load(Ordering::SeqCst) + BLOCK
    }

    /// The first offset past every block this sequence holds: the floor of a block drawn from
    /// a shared source.
    pub(crate) fn high_water(&self) -> Offset {
        let upcoming = self.upcoming();
        let end = self.end.load(Ordering::SeqCst);
        upcoming.map_or(end, |(_, upcoming_end)| upcoming_end.max(end))
    }

    /// The writer stored a reservation of the store's own file up to `end`: the current block
    /// grows.
    pub(crate) fn reserved_up_to(&self, end: Offset) {
        let _guard = self.upcoming();
        self.end.fetch_max(end, Ordering::SeqCst);
        self.extending.store(false, Ordering::SeqCst);
        self.extended.notify_all();
    }

    /// The writer stored block `start..end` drawn from a shared source. A block that follows
    /// the current one extends it; otherwise it waits until the current one is used up.
    pub(crate) fn add_block(&self, start: Offset, end: Offset) {
        let mut upcoming = self.upcoming();
        if start <= self.end.load(Ordering::SeqCst) {
            self.end.fetch_max(end, Ordering::SeqCst);
            self.extending.store(false, Ordering::SeqCst);
        } else {
            *upcoming = Some((start, end));
        }
        self.extended.notify_all();
    }

    /// The writer could not get a new block: the next allocation that needs one asks again.
    pub(crate) fn reservation_failed(&self) {
        let upcoming = self.upcoming();
        if upcoming.is_none() {
            self.extending.store(false, Ordering::SeqCst);
        }
    }

    /// Whether a new reservation was asked for and not yet in use.
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

    #[test]
    fn a_block_with_a_gap_takes_over_when_the_current_one_is_used_up() {
        let first = 10;
        let sequence = Sequence::new(first, first + BLOCK);
        let mut asked = 0;
        let mut last = 0;
        for _ in 0..BLOCK / 2 + 1 {
            last = sequence.allocate(|| asked += 1);
        }
        assert_eq!(asked, 1);
        // Another process drew the block after this one; this one gets the one after that.
        let start = first + 3 * BLOCK;
        sequence.add_block(start, start + BLOCK);
        assert!(sequence.extension_pending(), "in use only once this one is");
        assert_eq!(sequence.high_water(), start + BLOCK);
        let mut handed_out = Vec::new();
        while last + 1 < first + BLOCK {
            last = sequence.allocate(|| asked += 1);
        }
        assert_eq!(last, first + BLOCK - 1, "the whole first block is used");
        assert_eq!(asked, 1, "no second request while a block waits");
        for _ in 0..3 {
            handed_out.push(sequence.allocate(|| asked += 1));
        }
        assert_eq!(
            handed_out,
            [start, start + 1, start + 2],
            "nothing of the gap"
        );
        assert!(!sequence.extension_pending());
    }

    #[test]
    fn a_following_block_extends_the_current_one_and_a_failure_asks_again() {
        let sequence = Sequence::new(1, 1 + BLOCK);
        let mut asked = 0;
        for _ in 0..BLOCK / 2 + 1 {
            sequence.allocate(|| asked += 1);
        }
        sequence.reservation_failed();
        sequence.allocate(|| asked += 1);
        assert_eq!(asked, 2, "asked again after a failure");
        sequence.add_block(1 + BLOCK, 1 + 2 * BLOCK);
        assert!(!sequence.extension_pending());
        assert_eq!(sequence.high_water(), 1 + 2 * BLOCK);
    }

    #[test]
    fn concurrent_allocations_across_blocks_are_unique_and_outside_the_gaps() {
        let sequence = std::sync::Arc::new(Sequence::new(0, 1000));
        // Blocks are small here: the second one is given before the threads start.
        sequence.add_block(5000, 6000);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let sequence = sequence.clone();
                std::thread::spawn(move || {
                    (0..400)
                        .map(|_| sequence.allocate(|| {}))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<Offset> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        all.sort_unstable();
        let len = all.len();
        all.dedup();
        assert_eq!(all.len(), len, "no offset twice");
        assert!(all.iter().all(|o| *o < 1000 || (5000..6000).contains(o)));
    }
}
