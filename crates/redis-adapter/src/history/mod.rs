//! Room history in Redis, shared by every node of a cluster: [`RedisHistory`].
//!
//! - One sequence of offsets for the whole cluster: a Redis counter, incremented by each
//!   append, in the same Lua script that adds the message to its room's stream under that
//!   offset, so offset order is stream order.
//! - Retention by count (`MAXLEN =` on each append) and age (expired messages are never
//!   returned; they are deleted from the front of the stream with each append, and a room idle
//!   for `max_age` expires as a whole).
//! - Reads `after`/`limit` with `next` and `more`, as every [`ferrio_history::HistoryStore`].
//! - Connection state recovery stays on each node, in a store of its own (the embedded SQLite
//!   file) that draws its blocks of offsets from the same counter ([`RedisOffsetBlocks`]), so
//!   that a recovery offset of one node never equals a history offset of the cluster.
//!
//! An append is acknowledged once Redis has answered. That is on disk only when Redis runs
//! with `appendonly yes` and `appendfsync always` (Redis answers after the fsync then);
//! [`RedisHistory::durability`] tells.

mod durability;
mod keys;
mod offsets;
mod scripts;
mod store;
mod sync_pool;

use std::time::Duration;

use ferrio_history::Retention;

pub use durability::Durability;
pub use offsets::RedisOffsetBlocks;
pub use store::{RedisHistory, RedisHistoryError};

/// Settings of a [`RedisHistory`].
#[derive(Debug, Clone)]
pub struct RedisHistoryConfig {
    /// The Redis URL, e.g. `redis://127.0.0.1:6379/`.
    pub url: String,
    /// The prefix of the keys (the adapter's channel prefix, `socket.io`, fits): nodes share a
    /// history only with the same prefix.
    pub key: String,
    /// What each room keeps.
    pub retention: Retention,
    /// How long connecting to Redis may take. 2 s.
    pub connect_timeout: Duration,
    /// How long a command may wait for Redis's answer. 2 s.
    pub response_timeout: Duration,
    /// Most appends sent to Redis in one pipeline. 512.
    pub max_batch: usize,
}

impl RedisHistoryConfig {
    /// Defaults with this Redis URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key: "socket.io".to_owned(),
            retention: Retention::default(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            max_batch: 512,
        }
    }
}
