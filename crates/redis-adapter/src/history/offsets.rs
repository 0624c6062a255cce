//! [`RedisOffsetBlocks`]: the blocks of offsets of the nodes' own stores, drawn from the
//! history's counter.

use ferrio_history::{HistoryError, Offset, OffsetBlocks};

use super::keys::Keys;
use super::scripts;
use super::sync_pool::SyncPool;
use super::RedisHistoryConfig;
use super::RedisHistoryError;

/// Hands out blocks of offsets from the same Redis counter as [`super::RedisHistory`]'s
/// appends (`INCRBY` of a block), for a node's own store
/// (`ferrio_history::SqliteConfig::offset_blocks`): its recovery offsets then never equal a
/// history offset of the cluster, nor another node's.
pub struct RedisOffsetBlocks {
    pool: SyncPool,
    counter: String,
}

impl std::fmt::Debug for RedisOffsetBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOffsetBlocks")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl RedisOffsetBlocks {
    /// Blocks from the counter of the history `config` describes (its URL and key prefix).
    pub fn new(config: &RedisHistoryConfig) -> Result<Self, RedisHistoryError> {
        let client =
            redis::Client::open(config.url.as_str()).map_err(RedisHistoryError::InvalidUrl)?;
        Ok(Self {
            pool: SyncPool::new(client, config.connect_timeout, config.response_timeout),
            counter: Keys::new(&config.key).offsets(),
        })
    }
}

impl OffsetBlocks for RedisOffsetBlocks {
    fn reserve(&self, floor: Offset, size: u64) -> Result<Offset, HistoryError> {
        let last: u64 = self.pool.query(
            redis::cmd("EVAL")
                .arg(scripts::RESERVE)
                .arg(1)
                .arg(&self.counter)
                .arg(floor)
                .arg(size),
        )?;
        // `last` is the block's last offset: the block is the `size` offsets up to it.
        Ok(last.saturating_sub(size) + 1)
    }
}
