//! Storage for what Ferrio must not lose: the history of durable rooms, and the state of
//! connection state recovery (disconnected sessions and the packets they may miss).
//!
//! - [`HistoryStore`] is the seam: the Socket.IO server records recovery packets and sessions
//!   through it, and the gateway appends and reads room history through it.
//! - [`MemoryStore`] keeps everything in the process (lost on restart).
//! - [`SqliteStore`] (feature `sqlite`, on by default) keeps everything in one SQLite file,
//!   written by one thread that commits appends in batches, one fsync per batch.
//!
//! Offsets come from one sequence per store, shared by history messages and recovery packets:
//! they only grow, and an offset handed out is never handed out again, not even after a crash
//! (see [`SqliteStore`] for how). A recovery offset is the decimal form of the sequence number,
//! which is what a Socket.IO client echoes back when it reconnects. Processes that must not
//! collide with each other (the nodes of a cluster with a shared room history) draw their
//! blocks of offsets from one [`OffsetBlocks`] source ([`SqliteConfig::offset_blocks`]).

mod blocks;
mod error;
mod memory;
mod retention;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

pub use blocks::OffsetBlocks;
pub use error::HistoryError;
pub use memory::MemoryStore;
pub use retention::Retention;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConfig, SqliteStore};
pub use store::{
    Appended, HistoryStore, NewMessage, Offset, Page, ReadQuery, RecoveryPacket, RecoverySession,
    RecoveryState, StoredMessage, StoredPacket, MAX_READ_LIMIT,
};
