//! The one thread that writes: it takes every operation waiting in its queue, applies them in
//! one transaction and commits (one fsync), then answers the appends of that batch.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{params, Connection, Transaction};

use super::schema;
use super::sequence::{Sequence, BLOCK};
use crate::retention::unix_millis;
use crate::{HistoryError, Offset, OffsetBlocks, Retention};

/// How often an idle writer deletes expired history.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How long after a failed reservation from a shared source the next attempt waits, so that
/// an unreachable source does not hold up every batch.
const RETRY_RESERVATION: Duration = Duration::from_secs(1);

/// One write.
#[derive(Debug)]
pub(crate) enum Op {
    /// A history message; answered once committed.
    Append {
        offset: Offset,
        namespace: String,
        room: String,
        event: String,
        args: String,
        at: i64,
        reply: tokio::sync::oneshot::Sender<Result<Offset, HistoryError>>,
    },
    /// A recovery packet.
    Packet {
        offset: Offset,
        namespace: String,
        rooms: String,
        except: String,
        data: Vec<u8>,
        at: i64,
    },
    /// A session, inserted or replaced.
    SaveSession {
        namespace: String,
        pid: String,
        sid: String,
        rooms: String,
        disconnected_at: Option<i64>,
    },
    /// A session to forget.
    RemoveSession { namespace: String, pid: String },
    /// Recovery state older than `before` to forget.
    Prune { namespace: String, before: i64 },
    /// Reserve the next block of offsets.
    Reserve,
    /// Answered once everything before it is committed.
    Flush(std::sync::mpsc::Sender<Result<(), HistoryError>>),
}

/// The writer's state.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) queue: Receiver<Op>,
    pub(crate) sequence: Arc<Sequence>,
    pub(crate) retention: Retention,
    pub(crate) max_batch: usize,
    /// The sending order given to the last recovery packet: packets get the next ones in the
    /// order they reach the queue, which is the order they were sent in.
    pub(crate) last_sent: i64,
    /// The shared source of blocks, if any (see [`OffsetBlocks`]).
    pub(crate) offset_blocks: Option<Arc<dyn OffsetBlocks>>,
    /// When a reservation from `offset_blocks` last failed.
    pub(crate) last_failed_reservation: Option<Instant>,
}

impl Writer {
    /// Runs until every sender is gone and the queue is empty.
    pub(crate) fn run(mut self) {
        loop {
            let first = match self.queue.recv_timeout(SWEEP_EVERY) {
                Ok(op) => op,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(error) = self.sweep() {
                        tracing::warn!("history: deleting expired messages failed: {error}");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.write_batch(batch);
        }
    }

    /// Applies and commits one batch, then answers its waiters.
    fn write_batch(&mut self, batch: Vec<Op>) {
        let reserve = batch.iter().any(|op| matches!(op, Op::Reserve));
        let block = if reserve { self.next_block() } else { None };
        let result = apply(
            &mut self.conn,
            &batch,
            block.map(|(_, end)| end),
            self.retention,
            &mut self.last_sent,
        );
        match (&result, block) {
            (Err(error), _) => {
                tracing::error!("history: a batch of {} writes failed: {error}", batch.len());
                if reserve {
                    self.sequence.reservation_failed();
                }
            }
            (Ok(()), Some((start, end))) if self.offset_blocks.is_some() => {
                self.sequence.add_block(start, end);
            }
            (Ok(()), Some((_, end))) => self.sequence.reserved_up_to(end),
            (Ok(()), None) => {}
        }
        for op in batch {
            match op {
                Op::Append { offset, reply, .. } => {
                    let answer = match &result {
                        Ok(()) => Ok(offset),
                        Err(error) => Err(HistoryError::WriteFailed(error.to_string())),
                    };
                    let _ = reply.send(answer);
                }
                Op::Flush(reply) => {
                    let answer = match &result {
                        Ok(()) => Ok(()),
                        Err(error) => Err(HistoryError::WriteFailed(error.to_string())),
                    };
                    let _ = reply.send(answer);
                }
                _ => {}
            }
        }
    }

    /// The next block to reserve, `start..end`: from the shared source when there is one
    /// (`None` when it fails: asked again later), else the file's next block.
    fn next_block(&mut self) -> Option<(Offset, Offset)> {
        let Some(blocks) = &self.offset_blocks else {
            let end = self.sequence.wanted_reservation();
            return Some((end - BLOCK, end));
        };
        if self
            .last_failed_reservation
            .is_some_and(|at| at.elapsed() < RETRY_RESERVATION)
        {
            self.sequence.reservation_failed();
            return None;
        }
        let floor = self.sequence.high_water();
        match blocks.reserve(floor, BLOCK) {
            Ok(start) => {
                self.last_failed_reservation = None;
                let start = start.max(floor);
                Some((start, start + BLOCK))
            }
            Err(error) => {
                tracing::error!("history: no new block of offsets: {error}");
                self.last_failed_reservation = Some(Instant::now());
                self.sequence.reservation_failed();
                None
            }
        }
    }

    /// Deletes the history older than the retention allows, in every room.
    fn sweep(&mut self) -> Result<(), HistoryError> {
        if let Some(cutoff) = self.retention.cutoff(SystemTime::now()) {
            self.conn
                .execute("DELETE FROM history WHERE at < ?1", [unix_millis(cutoff)])?;
        }
        Ok(())
    }
}

/// Applies a batch in one transaction.
fn apply(
    conn: &mut Connection,
    batch: &[Op],
    reservation: Option<Offset>,
    retention: Retention,
    last_sent: &mut i64,
) -> Result<(), HistoryError> {
    let tx = conn.transaction()?;
    let mut touched = BTreeSet::new();
    for op in batch {
        apply_one(&tx, op, &mut touched, last_sent)?;
    }
    let cutoff = retention.cutoff(SystemTime::now()).map(unix_millis);
    for (namespace, room) in &touched {
        if let Some(max) = retention.max_messages {
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            tx.prepare_cached(
                "DELETE FROM history WHERE namespace = ?1 AND room = ?2 AND seq <=
                 (SELECT seq FROM history WHERE namespace = ?1 AND room = ?2
                  ORDER BY seq DESC LIMIT 1 OFFSET ?3)",
            )?
            .execute(params![namespace, room, max])?;
        }
        if let Some(cutoff) = cutoff {
            tx.prepare_cached(
                "DELETE FROM history WHERE namespace = ?1 AND room = ?2 AND at < ?3",
            )?
            .execute(params![namespace, room, cutoff])?;
        }
    }
    if let Some(end) = reservation {
        schema::store_reserved(&tx, end)?;
    }
    tx.commit()?;
    Ok(())
}

fn apply_one(
    tx: &Transaction<'_>,
    op: &Op,
    touched: &mut BTreeSet<(String, String)>,
    last_sent: &mut i64,
) -> Result<(), HistoryError> {
    match op {
        Op::Append {
            offset,
            namespace,
            room,
            event,
            args,
            at,
            ..
        } => {
            tx.prepare_cached(
                "INSERT INTO history (seq, namespace, room, event, args, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![seq(*offset)?, namespace, room, event, args, at])?;
            touched.insert((namespace.clone(), room.clone()));
        }
        Op::Packet {
            offset,
            namespace,
            rooms,
            except,
            data,
            at,
        } => {
            // A failed batch leaves a gap in the sending order: only the order counts.
            *last_sent += 1;
            tx.prepare_cached(
                // REPLACE: a packet recorded twice under one offset (`record_packet_at`) must
                // not fail the batch, which holds other writers' appends; the later one takes
                // its place in the sending order too, as in `MemoryStore`.
                "INSERT OR REPLACE INTO packets
                 (seq, namespace, rooms, except_rooms, data, at, sent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                seq(*offset)?,
                namespace,
                rooms,
                except,
                data,
                at,
                *last_sent
            ])?;
        }
        Op::SaveSession {
            namespace,
            pid,
            sid,
            rooms,
            disconnected_at,
        } => {
            tx.prepare_cached(
                "INSERT INTO sessions (namespace, pid, sid, rooms, disconnected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (namespace, pid) DO UPDATE SET sid = excluded.sid,
                 rooms = excluded.rooms, disconnected_at = excluded.disconnected_at",
            )?
            .execute(params![namespace, pid, sid, rooms, disconnected_at])?;
        }
        Op::RemoveSession { namespace, pid } => {
            tx.prepare_cached("DELETE FROM sessions WHERE namespace = ?1 AND pid = ?2")?
                .execute(params![namespace, pid])?;
        }
        Op::Prune { namespace, before } => {
            tx.prepare_cached("DELETE FROM packets WHERE namespace = ?1 AND at < ?2")?
                .execute(params![namespace, before])?;
            tx.prepare_cached(
                "DELETE FROM sessions WHERE namespace = ?1 AND disconnected_at < ?2",
            )?
            .execute(params![namespace, before])?;
        }
        Op::Reserve | Op::Flush(_) => {}
    }
    Ok(())
}

/// An offset as SQLite's integer.
fn seq(offset: Offset) -> Result<i64, HistoryError> {
    i64::try_from(offset).map_err(|_| HistoryError::Corrupt(format!("offset {offset}")))
}
