//! Rooms and broadcasting behind the [`Adapter`] trait, with the in-memory [`LocalAdapter`].
//!
//! A namespace keeps its room memberships and fans out broadcasts through its adapter. The
//! local adapter serves one process; a multi-node adapter (Redis) implements the same trait,
//! forwarding to other nodes what the local adapter does here, so the socket API never changes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::ack::AckResponse;
use crate::ids::{BuildIdHasher, IdMap};
use crate::namespace::Namespace;
use crate::outgoing::BroadcastPacket;
use crate::recovery::RemoteSession;
use crate::server_emit::{ServerSideEmitError, ServerSideHandlers};
use crate::small_set::SmallSet;
use crate::{Room, SocketId};
use ferrio_socketio_proto::Packet;

/// Which sockets an operation targets, as built by [`crate::BroadcastOperator`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Sockets in any of these rooms; every socket of the namespace when empty.
    pub rooms: Vec<Room>,
    /// Minus the sockets in any of these rooms.
    pub except: Vec<Room>,
    /// This node only, even when the adapter spans several.
    pub local: bool,
    /// Drop the packet for clients whose queue is full instead of disconnecting them.
    pub volatile: bool,
}

/// What a broadcast operation learned of a socket: its id, rooms and handshake auth.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketInfo {
    /// The socket's id.
    pub id: SocketId,
    /// The rooms it is in (its own room included).
    pub rooms: Vec<Room>,
    /// The auth payload of its CONNECT.
    pub auth: Value,
}

/// Room membership and broadcast for one namespace.
///
/// Methods that only touch this node are synchronous; those that may need answers from other
/// nodes return futures.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a socket to rooms.
    fn add_all(&self, id: &SocketId, rooms: &[Room]);
    /// Removes a socket from a room.
    fn del(&self, id: &SocketId, room: &str);
    /// Removes a socket from every room (it disconnected).
    fn del_all(&self, id: &SocketId);
    /// The rooms a local socket is in.
    fn socket_rooms(&self, id: &SocketId) -> Vec<Room>;
    /// Every room with at least one local member.
    fn rooms(&self) -> Vec<Room>;
    /// The local sockets an operation targets.
    fn socket_ids(&self, opts: &BroadcastOptions) -> Vec<SocketId>;
    /// Sends a packet to every targeted socket.
    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions);
    /// Sends a packet that asks for an acknowledgement, and collects the answers until every
    /// targeted socket answered or `timeout` passed.
    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        ack_id: u64,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, Vec<AckResponse>>;
    /// Describes the targeted sockets.
    fn fetch_sockets(&self, opts: BroadcastOptions) -> BoxFuture<'static, Vec<SocketInfo>>;
    /// Makes the targeted sockets join rooms.
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Makes the targeted sockets leave rooms.
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);
    /// Disconnects the targeted sockets; with `close`, their whole connections.
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);
    /// Sends `[name, ...args]` to the other servers' [`ServerSideHandlers`]. A single-process
    /// adapter has no other server: the default does nothing.
    fn server_side_emit(&self, _data: Vec<Value>) {}
    /// Sends `[name, ...args]` to the other servers and collects one answer from each within
    /// `timeout`. The default (no other server) answers at once with none.
    fn server_side_emit_with_ack(
        &self,
        _data: Vec<Value>,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Value>, ServerSideEmitError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Where events from other servers find their handlers; `None` (the default) for an adapter
    /// that spans one server.
    fn server_side_handlers(&self) -> Option<&ServerSideHandlers> {
        None
    }
    /// Whether this adapter spans several nodes. With connection state recovery on, such an
    /// adapter publishes recorded events through [`Adapter::publish_recorded`], and a CONNECT
    /// for a session this node does not hold asks the others ([`Adapter::restore_session`]).
    /// False by default.
    fn spans_nodes(&self) -> bool {
        false
    }
    /// Publishes to the other nodes an event this node recorded for connection state recovery
    /// (`packet` without this node's offset), with `seq`, its number among this node's
    /// published packets of the namespace, and `offset`, the offset it was assigned
    /// ([`crate::BroadcastOperator::with_offset`]), which every node records it under.
    ///
    /// Called with the namespace's recovery log locked, in the order of `seq`: it must only
    /// queue the message (never block, never call back into the namespace), and the queue must
    /// keep that order. [`Adapter::broadcast`] then gets the same packet with
    /// [`BroadcastPacket::is_published`] set, and delivers it locally only. Only called when
    /// [`Adapter::spans_nodes`]; the default does nothing.
    fn publish_recorded(
        &self,
        _packet: &Packet,
        _opts: &BroadcastOptions,
        _seq: u64,
        _offset: Option<u64>,
    ) {
    }
    /// Asks the other nodes for the recovery session `pid`, which this node does not hold, and
    /// the packets it missed since `offset`. The node holding it hands it over (it forgets it);
    /// `None` when no node holds it (or would resume it), or no answer came in time. The
    /// default (a single node) answers `None` at once.
    fn restore_session(
        &self,
        _pid: &str,
        _offset: &str,
    ) -> BoxFuture<'static, Option<RemoteSession>> {
        Box::pin(async { None })
    }
}

/// Builds the adapter of each namespace.
pub type AdapterFactory = Arc<dyn Fn(Weak<Namespace>) -> Arc<dyn Adapter> + Send + Sync>;

/// The factory of the in-memory adapter.
pub fn local_adapter_factory() -> AdapterFactory {
    Arc::new(|namespace| Arc::new(LocalAdapter::new(namespace)))
}

#[derive(Debug, Default)]
struct Rooms {
    members: HashMap<Room, SmallSet<SocketId, BuildIdHasher>>,
    of_socket: IdMap<SmallSet<Room, std::hash::RandomState>>,
}

/// Rooms and broadcast within one process.
#[derive(Debug)]
pub struct LocalAdapter {
    namespace: Weak<Namespace>,
    rooms: RwLock<Rooms>,
}

impl LocalAdapter {
    /// An adapter for a namespace.
    pub fn new(namespace: Weak<Namespace>) -> Self {
        Self {
            namespace,
            rooms: RwLock::new(Rooms::default()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Rooms> {
        self.rooms.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Rooms> {
        self.rooms.write().unwrap_or_else(|p| p.into_inner())
    }

    fn for_each_target(&self, opts: &BroadcastOptions, mut f: impl FnMut(&SocketId)) {
        let rooms = self.read();
        let excluded = |id: &SocketId| {
            !opts.except.is_empty()
                && rooms
                    .of_socket
                    .get(id)
                    .is_some_and(|of| opts.except.iter().any(|r| of.contains(r)))
        };
        if opts.rooms.is_empty() {
            for id in rooms.of_socket.keys() {
                if !excluded(id) {
                    f(id);
                }
            }
        } else if let [room] = opts.rooms.as_slice() {
            // One room, the common case: its members are distinct already.
            for id in rooms.members.get(room).into_iter().flat_map(SmallSet::iter) {
                if !excluded(id) {
                    f(id);
                }
            }
        } else {
            let mut seen: HashSet<&SocketId, BuildIdHasher> = HashSet::default();
            for room in &opts.rooms {
                for id in rooms.members.get(room).into_iter().flat_map(SmallSet::iter) {
                    if seen.insert(id) && !excluded(id) {
                        f(id);
                    }
                }
            }
        }
    }
}

impl Adapter for LocalAdapter {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        let mut state = self.write();
        for room in rooms {
            state
                .members
                .entry(room.clone())
                .or_default()
                .insert(id.clone());
        }
        let of = state.of_socket.entry(id.clone()).or_default();
        for room in rooms {
            of.insert(room.clone());
        }
    }

    fn del(&self, id: &SocketId, room: &str) {
        let mut state = self.write();
        if let Some(members) = state.members.get_mut(room) {
            members.remove(id);
            if members.is_empty() {
                state.members.remove(room);
            }
        }
        if let Some(of) = state.of_socket.get_mut(id) {
            of.remove(room);
        }
    }

    fn del_all(&self, id: &SocketId) {
        let mut state = self.write();
        let Some(of) = state.of_socket.remove(id) else {
            return;
        };
        for room in of.iter() {
            if let Some(members) = state.members.get_mut(room) {
                members.remove(id);
                if members.is_empty() {
                    state.members.remove(room);
                }
            }
        }
    }

    fn socket_rooms(&self, id: &SocketId) -> Vec<Room> {
        self.read()
            .of_socket
            .get(id)
            .map(|of| of.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn rooms(&self) -> Vec<Room> {
        self.read().members.keys().cloned().collect()
    }

    fn socket_ids(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        let mut ids = Vec::new();
        self.for_each_target(opts, |id| ids.push(id.clone()));
        ids
    }

    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        let Some(namespace) = self.namespace.upgrade() else {
            return;
        };
        // Queued while walking the rooms, under their lock (no id is copied); a slow client is
        // disconnected only once it is released, as leaving takes the rooms lock. The
        // namespace's lock is taken inside this one, never the other way round.
        let full =
            namespace.queue_broadcast(|visit| self.for_each_target(opts, |id| visit(id)), packet);
        Namespace::refuse_slow(full, opts.volatile);
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        ack_id: u64,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, Vec<AckResponse>> {
        let namespace = self.namespace.upgrade();
        let ids = self.socket_ids(&opts);
        Box::pin(async move {
            match namespace {
                Some(namespace) => {
                    namespace
                        .deliver_with_ack(&ids, packet.encoded(), ack_id, timeout)
                        .await
                }
                None => Vec::new(),
            }
        })
    }

    fn fetch_sockets(&self, opts: BroadcastOptions) -> BoxFuture<'static, Vec<SocketInfo>> {
        let infos = match self.namespace.upgrade() {
            Some(namespace) => self
                .socket_ids(&opts)
                .into_iter()
                .filter_map(|id| namespace.socket(&id))
                .map(|socket| SocketInfo {
                    id: socket.id().clone(),
                    rooms: self.socket_rooms(socket.id()),
                    auth: socket.auth().clone(),
                })
                .collect(),
            None => Vec::new(),
        };
        Box::pin(async move { infos })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        let namespace = self.namespace.upgrade();
        for id in self.socket_ids(opts) {
            // Through the socket, so that the room limit applies.
            match namespace.as_ref().and_then(|n| n.socket(&id)) {
                Some(socket) => socket.join(rooms.to_vec()),
                None => self.add_all(&id, rooms),
            }
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for id in self.socket_ids(opts) {
            for room in rooms {
                self.del(&id, room);
            }
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        let Some(namespace) = self.namespace.upgrade() else {
            return;
        };
        for id in self.socket_ids(opts) {
            if let Some(socket) = namespace.socket(&id) {
                socket.disconnect_with(close);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SocketId {
        SocketId::from_string(s)
    }

    fn room(s: &str) -> Room {
        Arc::from(s)
    }

    fn targets(adapter: &LocalAdapter, opts: &BroadcastOptions) -> Vec<String> {
        let mut ids: Vec<_> = adapter
            .socket_ids(opts)
            .into_iter()
            .map(|i| i.to_string())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn rooms_union_minus_except() {
        let adapter = LocalAdapter::new(Weak::new());
        adapter.add_all(&id("a"), &[room("a"), room("r1")]);
        adapter.add_all(&id("b"), &[room("b"), room("r1"), room("r2")]);
        adapter.add_all(&id("c"), &[room("c"), room("r2")]);
        let all = BroadcastOptions::default();
        assert_eq!(targets(&adapter, &all), ["a", "b", "c"]);
        let r1 = BroadcastOptions {
            rooms: vec![room("r1")],
            ..Default::default()
        };
        assert_eq!(targets(&adapter, &r1), ["a", "b"]);
        let both_but_a = BroadcastOptions {
            rooms: vec![room("r1"), room("r2")],
            except: vec![room("a")],
            ..Default::default()
        };
        assert_eq!(targets(&adapter, &both_but_a), ["b", "c"]);
        adapter.del(&id("b"), "r1");
        assert_eq!(targets(&adapter, &r1), ["a"]);
        adapter.del_all(&id("a"));
        assert!(targets(&adapter, &r1).is_empty());
        assert!(!adapter.rooms().contains(&room("r1")));
    }
}
