//! `history.store = "redis"`: the rooms' history in the cluster's Redis, one for every node
//! ([`ferrio_redis_adapter::history::RedisHistory`]); recovery stays in the node's file, whose
//! blocks of offsets come from the same Redis counter, so that no offset is handed out twice
//! in the cluster.
//!
//! "On disk before it fans out" then holds only if Redis fsyncs before it answers
//! (`appendonly yes`, `appendfsync always`): the node asks Redis at start and warns when it
//! does not, and `/ready` says it.

use std::sync::Arc;
use std::time::Duration;

use ferrio_history::{HistoryError, HistoryStore, OffsetBlocks, Retention, SqliteStore};
use ferrio_redis_adapter::history::{
    Durability, RedisHistory, RedisHistoryConfig, RedisOffsetBlocks,
};

use crate::config::model::{AdapterKind, Config, History as HistoryConfig};

/// The longest `/ready` waits for Redis to say how durable it is.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// The settings of the history in Redis: the cluster's URL and key prefix.
pub(crate) fn config(config: &Config, retention: Retention) -> Result<RedisHistoryConfig, String> {
    let cluster = &config.cluster;
    if cluster.adapter != AdapterKind::Redis || cluster.redis_url.is_empty() {
        return Err(
            "history.store is \"redis\" but the cluster has no Redis: set cluster.adapter = \
             \"redis\" and cluster.redis_url"
                .to_owned(),
        );
    }
    Ok(RedisHistoryConfig {
        key: cluster.redis_key.clone(),
        retention,
        ..RedisHistoryConfig::new(cluster.redis_url.clone())
    })
}

/// The source of the file's blocks of offsets: the history's counter in Redis.
pub(crate) fn offset_blocks(config: &RedisHistoryConfig) -> Result<Arc<dyn OffsetBlocks>, String> {
    let blocks = RedisOffsetBlocks::new(config).map_err(|e| format!("cluster.redis_url: {e}"))?;
    Ok(Arc::new(blocks))
}

/// The start-up error of the node's file, naming what to fix.
pub(crate) fn open_error(history: &HistoryConfig, error: HistoryError) -> String {
    match error {
        HistoryError::Unavailable(why) => format!(
            "history.store = \"redis\": Redis (cluster.redis_url) is unreachable ({why}); this \
             node's recovery offsets are drawn from it, so the node cannot start before Redis \
             answers"
        ),
        other => format!("history.path = {:?}: {other}", history.path),
    }
}

/// The history in Redis, as the gateway uses it.
#[derive(Debug)]
pub(crate) struct RedisLink {
    store: Arc<RedisHistory>,
    key: String,
}

impl RedisLink {
    /// Room history in Redis over `local`, which keeps recovery.
    pub(crate) fn open(
        config: RedisHistoryConfig,
        local: Arc<SqliteStore>,
    ) -> Result<Self, String> {
        let key = config.key.clone();
        let store =
            RedisHistory::new(config, local).map_err(|e| format!("cluster.redis_url: {e}"))?;
        Ok(Self {
            store: Arc::new(store),
            key,
        })
    }

    /// The store: history in Redis, recovery in the file.
    pub(crate) fn store(&self) -> Arc<dyn HistoryStore> {
        self.store.clone()
    }

    /// Where the history is, for the start-up log.
    pub(crate) fn describe(&self) -> String {
        format!(
            "the cluster's Redis (keys {:?})",
            format!("{}#history#...", self.key)
        )
    }

    async fn durability(&self) -> Result<Durability, HistoryError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.durability())
            .await
            .unwrap_or(Err(HistoryError::Closed))
    }

    /// The `/ready` line.
    pub(crate) async fn status(&self) -> String {
        match tokio::time::timeout(STATUS_TIMEOUT, self.durability()).await {
            Ok(Ok(Durability::Fsynced)) => {
                "history: redis up, on disk before acknowledged (appendonly yes, appendfsync \
                 always)"
                    .to_owned()
            }
            Ok(Ok(other @ Durability::NotFsynced { .. })) => {
                format!("history: redis up, NOT on disk before acknowledged ({other})")
            }
            Ok(Ok(other @ Durability::Unknown(_))) => {
                format!("history: redis up, durability unknown ({other})")
            }
            Ok(Err(_)) | Err(_) => {
                "history: redis down (emits to durable rooms answer 503 history_unavailable)"
                    .to_owned()
            }
        }
    }

    /// Logs what a crash of Redis could lose, if anything.
    pub(crate) async fn warn_if_not_durable(&self) {
        match self.durability().await {
            Ok(Durability::Fsynced) => tracing::info!(
                "history: Redis fsyncs each append before answering (appendonly yes, \
                 appendfsync always): acknowledged messages are on disk"
            ),
            Ok(other) => tracing::warn!(
                "history: Redis answers appends before they are on disk ({other}): a crash of \
                 Redis can lose acknowledged messages; set appendonly yes and appendfsync \
                 always in redis.conf (docs/history.md)"
            ),
            Err(error) => tracing::warn!(
                "history: {error}; emits to durable rooms answer 503 history_unavailable until \
                 Redis is back"
            ),
        }
    }
}
