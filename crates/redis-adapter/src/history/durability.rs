//! Whether Redis has an acknowledged append on disk: its `appendonly` and `appendfsync`.

use std::collections::HashMap;
use std::fmt;

use ferrio_history::HistoryError;

use super::sync_pool::SyncPool;

/// What Redis promises about an append it has answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// `appendonly yes` and `appendfsync always`: Redis answers once the append is fsynced,
    /// so an acknowledged message survives a crash of Redis, of its machine, or a power loss.
    Fsynced,
    /// Redis answers before its disk has the append: a crash of Redis can lose acknowledged
    /// messages (`everysec`: the last second; `no`, or `appendonly no`: more, or all).
    NotFsynced {
        /// Redis's `appendonly`.
        appendonly: String,
        /// Redis's `appendfsync`.
        appendfsync: String,
    },
    /// Redis would not say (`CONFIG` is disabled or renamed, as on some hosted Redis).
    Unknown(String),
}

impl Durability {
    /// Whether an acknowledged append is on disk.
    pub fn is_fsynced(&self) -> bool {
        matches!(self, Self::Fsynced)
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fsynced => f.write_str("appendonly yes, appendfsync always"),
            Self::NotFsynced {
                appendonly,
                appendfsync,
            } => write!(f, "appendonly {appendonly}, appendfsync {appendfsync}"),
            Self::Unknown(why) => write!(f, "CONFIG GET refused: {why}"),
        }
    }
}

/// Asks Redis. `Err` only when Redis cannot be reached.
pub(crate) fn check(pool: &SyncPool) -> Result<Durability, HistoryError> {
    let mut values = HashMap::new();
    for name in ["appendonly", "appendfsync"] {
        let answer: Result<HashMap<String, String>, HistoryError> =
            pool.query(redis::cmd("CONFIG").arg("GET").arg(name));
        match answer {
            Ok(map) => {
                values.insert(name, map.get(name).cloned().unwrap_or_default());
            }
            Err(HistoryError::Unavailable(why)) => return Err(HistoryError::Unavailable(why)),
            Err(other) => return Ok(Durability::Unknown(other.to_string())),
        }
    }
    let appendonly = values.remove("appendonly").unwrap_or_default();
    let appendfsync = values.remove("appendfsync").unwrap_or_default();
    if appendonly == "yes" && appendfsync == "always" {
        Ok(Durability::Fsynced)
    } else {
        Ok(Durability::NotFsynced {
            appendonly,
            appendfsync,
        })
    }
}
