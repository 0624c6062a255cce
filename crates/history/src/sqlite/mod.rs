//! [`SqliteStore`]: history and recovery state in one SQLite file.

mod schema;
mod sequence;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::SystemTime;

use rusqlite::{params, Connection};
use serde_json::Value;

use crate::retention::{from_unix_millis, unix_millis};
use crate::store::{
    Appended, HistoryStore, NewMessage, Offset, Page, ReadQuery, RecoveryPacket, RecoverySession,
    RecoveryState, StoredMessage, StoredPacket,
};
use crate::{HistoryError, OffsetBlocks, Retention};
use sequence::{Sequence, BLOCK};
use writer::{Op, Writer};

/// Settings of a [`SqliteStore`].
#[derive(Clone)]
pub struct SqliteConfig {
    /// The database file; its directory is created when missing.
    pub path: PathBuf,
    /// What each room's history keeps.
    pub retention: Retention,
    /// Most writes committed together (one fsync). 1024.
    pub max_batch: usize,
    /// Where blocks of offsets come from: `None` (the default), the file itself; a shared
    /// source when offsets must not collide with those of other processes (see
    /// [`OffsetBlocks`]). The store then opens only once the source has answered.
    pub offset_blocks: Option<Arc<dyn OffsetBlocks>>,
}

impl std::fmt::Debug for SqliteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConfig")
            .field("path", &self.path)
            .field("retention", &self.retention)
            .field("max_batch", &self.max_batch)
            .field("offset_blocks", &self.offset_blocks.is_some())
            .finish()
    }
}

impl SqliteConfig {
    /// The file at `path`, default retention and batch size.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            retention: Retention::default(),
            max_batch: 1024,
            offset_blocks: None,
        }
    }
}

/// History and recovery state in a SQLite file (WAL mode), for one process at a time.
///
/// **Writes.** One thread owns the writing connection. It takes every write waiting in its
/// queue (up to [`SqliteConfig::max_batch`]), applies them in one transaction and commits;
/// `synchronous = FULL` makes the commit fsync the WAL. Only then are the appends of the batch
/// answered, so an offset returned by [`HistoryStore::append`] names a message that survives a
/// process kill, an OS crash and a power loss. Under load, batches grow and the fsync is shared
/// by all their writes.
///
/// **Recovery packets** are queued without waiting (a live client must not wait for the
/// disk): a crash loses the packets of the last unfinished batch. Their offsets are never
/// reused: a block of offsets is reserved on disk before any of its offsets is handed out
/// (see the `sequence` module), and a new process starts after the last reserved block. A
/// client holding a lost packet's offset is therefore not recovered (its offset is unknown)
/// instead of being recovered from the wrong place.
///
/// **Shared offsets.** With [`SqliteConfig::offset_blocks`], each block is drawn from that
/// source (and recorded in the file too) instead of the file alone, so that the offsets of
/// several processes never collide.
///
/// **Reads** use their own connection; WAL lets them run while the writer commits.
pub struct SqliteStore {
    path: PathBuf,
    retention: Retention,
    queue: Option<Sender<Op>>,
    sequence: Arc<Sequence>,
    reader: Mutex<Connection>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the store. Blocks on I/O.
    pub fn open(config: SqliteConfig) -> Result<Self, HistoryError> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut conn = schema::open(&config.path)?;
        schema::create(&mut conn)?;
        let free = schema::first_free_offset(&conn)?;
        let last_sent = schema::last_sent(&conn)?;
        // The first block is reserved before this process hands out anything.
        let first = match &config.offset_blocks {
            Some(blocks) => blocks.reserve(free, BLOCK)?.max(free),
            None => free,
        };
        schema::store_reserved(&conn, first + BLOCK)?;
        let sequence = Arc::new(Sequence::new(first, first + BLOCK));
        let reader = schema::open(&config.path)?;
        let (queue, receiver) = std::sync::mpsc::channel();
        let writer = Writer {
            conn,
            queue: receiver,
            sequence: sequence.clone(),
            retention: config.retention,
            max_batch: config.max_batch.max(1),
            last_sent,
            offset_blocks: config.offset_blocks,
            last_failed_reservation: None,
        };
        let writer = std::thread::Builder::new()
            .name("ferrio-history-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(|e| HistoryError::WriteFailed(format!("cannot start the writer: {e}")))?;
        Ok(Self {
            path: config.path,
            retention: config.retention,
            queue: Some(queue),
            sequence,
            reader: Mutex::new(reader),
            writer: Some(writer),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, op: Op) -> Result<(), HistoryError> {
        self.queue
            .as_ref()
            .ok_or(HistoryError::Closed)?
            .send(op)
            .map_err(|_| HistoryError::Closed)
    }

    fn send_or_log(&self, op: Op) {
        if self.send(op).is_err() {
            tracing::error!("history: the writer has stopped; a write is lost");
        }
    }

    fn allocate(&self) -> Offset {
        self.sequence.allocate(|| {
            let _ = self.queue.as_ref().map(|q| q.send(Op::Reserve));
        })
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and stop.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn rooms_json(rooms: &[String]) -> String {
    serde_json::to_string(rooms).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_rooms(text: &str) -> Result<Vec<String>, HistoryError> {
    serde_json::from_str(text).map_err(|e| HistoryError::Corrupt(format!("rooms {text:?}: {e}")))
}

fn offset_of(seq: i64) -> Result<Offset, HistoryError> {
    Offset::try_from(seq).map_err(|_| HistoryError::Corrupt(format!("offset {seq}")))
}

fn row_message(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_message(
    (seq, event, args, at): (i64, String, String, i64),
) -> Result<StoredMessage, HistoryError> {
    let args: Vec<Value> = serde_json::from_str(&args)
        .map_err(|e| HistoryError::Corrupt(format!("arguments of message {seq}: {e}")))?;
    Ok(StoredMessage {
        offset: offset_of(seq)?,
        event,
        args,
        at: from_unix_millis(at),
    })
}

impl HistoryStore for SqliteStore {
    fn append(&self, namespace: &str, room: &str, message: NewMessage) -> Appended {
        let args = match serde_json::to_string(&message.args) {
            Ok(args) => args,
            Err(e) => return Appended::ready(Err(HistoryError::Corrupt(e.to_string()))),
        };
        let (reply, receiver) = tokio::sync::oneshot::channel();
        let op = Op::Append {
            offset: self.allocate(),
            namespace: namespace.to_owned(),
            room: room.to_owned(),
            event: message.event,
            args,
            at: unix_millis(message.at),
            reply,
        };
        match self.send(op) {
            Ok(()) => Appended::waiting(receiver),
            Err(error) => Appended::ready(Err(error)),
        }
    }

    fn read(&self, namespace: &str, room: &str, query: ReadQuery) -> Result<Page, HistoryError> {
        query.validate()?;
        let cutoff = self
            .retention
            .cutoff(SystemTime::now())
            .map_or(i64::MIN, unix_millis);
        let conn = self.reader();
        let mut messages = Vec::new();
        let more;
        match query.after {
            Some(after) => {
                let after = i64::try_from(after).unwrap_or(i64::MAX);
                let mut statement = conn.prepare_cached(
                    "SELECT seq, event, args, at FROM history
                     WHERE namespace = ?1 AND room = ?2 AND seq > ?3 AND at >= ?4
                     ORDER BY seq LIMIT ?5",
                )?;
                let fetch = i64::try_from(query.limit + 1).unwrap_or(i64::MAX);
                let rows = statement
                    .query_map(params![namespace, room, after, cutoff, fetch], row_message)?;
                for row in rows {
                    messages.push(to_message(row?)?);
                }
                more = messages.len() > query.limit;
                messages.truncate(query.limit);
            }
            None => {
                let mut statement = conn.prepare_cached(
                    "SELECT seq, event, args, at FROM history
                     WHERE namespace = ?1 AND room = ?2 AND at >= ?3
                     ORDER BY seq DESC LIMIT ?4",
                )?;
                let fetch = i64::try_from(query.limit).unwrap_or(i64::MAX);
                let rows =
                    statement.query_map(params![namespace, room, cutoff, fetch], row_message)?;
                for row in rows {
                    messages.push(to_message(row?)?);
                }
                messages.reverse();
                more = false;
            }
        }
        let next = messages.last().map(|m| m.offset).or(query.after);
        Ok(Page {
            messages,
            next,
            more,
        })
    }

    fn record_packet(&self, namespace: &str, packet: RecoveryPacket) -> Offset {
        let offset = self.allocate();
        self.send_or_log(Op::Packet {
            offset,
            namespace: namespace.to_owned(),
            rooms: rooms_json(&packet.rooms),
            except: rooms_json(&packet.except),
            data: packet.data,
            at: unix_millis(packet.at),
        });
        offset
    }

    fn record_packet_at(&self, namespace: &str, offset: Offset, packet: RecoveryPacket) {
        self.send_or_log(Op::Packet {
            offset,
            namespace: namespace.to_owned(),
            rooms: rooms_json(&packet.rooms),
            except: rooms_json(&packet.except),
            data: packet.data,
            at: unix_millis(packet.at),
        });
    }

    fn save_session(&self, namespace: &str, session: RecoverySession) {
        self.send_or_log(Op::SaveSession {
            namespace: namespace.to_owned(),
            pid: session.pid,
            sid: session.sid,
            rooms: rooms_json(&session.rooms),
            disconnected_at: session.disconnected_at.map(unix_millis),
        });
    }

    fn remove_session(&self, namespace: &str, pid: &str) {
        self.send_or_log(Op::RemoveSession {
            namespace: namespace.to_owned(),
            pid: pid.to_owned(),
        });
    }

    fn prune_recovery(&self, namespace: &str, before: SystemTime) {
        self.send_or_log(Op::Prune {
            namespace: namespace.to_owned(),
            before: unix_millis(before),
        });
    }

    fn load_recovery(
        &self,
        namespace: &str,
        since: SystemTime,
    ) -> Result<RecoveryState, HistoryError> {
        let conn = self.reader();
        let mut state = RecoveryState::default();
        // In sending order, not by offset: see `packets.sent` in the `schema` module.
        let mut statement = conn.prepare_cached(
            "SELECT seq, rooms, except_rooms, data, at FROM packets
             WHERE namespace = ?1 AND at >= ?2 ORDER BY sent",
        )?;
        let rows = statement.query_map(params![namespace, unix_millis(since)], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Vec<u8>>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?;
        for row in rows {
            let (seq, rooms, except, data, at) = row?;
            state.packets.push(StoredPacket {
                offset: offset_of(seq)?,
                packet: RecoveryPacket {
                    rooms: parse_rooms(&rooms)?,
                    except: parse_rooms(&except)?,
                    data,
                    at: from_unix_millis(at),
                },
            });
        }
        let mut statement = conn.prepare_cached(
            "SELECT pid, sid, rooms, disconnected_at FROM sessions WHERE namespace = ?1",
        )?;
        let rows = statement.query_map([namespace], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<i64>>(3)?,
            ))
        })?;
        for row in rows {
            let (pid, sid, rooms, disconnected_at) = row?;
            state.sessions.push(RecoverySession {
                pid,
                sid,
                rooms: parse_rooms(&rooms)?,
                disconnected_at: disconnected_at.map(from_unix_millis),
            });
        }
        Ok(state)
    }

    fn flush(&self) -> Result<(), HistoryError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.send(Op::Flush(reply))?;
        answer.recv().map_err(|_| HistoryError::Closed)?
    }
}
