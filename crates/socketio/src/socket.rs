//! A client's connection to one namespace.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ferrio_engineio::{count_refusal, Handshake, ProtocolVersion, TransportKind};
use ferrio_socketio_proto::{Packet, PacketData, RESERVED_EVENTS};
use serde::Serialize;
use serde_json::Value;

use crate::ack::{wait_for_ack, PendingAcks};
use crate::client::Conn;
use crate::handlers::EventTable;
use crate::limits::{EventBudget, OverLimit, Verdict};
use crate::namespace::Namespace;
use crate::outgoing::Outgoing;
use crate::{
    AckError, AckSender, BroadcastOperator, DisconnectReason, EmitError, IntoRooms, JoinError,
    Payload, Room, SocketId,
};

/// An event received from a client.
#[derive(Debug)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The arguments after the name.
    pub payload: Payload,
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<AckSender>,
}

/// Handles one event. Runs on the connection's reading task, in arrival order: spawn for slow
/// or asynchronous work.
pub type EventHandler = Arc<dyn Fn(&Arc<Socket>, Event) + Send + Sync>;

/// Runs when a socket leaves its namespace.
pub type DisconnectHandler = Arc<dyn Fn(&Arc<Socket>, DisconnectReason) + Send + Sync>;

#[derive(Default)]
struct Handlers {
    events: EventTable,
    any: Option<EventHandler>,
    disconnect: Vec<DisconnectHandler>,
}

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const DISCONNECTED: u8 = 2;

/// A client's connection to one namespace: what `socket` is in a Node `io.on("connection")`.
pub struct Socket {
    id: SocketId,
    namespace: Arc<Namespace>,
    conn: Arc<Conn>,
    /// The CONNECT's auth payload; `None` for the usual empty object (no room taken for it).
    auth: Option<Box<Value>>,
    state: AtomicU8,
    handlers: RwLock<Handlers>,
    acks: PendingAcks,
    extensions: Mutex<http::Extensions>,
    /// The token bucket of the event rate limit; `None` when the namespace has none (most
    /// sockets: no room taken for it).
    events: Option<Box<Mutex<EventBudget>>>,
    /// Held while a join is checked against the room limit and applied, so two joins at once
    /// cannot both take the last place.
    joining: Mutex<()>,
    /// The private id that lets the client recover this socket (recovery on, protocol v5).
    pid: Option<Arc<str>>,
    recovered: bool,
    /// The recovery log position up to which this recovered socket was replayed what it
    /// missed: a live delivery of a packet recorded at or before it is a duplicate.
    replayed_through: AtomicU64,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("nsp", &self.namespace.name())
            .finish_non_exhaustive()
    }
}

impl Socket {
    pub(crate) fn new(
        id: SocketId,
        namespace: Arc<Namespace>,
        conn: Arc<Conn>,
        auth: Value,
    ) -> Self {
        let events = namespace
            .limits()
            .event_rate
            .as_ref()
            .map(|_| Box::new(Mutex::new(EventBudget::default())));
        Self {
            id,
            namespace,
            conn,
            auth: match &auth {
                Value::Object(map) if map.is_empty() => None,
                _ => Some(Box::new(auth)),
            },
            state: AtomicU8::new(CONNECTING),
            handlers: RwLock::new(Handlers::default()),
            acks: PendingAcks::default(),
            extensions: Mutex::new(http::Extensions::new()),
            events,
            joining: Mutex::new(()),
            pid: None,
            recovered: false,
            replayed_through: AtomicU64::new(0),
        }
    }

    /// Gives the socket its private recovery id, and says whether it is a recovered session.
    pub(crate) fn with_recovery(mut self, pid: Option<Arc<str>>, recovered: bool) -> Self {
        self.pid = pid;
        self.recovered = recovered;
        self
    }

    /// Whether this socket is a session restored by connection state recovery (same id, rooms
    /// back, missed packets replayed): `socket.recovered` in Node.
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// Reads what queuing a packet for this socket reads first in the socket itself, so that a
    /// broadcast can fetch the memory of many recipients at once before queuing on each.
    pub(crate) fn warm(&self) {
        std::hint::black_box(self.state.load(Ordering::Relaxed));
        std::hint::black_box(self.replayed_through.load(Ordering::Relaxed));
    }

    /// The same for the socket's session (a second pass: its address is read in the first).
    pub(crate) fn warm_session(&self) {
        self.conn.warm();
    }

    pub(crate) fn replayed_through(&self) -> u64 {
        self.replayed_through.load(Ordering::Acquire)
    }

    pub(crate) fn set_replayed_through(&self, pos: u64) {
        self.replayed_through.store(pos, Ordering::Release);
    }

    pub(crate) fn pid(&self) -> Option<&Arc<str>> {
        self.pid.as_ref()
    }

    /// The socket's id, as the client knows it.
    pub fn id(&self) -> &SocketId {
        &self.id
    }

    /// The namespace's name, e.g. `/chat`.
    pub fn nsp(&self) -> &str {
        self.namespace.name()
    }

    /// The namespace.
    pub fn namespace(&self) -> &Arc<Namespace> {
        &self.namespace
    }

    /// The auth payload of the client's CONNECT (`{}` when none; for socket.io-client v2, the
    /// query parameters it sent with the namespace).
    pub fn auth(&self) -> &Value {
        static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        match &self.auth {
            Some(auth) => auth,
            None => EMPTY.get_or_init(|| Value::Object(serde_json::Map::new())),
        }
    }

    /// The HTTP request that opened the underlying connection: headers, query, address, time.
    pub fn handshake(&self) -> &Handshake {
        self.conn.handshake()
    }

    /// The transport the connection uses now.
    pub fn transport(&self) -> TransportKind {
        self.conn.transport()
    }

    /// The Engine.IO revision of the client (v3 means socket.io-client v2).
    pub fn protocol(&self) -> ProtocolVersion {
        self.conn.protocol()
    }

    /// Whether the socket is connected to its namespace.
    pub fn connected(&self) -> bool {
        self.state.load(Ordering::Acquire) == CONNECTED
    }

    /// Stores a value in the socket's typed data, replacing one of the same type.
    pub fn insert_data<T: Clone + Send + Sync + 'static>(&self, value: T) {
        self.lock_extensions().insert(value);
    }

    /// A copy of the socket's value of type `T`, if one was stored.
    pub fn data<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.lock_extensions().get::<T>().cloned()
    }

    fn lock_extensions(&self) -> std::sync::MutexGuard<'_, http::Extensions> {
        self.extensions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_handlers(&self) -> std::sync::RwLockWriteGuard<'_, Handlers> {
        self.handlers.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles event `name`; replaces an earlier handler of the same name.
    pub fn on<F>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(&Arc<Socket>, Event) + Send + Sync + 'static,
    {
        self.write_handlers()
            .events
            .set(name.into(), Arc::new(handler));
    }

    /// Handles event `name` with its first argument deserialized as `T`
    /// (`socket.on_typed("move", |socket, to: Position, ack| ...)`).
    ///
    /// A client's event whose first argument does not fit `T` never reaches the handler; when it
    /// asked for an acknowledgement, it gets `{"error": "invalid argument: ..."}` so it learns
    /// why. Use [`Socket::on`] to handle such events yourself.
    pub fn on_typed<T, F>(&self, name: impl Into<String>, handler: F)
    where
        T: serde::de::DeserializeOwned + 'static,
        F: Fn(&Arc<Socket>, T, Option<AckSender>) + Send + Sync + 'static,
    {
        self.on(name, move |socket, event| match event.payload.get::<T>(0) {
            Ok(value) => handler(socket, value, event.ack),
            Err(error) => {
                tracing::debug!(id = %socket.id(), event = %event.name, %error, "event argument refused");
                if let Some(ack) = event.ack {
                    let _ = ack.send_json(serde_json::json!({
                        "error": format!("invalid argument: {error}"),
                    }));
                }
            }
        });
    }

    /// Handles every event that has no handler of its own.
    pub fn on_any<F>(&self, handler: F)
    where
        F: Fn(&Arc<Socket>, Event) + Send + Sync + 'static,
    {
        self.write_handlers().any = Some(Arc::new(handler));
    }

    /// Runs when the socket leaves the namespace, whatever the reason.
    pub fn on_disconnect<F>(&self, handler: F)
    where
        F: Fn(&Arc<Socket>, DisconnectReason) + Send + Sync + 'static,
    {
        self.write_handlers().disconnect.push(Arc::new(handler));
    }

    /// Sends event `name` with one JSON argument.
    pub fn emit(&self, name: &str, data: impl Serialize) -> Result<(), EmitError> {
        self.emit_payload(name, Payload::json(data)?)
    }

    /// Sends event `name` with any arguments, binary included.
    pub fn emit_payload(&self, name: &str, payload: Payload) -> Result<(), EmitError> {
        // With recovery on, the event is kept for replay as a broadcast to the socket's own room,
        // which is what a recovered session looks up.
        let own_room = crate::BroadcastOptions {
            rooms: vec![self.id.room()],
            ..crate::BroadcastOptions::default()
        };
        let packet = self
            .namespace
            .event_outgoing(name, payload, None, &own_room, None, false)?;
        self.send_outgoing(packet.encoded(), false)
    }

    /// Sends event `name` and waits for the client's acknowledgement. Cancel-safe: dropping the
    /// future forgets the wait.
    pub async fn emit_with_ack(
        &self,
        name: &str,
        payload: Payload,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let id = self.namespace.next_ack_id();
        let data = event_data(name, payload).map_err(|e| AckError::Emit(e.to_string()))?;
        let packet = Outgoing::encode(&Packet::event(self.nsp(), data, Some(id)));
        let receiver = self.acks.register(id);
        let sent = Instant::now();
        if let Err(error) = self.send_outgoing(&packet, false) {
            self.acks.forget(id);
            return Err(AckError::Emit(error.to_string()));
        }
        wait_for_ack(self, id, receiver, timeout, sent).await
    }

    pub(crate) fn pending_acks(&self) -> &PendingAcks {
        &self.acks
    }

    pub(crate) fn send_ack(&self, id: u64, payload: Payload) -> Result<(), EmitError> {
        let packet = Packet::ack(self.nsp(), payload.into(), id);
        self.send_outgoing(&Outgoing::encode(&packet), false)
    }

    /// Queues an encoded packet. A full queue drops a volatile packet; otherwise it disconnects
    /// the client, which is not reading, so memory stays bounded.
    pub(crate) fn send_outgoing(&self, packet: &Outgoing, volatile: bool) -> Result<(), EmitError> {
        let queued = self.queue_outgoing(packet);
        if let Err(EmitError::QueueFull { max }) = queued {
            self.queue_full(max, volatile);
        }
        queued
    }

    /// Queues an encoded packet, and nothing more: a full queue is the caller's to act on
    /// (with [`Socket::queue_full`]).
    pub(crate) fn queue_outgoing(&self, packet: &Outgoing) -> Result<(), EmitError> {
        if self.state.load(Ordering::Acquire) == DISCONNECTED {
            return Err(EmitError::Disconnected);
        }
        match packet.send_to(&self.conn) {
            Ok(()) => Ok(()),
            Err(ferrio_engineio::SendError::Closed) => Err(EmitError::Disconnected),
            Err(ferrio_engineio::SendError::Full { max }) => Err(EmitError::QueueFull { max }),
        }
    }

    /// A packet did not fit in the queue of `max` packets: unless it was volatile, the client is
    /// not reading and is disconnected, so memory stays bounded.
    pub(crate) fn queue_full(&self, max: usize, volatile: bool) {
        if !volatile && self.conn.is_open() {
            tracing::info!(
                reason = "slow_consumer",
                sid = %self.conn.id(),
                socket = %self.id,
                "refused: send queue full ({max} packets): disconnecting the slow client"
            );
            count_refusal("slow_consumer");
            self.conn
                .close_with_reason(ferrio_engineio::DisconnectReason::TransportError);
        }
    }

    /// Joins rooms, as [`Socket::try_join`] does, ignoring its error: past
    /// [`crate::SocketIoConfig::max_rooms_per_socket`] the join is refused as a whole (logged
    /// and counted), and once the socket is disconnected it does nothing.
    pub fn join(&self, rooms: impl IntoRooms) {
        let _ = self.try_join(rooms);
    }

    /// Joins rooms, all of them or none: past [`crate::SocketIoConfig::max_rooms_per_socket`]
    /// (rooms the socket is in already and its own room not counted) it joins none and returns
    /// [`JoinError::TooManyRooms`].
    pub fn try_join(&self, rooms: impl IntoRooms) -> Result<(), JoinError> {
        if self.state.load(Ordering::Acquire) == DISCONNECTED {
            return Err(JoinError::Disconnected);
        }
        let rooms = rooms.into_rooms();
        let adapter = self.namespace.adapter();
        let Some(max) = self.namespace.limits().max_rooms else {
            adapter.add_all(&self.id, &rooms);
            self.track_session();
            return Ok(());
        };
        let _joining = self.joining.lock().unwrap_or_else(|p| p.into_inner());
        let own = self.id.room();
        let mut current: HashSet<Room> = adapter.socket_rooms(&self.id).into_iter().collect();
        current.insert(own);
        let already = current.len() - 1;
        let added = rooms
            .iter()
            .filter(|room| !current.contains(*room))
            .collect::<HashSet<_>>()
            .len();
        if already + added > max {
            tracing::info!(
                reason = "max_rooms",
                sid = %self.conn.id(),
                socket = %self.id,
                "refused: a join would put the socket in {} rooms (max {max})",
                already + added
            );
            count_refusal("max_rooms");
            return Err(JoinError::TooManyRooms {
                rooms: already + added,
                max,
            });
        }
        adapter.add_all(&self.id, &rooms);
        self.track_session();
        Ok(())
    }

    /// Leaves rooms.
    pub fn leave(&self, rooms: impl IntoRooms) {
        for room in rooms.into_rooms() {
            self.namespace.adapter().del(&self.id, &room);
        }
        self.track_session();
    }

    /// With recovery kept in a store, writes this connected socket's session (its rooms) there,
    /// so that a restart of the process does not lose it.
    pub(crate) fn track_session(&self) {
        if let (Some(pid), Some(log)) = (&self.pid, self.namespace.recovery()) {
            if log.is_durable() && self.connected() {
                log.track(&self.id, pid, &self.rooms());
            }
        }
    }

    /// The rooms the socket is in, its own room included.
    pub fn rooms(&self) -> Vec<Room> {
        self.namespace.adapter().socket_rooms(&self.id)
    }

    /// Targets the sockets in `rooms`, this one excepted (`socket.to(room)` in Node).
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Targets this socket alone, dropping the packet rather than disconnecting when the client
    /// is not keeping up (`socket.volatile.emit(...)` in Node).
    pub fn volatile(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.namespace.clone())
            .to(self.id.room())
            .volatile()
    }

    /// Targets every other socket of the namespace (`socket.broadcast` in Node).
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.namespace.clone()).except(self.id.room())
    }

    /// Disconnects the socket from its namespace; the client gets a DISCONNECT packet and does
    /// not reconnect by itself. Other namespaces of the same connection stay.
    pub fn disconnect(self: &Arc<Self>) {
        self.disconnect_with(false);
    }

    /// Disconnects; with `close`, also closes the whole underlying connection.
    pub fn disconnect_with(self: &Arc<Self>, close: bool) {
        // A socket that already left (or never joined) is inert, as in the reference server:
        // its connection may now serve other namespaces and must not be closed through it.
        if !self.connected() {
            return;
        }
        if close {
            // As the reference server: every namespace of the connection is disconnected (none
            // of them recoverable), then the connection closes.
            for socket in self.conn.data.sockets() {
                socket.disconnect_with(false);
            }
            self.conn.close();
            return;
        }
        let _ = self.send_outgoing(&Outgoing::encode(&Packet::disconnect(self.nsp())), false);
        self.close(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Cuts the underlying connection as a network failure would (no DISCONNECT, no Engine.IO
    /// close packet). The client sees a transport error and reconnects.
    pub fn abort_transport(&self) {
        self.conn.abort();
    }

    /// Marks the socket connected; false if it was disconnected meanwhile.
    pub(crate) fn mark_connected(&self) -> bool {
        self.state
            .compare_exchange(CONNECTING, CONNECTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Discards a socket the middlewares refused, as the reference's `_cleanup`: rooms a
    /// middleware joined are left, and a middleware that kept the socket can no longer send
    /// through it. No disconnect handler runs: the socket never connected.
    pub(crate) fn discard(&self) {
        self.state.store(DISCONNECTED, Ordering::Release);
        self.namespace.adapter().del_all(&self.id);
        self.acks.fail_all();
        // Handlers a middleware registered may hold this socket; dropping them breaks the cycle.
        *self.write_handlers() = Handlers::default();
    }

    /// Leaves the namespace: handlers run, acks fail, rooms are left. Once only.
    pub(crate) fn close(self: &Arc<Self>, reason: DisconnectReason) {
        let previous = self.state.swap(DISCONNECTED, Ordering::AcqRel);
        if previous == DISCONNECTED {
            return;
        }
        self.conn.data.remove(self.nsp());
        if previous == CONNECTED {
            let handlers = self
                .handlers
                .read()
                .map(|h| h.disconnect.clone())
                .unwrap_or_default();
            for handler in handlers {
                handler(self, reason);
            }
        }
        self.acks.fail_all();
        if let (CONNECTED, Some(pid), Some(log)) = (previous, &self.pid, self.namespace.recovery())
        {
            if reason.is_recoverable() {
                log.persist(self.id.clone(), pid.clone(), self.rooms());
            } else {
                log.forget(pid);
            }
        }
        self.namespace.remove_socket(self);
        // Handlers may hold this socket; dropping them breaks the reference cycle.
        *self.write_handlers() = Handlers::default();
    }

    /// Applies the event rate limit to one event from the client: whether to handle it. An
    /// event over the limit is refused as [`crate::EventRateLimit`] says.
    pub(crate) fn admit_event(self: &Arc<Self>) -> bool {
        let (Some(config), Some(events)) = (&self.namespace.limits().event_rate, &self.events)
        else {
            return true;
        };
        let verdict = events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(&config.limit, Instant::now());
        let Verdict::Refuse { first } = verdict else {
            return true;
        };
        count_refusal("event_rate");
        let message = config.message();
        let disconnect = config.action == OverLimit::Disconnect;
        if !first && !disconnect {
            // The rest of a flood: counted, and logged below the default level.
            tracing::debug!(reason = "event_rate", socket = %self.id, "refused: {message}");
            return false;
        }
        tracing::info!(
            reason = "event_rate",
            sid = %self.conn.id(),
            socket = %self.id,
            disconnect,
            "refused: {message}"
        );
        if let Some(name) = &config.notice_event {
            // Volatile: a notice must not disconnect a client whose queue is full, and it is
            // not kept for connection state recovery.
            let notice = event_data(
                name,
                Payload::from_args(vec![serde_json::json!({ "message": message })]),
            );
            if let Ok(data) = notice {
                let packet = Outgoing::encode(&Packet::event(self.nsp(), data, None));
                let _ = self.send_outgoing(&packet, true);
            }
        }
        if disconnect {
            let _ = self.send_outgoing(&Outgoing::encode(&Packet::disconnect(self.nsp())), false);
            self.close(DisconnectReason::EventRateExceeded);
        }
        false
    }

    /// Routes a packet the client sent to this socket.
    pub(crate) fn handle_event(self: &Arc<Self>, data: PacketData, id: Option<u64>) {
        let mut payload = Payload::from(data);
        if payload.args.is_empty() {
            return;
        }
        let name = match payload.args.remove(0) {
            Value::String(name) => name,
            other => other.to_string(),
        };
        // The socket's own handler, else the namespace's shared one, else the catch-all.
        let (own, any) = {
            let handlers = self.handlers.read().unwrap_or_else(|p| p.into_inner());
            match handlers.events.get(&name) {
                Some(handler) => (Some(handler.clone()), None),
                None => (None, handlers.any.clone()),
            }
        };
        let handler = own.or_else(|| self.namespace.shared_handler(&name)).or(any);
        let Some(handler) = handler else {
            return;
        };
        let ack = id.map(|id| AckSender::new(self.clone(), id));
        handler(self, Event { name, payload, ack });
    }

    pub(crate) fn handle_ack(&self, data: PacketData, id: u64) {
        self.acks.resolve(id, Payload::from(data));
    }
}

/// The arguments of an EVENT packet: the name, then the payload. Reserved names are refused.
pub(crate) fn event_data(name: &str, payload: Payload) -> Result<PacketData, EmitError> {
    if RESERVED_EVENTS.contains(&name) {
        return Err(EmitError::ReservedEvent(name.to_owned()));
    }
    Ok(payload.into_event_data(name))
}
