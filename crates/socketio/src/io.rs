//! The server handle: namespaces, configuration and the service to mount.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use ferrio_engineio::{Engine, EngineConfig, EngineService};

use crate::adapter::{local_adapter_factory, AdapterFactory};
use crate::client::SocketIoHandler;
use crate::connect_timeout::ConnectTimeouts;
use crate::limits::{EventRateLimit, SocketLimits};
use crate::namespace::{DynamicNamespace, NamespaceSetup};
use crate::recovery::{RecoveryConfig, RecoverySetup};
use crate::{BroadcastOperator, EmitError, IntoRooms, Namespace, Socket};

/// Settings of a Socket.IO server. Defaults match the reference Node server.
///
/// The per-socket limits the reference server does not have (rooms per socket, event rate) are
/// off by default; `docs/limits.md` lists every limit, its default and what a client sees when
/// it is hit.
#[derive(Clone)]
pub struct SocketIoConfig {
    /// The Engine.IO settings (path `/socket.io/` here).
    pub engine: EngineConfig,
    /// How long a connection may stay without joining any namespace. 45 s.
    pub connect_timeout: Duration,
    /// Most binary attachments one packet may carry. 32.
    pub max_attachments: usize,
    /// Builds each namespace's adapter; the in-memory one by default.
    pub adapter: AdapterFactory,
    /// Connection state recovery; off by default, as in the reference server.
    pub recovery: Option<RecoveryConfig>,
    /// Where recovery state is also kept, so that it survives a restart (used only when
    /// `recovery` is on). `None` (the default): in memory only.
    pub recovery_store: Option<Arc<dyn ferrio_history::HistoryStore>>,
    /// Most rooms one socket may be in, its own room not counted. A join past it is refused
    /// as a whole: [`Socket::try_join`] returns [`crate::JoinError::TooManyRooms`] and
    /// [`Socket::join`] logs it and does nothing. The client is not told: joins are the
    /// application's doing. `None` (the default): no limit.
    pub max_rooms_per_socket: Option<usize>,
    /// How fast each socket may send events, and what happens past it (see
    /// [`EventRateLimit`]). `None` (the default): no limit.
    pub event_rate: Option<EventRateLimit>,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig {
                path: "/socket.io/".to_owned(),
                ..EngineConfig::default()
            },
            connect_timeout: Duration::from_secs(45),
            max_attachments: 32,
            adapter: local_adapter_factory(),
            recovery: None,
            recovery_store: None,
            max_rooms_per_socket: None,
            event_rate: None,
        }
    }
}

impl std::fmt::Debug for SocketIoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoConfig")
            .field("engine", &self.engine)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_attachments", &self.max_attachments)
            .field("recovery", &self.recovery)
            .field("recovery_store", &self.recovery_store.is_some())
            .field("max_rooms_per_socket", &self.max_rooms_per_socket)
            .field("event_rate", &self.event_rate)
            .finish_non_exhaustive()
    }
}

/// What the connection layer needs of the configuration.
pub(crate) struct ConnectionLimits {
    pub(crate) connect_timeout: Duration,
    pub(crate) max_attachments: usize,
}

pub(crate) struct IoInner {
    pub(crate) config: ConnectionLimits,
    namespaces: RwLock<HashMap<String, Arc<Namespace>>>,
    dynamic: RwLock<Vec<Arc<DynamicNamespace>>>,
    adapter: AdapterFactory,
    recovery: Option<RecoverySetup>,
    limits: Arc<SocketLimits>,
    engine: OnceLock<Weak<Engine<SocketIoHandler>>>,
    pub(crate) connect_timeouts: Arc<ConnectTimeouts>,
}

impl IoInner {
    /// The namespace a CONNECT names: a registered one, or a new child of a dynamic one.
    pub(crate) fn namespace_for(&self, name: &str) -> Option<Arc<Namespace>> {
        if let Some(namespace) = self.read_namespaces().get(name) {
            return Some(namespace.clone());
        }
        let dynamic = self
            .dynamic
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|d| (d.accepts)(name))
            .cloned()?;
        let mut namespaces = self.namespaces.write().unwrap_or_else(|p| p.into_inner());
        Some(
            namespaces
                .entry(name.to_owned())
                .or_insert_with(|| {
                    Namespace::new(
                        name.to_owned(),
                        dynamic.setup.clone(),
                        &self.adapter,
                        self.recovery.clone(),
                        self.limits.clone(),
                    )
                })
                .clone(),
        )
    }

    fn read_namespaces(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Namespace>>> {
        self.namespaces.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// The service answering Socket.IO clients; mount it at the configured path.
pub type SocketIoService = EngineService<SocketIoHandler>;

/// A Socket.IO server: `io` in Node. Cheap to clone; every clone is the same server.
///
/// ```no_run
/// use ferrio_socketio::{SocketIo, SocketIoConfig};
///
/// # async fn run() -> std::io::Result<()> {
/// let (service, io) = SocketIo::new(SocketIoConfig::default());
/// io.ns("/", |socket| {
///     socket.on("ping", |socket, event| {
///         if let Some(ack) = event.ack {
///             let _ = ack.send(event.payload);
///         }
///         let _ = socket.emit("pong", "hello");
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// ferrio_socketio::serve(listener, service).await
/// # }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<IoInner>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo").finish_non_exhaustive()
    }
}

impl SocketIo {
    /// Creates a server with the main namespace `/`, and the service to mount.
    pub fn new(config: SocketIoConfig) -> (SocketIoService, SocketIo) {
        let inner = Arc::new(IoInner {
            config: ConnectionLimits {
                connect_timeout: config.connect_timeout,
                max_attachments: config.max_attachments,
            },
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            adapter: config.adapter.clone(),
            recovery: config.recovery.map(|recovery| RecoverySetup {
                config: recovery,
                store: config.recovery_store.clone(),
                max_replay: config
                    .engine
                    .max_buffered_packets
                    .saturating_sub(crate::recovery::REPLAY_HEADROOM),
            }),
            limits: Arc::new(SocketLimits {
                max_rooms: config.max_rooms_per_socket,
                event_rate: config.event_rate.clone(),
            }),
            engine: OnceLock::new(),
            connect_timeouts: Arc::default(),
        });
        let engine = Engine::new(config.engine, SocketIoHandler { io: inner.clone() });
        let _ = inner.engine.set(Arc::downgrade(&engine));
        let io = SocketIo { inner };
        io.of("/");
        (EngineService::new(engine), io)
    }

    /// The namespace `name`, created (with no handler) if it does not exist yet.
    pub fn of(&self, name: &str) -> Arc<Namespace> {
        let name = normalize_namespace(name);
        if let Some(namespace) = self.inner.read_namespaces().get(&name) {
            return namespace.clone();
        }
        let mut namespaces = self
            .inner
            .namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner());
        namespaces
            .entry(name.clone())
            .or_insert_with(|| {
                Namespace::new(
                    name,
                    Arc::new(NamespaceSetup::default()),
                    &self.inner.adapter,
                    self.inner.recovery.clone(),
                    self.inner.limits.clone(),
                )
            })
            .clone()
    }

    /// The namespace `name` with its connect handler set: `io.of(name).on("connection", ...)`.
    pub fn ns<F>(&self, name: &str, on_connection: F) -> Arc<Namespace>
    where
        F: Fn(&Arc<Socket>) + Send + Sync + 'static,
    {
        let namespace = self.of(name);
        namespace.on_connection(on_connection);
        namespace
    }

    /// Accepts connections to every namespace name `accepts` allows, each created on first use
    /// with the handlers set on the returned template.
    pub fn dynamic_namespace<F>(&self, accepts: F) -> Arc<DynamicNamespace>
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        let dynamic = Arc::new(DynamicNamespace {
            accepts: Arc::new(accepts),
            setup: Arc::new(NamespaceSetup::default()),
        });
        self.inner
            .dynamic
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(dynamic.clone());
        dynamic
    }

    /// The namespace `name`, if it exists (`"chat"` and `"/chat"` name the same one).
    pub fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.inner
            .read_namespaces()
            .get(&normalize_namespace(name))
            .cloned()
    }

    /// The namespace `name` as a client's CONNECT would find it: a registered one, or else a
    /// new child of the first dynamic namespace accepting the name (with its handlers and
    /// middlewares); `None` when neither serves it.
    ///
    /// For code that acts on a namespace no client reached on this node yet, e.g. an emit
    /// that must still go through the adapter to the clients of other nodes. Unlike
    /// [`SocketIo::of`], it never registers a plain namespace that would shadow a dynamic one.
    pub fn resolve_namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.inner.namespace_for(&normalize_namespace(name))
    }

    /// How many disconnected sessions this node holds for connection state recovery, in every
    /// namespace ([`Namespace::recovery_sessions_held`]).
    pub fn recovery_sessions_held(&self) -> usize {
        self.namespaces()
            .iter()
            .map(|namespace| namespace.recovery_sessions_held())
            .sum()
    }

    /// Every namespace.
    pub fn namespaces(&self) -> Vec<Arc<Namespace>> {
        self.inner.read_namespaces().values().cloned().collect()
    }

    /// Targets the sockets of the main namespace in `rooms`.
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.of("/").to(rooms)
    }

    /// Sends an event with one JSON argument to every socket of the main namespace.
    pub fn emit(&self, name: &str, data: impl serde::Serialize) -> Result<(), EmitError> {
        self.of("/").emit(name, data)
    }

    /// How many Engine.IO connections are open.
    pub fn connection_count(&self) -> usize {
        self.engine().map_or(0, |engine| engine.session_count())
    }

    /// The transport of every open Engine.IO connection, one entry per connection (a snapshot),
    /// for counting connections by transport.
    pub fn connection_transports(&self) -> Vec<ferrio_engineio::TransportKind> {
        self.engine()
            .map_or_else(Vec::new, |engine| engine.session_transports())
    }

    /// Disconnects every client with "server shutting down"; they reconnect, elsewhere if the
    /// load balancer sends them there.
    pub fn close(&self) {
        if let Some(engine) = self.engine() {
            engine.close_all(ferrio_engineio::DisconnectReason::ServerShutdown);
        }
    }

    fn engine(&self) -> Option<Arc<Engine<SocketIoHandler>>> {
        self.inner.engine.get().and_then(Weak::upgrade)
    }
}

/// Namespace names start with `/`; `"chat"` means `"/chat"`, as in the reference server.
fn normalize_namespace(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}
