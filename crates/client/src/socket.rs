//! A namespace socket: what `io.socket("/chat")` is in the JS client.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use ferrio_engineio_proto::Packet as EnginePacket;
use ferrio_socketio_proto::{Packet, PacketData, RESERVED_EVENTS};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{oneshot, watch};

use crate::codec::to_engine;
use crate::manager::{Command, ManagerInner};
use crate::{
    AckError, AckSender, ConnectError, ConnectRefused, ConnectionState, DisconnectReason,
    EmitError, Event, Manager, Payload, SocketState,
};

/// Handles one event. Runs on the manager's task, in arrival order: keep it short and spawn
/// for slow or asynchronous work.
pub type EventHandler = Arc<dyn Fn(&Socket, Event) + Send + Sync>;
/// Runs when the socket connects to its namespace (again, after a reconnection).
pub type ConnectHandler = Arc<dyn Fn(&Socket) + Send + Sync>;
/// Runs when a connected socket is disconnected.
pub type DisconnectHandler = Arc<dyn Fn(&Socket, &DisconnectReason) + Send + Sync>;
/// Runs when the server refuses the namespace connection.
pub type ConnectErrorHandler = Arc<dyn Fn(&Socket, &ConnectRefused) + Send + Sync>;

#[derive(Default)]
struct Handlers {
    events: HashMap<String, EventHandler>,
    any: Option<EventHandler>,
    connect: Vec<ConnectHandler>,
    disconnect: Vec<DisconnectHandler>,
    connect_error: Vec<ConnectErrorHandler>,
}

/// A packet waiting for the socket to connect.
struct Buffered {
    packets: Vec<EnginePacket>,
    ack: Option<u64>,
}

/// The mutable state of a socket.
#[derive(Default)]
pub(crate) struct SocketInner {
    /// Whether the socket wants to be connected (the JS client's `active`).
    active: bool,
    /// The connection its CONNECT was sent on, while the answer is awaited.
    connect_sent: Option<u64>,
    /// The connection it is connected on.
    connection: Option<u64>,
    id: Option<String>,
    /// The private session id for recovery, when the server offers it.
    pid: Option<String>,
    /// The offset of the last event received while `pid` is set.
    offset: Option<String>,
    recovered: bool,
    auth: Option<Map<String, Value>>,
    next_ack: u64,
    acks: HashMap<u64, oneshot::Sender<Result<Payload, AckError>>>,
    buffer: VecDeque<Buffered>,
    /// Events that arrived before the server's answer to CONNECT (a server replaying missed
    /// events may send them first), handed out once connected, as the JS client does.
    received: VecDeque<(PacketData, Option<u64>)>,
}

impl SocketInner {
    /// The connection the socket is connected on.
    pub(crate) fn connection(&self) -> Option<u64> {
        self.connection
    }

    /// Fails the acknowledgements of events that were sent (buffered ones are still to be
    /// sent and keep theirs), as the JS client's `_clearAcks`.
    fn fail_sent_acks(&mut self) {
        let buffered: Vec<u64> = self.buffer.iter().filter_map(|b| b.ack).collect();
        self.acks.retain(|id, _| buffered.contains(id));
        // Dropping the senders wakes the waiters with `AckError::Disconnected`.
    }
}

/// A socket's state shared between its handles and the manager's task.
pub(crate) struct SocketShared {
    nsp: String,
    buffer_capacity: usize,
    receive_capacity: usize,
    inner: Mutex<SocketInner>,
    state: watch::Sender<SocketState>,
    handlers: RwLock<Handlers>,
}

impl SocketShared {
    pub(crate) fn new(nsp: String, buffer_capacity: usize, receive_capacity: usize) -> Self {
        Self {
            nsp,
            buffer_capacity,
            receive_capacity,
            inner: Mutex::new(SocketInner::default()),
            state: watch::Sender::new(SocketState::Idle),
            handlers: RwLock::new(Handlers::default()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SocketInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, Handlers> {
        self.handlers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn handlers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Handlers> {
        self.handlers.write().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, state: SocketState) {
        self.state.send_if_modified(|current| {
            if *current == state {
                false
            } else {
                *current = state;
                true
            }
        });
    }

    pub(crate) fn is_active(&self) -> bool {
        self.lock().active
    }

    /// The CONNECT to send on a new `connection`, if the socket is active and has not sent one
    /// on it: the auth payload, plus `pid` and `offset` when the server offered recovery.
    pub(crate) fn begin_connect(&self, connection: u64) -> Option<Packet> {
        let mut inner = self.lock();
        if !inner.active
            || inner.connect_sent == Some(connection)
            || inner.connection == Some(connection)
        {
            return None;
        }
        inner.connect_sent = Some(connection);
        let mut data = Map::new();
        if let Some(pid) = &inner.pid {
            data.insert("pid".to_owned(), Value::String(pid.clone()));
            if let Some(offset) = &inner.offset {
                data.insert("offset".to_owned(), Value::String(offset.clone()));
            }
        }
        // As `Object.assign({pid, offset}, auth)` in JS: the auth payload wins.
        if let Some(auth) = &inner.auth {
            data.extend(auth.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let payload = (inner.auth.is_some() || !data.is_empty()).then_some(Value::Object(data));
        drop(inner);
        self.set_state(SocketState::Connecting);
        Some(Packet::connect(self.nsp.clone(), payload))
    }

    /// The server accepted the CONNECT sent on `connection`. Returns the packets buffered
    /// while not connected, to send now, before anything emitted later.
    pub(crate) fn handle_connect(
        self: &Arc<Self>,
        connection: u64,
        data: Option<Value>,
        manager: Option<&Arc<ManagerInner>>,
    ) -> Vec<EnginePacket> {
        let Some(sid) = data
            .as_ref()
            .and_then(|d| d.get("sid"))
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            self.handle_connect_error(
                Value::String(
                    "the server answered CONNECT without a socket id: is it a Socket.IO v2 server? This client speaks protocol v5 (Socket.IO v3 and later)".to_owned(),
                ),
                manager,
            );
            return Vec::new();
        };
        let pid = data
            .as_ref()
            .and_then(|d| d.get("pid"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut inner = self.lock();
        if !inner.active || inner.connect_sent != Some(connection) {
            return Vec::new();
        }
        inner.recovered = pid.is_some() && inner.pid == pid;
        inner.pid = pid;
        inner.id = Some(sid.clone());
        inner.connection = Some(connection);
        inner.connect_sent = None;
        let recovered = inner.recovered;
        let flushed: Vec<EnginePacket> = inner
            .buffer
            .drain(..)
            .flat_map(|buffered| buffered.packets)
            .collect();
        let received = std::mem::take(&mut inner.received);
        drop(inner);
        self.set_state(SocketState::Connected { id: sid, recovered });
        for (data, id) in received {
            self.dispatch_event(data, id, connection, manager);
        }
        if let Some(socket) = self.handle(manager) {
            let handlers = self.handlers().connect.clone();
            for handler in handlers {
                handler(&socket);
            }
        }
        flushed
    }

    /// The server refused the connection: the socket becomes inactive.
    pub(crate) fn handle_connect_error(
        self: &Arc<Self>,
        payload: Value,
        manager: Option<&Arc<ManagerInner>>,
    ) {
        let refused = ConnectRefused::from_payload(payload);
        {
            let mut inner = self.lock();
            if !inner.active {
                return;
            }
            inner.active = false;
            inner.connect_sent = None;
            inner.connection = None;
            inner.received.clear();
            inner.fail_sent_acks();
        }
        self.set_state(SocketState::Refused(refused.clone()));
        if let Some(socket) = self.handle(manager) {
            let handlers = self.handlers().connect_error.clone();
            for handler in handlers {
                handler(&socket, &refused);
            }
        }
    }

    /// An event arrived on `connection`.
    pub(crate) fn handle_event(
        self: &Arc<Self>,
        data: PacketData,
        id: Option<u64>,
        connection: u64,
        manager: Option<&Arc<ManagerInner>>,
    ) {
        {
            let mut inner = self.lock();
            if inner.connection != Some(connection) {
                if inner.connect_sent == Some(connection)
                    && inner.received.len() < self.receive_capacity
                {
                    inner.received.push_back((data, id));
                } else {
                    tracing::debug!(nsp = %self.nsp, "event for a socket not connected: dropped");
                }
                return;
            }
        }
        self.dispatch_event(data, id, connection, manager);
    }

    /// Hands an event to its handler.
    fn dispatch_event(
        self: &Arc<Self>,
        data: PacketData,
        id: Option<u64>,
        connection: u64,
        manager: Option<&Arc<ManagerInner>>,
    ) {
        {
            let mut inner = self.lock();
            // Events the server may replay carry their offset last; events asking for an ack
            // never do (the JS client skips them too, as their last argument is the ack).
            if inner.pid.is_some() && id.is_none() {
                if let Some(Value::String(offset)) = data.args.last() {
                    if data.args.len() > 1 {
                        inner.offset = Some(offset.clone());
                    }
                }
            }
        }
        let Some(socket) = self.handle(manager) else {
            return;
        };
        let mut args = data.args.into_iter();
        let name = match args.next() {
            Some(Value::String(name)) => name,
            Some(other) => other.to_string(),
            None => return,
        };
        let payload = Payload {
            args: args.collect(),
            attachments: data.attachments,
        };
        let handler = {
            let handlers = self.handlers();
            handlers
                .events
                .get(&name)
                .or(handlers.any.as_ref())
                .cloned()
        };
        let ack = id.map(|id| AckSender {
            socket: socket.clone(),
            id,
            connection,
        });
        match handler {
            Some(handler) => handler(&socket, Event { name, payload, ack }),
            None => tracing::debug!(nsp = %self.nsp, event = %name, "no handler for event"),
        }
    }

    /// An acknowledgement arrived.
    pub(crate) fn handle_ack(&self, id: u64, data: PacketData) {
        let waiter = self.lock().acks.remove(&id);
        match waiter {
            Some(waiter) => {
                let _ = waiter.send(Ok(Payload::from(data)));
            }
            None => tracing::debug!(nsp = %self.nsp, id, "acknowledgement for no pending event"),
        }
    }

    /// The server disconnected the socket from its namespace: it becomes inactive.
    pub(crate) fn handle_server_disconnect(self: &Arc<Self>, manager: Option<&Arc<ManagerInner>>) {
        self.leave(DisconnectReason::ServerDisconnect, manager, true);
    }

    /// The connection was lost or closed: a socket on it is disconnected, and stays active
    /// unless `deactivate`.
    pub(crate) fn connection_lost(
        self: &Arc<Self>,
        reason: DisconnectReason,
        manager: Option<&Arc<ManagerInner>>,
    ) {
        self.leave(reason, manager, false);
    }

    fn leave(
        self: &Arc<Self>,
        reason: DisconnectReason,
        manager: Option<&Arc<ManagerInner>>,
        deactivate: bool,
    ) {
        let was_connected = {
            let mut inner = self.lock();
            if inner.connection.is_none() && inner.connect_sent.is_none() && !deactivate {
                return;
            }
            if deactivate {
                if !inner.active {
                    return;
                }
                inner.active = false;
            }
            inner.connect_sent = None;
            inner.received.clear();
            inner.fail_sent_acks();
            inner.connection.take().is_some()
        };
        self.set_state(SocketState::Disconnected {
            reason: reason.clone(),
        });
        if was_connected {
            if let Some(socket) = self.handle(manager) {
                let handlers = self.handlers().disconnect.clone();
                for handler in handlers {
                    handler(&socket, &reason);
                }
            }
        }
    }

    /// A public handle on this socket, for handlers.
    fn handle(self: &Arc<Self>, manager: Option<&Arc<ManagerInner>>) -> Option<Socket> {
        manager.map(|manager| Socket {
            manager: manager.clone(),
            shared: self.clone(),
        })
    }
}

/// A connection to one namespace, multiplexed with the others over its [`Manager`]'s
/// connection. Cheap to clone: clones are the same socket.
///
/// ```no_run
/// use ferrio_client::{ClientConfig, Manager, Payload};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Manager::new(ClientConfig::new("http://127.0.0.1:3000"))?;
/// let socket = manager.socket("/chat")?;
/// socket.on("message", |_socket, event| {
///     println!("{:?}", event.payload.get::<String>(0));
/// });
/// socket.connect().await?;
/// socket.emit("message", "hello")?;
/// let reply = socket
///     .emit_with_ack("ping", Payload::new(), Duration::from_secs(5))
///     .await?;
/// # let _ = reply;
/// # Ok(())
/// # }
/// ```
///
/// Handlers get the socket as their first argument: use it rather than capturing a clone,
/// which would keep the client alive as long as the handler is registered.
#[derive(Clone)]
pub struct Socket {
    pub(crate) manager: Arc<ManagerInner>,
    pub(crate) shared: Arc<SocketShared>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("nsp", &self.shared.nsp)
            .field("state", &*self.shared.state.borrow())
            .finish_non_exhaustive()
    }
}

/// Removes an acknowledgement wait that ends (answered, timed out, or cancelled), and the
/// packet still buffered for it.
struct AckGuard<'a> {
    shared: &'a SocketShared,
    id: u64,
}

impl Drop for AckGuard<'_> {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.acks.remove(&self.id);
        inner
            .buffer
            .retain(|buffered| buffered.ack != Some(self.id));
    }
}

impl Socket {
    pub(crate) fn shared(&self) -> &SocketShared {
        &self.shared
    }

    pub(crate) fn send_command(&self, command: Command) -> Result<(), Box<Command>> {
        self.manager
            .commands
            .send(command)
            .map_err(|error| Box::new(error.0))
    }

    /// The namespace, such as `/chat`.
    pub fn nsp(&self) -> &str {
        &self.shared.nsp
    }

    /// The id the server gave this socket, while connected.
    pub fn id(&self) -> Option<String> {
        let inner = self.shared.lock();
        inner.connection.and(inner.id.clone())
    }

    /// Whether the socket is connected to its namespace.
    pub fn connected(&self) -> bool {
        self.shared.lock().connection.is_some()
    }

    /// Whether the socket wants to be connected: it connects (again) whenever the connection
    /// opens. False before [`Socket::connect`], after [`Socket::disconnect`], and after the
    /// server refused or disconnected it.
    pub fn active(&self) -> bool {
        self.shared.is_active()
    }

    /// Whether the last connection restored the previous session through connection state
    /// recovery: same id, rooms kept, missed events replayed (`socket.recovered` in JS).
    pub fn recovered(&self) -> bool {
        self.shared.lock().recovered
    }

    /// The socket's state, as a watch channel.
    pub fn state(&self) -> watch::Receiver<SocketState> {
        self.shared.state.subscribe()
    }

    /// The manager this socket belongs to.
    pub fn manager(&self) -> Manager {
        Manager {
            inner: self.manager.clone(),
        }
    }

    /// Sets the auth payload sent with the next CONNECT (on connect and every reconnection), a
    /// JSON object: a token refreshed here is used by the next reconnection.
    pub fn set_auth(&self, auth: Option<Map<String, Value>>) {
        self.shared.lock().auth = auth;
    }

    /// Handles event `name`; replaces an earlier handler of the same name.
    pub fn on<F>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(&Socket, Event) + Send + Sync + 'static,
    {
        self.shared
            .handlers_mut()
            .events
            .insert(name.into(), Arc::new(handler));
    }

    /// Handles event `name`, its first argument deserialized as `T`. An event whose first
    /// argument does not fit is logged and dropped; use [`Socket::on`] to see such events.
    pub fn on_typed<T, F>(&self, name: impl Into<String>, handler: F)
    where
        T: DeserializeOwned + 'static,
        F: Fn(&Socket, T, Option<crate::AckSender>) + Send + Sync + 'static,
    {
        let name = name.into();
        let event_name = name.clone();
        self.on(name, move |socket, event| {
            match event.payload.get::<T>(0) {
                Ok(value) => handler(socket, value, event.ack),
                Err(error) => {
                    tracing::warn!(event = %event_name, %error, "event argument does not fit the handler's type")
                }
            }
        });
    }

    /// Stops handling event `name`.
    pub fn off(&self, name: &str) {
        self.shared.handlers_mut().events.remove(name);
    }

    /// Handles every event that has no handler of its own (catch-all).
    pub fn on_any<F>(&self, handler: F)
    where
        F: Fn(&Socket, Event) + Send + Sync + 'static,
    {
        self.shared.handlers_mut().any = Some(Arc::new(handler));
    }

    /// Runs every time the socket connects to its namespace, reconnections included.
    pub fn on_connect<F>(&self, handler: F)
    where
        F: Fn(&Socket) + Send + Sync + 'static,
    {
        self.shared.handlers_mut().connect.push(Arc::new(handler));
    }

    /// Runs every time the connected socket is disconnected, with the reason.
    pub fn on_disconnect<F>(&self, handler: F)
    where
        F: Fn(&Socket, &DisconnectReason) + Send + Sync + 'static,
    {
        self.shared
            .handlers_mut()
            .disconnect
            .push(Arc::new(handler));
    }

    /// Runs when the server refuses the connection to the namespace.
    pub fn on_connect_error<F>(&self, handler: F)
    where
        F: Fn(&Socket, &ConnectRefused) + Send + Sync + 'static,
    {
        self.shared
            .handlers_mut()
            .connect_error
            .push(Arc::new(handler));
    }

    /// Connects to the namespace, opening the manager's connection if needed, and waits for
    /// the server's answer, at most [`ClientConfig::timeout`](crate::ClientConfig::timeout).
    ///
    /// While the connection cannot be opened the manager keeps trying (with reconnection on),
    /// and the call waits for it. Once active, the socket reconnects with every new connection
    /// until [`Socket::disconnect`] or the server refuses or disconnects it, whatever this call
    /// returned. Cancel-safe: dropping the future only stops the wait.
    pub async fn connect(&self) -> Result<(), ConnectError> {
        let mut state = self.shared.state.subscribe();
        {
            let mut inner = self.shared.lock();
            if inner.connection.is_some() {
                return Ok(());
            }
            inner.active = true;
            // Whatever ended the last connection, the socket now waits for the next one. Set
            // under the lock, so a connection completing meanwhile is not overwritten.
            self.shared.set_state(SocketState::Connecting);
        }
        let (done, done_rx) = oneshot::channel();
        self.send_command(Command::Connect {
            socket: self.shared.clone(),
            done,
        })
        .map_err(|_| ConnectError::Shutdown)?;

        let shared = &self.manager.shared;
        let timeout = shared.config.timeout;
        let reconnecting = shared.config.reconnection.enabled;
        let wait = async {
            done_rx.await.map_err(|_| ConnectError::Shutdown)?;
            let mut connection = shared.state.subscribe();
            loop {
                match &*state.borrow_and_update() {
                    SocketState::Connected { .. } => return Ok(()),
                    SocketState::Refused(refused) => {
                        return Err(ConnectError::Refused(refused.clone()))
                    }
                    SocketState::Disconnected { reason } if !reason.is_recoverable() => {
                        return Err(ConnectError::Closed {
                            reason: reason.clone(),
                        })
                    }
                    _ => {}
                }
                match &*connection.borrow_and_update() {
                    ConnectionState::ReconnectFailed => {
                        return Err(ConnectError::ReconnectFailed {
                            last_error: shared.last_error(),
                        })
                    }
                    ConnectionState::Disconnected { reason }
                        if !reconnecting || !reason.is_recoverable() =>
                    {
                        return Err(ConnectError::Closed {
                            reason: reason.clone(),
                        })
                    }
                    _ => {}
                }
                tokio::select! {
                    changed = state.changed() => changed.map_err(|_| ConnectError::Shutdown)?,
                    changed = connection.changed() => changed.map_err(|_| ConnectError::Shutdown)?,
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout {
                waited: timeout,
                last_error: shared.last_error(),
            }),
        }
    }

    /// Leaves the namespace: sends DISCONNECT when connected, and stops reconnecting. The
    /// manager's connection closes when no socket uses it any more. Packets still buffered stay
    /// for a later [`Socket::connect`].
    pub fn disconnect(&self) {
        let (connection, was_connected) = {
            let mut inner = self.shared.lock();
            inner.active = false;
            let connection = inner.connection.take();
            let connection_or_pending = connection.or(inner.connect_sent.take());
            inner.fail_sent_acks();
            (connection_or_pending, connection.is_some())
        };
        let reason = DisconnectReason::ClientDisconnect;
        self.shared.set_state(SocketState::Disconnected {
            reason: reason.clone(),
        });
        let _ = self.send_command(Command::Leave {
            nsp: self.shared.nsp.clone(),
            connection,
        });
        if was_connected {
            let handlers = self.shared.handlers().disconnect.clone();
            for handler in handlers {
                handler(self, &reason);
            }
        }
    }

    /// Emits event `name` with one JSON argument.
    ///
    /// While the socket is not connected the packet is buffered and sent once it is (at most
    /// [`ClientConfig::send_buffer`](crate::ClientConfig::send_buffer) packets).
    pub fn emit(&self, name: &str, data: impl Serialize) -> Result<(), EmitError> {
        self.emit_payload(name, Payload::json(data)?)
    }

    /// Emits event `name` with any arguments, binary ones included.
    pub fn emit_payload(&self, name: &str, payload: Payload) -> Result<(), EmitError> {
        self.send_event(name, payload, None).map(drop)
    }

    /// Emits event `name` and waits for the server's acknowledgement, at most `timeout`.
    ///
    /// Fails with [`AckError::Disconnected`] when the socket is disconnected after the event
    /// was sent. Cancel-safe: dropping the future forgets the wait (and the event, if it is
    /// still buffered).
    pub async fn emit_with_ack(
        &self,
        name: &str,
        payload: Payload,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let (waiter, answer) = oneshot::channel();
        let id = self.send_event(name, payload, Some(waiter))?;
        let _guard = id.map(|id| AckGuard {
            shared: &self.shared,
            id,
        });
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => Err(AckError::Timeout(timeout)),
        }
    }

    /// Encodes and sends (or buffers) an event; registers `ack` under a new ack id.
    fn send_event(
        &self,
        name: &str,
        payload: Payload,
        ack: Option<oneshot::Sender<Result<Payload, AckError>>>,
    ) -> Result<Option<u64>, EmitError> {
        if RESERVED_EVENTS.contains(&name) {
            return Err(EmitError::ReservedName(name.to_owned()));
        }
        let data = payload.into_event_data(name);
        let mut inner = self.shared.lock();
        let id = ack.is_some().then(|| {
            let id = inner.next_ack;
            inner.next_ack = inner.next_ack.wrapping_add(1);
            id
        });
        let packets = to_engine(&Packet::event(self.shared.nsp.clone(), data, id));
        match inner.connection {
            Some(connection) => self
                .send_command(Command::Send {
                    connection,
                    packets,
                })
                .map_err(|_| EmitError::Shutdown)?,
            None => {
                if inner.buffer.len() >= self.shared.buffer_capacity {
                    return Err(EmitError::BufferFull {
                        max: self.shared.buffer_capacity,
                    });
                }
                inner.buffer.push_back(Buffered { packets, ack: id });
            }
        }
        if let (Some(id), Some(ack)) = (id, ack) {
            inner.acks.insert(id, ack);
        }
        Ok(id)
    }
}
