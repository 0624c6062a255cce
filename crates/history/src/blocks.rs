//! [`OffsetBlocks`]: where a store takes its blocks of offsets from when it shares one sequence
//! with other processes.
//!
//! A store alone on its file reserves its blocks on its own disk. When several processes hand
//! out offsets that must never collide (the nodes of a cluster whose room history lives in a
//! store shared by all of them, and whose recovery logs hold offsets of that history), each
//! process draws its blocks from one source shared by all, such as a counter in Redis.

use crate::{HistoryError, Offset};

/// A source of blocks of offsets shared by several stores: a block it hands out is never
/// handed out again, to anyone.
pub trait OffsetBlocks: Send + Sync + 'static {
    /// Reserves `size` consecutive offsets, none below `floor`, and returns the first. The
    /// reservation is stored as durably as the source can before this returns. Blocks on I/O:
    /// it is called when a store opens and from a store's writer thread.
    ///
    /// `floor` is the first offset the calling store knows to be free (past everything in its
    /// file), so that a source that lost its state (a Redis restarted without persistence)
    /// still never hands out an offset the store has used.
    fn reserve(&self, floor: Offset, size: u64) -> Result<Offset, HistoryError>;
}
