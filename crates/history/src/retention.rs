//! How long and how much history a room keeps.

use std::time::{Duration, SystemTime};

/// The retention of each durable room's history: the oldest messages go first when a room
/// holds more than `max_messages`, and messages older than `max_age` are never returned and
/// are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Most messages kept per room; `None`: no limit.
    pub max_messages: Option<usize>,
    /// Oldest message kept; `None`: no limit.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    /// 1000 messages per room, for 24 hours.
    fn default() -> Self {
        Self {
            max_messages: Some(1000),
            max_age: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

impl Retention {
    /// Keeps everything.
    pub const UNLIMITED: Retention = Retention {
        max_messages: None,
        max_age: None,
    };

    /// The time before which messages are expired, seen at `now`; `None` when none expire.
    pub fn cutoff(&self, now: SystemTime) -> Option<SystemTime> {
        self.max_age.and_then(|age| now.checked_sub(age))
    }
}

/// Milliseconds since the Unix epoch (0 before it), as stored.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time of a stored millisecond count.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn from_unix_millis(millis: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}
