//! Durable room history: rooms matching `history.rooms` keep what is published to them in the
//! embedded store (SQLite, `history.path`), written to disk before it fans out, or with
//! `history.store = "redis"` in the cluster's Redis, one history for every node ([`redis`]). Clients read it
//! with the built-in `history` event ([`events`]), backends with
//! `GET /api/v1/rooms/{room}/history`. The same store keeps connection state recovery
//! (`recovery.enabled`), so that clients recover across a restart. `docs/history.md` is the
//! guide.
//!
//! One store per file per process: [`HistoryService::shared`] hands out the same service for
//! the same file, because two writers on one file would hand out the same offsets.

pub(crate) mod events;
pub(crate) mod json;
pub(crate) mod publish;
pub(crate) mod redis;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use ferrio_history::{
    HistoryError, HistoryStore, Page, ReadQuery, Retention, SqliteConfig, SqliteStore,
};
use regex::RegexSet;

use crate::config::model::{Config, History as HistoryConfig, HistoryStoreKind};
use crate::gateway::policy::pattern_error;

/// The history of the gateway: the store and which rooms are durable.
pub(crate) struct HistoryService {
    /// Room history and recovery: the file, or Redis over the file (recovery stays there).
    store: Arc<dyn HistoryStore>,
    /// The node's file.
    local: Arc<SqliteStore>,
    /// The history in Redis, with `history.store = "redis"`.
    redis: Option<redis::RedisLink>,
    rooms: RegexSet,
    publisher: publish::Publisher,
}

impl std::fmt::Debug for HistoryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryService")
            .field("path", &self.local.path())
            .field("redis", &self.redis.is_some())
            .field("rooms", &self.rooms.patterns())
            .finish_non_exhaustive()
    }
}

/// The services open in this process, by file.
fn open_services() -> &'static Mutex<HashMap<PathBuf, Weak<HistoryService>>> {
    static SERVICES: OnceLock<Mutex<HashMap<PathBuf, Weak<HistoryService>>>> = OnceLock::new();
    SERVICES.get_or_init(|| Mutex::new(HashMap::new()))
}

impl HistoryService {
    /// The service `config` describes, `None` when `history.enabled` is off. Opens the store
    /// (blocking I/O) unless this process has it open already. The error names the setting.
    /// With `history.store = "redis"`, must run within the Tokio runtime, and Redis must answer
    /// (the file's blocks of offsets come from it).
    pub(crate) fn shared(config: &Config) -> Result<Option<Arc<Self>>, String> {
        let history = &config.history;
        if !history.enabled {
            return Ok(None);
        }
        let rooms = compile_rooms(&history.rooms)?;
        let path = PathBuf::from(&history.path);
        let mut services = open_services().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(service) = services.get(&path).and_then(Weak::upgrade) {
            return Ok(Some(service));
        }
        let redis_config = match history.store {
            HistoryStoreKind::Sqlite => None,
            HistoryStoreKind::Redis => Some(redis::config(config, retention(history))?),
        };
        let offset_blocks = redis_config
            .as_ref()
            .map(redis::offset_blocks)
            .transpose()?;
        let local = SqliteStore::open(SqliteConfig {
            retention: retention(history),
            offset_blocks,
            ..SqliteConfig::new(&path)
        })
        .map_err(|e| redis::open_error(history, e))?;
        let local = Arc::new(local);
        let (store, redis): (Arc<dyn HistoryStore>, _) = match redis_config {
            None => (local.clone(), None),
            Some(redis_config) => {
                let link = redis::RedisLink::open(redis_config, local.clone())?;
                (link.store(), Some(link))
            }
        };
        let service = Arc::new(Self {
            store,
            local,
            redis,
            rooms,
            publisher: publish::Publisher::default(),
        });
        services.insert(path, Arc::downgrade(&service));
        Ok(Some(service))
    }

    /// A line for the start-up log.
    pub(crate) fn describe(&self) -> String {
        let place = match &self.redis {
            Some(link) => link.describe(),
            None => self.local.path().display().to_string(),
        };
        format!(
            "room history in {place} for rooms matching {:?}",
            self.rooms.patterns()
        )
    }

    /// The line of `/ready` about the history in Redis; `None` with the embedded store.
    pub(crate) async fn status(&self) -> Option<String> {
        Some(self.redis.as_ref()?.status().await)
    }

    /// Logs a warning when the history in Redis is not on disk before an append is
    /// acknowledged, or Redis is unreachable; nothing with the embedded store.
    pub(crate) async fn warn_if_not_durable(&self) {
        if let Some(link) = &self.redis {
            link.warn_if_not_durable().await;
        }
    }

    /// The store, for connection state recovery.
    pub(crate) fn recovery_store(&self) -> Arc<dyn HistoryStore> {
        self.store.clone()
    }

    /// Whether `room` keeps history.
    pub(crate) fn is_durable(&self, room: &str) -> bool {
        self.rooms.is_match(room)
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        self.local.path()
    }

    /// Reads a page of a room's history on a blocking thread.
    pub(crate) async fn read(
        &self,
        namespace: &str,
        room: &str,
        query: ReadQuery,
    ) -> Result<Page, HistoryError> {
        query.validate()?;
        let store = self.store.clone();
        let (namespace, room) = (namespace.to_owned(), room.to_owned());
        tokio::task::spawn_blocking(move || store.read(&namespace, &room, query))
            .await
            .unwrap_or(Err(HistoryError::Closed))
    }

    /// Waits until everything recorded is on disk; called before the process exits.
    pub(crate) fn flush(&self) -> Result<(), HistoryError> {
        self.store.flush()
    }
}

/// The server's settings with the recovery store of `history` (when recovery is on).
pub(crate) fn with_recovery_store(
    mut config: ferrio_socketio::SocketIoConfig,
    history: Option<&HistoryService>,
) -> ferrio_socketio::SocketIoConfig {
    if let (Some(history), Some(_)) = (history, &config.recovery) {
        tracing::info!("{}", history.describe());
        tracing::info!(
            "connection state recovery kept in {}",
            history.path().display()
        );
        config.recovery_store = Some(history.recovery_store());
    } else if let Some(history) = history {
        tracing::info!("{}", history.describe());
    }
    config
}

/// The default `limit` of a read.
pub(crate) const DEFAULT_LIMIT: usize = 100;

fn compile_rooms(patterns: &[String]) -> Result<RegexSet, String> {
    for pattern in patterns {
        if let Some(error) = pattern_error("history.rooms", pattern) {
            return Err(error);
        }
    }
    RegexSet::new(patterns).map_err(|e| format!("history.rooms: {e}"))
}

/// The store's retention from the settings (`0` is no limit).
fn retention(config: &HistoryConfig) -> Retention {
    Retention {
        max_messages: usize::try_from(config.max_messages).ok().filter(|n| *n > 0),
        max_age: Some(config.max_age).filter(|age| *age > Duration::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &tempfile::TempDir) -> HistoryConfig {
        HistoryConfig {
            enabled: true,
            path: dir.path().join("h.db").display().to_string(),
            rooms: vec!["^news$".into(), "^chat_.+".into()],
            ..HistoryConfig::default()
        }
    }

    fn with(history: HistoryConfig) -> Config {
        Config {
            history,
            ..Config::default()
        }
    }

    #[test]
    fn off_by_default_and_one_service_per_file() {
        assert!(HistoryService::shared(&Config::default())
            .unwrap()
            .is_none());
        let dir = tempfile::tempdir().unwrap();
        let one = HistoryService::shared(&with(config(&dir)))
            .unwrap()
            .unwrap();
        let two = HistoryService::shared(&with(config(&dir)))
            .unwrap()
            .unwrap();
        assert!(Arc::ptr_eq(&one, &two));
        assert!(one.is_durable("news"));
        assert!(one.is_durable("chat_a"));
        assert!(!one.is_durable("newsroom"));
    }

    #[test]
    fn history_in_redis_needs_the_clusters_redis() {
        let dir = tempfile::tempdir().unwrap();
        let in_redis = HistoryConfig {
            store: HistoryStoreKind::Redis,
            ..config(&dir)
        };
        assert_eq!(
            HistoryService::shared(&with(in_redis)).unwrap_err(),
            "history.store is \"redis\" but the cluster has no Redis: set cluster.adapter = \
             \"redis\" and cluster.redis_url"
        );
        assert!(!dir.path().join("h.db").exists(), "nothing opened");
    }

    #[test]
    fn bad_patterns_and_zero_limits() {
        let dir = tempfile::tempdir().unwrap();
        let bad = HistoryConfig {
            rooms: vec!["(".into()],
            ..config(&dir)
        };
        assert_eq!(
            HistoryService::shared(&with(bad)).unwrap_err(),
            "history.rooms: \"(\" is not a regular expression (unclosed group)"
        );
        let unlimited = HistoryConfig {
            max_messages: 0,
            max_age: Duration::ZERO,
            ..config(&dir)
        };
        assert_eq!(retention(&unlimited), Retention::UNLIMITED);
    }
}
