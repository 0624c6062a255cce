//! [`MemoryStore`]: everything in the process.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use crate::store::{
    Appended, HistoryStore, NewMessage, Offset, Page, ReadQuery, RecoveryPacket, RecoverySession,
    RecoveryState, StoredMessage, StoredPacket,
};
use crate::{HistoryError, Retention};

#[derive(Debug, Default)]
struct State {
    last_offset: Offset,
    rooms: HashMap<(String, String), VecDeque<StoredMessage>>,
    packets: HashMap<String, VecDeque<StoredPacket>>,
    sessions: HashMap<String, BTreeMap<String, RecoverySession>>,
}

impl State {
    fn next_offset(&mut self) -> Offset {
        self.last_offset += 1;
        self.last_offset
    }
}

/// A store in memory: history and recovery state last as long as the store. Share one between
/// two servers of a test to see what a restart keeps.
#[derive(Debug, Default)]
pub struct MemoryStore {
    retention: Retention,
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store whose rooms keep what `retention` allows.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops what retention no longer allows in one room.
    fn apply_retention(&self, messages: &mut VecDeque<StoredMessage>, now: SystemTime) {
        if let Some(max) = self.retention.max_messages {
            while messages.len() > max {
                messages.pop_front();
            }
        }
        if let Some(cutoff) = self.retention.cutoff(now) {
            while messages.front().is_some_and(|m| m.at < cutoff) {
                messages.pop_front();
            }
        }
    }
}

impl HistoryStore for MemoryStore {
    fn append(&self, namespace: &str, room: &str, message: NewMessage) -> Appended {
        let mut state = self.lock();
        let offset = state.next_offset();
        let messages = state
            .rooms
            .entry((namespace.to_owned(), room.to_owned()))
            .or_default();
        messages.push_back(StoredMessage {
            offset,
            event: message.event,
            args: message.args,
            at: message.at,
        });
        self.apply_retention(messages, SystemTime::now());
        Appended::ready(Ok(offset))
    }

    fn read(&self, namespace: &str, room: &str, query: ReadQuery) -> Result<Page, HistoryError> {
        query.validate()?;
        let mut state = self.lock();
        let Some(messages) = state
            .rooms
            .get_mut(&(namespace.to_owned(), room.to_owned()))
        else {
            return Ok(Page {
                messages: Vec::new(),
                next: query.after,
                more: false,
            });
        };
        self.apply_retention(messages, SystemTime::now());
        let candidates: Vec<&StoredMessage> = match query.after {
            Some(after) => messages.iter().filter(|m| m.offset > after).collect(),
            None => {
                let skip = messages.len().saturating_sub(query.limit);
                messages.iter().skip(skip).collect()
            }
        };
        let more = candidates.len() > query.limit;
        let page: Vec<StoredMessage> = candidates.into_iter().take(query.limit).cloned().collect();
        let next = page.last().map(|m| m.offset).or(query.after);
        Ok(Page {
            messages: page,
            next,
            more,
        })
    }

    fn record_packet(&self, namespace: &str, packet: RecoveryPacket) -> Offset {
        let mut state = self.lock();
        let offset = state.next_offset();
        state
            .packets
            .entry(namespace.to_owned())
            .or_default()
            .push_back(StoredPacket { offset, packet });
        offset
    }

    fn record_packet_at(&self, namespace: &str, offset: Offset, packet: RecoveryPacket) {
        let mut state = self.lock();
        // Never handed out again, whoever chose it.
        state.last_offset = state.last_offset.max(offset);
        let packets = state.packets.entry(namespace.to_owned()).or_default();
        packets.retain(|p| p.offset != offset);
        packets.push_back(StoredPacket { offset, packet });
    }

    fn save_session(&self, namespace: &str, session: RecoverySession) {
        self.lock()
            .sessions
            .entry(namespace.to_owned())
            .or_default()
            .insert(session.pid.clone(), session);
    }

    fn remove_session(&self, namespace: &str, pid: &str) {
        if let Some(sessions) = self.lock().sessions.get_mut(namespace) {
            sessions.remove(pid);
        }
    }

    fn prune_recovery(&self, namespace: &str, before: SystemTime) {
        let mut state = self.lock();
        if let Some(packets) = state.packets.get_mut(namespace) {
            while packets.front().is_some_and(|p| p.packet.at < before) {
                packets.pop_front();
            }
        }
        if let Some(sessions) = state.sessions.get_mut(namespace) {
            sessions.retain(|_, s| s.disconnected_at.is_none_or(|at| at >= before));
        }
    }

    fn load_recovery(
        &self,
        namespace: &str,
        since: SystemTime,
    ) -> Result<RecoveryState, HistoryError> {
        let state = self.lock();
        Ok(RecoveryState {
            packets: state
                .packets
                .get(namespace)
                .map(|p| p.iter().filter(|p| p.packet.at >= since).cloned().collect())
                .unwrap_or_default(),
            sessions: state
                .sessions
                .get(namespace)
                .map(|s| s.values().cloned().collect())
                .unwrap_or_default(),
        })
    }

    fn flush(&self) -> Result<(), HistoryError> {
        Ok(())
    }
}
