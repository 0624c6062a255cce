//! Namespaces: their connect handlers, middlewares, sockets and adapter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::ack::{wait_for_ack, AckResponse};
use crate::adapter::{Adapter, AdapterFactory};
use crate::handlers::EventTable;
use crate::ids::IdMap;
use crate::limits::SocketLimits;
use crate::outgoing::{BroadcastPacket, Outgoing};
use crate::recovery::{RecordSource, RecoveryLog, RecoverySetup};
use crate::{BroadcastOperator, ConnectError, EmitError, Event, EventHandler, Socket, SocketId};

/// Runs when a socket connects to a namespace: register its event handlers here.
pub type ConnectHandler = Arc<dyn Fn(&Arc<Socket>) + Send + Sync>;

/// Decides whether a socket may connect. Runs before the connect handler, in the order added;
/// an error is sent to the client as CONNECT_ERROR.
pub type Middleware =
    Arc<dyn Fn(Arc<Socket>) -> BoxFuture<'static, Result<(), ConnectError>> + Send + Sync>;

/// The handlers of a namespace, shared by the children of a dynamic namespace.
#[derive(Default)]
pub(crate) struct NamespaceSetup {
    middlewares: RwLock<Vec<Middleware>>,
    on_connection: RwLock<Option<ConnectHandler>>,
    /// Event handlers every socket of the namespace shares ([`Namespace::on`]).
    events: RwLock<EventTable>,
}

impl NamespaceSetup {
    pub(crate) fn set_event_handler(&self, name: String, handler: EventHandler) {
        self.events
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set(name, handler);
    }

    fn event_handler(&self, name: &str) -> Option<EventHandler> {
        self.events
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn add_middleware(&self, middleware: Middleware) {
        self.middlewares
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(middleware);
    }

    pub(crate) fn set_on_connection(&self, handler: ConnectHandler) {
        *self
            .on_connection
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    fn middlewares(&self) -> Vec<Middleware> {
        self.middlewares
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn on_connection(&self) -> Option<ConnectHandler> {
        self.on_connection
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Recipients looked up together before their packets are queued (see `Namespace::queue_at`).
const QUEUE_GROUP: usize = 32;

/// A namespace: `io.of("/chat")` in Node.
pub struct Namespace {
    name: String,
    setup: Arc<NamespaceSetup>,
    sockets: RwLock<IdMap<Arc<Socket>>>,
    adapter: Arc<dyn Adapter>,
    ack_ids: AtomicU64,
    recovery: Option<RecoveryLog>,
    limits: Arc<SocketLimits>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    pub(crate) fn new(
        name: String,
        setup: Arc<NamespaceSetup>,
        adapter: &AdapterFactory,
        recovery: Option<RecoverySetup>,
        limits: Arc<SocketLimits>,
    ) -> Arc<Self> {
        let recovery = recovery.map(|setup| RecoveryLog::new(&name, setup));
        Arc::new_cyclic(|this| Self {
            name,
            setup,
            sockets: RwLock::new(IdMap::default()),
            adapter: adapter(this.clone()),
            ack_ids: AtomicU64::new(0),
            recovery,
            limits,
        })
    }

    /// The limits of this namespace's sockets.
    pub(crate) fn limits(&self) -> &SocketLimits {
        &self.limits
    }

    /// The recovery log, when connection state recovery is on.
    pub(crate) fn recovery(&self) -> Option<&RecoveryLog> {
        self.recovery.as_ref()
    }

    /// Encodes an event for the sockets `opts` targets. With recovery on, an event that asks for
    /// no acknowledgement and is not volatile gets its offset and is kept for replay; when it
    /// is also for the other nodes (`to_cluster`, not `local`, an adapter spanning several
    /// nodes), the adapter publishes it as it is recorded, with its sequence number
    /// ([`Adapter::publish_recorded`]), and the returned packet says so.
    pub(crate) fn event_outgoing(
        &self,
        name: &str,
        payload: crate::Payload,
        ack_id: Option<u64>,
        opts: &crate::BroadcastOptions,
        offset: Option<u64>,
        to_cluster: bool,
    ) -> Result<BroadcastPacket, crate::EmitError> {
        let mut data = crate::socket::event_data(name, payload)?;
        let mut recorded = None;
        let mut published = false;
        if let (Some(log), None, false) = (&self.recovery, ack_id, opts.volatile) {
            let pos = if to_cluster && !opts.local && self.adapter.spans_nodes() {
                published = true;
                let publish = |seq: u64, data: &ferrio_socketio_proto::PacketData| {
                    let packet = ferrio_socketio_proto::Packet::event(
                        self.name.as_str(),
                        data.clone(),
                        None,
                    );
                    self.adapter.publish_recorded(&packet, opts, seq, offset);
                };
                log.record_from(&mut data, opts, offset, RecordSource::Published(&publish))
            } else {
                log.record(&mut data, opts, offset)
            };
            recorded = Some(pos);
        }
        Ok(BroadcastPacket::new(ferrio_socketio_proto::Packet::event(
            self.name.as_str(),
            data,
            ack_id,
        ))
        .with_record(recorded, published))
    }

    /// The name, e.g. `/chat`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The adapter holding this namespace's rooms.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.adapter
    }

    /// Sets the handler run for every new socket (replacing an earlier one).
    pub fn on_connection<F>(&self, handler: F)
    where
        F: Fn(&Arc<Socket>) + Send + Sync + 'static,
    {
        self.setup.set_on_connection(Arc::new(handler));
    }

    /// Adds a connect middleware.
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(Arc<Socket>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.setup
            .add_middleware(Arc::new(move |socket| Box::pin(middleware(socket))));
    }

    /// Handles event `name` for every socket of this namespace, with one handler shared by all
    /// (replacing an earlier shared handler of the same name). A socket's own handler
    /// ([`Socket::on`]) for the name comes first; [`Socket::on_any`] only catches the events
    /// neither handles.
    ///
    /// The same as calling `socket.on(name, ...)` in the connection handler, without the
    /// handler's place in every socket: for a handler that is the same for every socket, the
    /// cheaper choice on a server holding many idle connections.
    pub fn on<F>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(&Arc<Socket>, Event) + Send + Sync + 'static,
    {
        self.setup.set_event_handler(name.into(), Arc::new(handler));
    }

    /// The shared handler of event `name`, if one was set.
    pub(crate) fn shared_handler(&self, name: &str) -> Option<EventHandler> {
        self.setup.event_handler(name)
    }

    /// The local socket with this id.
    pub fn socket(&self, id: &SocketId) -> Option<Arc<Socket>> {
        self.read_sockets().get(id).cloned()
    }

    /// Every local socket.
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.read_sockets().values().cloned().collect()
    }

    /// How many disconnected sessions this node holds for connection state recovery, waiting
    /// for their clients (0 with recovery off). In a cluster, a client may claim its session
    /// through another node, which asks this one for it.
    pub fn recovery_sessions_held(&self) -> usize {
        self.recovery.as_ref().map_or(0, RecoveryLog::held_sessions)
    }

    /// How many sockets are connected here, on this node.
    pub fn socket_count(&self) -> usize {
        self.read_sockets().len()
    }

    /// Targets every socket of the namespace; narrow with `to`, `except`, ...
    pub fn broadcast(self: &Arc<Self>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// Targets the sockets in `rooms`.
    pub fn to(self: &Arc<Self>, rooms: impl crate::IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Sends an event with one JSON argument to every socket of the namespace.
    pub fn emit(
        self: &Arc<Self>,
        name: &str,
        data: impl serde::Serialize,
    ) -> Result<(), crate::EmitError> {
        self.broadcast().emit(name, data)
    }

    fn read_sockets(&self) -> std::sync::RwLockReadGuard<'_, IdMap<Arc<Socket>>> {
        self.sockets.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs the middlewares of a socket that asked to connect.
    pub(crate) async fn run_middlewares(&self, socket: &Arc<Socket>) -> Result<(), ConnectError> {
        for middleware in self.setup.middlewares() {
            middleware(socket.clone()).await?;
        }
        Ok(())
    }

    pub(crate) fn has_middlewares(&self) -> bool {
        !self
            .setup
            .middlewares
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Registers a socket that passed the middlewares and joins it to its own room.
    pub(crate) fn insert_socket(&self, socket: &Arc<Socket>) {
        self.sockets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(socket.id().clone(), socket.clone());
        self.adapter.add_all(socket.id(), &[socket.id().room()]);
    }

    pub(crate) fn run_connect_handler(&self, socket: &Arc<Socket>) {
        if let Some(handler) = self.setup.on_connection() {
            handler(socket);
        }
    }

    pub(crate) fn remove_socket(&self, socket: &Socket) {
        self.adapter.del_all(socket.id());
        self.sockets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(socket.id());
    }

    /// Queues an encoded packet on each of these local sockets.
    pub fn deliver(&self, ids: &[SocketId], packet: &Outgoing, volatile: bool) {
        self.deliver_at(ids, packet, None, volatile);
    }

    /// Queues a broadcast on each of these local sockets, except those that were already
    /// replayed it by connection state recovery (it was recorded before they resumed).
    pub fn deliver_broadcast(&self, ids: &[SocketId], packet: &BroadcastPacket, volatile: bool) {
        self.deliver_at(ids, packet.encoded(), packet.recorded_at(), volatile);
    }

    fn deliver_at(
        &self,
        ids: &[SocketId],
        packet: &Outgoing,
        recorded_at: Option<u64>,
        volatile: bool,
    ) {
        let full = self.queue_at(|visit| ids.iter().for_each(visit), packet, recorded_at);
        Self::refuse_slow(full, volatile);
    }

    /// Queues a broadcast on the local sockets that `targets` names (it calls its argument with
    /// each one's id), without collecting the ids first: an adapter can walk its rooms under
    /// its own lock. Returns the sockets whose queue was full, for [`Namespace::refuse_slow`]
    /// once every lock is released.
    pub(crate) fn queue_broadcast(
        &self,
        targets: impl FnOnce(&mut dyn FnMut(&SocketId)),
        packet: &BroadcastPacket,
    ) -> Vec<(Arc<Socket>, usize)> {
        self.queue_at(targets, packet.encoded(), packet.recorded_at())
    }

    fn queue_at(
        &self,
        targets: impl FnOnce(&mut dyn FnMut(&SocketId)),
        packet: &Outgoing,
        recorded_at: Option<u64>,
    ) -> Vec<(Arc<Socket>, usize)> {
        // Queued under the read lock, without collecting the recipients first (a vector of
        // `Arc`s per broadcast): queuing never blocks. Disconnecting a client whose queue is
        // full is left until the lock is released.
        let mut full = Vec::new();
        let sockets = self.read_sockets();
        let mut queue = |socket: &Arc<Socket>| {
            if recorded_at.is_some_and(|pos| pos <= socket.replayed_through()) {
                return;
            }
            if let Err(EmitError::QueueFull { max }) = socket.queue_outgoing(packet) {
                full.push((socket.clone(), max));
            }
        };
        // In groups, in passes that only read (the lookups and each socket's state, then each
        // session's), so that the processor fetches many recipients' memory at once; then the
        // packets are queued, each under a lock, which would stop that overlap.
        let mut group: Vec<&Arc<Socket>> = Vec::with_capacity(QUEUE_GROUP);
        let mut flush = |group: &mut Vec<&Arc<Socket>>| {
            group.iter().for_each(|socket| socket.warm_session());
            group.drain(..).for_each(&mut queue);
        };
        targets(&mut |id| {
            if let Some(socket) = sockets.get(id) {
                socket.warm();
                group.push(socket);
                if group.len() == QUEUE_GROUP {
                    flush(&mut group);
                }
            }
        });
        flush(&mut group);
        full
    }

    /// Acts on the sockets a broadcast found with a full queue (see [`Socket::queue_full`]).
    pub(crate) fn refuse_slow(full: Vec<(Arc<Socket>, usize)>, volatile: bool) {
        for (socket, max) in full {
            socket.queue_full(max, volatile);
        }
    }

    /// Queues a packet asking for acknowledgement `ack_id` on each of these local sockets and
    /// collects the answers.
    pub async fn deliver_with_ack(
        &self,
        ids: &[SocketId],
        packet: &Outgoing,
        ack_id: u64,
        timeout: Duration,
    ) -> Vec<AckResponse> {
        let targets: Vec<Arc<Socket>> = {
            let sockets = self.read_sockets();
            ids.iter()
                .filter_map(|id| sockets.get(id).cloned())
                .collect()
        };
        let waits = targets.into_iter().map(|socket| async move {
            let receiver = socket.pending_acks().register(ack_id);
            let sent = std::time::Instant::now();
            let result = match socket.send_outgoing(packet, false) {
                Ok(()) => wait_for_ack(&socket, ack_id, receiver, timeout, sent).await,
                Err(error) => {
                    socket.pending_acks().forget(ack_id);
                    Err(crate::AckError::Emit(error.to_string()))
                }
            };
            AckResponse {
                socket: socket.id().clone(),
                result,
            }
        });
        futures_util::future::join_all(waits).await
    }
}

/// A namespace created on demand for every name a predicate accepts (`io.of(regex)` in Node).
/// Its handlers and middlewares apply to each child namespace.
pub struct DynamicNamespace {
    pub(crate) accepts: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    pub(crate) setup: Arc<NamespaceSetup>,
}

impl std::fmt::Debug for DynamicNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicNamespace").finish_non_exhaustive()
    }
}

impl DynamicNamespace {
    /// Sets the handler run for every new socket of every child namespace.
    pub fn on_connection<F>(&self, handler: F)
    where
        F: Fn(&Arc<Socket>) + Send + Sync + 'static,
    {
        self.setup.set_on_connection(Arc::new(handler));
    }

    /// Adds a connect middleware to every child namespace.
    pub fn use_middleware<F, Fut>(&self, middleware: F)
    where
        F: Fn(Arc<Socket>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.setup
            .add_middleware(Arc::new(move |socket| Box::pin(middleware(socket))));
    }

    /// Handles event `name` for every socket of every child namespace, as [`Namespace::on`].
    pub fn on<F>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(&Arc<Socket>, Event) + Send + Sync + 'static,
    {
        self.setup.set_event_handler(name.into(), Arc::new(handler));
    }
}

/// The auth payload stored for a socket: the CONNECT data, `{}` when none was sent.
pub(crate) fn auth_or_empty(auth: Option<Value>) -> Value {
    auth.unwrap_or_else(|| Value::Object(serde_json::Map::new()))
}
