//! Connection state recovery: a client that lost its connection comes back with the same id,
//! its rooms, and every packet it missed.
//!
//! While recovery is on, every event emitted without an acknowledgement request (and not
//! volatile) gets an offset appended as its last argument and is kept for
//! [`RecoveryConfig::max_disconnection_duration`]. A socket that disconnects for a recoverable
//! reason leaves a session (id, private id, rooms) behind for the same time. A CONNECT carrying
//! `{pid, offset}` within it restores the session and replays the packets emitted after `offset`
//! to the session's rooms, as the reference server does. A session that missed more packets
//! than a connection's send queue holds (`max_buffered_packets`, less a little headroom) is not
//! recovered: its client starts a new session, knowing it, rather than getting a gap.
//!
//! With a [`HistoryStore`] ([`crate::SocketIoConfig::recovery_store`]), the log is also written
//! to the store: every recorded packet (its offset is then the store's), every session while
//! its socket is connected (rooms kept up to date) and when it disconnects. A namespace of a
//! new process starts from what the store holds, so a client whose server restarted recovers
//! from the new process. The log in memory stays the one that is read: a CONNECT never waits
//! for the store.
//!
//! With an adapter that spans several nodes ([`crate::Adapter::spans_nodes`]), a CONNECT with
//! a private id this log does not hold asks the other nodes ([`crate::Adapter::restore_session`]);
//! the node holding the session hands it over ([`RecoveryLog::export`]) and this node resumes
//! it from that answer and its own log. Both paths end in [`RecoveryLog::resume`], which
//! registers the socket with the log locked, so that a packet recorded meanwhile is either in
//! the replay or delivered live, never both, never neither.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ferrio_history::{HistoryStore, Offset, RecoveryPacket, RecoverySession};
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

/// How often a log with a store asks it to forget what has left the recovery window.
const PRUNE_STORE_EVERY: Duration = Duration::from_secs(10);

/// Room left in a connection's send queue, past the missed packets, for the CONNECT reply and
/// what the connect handler sends.
pub(crate) const REPLAY_HEADROOM: usize = 16;

/// What each namespace's recovery log is built from.
#[derive(Clone)]
pub(crate) struct RecoverySetup {
    pub(crate) config: RecoveryConfig,
    pub(crate) store: Option<Arc<dyn HistoryStore>>,
    /// Most missed packets a session can be given back: they are queued at once, and a
    /// connection's queue holds `max_buffered_packets`. A session that missed more is not
    /// recovered (the client starts afresh and knows it) instead of getting a gap.
    pub(crate) max_replay: usize,
}

/// The log's store and what it needs to write to it.
struct Durable {
    store: Arc<dyn HistoryStore>,
    namespace: String,
    /// When the store was last asked to prune.
    pruned: Mutex<Instant>,
}

/// A disconnected socket's state, waiting for its client.
#[derive(Debug, Clone)]
pub(crate) struct PersistedSession {
    pub(crate) sid: SocketId,
    pub(crate) pid: Arc<str>,
    pub(crate) rooms: Vec<Room>,
    at: Instant,
}

/// Where a recorded packet came from. Recovery through another node tells the packets that
/// node already accounted for from those it did not by this.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Sent by this node; `seq` is its number among the packets this node published to the
    /// other nodes (`None`: sent to this node's sockets only).
    Own { seq: Option<u64> },
    /// Published by another node (`node`: its uid, `seq`: its number there, for a Ferrio node)
    /// or by an emitter.
    Remote {
        node: Option<Arc<str>>,
        seq: Option<u64>,
    },
    /// A copy of a missed packet, replayed to one session recovered from another node, so that
    /// the offsets that session holds are this node's.
    Replay,
}

/// How a packet being recorded reached this node.
pub(crate) enum RecordSource<'a> {
    /// Sent by this node to its own sockets only.
    Local,
    /// Sent by this node and published to the other nodes: it takes the next sequence number,
    /// and the callback (given that number and the packet before its offset was appended)
    /// publishes it while the log is locked, so that packets leave in the order of their
    /// numbers.
    Published(&'a dyn Fn(u64, &PacketData)),
    /// Published by another node or an emitter.
    Remote {
        node: Option<Arc<str>>,
        seq: Option<u64>,
    },
}

/// A missed packet as the node that held a session hands it to another node: its arguments
/// without that node's offset, and the assigned offset it was recorded under, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedPacket {
    /// The event's name and arguments, without a recovery offset; binary attachments too.
    pub data: PacketData,
    /// The offset it was recorded under when it was assigned one
    /// ([`crate::BroadcastOperator::with_offset`]), kept on every node.
    pub offset: Option<u64>,
}

/// A session another node asked for, as this node hands it over: it is no longer held here.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedSession {
    /// The socket id the client gets back.
    pub sid: SocketId,
    /// The rooms the session was in.
    pub rooms: Vec<Room>,
    /// What the session missed since its offset, in the order this node recorded it.
    pub missed: Vec<ExportedPacket>,
    /// The sequence number of the last packet this node published to the other nodes when it
    /// answered: those up to it are accounted for in `missed` (or came before the offset).
    pub published_seq: u64,
}

/// A session held by another node, with what the asking node needs to resume it exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSession {
    /// The uid of the node that held it.
    pub owner: String,
    /// The session, as the owner handed it over.
    pub session: ExportedSession,
    /// Where this node's log stood when it published the request (see
    /// [`crate::Namespace::recovery_mark_with`]): its own packets recorded later were published
    /// after the request, so the owner had not seen them.
    pub own_mark: u64,
    /// Where this node's log stood when the request came back to it from the cluster
    /// ([`crate::Namespace::recovery_mark`]): other nodes' packets recorded later were
    /// published after the request, so the owner had not seen them (unless they are the owner's
    /// own, which `published_seq` accounts for).
    pub echo_mark: u64,
}

/// A session that is coming back, and where its missed packets are.
#[derive(Debug)]
pub(crate) struct Resumption {
    pub(crate) sid: SocketId,
    pub(crate) pid: Arc<str>,
    pub(crate) rooms: Vec<Room>,
    from: ResumeFrom,
}

#[derive(Debug)]
enum ResumeFrom {
    /// This node's log, after the packet at this position.
    Local { after: u64 },
    /// Another node's session.
    Remote(Box<RemoteSession>),
}

/// What the log knows of a session a CONNECT asks for.
#[derive(Debug)]
pub(crate) enum Take {
    /// Found: it is taken out of the log and can be resumed.
    Resume(Resumption),
    /// No such session here (another node may hold it).
    Unknown,
    /// Known, but not to be recovered: the offset is not in the log, or too much was missed.
    Refused,
}

#[derive(Debug)]
struct StoredPacket {
    /// The packet's place in this log: increasing, never reused.
    pos: u64,
    offset: Arc<str>,
    /// The offset it was recorded under when assigned one.
    assigned: Option<Offset>,
    rooms: Vec<Room>,
    except: Vec<Room>,
    /// The arguments with the offset appended.
    data: PacketData,
    source: Source,
    at: Instant,
}

impl StoredPacket {
    /// The arguments without this log's offset.
    fn exported(&self) -> ExportedPacket {
        let mut data = self.data.clone();
        data.args.pop();
        ExportedPacket {
            data,
            offset: self.assigned,
        }
    }
}

#[derive(Debug, Default)]
struct LogState {
    packets: VecDeque<StoredPacket>,
    sessions: HashMap<Arc<str>, PersistedSession>,
    /// The position of the last packet recorded.
    last_pos: u64,
    /// The sequence number of the last packet this node published.
    published_seq: u64,
}

/// The packets and sessions of one namespace, in memory (and in a store when there is one).
pub(crate) struct RecoveryLog {
    config: RecoveryConfig,
    state: Mutex<LogState>,
    next_offset: AtomicU64,
    /// Distinguishes this process's offsets from an earlier one's.
    epoch: u64,
    durable: Option<Durable>,
    max_replay: usize,
}

impl std::fmt::Debug for RecoveryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryLog")
            .field("config", &self.config)
            .field("durable", &self.durable.is_some())
            .finish_non_exhaustive()
    }
}

impl RecoveryLog {
    /// The log of namespace `namespace`; with a store, it starts with what the store holds
    /// for that namespace (a store that cannot be read is logged, and the log starts empty).
    pub(crate) fn new(namespace: &str, setup: RecoverySetup) -> Self {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let RecoverySetup {
            config,
            store,
            max_replay,
        } = setup;
        let mut state = LogState::default();
        if let Some(store) = &store {
            load(&mut state, store.as_ref(), namespace, &config);
        }
        Self {
            config,
            state: Mutex::new(state),
            next_offset: AtomicU64::new(0),
            epoch,
            max_replay,
            durable: store.map(|store| Durable {
                store,
                namespace: namespace.to_owned(),
                pruned: Mutex::new(Instant::now()),
            }),
        }
    }

    pub(crate) fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`RecoveryLog::record_from`] a packet of this node for its own sockets only.
    pub(crate) fn record(
        &self,
        data: &mut PacketData,
        opts: &BroadcastOptions,
        assigned: Option<Offset>,
    ) -> u64 {
        self.record_from(data, opts, assigned, RecordSource::Local)
    }

    /// Appends an offset to an event's arguments and keeps the event for replay: `assigned`,
    /// an offset the store already handed out (a durable room message's history offset), or
    /// else a fresh one. Returns the packet's position in the log.
    ///
    /// The log keeps packets in the order they are sent, not by offset: a packet recorded under
    /// an assigned offset goes after packets with larger offsets recorded before it (they were
    /// sent while its message waited for the disk). A restore replays what follows the
    /// client's offset in that order, which is the order the client received.
    pub(crate) fn record_from(
        &self,
        data: &mut PacketData,
        opts: &BroadcastOptions,
        assigned: Option<Offset>,
        source: RecordSource<'_>,
    ) -> u64 {
        let now = Instant::now();
        let mut state = self.lock();
        self.prune(&mut state, now);
        let source = match source {
            RecordSource::Local => Source::Own { seq: None },
            RecordSource::Published(publish) => {
                state.published_seq += 1;
                // Under the lock: the other nodes receive this node's packets in the order of
                // their numbers, and an answer to a recovery request leaves after them.
                publish(state.published_seq, data);
                Source::Own {
                    seq: Some(state.published_seq),
                }
            }
            RecordSource::Remote { node, seq } => Source::Remote { node, seq },
        };
        self.append(
            &mut state,
            data,
            &opts.rooms,
            &opts.except,
            assigned,
            source,
            now,
        )
    }

    /// Records a packet under the lock: its offset (the store's, the assigned one, or a fresh
    /// one) appended to `data`.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &self,
        state: &mut LogState,
        data: &mut PacketData,
        rooms: &[Room],
        except: &[Room],
        assigned: Option<Offset>,
        source: Source,
        now: Instant,
    ) -> u64 {
        // Under the lock, so that the store records packets in the log's order.
        let offset: Arc<str> = match (&self.durable, assigned) {
            (Some(durable), _) => {
                let packet = RecoveryPacket {
                    rooms: rooms.iter().map(|r| r.to_string()).collect(),
                    except: except.iter().map(|r| r.to_string()).collect(),
                    data: encode(data),
                    at: SystemTime::now(),
                };
                let offset = match assigned {
                    Some(offset) => {
                        durable
                            .store
                            .record_packet_at(&durable.namespace, offset, packet);
                        offset
                    }
                    None => durable.store.record_packet(&durable.namespace, packet),
                };
                Arc::from(offset.to_string())
            }
            // Without a store, fresh offsets look like `epoch-counter`: never a bare number,
            // so they cannot collide with an assigned one.
            (None, Some(offset)) => Arc::from(offset.to_string()),
            (None, None) => {
                let counter = self.next_offset.fetch_add(1, Ordering::Relaxed);
                Arc::from(format!("{:x}-{:x}", self.epoch, counter))
            }
        };
        data.args.push(Value::String(offset.to_string()));
        state.last_pos += 1;
        state.packets.push_back(StoredPacket {
            pos: state.last_pos,
            offset,
            assigned,
            rooms: rooms.to_vec(),
            except: except.to_vec(),
            data: data.clone(),
            source,
            at: now,
        });
        state.last_pos
    }

    /// How many disconnected sessions are held for their clients (expired ones forgotten).
    pub(crate) fn held_sessions(&self) -> usize {
        let mut state = self.lock();
        self.prune(&mut state, Instant::now());
        state.sessions.len()
    }

    /// Keeps a disconnected socket's session.
    pub(crate) fn persist(&self, sid: SocketId, pid: Arc<str>, rooms: Vec<Room>) {
        let now = Instant::now();
        let mut state = self.lock();
        self.prune(&mut state, now);
        self.save(&sid, &pid, &rooms, Some(SystemTime::now()));
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

    /// Takes a session out of the log for its client, with where its missed packets start.
    /// An unknown offset leaves the session for a later, better attempt, as the reference
    /// does; a session that missed more than `max_replay` packets is dropped.
    pub(crate) fn take(&self, pid: &str, offset: &str) -> Take {
        let now = Instant::now();
        let mut state = self.lock();
        self.prune(&mut state, now);
        match self.take_locked(&mut state, pid, offset) {
            Ok((session, start)) => Take::Resume(Resumption {
                sid: session.sid,
                pid: session.pid,
                rooms: session.rooms,
                from: ResumeFrom::Local {
                    after: state.packets[start - 1].pos,
                },
            }),
            Err(take) => take,
        }
    }

    /// Hands a session over to another node: it is taken out of the log, with what it missed.
    /// `None` when [`RecoveryLog::take`] would not resume it.
    pub(crate) fn export(&self, pid: &str, offset: &str) -> Option<ExportedSession> {
        let now = Instant::now();
        let mut state = self.lock();
        self.prune(&mut state, now);
        let (session, start) = self.take_locked(&mut state, pid, offset).ok()?;
        let missed = state
            .packets
            .iter()
            .skip(start)
            .filter(|p| reaches(&session.rooms, &p.rooms, &p.except))
            .map(StoredPacket::exported)
            .collect();
        Some(ExportedSession {
            sid: session.sid,
            rooms: session.rooms,
            missed,
            published_seq: state.published_seq,
        })
    }

    /// The session and the index of the first packet after its offset.
    fn take_locked(
        &self,
        state: &mut LogState,
        pid: &str,
        offset: &str,
    ) -> Result<(PersistedSession, usize), Take> {
        let session = state.sessions.get(pid).ok_or(Take::Unknown)?;
        let own_room = session.sid.room();
        // A copy replayed to this very session holds the offset it was given; anyone else's
        // offset is that of the packet as first recorded.
        let index = state
            .packets
            .iter()
            .rposition(|p| {
                &*p.offset == offset && p.source == Source::Replay && p.rooms == [own_room.clone()]
            })
            .or_else(|| {
                state
                    .packets
                    .iter()
                    .position(|p| &*p.offset == offset && p.source != Source::Replay)
            })
            .ok_or(Take::Refused)?;
        let session = state.sessions.remove(pid).ok_or(Take::Unknown)?;
        if let Some(durable) = &self.durable {
            durable.store.remove_session(&durable.namespace, pid);
        }
        let missed = state
            .packets
            .iter()
            .skip(index + 1)
            .filter(|p| reaches(&session.rooms, &p.rooms, &p.except))
            .count();
        if missed > self.max_replay {
            tracing::info!(
                sid = %session.sid,
                missed,
                max = self.max_replay,
                "not recovered: more missed packets than the send queue holds \
                 (max_buffered_packets); the client starts a new session"
            );
            return Err(Take::Refused);
        }
        Ok((session, index + 1))
    }

    /// A session another node held, to be resumed here; `None` when it missed more than
    /// `max_replay` packets (the client then starts a new session, knowing it).
    pub(crate) fn resumption_from(
        &self,
        pid: Arc<str>,
        remote: RemoteSession,
    ) -> Option<Resumption> {
        let state = self.lock();
        let rooms = &remote.session.rooms;
        let extra = state
            .packets
            .iter()
            .filter(|p| {
                reaches(rooms, &p.rooms, &p.except) && unseen_by_owner(&remote, &p.source, p.pos)
            })
            .count();
        let missed = remote.session.missed.len() + extra;
        if missed > self.max_replay {
            tracing::info!(
                sid = %remote.session.sid,
                missed,
                max = self.max_replay,
                "not recovered from another node: more missed packets than the send queue \
                 holds (max_buffered_packets); the client starts a new session"
            );
            return None;
        }
        Some(Resumption {
            sid: remote.session.sid.clone(),
            pid,
            rooms: remote.session.rooms.clone(),
            from: ResumeFrom::Remote(Box::new(remote)),
        })
    }

    /// This log's last position, read while `f` runs with the log locked: no packet of this
    /// node is recorded (nor published) in between.
    pub(crate) fn mark_with<R>(&self, f: impl FnOnce() -> R) -> (u64, R) {
        let state = self.lock();
        let result = f();
        (state.last_pos, result)
    }

    /// Resumes a session: `register` runs with the log locked, given the packets to replay (in
    /// order, with this node's offsets) and the position of the last packet recorded, so that
    /// every packet recorded before is in the replay and every packet recorded after can reach
    /// the socket live. A live delivery of a packet at or before that position is a duplicate
    /// of the replay: `register` makes the socket skip those.
    ///
    /// Packets another node handed over, and this log's packets that node had not seen
    /// ([`unseen_by_owner`]), are recorded again here for this session only, so that the
    /// offsets it is given are this node's and follow each other in this log.
    pub(crate) fn resume<R>(
        &self,
        resumption: &Resumption,
        register: impl FnOnce(&[PacketData], u64) -> R,
    ) -> R {
        let now = Instant::now();
        let mut state = self.lock();
        let rooms = &resumption.rooms;
        let replay: Vec<PacketData> = match &resumption.from {
            ResumeFrom::Local { after } => state
                .packets
                .iter()
                .filter(|p| p.pos > *after && reaches(rooms, &p.rooms, &p.except))
                .map(|p| p.data.clone())
                .collect(),
            ResumeFrom::Remote(remote) => {
                let extra: Vec<ExportedPacket> = state
                    .packets
                    .iter()
                    .filter(|p| {
                        reaches(rooms, &p.rooms, &p.except)
                            && unseen_by_owner(remote, &p.source, p.pos)
                    })
                    .map(StoredPacket::exported)
                    .collect();
                let own_room = [resumption.sid.room()];
                remote
                    .session
                    .missed
                    .iter()
                    .cloned()
                    .chain(extra)
                    .map(|packet| {
                        let mut data = packet.data;
                        // A store keeps one packet per offset: a copy under an assigned offset
                        // would replace the packet everyone else missed. With a store, the copy
                        // gets an offset of its own.
                        let assigned = packet.offset.filter(|_| self.durable.is_none());
                        self.append(
                            &mut state,
                            &mut data,
                            &own_room,
                            &[],
                            assigned,
                            Source::Replay,
                            now,
                        );
                        data
                    })
                    .collect()
            }
        };
        register(&replay, state.last_pos)
    }

    /// Whether the log is also kept in a store.
    pub(crate) fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// Keeps a connected socket's session in the store, so that it can be recovered even when
    /// the process stops without disconnecting it. Without a store, does nothing: the session
    /// is kept in memory at disconnection.
    pub(crate) fn track(&self, sid: &SocketId, pid: &Arc<str>, rooms: &[Room]) {
        self.save(sid, pid, rooms, None);
    }

    /// Forgets a session for good (its socket left for a reason that is not recoverable).
    pub(crate) fn forget(&self, pid: &str) {
        if let Some(durable) = &self.durable {
            durable.store.remove_session(&durable.namespace, pid);
        }
    }

    fn save(
        &self,
        sid: &SocketId,
        pid: &Arc<str>,
        rooms: &[Room],
        disconnected_at: Option<SystemTime>,
    ) {
        if let Some(durable) = &self.durable {
            let session = RecoverySession {
                pid: pid.to_string(),
                sid: sid.to_string(),
                rooms: rooms.iter().map(|r| r.to_string()).collect(),
                disconnected_at,
            };
            durable.store.save_session(&durable.namespace, session);
        }
    }

    /// Forgets packets and sessions older than the recovery window.
    fn prune(&self, state: &mut LogState, now: Instant) {
        if let Some(durable) = &self.durable {
            let mut pruned = durable.pruned.lock().unwrap_or_else(|p| p.into_inner());
            if now.duration_since(*pruned) >= PRUNE_STORE_EVERY {
                *pruned = now;
                if let Some(before) =
                    SystemTime::now().checked_sub(self.config.max_disconnection_duration)
                {
                    durable.store.prune_recovery(&durable.namespace, before);
                }
            }
        }
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

/// Fills a new log with what the store holds for `namespace` within the recovery window.
fn load(state: &mut LogState, store: &dyn HistoryStore, namespace: &str, config: &RecoveryConfig) {
    let wall = SystemTime::now();
    let now = Instant::now();
    let since = wall
        .checked_sub(config.max_disconnection_duration)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    // The instant of a stored wall-clock time, as seen from now.
    let instant = |at: SystemTime| {
        let age = wall.duration_since(at).unwrap_or(Duration::ZERO);
        now.checked_sub(age).unwrap_or(now)
    };
    let stored = match store.load_recovery(namespace, since) {
        Ok(stored) => stored,
        Err(error) => {
            tracing::error!(nsp = namespace, "cannot load the recovery state: {error}");
            return;
        }
    };
    for packet in stored.packets {
        let Some(mut data) = decode(&packet.packet.data) else {
            tracing::warn!(
                nsp = namespace,
                offset = packet.offset,
                "unreadable recovery packet skipped"
            );
            continue;
        };
        let offset = packet.offset.to_string();
        data.args.push(Value::String(offset.clone()));
        state.last_pos += 1;
        state.packets.push_back(StoredPacket {
            pos: state.last_pos,
            offset: Arc::from(offset),
            // The store does not say whether it was assigned: handed to another node, it gets
            // that node's own offset.
            assigned: None,
            source: Source::Own { seq: None },
            rooms: packet.packet.rooms.into_iter().map(Arc::from).collect(),
            except: packet.packet.except.into_iter().map(Arc::from).collect(),
            data,
            at: instant(packet.packet.at),
        });
    }
    let sessions = stored.sessions.len();
    for mut session in stored.sessions {
        // A session still connected when its process stopped was disconnected then; the store
        // cannot tell when, so its window starts now, and the store learns it (so that pruning
        // forgets it once the window is over).
        let at = match session.disconnected_at {
            Some(at) => instant(at),
            None => {
                session.disconnected_at = Some(wall);
                store.save_session(namespace, session.clone());
                now
            }
        };
        let pid: Arc<str> = Arc::from(session.pid);
        state.sessions.insert(
            pid.clone(),
            PersistedSession {
                sid: SocketId::from_string(session.sid),
                pid,
                rooms: session.rooms.into_iter().map(Arc::from).collect(),
                at,
            },
        );
    }
    tracing::info!(
        nsp = namespace,
        packets = state.packets.len(),
        sessions,
        "recovery state loaded from the store"
    );
}

/// A packet's arguments and attachments as bytes: the JSON arguments' length (4 bytes, big
/// endian) and text, then each attachment's length and bytes.
fn encode(data: &PacketData) -> Vec<u8> {
    let args = serde_json::to_vec(&data.args).unwrap_or_else(|_| b"[]".to_vec());
    let mut out = Vec::with_capacity(8 + args.len());
    for part in std::iter::once(args.as_slice()).chain(data.attachments.iter().map(|a| &a[..])) {
        out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

/// The packet [`encode`] wrote; `None` when the bytes are not such a packet.
fn decode(mut bytes: &[u8]) -> Option<PacketData> {
    let mut parts = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (part, rest) = rest.split_at(len);
        parts.push(part);
        bytes = rest;
    }
    let (args, attachments) = parts.split_first()?;
    let args: Vec<Value> = serde_json::from_slice(args).ok()?;
    let attachments = attachments
        .iter()
        .map(|a| Bytes::copy_from_slice(a))
        .collect();
    Some(PacketData::with_attachments(args, attachments))
}

/// Whether a packet of the asking node's log, from `source` at `pos`, is one the owner of a
/// session resumed from another node had not recorded when it answered (and so is not in the
/// missed packets it handed over, nor before the client's offset).
///
/// Redis delivers every node's messages to every subscriber in the order they were published,
/// and the owner handles the request in that order: it had recorded the packets other nodes
/// published before the request, and none published after. The asking node's own packets
/// were published after the request exactly when it recorded them after `own_mark` (it
/// publishes under its log's lock); other nodes' packets arrived after the request exactly when
/// recorded after `echo_mark`. The owner's own packets are the exception (recorded when sent,
/// published after): its sequence numbers up to `published_seq` are accounted for.
fn unseen_by_owner(remote: &RemoteSession, source: &Source, pos: u64) -> bool {
    match source {
        Source::Own { .. } => pos > remote.own_mark,
        Source::Remote {
            node: Some(node),
            seq: Some(seq),
        } if **node == *remote.owner => *seq > remote.session.published_seq,
        Source::Remote { .. } => pos > remote.echo_mark,
        // A copy for another recovered session.
        Source::Replay => false,
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

    fn in_memory(config: RecoveryConfig) -> RecoveryLog {
        RecoveryLog::new(
            "/",
            RecoverySetup {
                config,
                store: None,
                max_replay: 1000,
            },
        )
    }

    fn with_store(store: &Arc<ferrio_history::MemoryStore>) -> RecoveryLog {
        let store: Arc<dyn HistoryStore> = store.clone();
        RecoveryLog::new(
            "/",
            RecoverySetup {
                config: RecoveryConfig::default(),
                store: Some(store),
                max_replay: 1000,
            },
        )
    }

    /// What a session resumed on this node is given back.
    #[derive(Debug)]
    struct Restored {
        sid: SocketId,
        rooms: Vec<Room>,
        missed: Vec<PacketData>,
    }

    fn restore(log: &RecoveryLog, pid: &str, offset: &str) -> Option<Restored> {
        let Take::Resume(resumption) = log.take(pid, offset) else {
            return None;
        };
        let missed = log.resume(&resumption, |replay, _| replay.to_vec());
        Some(Restored {
            sid: resumption.sid,
            rooms: resumption.rooms,
            missed,
        })
    }

    fn last_offset(data: &PacketData) -> String {
        data.args
            .last()
            .and_then(Value::as_str)
            .map(str::to_owned)
            .expect("an offset was appended")
    }

    #[test]
    fn a_session_that_missed_more_than_the_queue_holds_starts_afresh() {
        let log = RecoveryLog::new(
            "/",
            RecoverySetup {
                config: RecoveryConfig::default(),
                store: None,
                max_replay: 2,
            },
        );
        let mut seen = event("seen");
        log.record(&mut seen, &to(&[]), None);
        let offset = last_offset(&seen);
        log.persist(SocketId::from_string("s1"), Arc::from("p1"), vec![]);
        for text in ["one", "two"] {
            log.record(&mut event(text), &to(&[]), None);
        }
        log.persist(SocketId::from_string("s2"), Arc::from("p2"), vec![]);
        assert_eq!(
            restore(&log, "p1", &offset).map(|r| r.missed.len()),
            Some(2)
        );
        log.record(&mut event("three"), &to(&[]), None);
        assert!(
            restore(&log, "p2", &offset).is_none(),
            "3 missed, 2 at most"
        );
    }

    #[test]
    fn packets_round_trip_through_their_encoding() {
        let data = PacketData::with_attachments(
            vec![
                json!("ev"),
                json!({"_placeholder": true, "num": 0}),
                json!("x"),
            ],
            vec![Bytes::from_static(b"\x00\x01binary"), Bytes::new()],
        );
        assert_eq!(decode(&encode(&data)), Some(data));
        assert_eq!(
            decode(b"\x00\x00\x00\x09[1,2]"),
            None,
            "a length past the end"
        );
        assert_eq!(decode(b""), None);
    }

    #[test]
    fn a_new_log_on_the_same_store_restores_sessions_and_replays() {
        let store = Arc::new(ferrio_history::MemoryStore::default());
        let first = with_store(&store);
        let mut seen = event("seen");
        first.record(&mut seen, &to(&["a"]), None);
        let offset = last_offset(&seen);
        assert!(
            offset.parse::<u64>().is_ok(),
            "the store's offsets: {offset}"
        );
        // Connected when the process stops: only tracked, never persisted.
        first.track(
            &SocketId::from_string("s1"),
            &Arc::from("p1"),
            &[room("s1"), room("a")],
        );
        let mut missed = event("missed before the restart");
        first.record(&mut missed, &to(&["a"]), None);
        first.record(&mut event("other room"), &to(&["b"]), None);
        drop(first);

        let second = with_store(&store);
        let sessions = store
            .load_recovery("/", SystemTime::UNIX_EPOCH)
            .expect("loaded")
            .sessions;
        assert!(
            sessions.iter().all(|s| s.disconnected_at.is_some()),
            "the new log marks the sessions of the old process disconnected: {sessions:?}"
        );
        let mut after = event("missed after the restart");
        second.record(&mut after, &to(&[]), None);
        assert!(last_offset(&after).parse::<u64>().ok() > offset.parse::<u64>().ok());
        let restored = restore(&second, "p1", &offset).expect("session kept");
        assert_eq!(restored.sid.as_str(), "s1");
        assert_eq!(restored.rooms, vec![room("s1"), room("a")]);
        assert_eq!(restored.missed, vec![missed, after]);

        // Restored once; and a third process no longer finds it.
        assert!(restore(&second, "p1", &offset).is_none());
        assert!(restore(&with_store(&store), "p1", &offset).is_none());
    }

    #[test]
    fn a_forgotten_session_is_not_restored_by_a_new_log() {
        let store = Arc::new(ferrio_history::MemoryStore::default());
        let first = with_store(&store);
        let mut seen = event("seen");
        first.record(&mut seen, &to(&[]), None);
        first.track(&SocketId::from_string("s1"), &Arc::from("p1"), &[]);
        first.forget("p1");
        assert!(restore(&with_store(&store), "p1", &last_offset(&seen)).is_none());
    }

    fn to(rooms: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| room(r)).collect(),
            ..BroadcastOptions::default()
        }
    }

    #[test]
    fn replays_only_what_the_session_missed_in_its_rooms() {
        let log = in_memory(RecoveryConfig::default());
        let mut seen = event("seen");
        log.record(&mut seen, &to(&["a"]), None);
        let offset = seen.args.last().and_then(Value::as_str).map(str::to_owned);
        let offset = offset.expect("an offset was appended");
        log.persist(
            SocketId::from_string("s1"),
            Arc::from("p1"),
            vec![room("s1"), room("a")],
        );
        let mut missed = event("missed");
        log.record(&mut missed, &to(&["a"]), None);
        log.record(&mut event("other room"), &to(&["b"]), None);
        let mut everyone = event("everyone");
        log.record(&mut everyone, &to(&[]), None);
        let excluded = BroadcastOptions {
            except: vec![room("s1")],
            ..to(&["a"])
        };
        log.record(&mut event("excluded"), &excluded, None);

        let restored = restore(&log, "p1", &offset).expect("session kept");
        assert_eq!(restored.sid.as_str(), "s1");
        assert_eq!(restored.missed, vec![missed, everyone]);
        // A session is restored once.
        assert!(restore(&log, "p1", &offset).is_none());
    }

    #[test]
    fn an_assigned_offset_is_the_packets_and_keeps_the_order_of_sending() {
        let log = in_memory(RecoveryConfig::default());
        let mut newer = event("newer");
        log.record(&mut newer, &to(&[]), None);
        log.persist(SocketId::from_string("s1"), Arc::from("p1"), vec![]);
        log.persist(SocketId::from_string("s2"), Arc::from("p2"), vec![]);
        // Sent after `newer`, under an offset handed out before it.
        let mut durable = event("durable");
        log.record(&mut durable, &to(&[]), Some(7));
        assert_eq!(last_offset(&durable), "7");
        let mut later = event("later");
        log.record(&mut later, &to(&[]), None);

        let restored = restore(&log, "p1", &last_offset(&newer)).expect("session kept");
        assert_eq!(restored.missed, vec![durable, later.clone()]);
        let restored = restore(&log, "p2", "7").expect("session kept");
        assert_eq!(restored.missed, vec![later]);
    }

    #[test]
    fn unknown_offsets_and_expired_sessions_are_not_restored() {
        let log = in_memory(RecoveryConfig {
            max_disconnection_duration: Duration::ZERO,
            skip_middlewares: true,
        });
        log.persist(SocketId::from_string("s1"), Arc::from("p1"), vec![]);
        std::thread::sleep(Duration::from_millis(2));
        assert!(restore(&log, "p1", "anything").is_none());

        let log = in_memory(RecoveryConfig::default());
        log.persist(SocketId::from_string("s1"), Arc::from("p1"), vec![]);
        assert!(restore(&log, "p1", "not-an-offset").is_none());
        // The session survives a bad offset.
        let mut data = event("later");
        log.record(&mut data, &to(&[]), None);
        let offset = data.args.last().and_then(Value::as_str).map(str::to_owned);
        let offset = offset.expect("an offset was appended");
        assert!(restore(&log, "p1", &offset).is_some());
    }

    // -----------------------------------------------------------------------------------------
    // A session resumed through another node (the Redis order simulated by hand)
    // -----------------------------------------------------------------------------------------

    /// Publishes `text` from `node` (whose log is `log`) to room `r`: recorded there with the
    /// next sequence number; returns the packet as published (without the offset) and its seq.
    fn publish(log: &RecoveryLog, text: &str) -> (PacketData, u64) {
        let published = std::cell::RefCell::new(None);
        let hook = |seq: u64, data: &PacketData| {
            *published.borrow_mut() = Some((data.clone(), seq));
        };
        log.record_from(
            &mut event(text),
            &to(&["r"]),
            None,
            RecordSource::Published(&hook),
        );
        published.into_inner().expect("published while recorded")
    }

    /// Another node receives what `node` published.
    fn receive(log: &RecoveryLog, node: &str, (data, seq): &(PacketData, u64)) {
        let mut data = data.clone();
        let source = RecordSource::Remote {
            node: Some(Arc::from(node)),
            seq: Some(*seq),
        };
        log.record_from(&mut data, &to(&["r"]), None, source);
    }

    fn texts(packets: &[PacketData]) -> Vec<String> {
        packets
            .iter()
            .map(|p| p.args[1].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    #[test]
    fn a_session_resumed_on_another_node_gets_each_missed_packet_once_in_each_senders_order() {
        let (a, b) = (
            in_memory(RecoveryConfig::default()),
            in_memory(RecoveryConfig::default()),
        );
        // The client is on A, in room r, and saw a1.
        let a1 = publish(&a, "a1");
        receive(&b, "A", &a1);
        let seen_offset = a
            .lock()
            .packets
            .back()
            .map(|p| p.offset.to_string())
            .expect("a1 recorded");
        a.persist(
            SocketId::from_string("s1"),
            Arc::from("p1"),
            vec![room("s1"), room("r")],
        );
        // Missed while away: from C, from A, from B, and one A sent the socket alone.
        let c1 = ("c1", 1);
        for log in [&a, &b] {
            receive(log, "C", &(event(c1.0), c1.1));
        }
        let a2 = publish(&a, "a2");
        receive(&b, "A", &a2);
        let b1 = publish(&b, "b1");
        receive(&a, "B", &b1);
        a.record(&mut event("to s1 alone"), &to(&["s1"]), None);

        // B publishes its request: a packet B publishes later is one A has not seen.
        let (own_mark, ()) = b.mark_with(|| ());
        publish(&b, "b2");
        // The request comes back to B: what others publish later, A has not seen either...
        let echo_mark = b.mark_with(|| ()).0;
        // ... but A's own packets are recorded when sent: a3 before its answer, a4 after.
        let a3 = publish(&a, "a3");
        let exported = a.export("p1", &seen_offset).expect("A holds the session");
        assert!(a.export("p1", &seen_offset).is_none(), "handed over once");
        let a4 = publish(&a, "a4");
        receive(&b, "A", &a3);
        for log in [&a, &b] {
            receive(log, "C", &(event("c2"), 2));
        }
        receive(&b, "A", &a4);
        assert_eq!(
            texts(
                &exported
                    .missed
                    .iter()
                    .map(|p| p.data.clone())
                    .collect::<Vec<_>>()
            ),
            ["c1", "a2", "b1", "to s1 alone", "a3"]
        );
        assert_eq!(exported.published_seq, 3);

        let remote = RemoteSession {
            owner: "A".to_owned(),
            session: exported,
            own_mark,
            echo_mark,
        };
        let resumption = b
            .resumption_from(Arc::from("p1"), remote)
            .expect("within max_replay");
        let (replay, through) = b.resume(&resumption, |replay, through| (replay.to_vec(), through));
        assert_eq!(
            texts(&replay),
            ["c1", "a2", "b1", "to s1 alone", "a3", "b2", "c2", "a4"]
        );
        assert_eq!(
            through,
            b.mark_with(|| ()).0,
            "every replayed packet is at or before it"
        );
        // Each replayed packet carries an offset of B, and they follow each other in B's log:
        // the session comes back to B later from the one it got last.
        let last = last_offset(replay.last().expect("replayed"));
        b.persist(
            resumption.sid.clone(),
            Arc::from("p1"),
            resumption.rooms.clone(),
        );
        let later = publish(&b, "later");
        let again = restore(&b, "p1", &last).expect("B holds it now");
        assert_eq!(texts(&again.missed), ["later"]);
        let _ = later;
    }

    #[test]
    fn a_replayed_copy_keeps_its_assigned_offset_without_confusing_other_sessions() {
        let b = in_memory(RecoveryConfig::default());
        // Another session on B saw the durable message 42 live, then left.
        let mut durable = event("durable");
        let source = RecordSource::Remote {
            node: Some(Arc::from("A")),
            seq: Some(1),
        };
        b.record_from(&mut durable, &to(&["r"]), Some(42), source);
        assert_eq!(last_offset(&durable), "42");
        b.persist(
            SocketId::from_string("s2"),
            Arc::from("p2"),
            vec![room("r")],
        );
        // A session handed over by A, which missed 42 and one more.
        let remote = RemoteSession {
            owner: "A".to_owned(),
            session: ExportedSession {
                sid: SocketId::from_string("s1"),
                rooms: vec![room("s1"), room("r")],
                missed: vec![
                    ExportedPacket {
                        data: event("durable"),
                        offset: Some(42),
                    },
                    ExportedPacket {
                        data: event("after"),
                        offset: None,
                    },
                ],
                published_seq: 1,
            },
            own_mark: b.mark_with(|| ()).0,
            echo_mark: b.mark_with(|| ()).0,
        };
        let resumption = b
            .resumption_from(Arc::from("p1"), remote)
            .expect("resumable");
        let replay = b.resume(&resumption, |replay, _| replay.to_vec());
        assert_eq!(
            texts(&replay),
            ["durable", "after"],
            "42 is not replayed twice"
        );
        assert_eq!(last_offset(&replay[0]), "42");
        b.persist(
            resumption.sid.clone(),
            Arc::from("p1"),
            resumption.rooms.clone(),
        );

        // s1 dropped right after 42: it gets "after" once, not the original 42 again.
        let back = restore(&b, "p1", "42").expect("held");
        assert_eq!(texts(&back.missed), ["after"]);
        // s2 saw the original 42: the copies for s1 are not its own.
        let other = restore(&b, "p2", "42").expect("held");
        assert!(other.missed.is_empty(), "{:?}", texts(&other.missed));
    }

    #[test]
    fn a_remote_session_that_missed_too_much_is_not_resumed() {
        let b = RecoveryLog::new(
            "/",
            RecoverySetup {
                config: RecoveryConfig::default(),
                store: None,
                max_replay: 1,
            },
        );
        let remote = RemoteSession {
            owner: "A".to_owned(),
            session: ExportedSession {
                sid: SocketId::from_string("s1"),
                rooms: vec![room("s1"), room("r")],
                missed: vec![ExportedPacket {
                    data: event("one"),
                    offset: None,
                }],
                published_seq: 0,
            },
            own_mark: 0,
            echo_mark: 0,
        };
        // One handed over plus one B sent after the request: two, one at most.
        publish(&b, "mine");
        assert!(b.resumption_from(Arc::from("p1"), remote).is_none());
    }

    #[test]
    fn with_a_store_a_replayed_copy_never_replaces_the_packet_under_its_assigned_offset() {
        let store = Arc::new(ferrio_history::MemoryStore::default());
        let b = with_store(&store);
        let source = RecordSource::Remote {
            node: Some(Arc::from("A")),
            seq: Some(1),
        };
        b.record_from(&mut event("durable"), &to(&["r"]), Some(42), source);
        let remote = RemoteSession {
            owner: "A".to_owned(),
            session: ExportedSession {
                sid: SocketId::from_string("s1"),
                rooms: vec![room("s1"), room("r")],
                missed: vec![ExportedPacket {
                    data: event("durable"),
                    offset: Some(42),
                }],
                published_seq: 1,
            },
            own_mark: b.mark_with(|| ()).0,
            echo_mark: b.mark_with(|| ()).0,
        };
        let resumption = b
            .resumption_from(Arc::from("p1"), remote)
            .expect("resumable");
        let replay = b.resume(&resumption, |replay, _| replay.to_vec());
        assert_eq!(texts(&replay), ["durable"]);
        assert_ne!(last_offset(&replay[0]), "42", "a store offset of its own");
        let stored = store
            .load_recovery("/", SystemTime::UNIX_EPOCH)
            .expect("loaded")
            .packets;
        let at_42: Vec<_> = stored.iter().filter(|p| p.offset == 42).collect();
        assert_eq!(at_42.len(), 1);
        assert_eq!(at_42[0].packet.rooms, ["r"], "still the packet for room r");
    }
}
