//! Connection state recovery: a client that lost its connection comes back with the same id,
//! its rooms, and every packet it missed.
//!
//! While recovery is on, every event emitted without an acknowledgement request (and not
//! volatile) gets an offset appended as its last argument and is kept for
//! [`RecoveryConfig::max_disconnection_duration`]. A socket that disconnects for a recoverable
//! reason leaves a session (id, private id, rooms) behind for the same time. A CONNECT carrying
//! `{pid, offset}` within it restores the session and replays the packets emitted after `offset`
//! to the session's rooms, as the reference server does.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrio_socketio_proto::PacketData;
use serde_json::Value;

use crate::adapter::BroadcastOptions;
use crate::{Room, SocketId};

/// Settings of connection state recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long a disconnected session and the packets it may miss are kept. 2 minutes.
    pub max_disconnection_duration: Duration,
    /// Whether a recovered socket skips the namespace's middlewares. True, as in the reference.
    pub skip_middlewares: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
        }
    }
}

/// A disconnected socket's state, waiting for its client.
#[derive(Debug, Clone)]
pub(crate) struct PersistedSession {
    pub(crate) sid: SocketId,
    pub(crate) pid: Arc<str>,
    pub(crate) rooms: Vec<Room>,
    at: Instant,
}

/// A session handed back to its client, with what it missed.
#[derive(Debug)]
pub(crate) struct RestoredSession {
    pub(crate) sid: SocketId,
    pub(crate) pid: Arc<str>,
    pub(crate) rooms: Vec<Room>,
    pub(crate) missed: Vec<PacketData>,
}

#[derive(Debug)]
struct StoredPacket {
    offset: Arc<str>,
    rooms: Vec<Room>,
    except: Vec<Room>,
    data: PacketData,
    at: Instant,
}

#[derive(Debug, Default)]
struct LogState {
    packets: VecDeque<StoredPacket>,
    sessions: HashMap<Arc<str>, PersistedSession>,
}

/// The packets and sessions of one namespace, in memory.
#[derive(Debug)]
pub(crate) struct RecoveryLog {
    config: RecoveryConfig,
    state: Mutex<LogState>,
    next_offset: AtomicU64,
    /// Distinguishes this process's offsets from an earlier one's.
    epoch: u64,
}

impl RecoveryLog {
    pub(crate) fn new(config: RecoveryConfig) -> Self {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            config,
            state: Mutex::new(LogState::default()),
            next_offset: AtomicU64::new(0),
            epoch,
        }
    }

    pub(crate) fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a fresh offset to an event's arguments and keeps the event for replay.
    pub(crate) fn record(&self, data: &mut PacketData, opts: &BroadcastOptions) {
        let counter = self.next_offset.fetch_add(1, Ordering::Relaxed);
        let offset: Arc<str> = Arc::from(format!("{:x}-{:x}", self.epoch, counter));
        data.args.push(Value::String(offset.to_string()));
        let now = Instant::now();
        let mut state = self.lock();
        self.prune(&mut state, now);
        state.packets.push_back(StoredPacket {
            offset,
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            data: data.clone(),
            at: now,
        });
    }

    /// Keeps a disconnected socket's session.
    pub(crate) fn persist(&self, sid: SocketId, pid: Arc<str>, rooms: Vec<Room>) {
        let now = Instant::now();
        let mut state = self.lock();
        self.prune(&mut state, now);
        state.sessions.insert(
            pid.clone(),
            PersistedSession {
                sid,
                pid,
                rooms,
                at: now,
            },
        );
    }

    /// Takes back a session and the packets it missed since `offset`. `None` when the session
    /// expired or is unknown, or when `offset` is no longer in the log (too much was missed).
    pub(crate) fn restore(&self, pid: &str, offset: &str) -> Option<RestoredSession> {
        let now = Instant::now();
        let mut state = self.lock();
        self.prune(&mut state, now);
        // An unknown offset leaves the session for a later, better attempt, as the reference does.
        let start = state.packets.iter().position(|p| &*p.offset == offset)? + 1;
        let session = state.sessions.remove(pid)?;
        let missed = state
            .packets
            .iter()
            .skip(start)
            .filter(|p| reaches(&session.rooms, &p.rooms, &p.except))
            .map(|p| p.data.clone())
            .collect();
        Some(RestoredSession {
            sid: session.sid,
            pid: session.pid,
            rooms: session.rooms,
            missed,
        })
    }

    /// Forgets packets and sessions older than the recovery window.
    fn prune(&self, state: &mut LogState, now: Instant) {
        let window = self.config.max_disconnection_duration;
        while state
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > window)
        {
            state.packets.pop_front();
        }
        if !state.sessions.is_empty() {
            state
                .sessions
                .retain(|_, s| now.duration_since(s.at) <= window);
        }
    }
}

/// Whether a packet sent to `rooms` except `except` would have reached a socket in
/// `socket_rooms`.
fn reaches(socket_rooms: &[Room], rooms: &[Room], except: &[Room]) -> bool {
    let included = rooms.is_empty() || rooms.iter().any(|r| socket_rooms.contains(r));
    included && !except.iter().any(|r| socket_rooms.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn room(name: &str) -> Room {
        Arc::from(name)
    }

    fn event(text: &str) -> PacketData {
        PacketData::new(vec![json!("ev"), json!(text)])
    }

    fn to(rooms: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| room(r)).collect(),
            ..BroadcastOptions::default()
        }
    }

    #[test]
    fn replays_only_what_the_session_missed_in_its_rooms() {
        let log = RecoveryLog::new(RecoveryConfig::default());
        let mut seen = event("seen");
        log.record(&mut seen, &to(&["a"]));
        let offset = seen.args.last().and_then(Value::as_str).map(str::to_owned);
        let offset = offset.expect("an offset was appended");
        log.persist(
            SocketId::from_string("s1"),
            Arc::from("p1"),
            vec![room("s1"), room("a")],
        );
        let mut missed = event("missed");
        log.record(&mut missed, &to(&["a"]));
        log.record(&mut event("other room"), &to(&["b"]));
        let mut everyone = event("everyone");
        log.record(&mut everyone, &to(&[]));
        let excluded = BroadcastOptions {
            except: vec![room("s1")],
            ..to(&["a"])
        };
        log.record(&mut event("excluded"), &excluded);

        let restored = log.restore("p1", &offset).expect("session kept");
        assert_eq!(restored.sid.as_str(), "s1");
        assert_eq!(restored.missed, vec![missed, everyone]);
        // A session is restored once.
        assert!(log.restore("p1", &offset).is_none());
    }

    #[test]
    fn unknown_offsets_and_expired_sessions_are_not_restored() {
        let log = RecoveryLog::new(RecoveryConfig {
            max_disconnection_duration: Duration::ZERO,
            skip_middlewares: true,
        });
        log.persist(SocketId::from_string("s1"), Arc::from("p1"), vec![]);
        std::thread::sleep(Duration::from_millis(2));
        assert!(log.restore("p1", "anything").is_none());

        let log = RecoveryLog::new(RecoveryConfig::default());
        log.persist(SocketId::from_string("s1"), Arc::from("p1"), vec![]);
        assert!(log.restore("p1", "not-an-offset").is_none());
        // The session survives a bad offset.
        let mut data = event("later");
        log.record(&mut data, &to(&[]));
        let offset = data.args.last().and_then(Value::as_str).map(str::to_owned);
        let offset = offset.expect("an offset was appended");
        assert!(log.restore("p1", &offset).is_some());
    }
}
