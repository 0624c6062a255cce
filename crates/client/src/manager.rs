//! The manager: one Engine.IO connection shared by namespace sockets, and the task that drives
//! it (opening, routing packets, reconnecting).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use ferrio_engineio_proto::{Message, Packet as EnginePacket};
use ferrio_socketio_proto::{is_valid_namespace, Decoder, DecoderConfig, Packet, PacketKind};
use tokio::sync::{mpsc, oneshot, watch};

use crate::codec::to_engine;
use crate::engine::{EngineEvent, EngineOptions, EngineSession};
use crate::reconnect::{Decision, Reconnector};
use crate::socket::SocketShared;
use crate::transport::{Limits, TransportError};
use crate::url::EngineUrl;
use crate::{
    ClientConfig, ConfigError, ConnectionState, DisconnectReason, HeartbeatStats, OpenError, Socket,
};

/// What handles ask of the manager's task.
pub(crate) enum Command {
    /// A socket wants to connect: open the connection, or send its CONNECT. `done` is
    /// answered once the task has taken the request into account.
    Connect {
        socket: Arc<SocketShared>,
        done: oneshot::Sender<()>,
    },
    /// Packets for `connection`; dropped when that connection is gone.
    Send {
        connection: u64,
        packets: Vec<EnginePacket>,
    },
    /// A socket left its namespace; it was connected (or connecting) on `connection`.
    Leave {
        nsp: String,
        connection: Option<u64>,
    },
    /// Close the connection and stop reconnecting.
    Disconnect,
    /// Close the connection if open and open a new one now.
    Reconnect,
}

/// State shared by the handles and the task.
pub(crate) struct Shared {
    pub(crate) config: ClientConfig,
    sockets: Mutex<HashMap<String, Arc<SocketShared>>>,
    pub(crate) state: watch::Sender<ConnectionState>,
    heartbeat: watch::Sender<Option<HeartbeatStats>>,
    last_error: Mutex<Option<OpenError>>,
}

impl Shared {
    fn sockets(&self) -> Vec<Arc<SocketShared>> {
        self.lock_sockets().values().cloned().collect()
    }

    fn socket(&self, nsp: &str) -> Option<Arc<SocketShared>> {
        self.lock_sockets().get(nsp).cloned()
    }

    fn lock_sockets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SocketShared>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn any_active(&self) -> bool {
        self.sockets().iter().any(|socket| socket.is_active())
    }

    /// The last failure to open the connection since one last opened.
    pub(crate) fn last_error(&self) -> Option<OpenError> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_last_error(&self, error: Option<OpenError>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    fn set_state(&self, state: ConnectionState) {
        self.state.send_if_modified(|current| {
            if *current == state {
                false
            } else {
                tracing::debug!(?state, "connection state");
                *current = state;
                true
            }
        });
    }
}

/// What the handles hold: the way to the task, and the shared state.
pub(crate) struct ManagerInner {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) shared: Arc<Shared>,
}

/// A connection to a Socket.IO server, shared by namespace sockets: `Manager` in the JS client.
///
/// Creating one spawns the task that drives the connection; nothing is opened until a
/// socket connects. The connection closes when its last socket leaves (or on
/// [`Manager::disconnect`]); the task ends when every handle (managers and sockets) is dropped.
/// Cheap to clone: clones are the same manager.
///
/// Observe the connection with [`Manager::state`] and [`Manager::heartbeat`].
#[derive(Clone)]
pub struct Manager {
    pub(crate) inner: Arc<ManagerInner>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.inner.shared.config.url)
            .field("state", &*self.inner.shared.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// Checks `config` and starts the manager's task. Must be called within a tokio runtime.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        let url = EngineUrl::from_config(&config)?;
        if config.transports.is_empty() {
            return Err(ConfigError::NoTransport);
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let options = EngineOptions {
            url: Arc::new(url),
            headers: Arc::new(config.headers.clone()),
            transports: config.transports.clone(),
            upgrade: config.upgrade,
            timeout: config.timeout,
            limits: Limits {
                max_message_size: config.max_message_size,
                max_payload: usize::MAX,
                request_timeout: config.timeout,
            },
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            sockets: Mutex::new(HashMap::new()),
            state: watch::Sender::new(ConnectionState::Disconnected {
                reason: DisconnectReason::ClientDisconnect,
            }),
            heartbeat: watch::Sender::new(None),
            last_error: Mutex::new(None),
            config,
        });
        let inner = Arc::new(ManagerInner {
            commands,
            shared: shared.clone(),
        });
        let mut decoder_config = DecoderConfig::default();
        decoder_config.max_attachments = shared.config.max_attachments;
        let driver = Driver {
            reconnector: Reconnector::new(shared.config.reconnection),
            shared,
            manager: Arc::downgrade(&inner),
            commands: receiver,
            options,
            decoder_config,
            connection: 0,
        };
        runtime.spawn(driver.run());
        Ok(Self { inner })
    }

    /// The socket for namespace `nsp` (`/` is the main namespace; a missing leading `/` is
    /// added). The same namespace always gives the same socket. It connects on
    /// [`Socket::connect`].
    pub fn socket(&self, nsp: &str) -> Result<Socket, ConfigError> {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        if !is_valid_namespace(&nsp) {
            return Err(ConfigError::InvalidNamespace(nsp));
        }
        let shared = self
            .inner
            .shared
            .lock_sockets()
            .entry(nsp.clone())
            .or_insert_with(|| {
                let config = &self.inner.shared.config;
                Arc::new(SocketShared::new(
                    nsp,
                    config.send_buffer,
                    config.receive_buffer,
                ))
            })
            .clone();
        Ok(Socket {
            manager: self.inner.clone(),
            shared,
        })
    }

    /// The connection's state, as a watch channel: every change is published.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.shared.state.subscribe()
    }

    /// The heartbeat measurements of the open connection (`None` while not connected), as a
    /// watch channel updated at every ping. See [`HeartbeatStats`] for what is measured.
    pub fn heartbeat(&self) -> watch::Receiver<Option<HeartbeatStats>> {
        self.inner.shared.heartbeat.subscribe()
    }

    /// The last failure to open the connection, cleared when one opens.
    pub fn last_error(&self) -> Option<OpenError> {
        self.inner.shared.last_error()
    }

    /// The configuration the manager was created with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.shared.config
    }

    /// Closes the connection and stops reconnecting (`forced close`). Connected sockets are
    /// disconnected with [`DisconnectReason::ClientDisconnect`] but stay active: a
    /// [`Manager::reconnect`] or a [`Socket::connect`] connects them all again.
    pub fn disconnect(&self) {
        let _ = self.inner.commands.send(Command::Disconnect);
    }

    /// Opens a new connection now, whatever the state: closes the open one, or skips the
    /// scheduled wait, and starts the attempt count over. Active sockets connect again.
    pub fn reconnect(&self) {
        let _ = self.inner.commands.send(Command::Reconnect);
    }
}

/// Where the task is.
enum Phase {
    /// Not connected, nothing scheduled.
    Idle,
    /// Opening the connection.
    Opening,
    /// Connected.
    Open(Box<EngineSession>),
    /// Waiting for the scheduled reconnection attempt.
    Waiting,
    /// Every handle is gone.
    Exit,
}

/// The task behind a manager.
struct Driver {
    shared: Arc<Shared>,
    manager: Weak<ManagerInner>,
    commands: mpsc::UnboundedReceiver<Command>,
    options: EngineOptions,
    decoder_config: DecoderConfig,
    reconnector: Reconnector,
    /// Counts connections; packets are tagged with the one they were meant for.
    connection: u64,
}

/// The current time on tokio's clock (which tests may pause and advance).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A number in `[0, 1)` for the backoff jitter, from the operating system.
fn random_unit() -> f64 {
    // 53 random bits make every double in [0, 1) with that spacing equally likely.
    getrandom::u64().map_or(0.5, |n| (n >> 11) as f64 / (1u64 << 53) as f64)
}

impl Driver {
    async fn run(mut self) {
        let mut phase = Phase::Idle;
        loop {
            phase = match phase {
                Phase::Idle => self.idle().await,
                Phase::Opening => self.opening().await,
                Phase::Open(session) => self.connected(*session).await,
                Phase::Waiting => self.waiting().await,
                Phase::Exit => break,
            };
        }
        self.shared.heartbeat.send_replace(None);
        self.shared.set_state(ConnectionState::Disconnected {
            reason: DisconnectReason::ClientDisconnect,
        });
    }

    fn handle(&self) -> Option<Arc<ManagerInner>> {
        self.manager.upgrade()
    }

    /// Starts opening now, counting attempts from zero.
    fn open_now(&mut self) -> Phase {
        self.reconnector.reset();
        self.shared.set_state(ConnectionState::Connecting);
        Phase::Opening
    }

    async fn idle(&mut self) -> Phase {
        loop {
            let Some(command) = self.commands.recv().await else {
                return Phase::Exit;
            };
            match command {
                Command::Connect { socket, done } => {
                    let phase = socket.is_active().then(|| self.open_now());
                    let _ = done.send(());
                    if let Some(phase) = phase {
                        return phase;
                    }
                }
                Command::Reconnect => return self.open_now(),
                Command::Disconnect => self.shared.set_state(ConnectionState::Disconnected {
                    reason: DisconnectReason::ClientDisconnect,
                }),
                Command::Send { .. } | Command::Leave { .. } => {}
            }
        }
    }

    async fn waiting(&mut self) -> Phase {
        loop {
            let Some(at) = self.reconnector.poll_timeout() else {
                return Phase::Idle;
            };
            tokio::select! {
                () = tokio::time::sleep_until(at.into()) => {
                    if let Some(attempt) = self.reconnector.poll_open(now()) {
                        tracing::debug!(attempt, "reconnection attempt");
                        self.shared.set_state(ConnectionState::Connecting);
                        return Phase::Opening;
                    }
                }
                command = self.commands.recv() => match command {
                    None => return Phase::Exit,
                    // As in JS, a socket connecting while a reconnection is scheduled waits
                    // for it.
                    Some(Command::Connect { done, .. }) => {
                        let _ = done.send(());
                    }
                    Some(Command::Reconnect) => return self.open_now(),
                    Some(Command::Disconnect) => return self.stop(DisconnectReason::ClientDisconnect),
                    Some(Command::Leave { .. }) => {
                        if !self.shared.any_active() {
                            return self.stop(DisconnectReason::ClientDisconnect);
                        }
                    }
                    Some(Command::Send { .. }) => {}
                },
            }
        }
    }

    async fn opening(&mut self) -> Phase {
        self.shared.set_state(ConnectionState::Connecting);
        let open = EngineSession::open(self.options.clone());
        tokio::pin!(open);
        loop {
            tokio::select! {
                opened = &mut open => return match opened {
                    Ok(session) => self.opened(session),
                    Err(error) => self.open_failed(error),
                },
                command = self.commands.recv() => match command {
                    None => return Phase::Exit,
                    Some(Command::Connect { done, .. }) => {
                        let _ = done.send(());
                    }
                    Some(Command::Reconnect) => self.reconnector.reset(),
                    Some(Command::Disconnect) => return self.stop(DisconnectReason::ClientDisconnect),
                    Some(Command::Leave { .. }) => {
                        if !self.shared.any_active() {
                            return self.stop(DisconnectReason::ClientDisconnect);
                        }
                    }
                    Some(Command::Send { .. }) => {}
                },
            }
        }
    }

    /// Stays closed: no reconnection.
    fn stop(&mut self, reason: DisconnectReason) -> Phase {
        self.reconnector.reset();
        self.shared.heartbeat.send_replace(None);
        self.shared
            .set_state(ConnectionState::Disconnected { reason });
        Phase::Idle
    }

    fn opened(&mut self, mut session: EngineSession) -> Phase {
        self.connection += 1;
        if let Some(attempts) = self.reconnector.handle_opened() {
            tracing::debug!(attempts, "reconnected");
        }
        self.shared.set_last_error(None);
        self.shared.set_state(ConnectionState::Connected {
            transport: session.transport(),
        });
        self.shared
            .heartbeat
            .send_replace(Some(session.heartbeat()));
        for socket in self.shared.sockets() {
            if let Some(packet) = socket.begin_connect(self.connection) {
                session.send(to_engine(&packet));
            }
        }
        Phase::Open(Box::new(session))
    }

    fn open_failed(&mut self, error: TransportError) -> Phase {
        let message = error.to_string();
        tracing::debug!(error = %message, "cannot open the connection");
        self.shared.set_last_error(Some(error.into_open_error()));
        let decision = self.reconnector.handle_open_failed(now(), random_unit());
        self.after_failure(decision, DisconnectReason::TransportError(message))
    }

    fn after_failure(&mut self, decision: Decision, reason: DisconnectReason) -> Phase {
        match decision {
            Decision::Retry { attempt, delay } => {
                self.shared
                    .set_state(ConnectionState::ReconnectScheduled { attempt, delay });
                Phase::Waiting
            }
            Decision::GiveUp => {
                self.shared.set_state(ConnectionState::ReconnectFailed);
                Phase::Idle
            }
            Decision::Stop => {
                self.shared
                    .set_state(ConnectionState::Disconnected { reason });
                Phase::Idle
            }
        }
    }

    async fn connected(&mut self, mut session: EngineSession) -> Phase {
        let mut decoder = Decoder::new(self.decoder_config.clone());
        loop {
            tokio::select! {
                event = session.next() => match event {
                    EngineEvent::Message(message) => {
                        let deactivated = match self.handle_message(&mut session, &mut decoder, message) {
                            Ok(deactivated) => deactivated,
                            Err(reason) => {
                                session.close();
                                return self.lost(reason);
                            }
                        };
                        if deactivated && !self.shared.any_active() {
                            // The server disconnected or refused the last socket.
                            session.close();
                            return self.stop(DisconnectReason::ServerDisconnect);
                        }
                    }
                    EngineEvent::Upgraded(transport) => {
                        self.shared.set_state(ConnectionState::Connected { transport });
                    }
                    EngineEvent::Heartbeat(stats) => {
                        self.shared.heartbeat.send_replace(Some(stats));
                    }
                    EngineEvent::Closed(reason) => {
                        drop(session);
                        return self.lost(reason);
                    }
                },
                command = self.commands.recv() => match command {
                    None => {
                        session.close();
                        return Phase::Exit;
                    }
                    Some(Command::Connect { socket, done }) => {
                        if let Some(packet) = socket.begin_connect(self.connection) {
                            session.send(to_engine(&packet));
                        }
                        let _ = done.send(());
                    }
                    Some(Command::Send { connection, packets }) => {
                        if connection == self.connection {
                            session.send(packets);
                        }
                    }
                    Some(Command::Leave { nsp, connection }) => {
                        if connection == Some(self.connection) {
                            session.send(to_engine(&Packet::disconnect(nsp)));
                        }
                        if !self.shared.any_active() {
                            session.close();
                            return self.stop(DisconnectReason::ClientDisconnect);
                        }
                    }
                    Some(Command::Disconnect) => {
                        session.close();
                        self.disconnect_sockets(DisconnectReason::ClientDisconnect);
                        return self.stop(DisconnectReason::ClientDisconnect);
                    }
                    Some(Command::Reconnect) => {
                        session.close();
                        self.disconnect_sockets(DisconnectReason::ClientDisconnect);
                        return self.open_now();
                    }
                },
            }
        }
    }

    /// The connection was lost: sockets are disconnected (and stay active), and a reconnection
    /// is scheduled if the rules allow.
    fn lost(&mut self, reason: DisconnectReason) -> Phase {
        tracing::debug!(%reason, "connection lost");
        self.shared.heartbeat.send_replace(None);
        self.disconnect_sockets(reason.clone());
        self.shared.set_state(ConnectionState::Disconnected {
            reason: reason.clone(),
        });
        let decision = self
            .reconnector
            .handle_closed(&reason, now(), random_unit());
        self.after_failure(decision, reason)
    }

    fn disconnect_sockets(&self, reason: DisconnectReason) {
        let manager = self.handle();
        for socket in self.shared.sockets() {
            socket.connection_lost(reason.clone(), manager.as_ref());
        }
    }

    /// Decodes one message and hands a complete packet to its socket. Returns whether the
    /// server made a socket inactive (refused or disconnected it); an error is a reason to drop
    /// the connection.
    fn handle_message(
        &self,
        session: &mut EngineSession,
        decoder: &mut Decoder,
        message: Message,
    ) -> Result<bool, DisconnectReason> {
        let decoded = match message {
            Message::Text(text) => decoder.handle_text(text.as_str()),
            Message::Binary(data) => decoder.handle_binary(data),
        };
        let packet = match decoded {
            Ok(Some(packet)) => packet,
            Ok(None) => return Ok(false),
            Err(error) => return Err(DisconnectReason::ParseError(error.to_string())),
        };
        let Some(socket) = self.shared.socket(&packet.nsp) else {
            tracing::debug!(nsp = %packet.nsp, "packet for a namespace this client never used");
            return Ok(false);
        };
        let manager = self.handle();
        match packet.kind {
            PacketKind::Connect { data, .. } => {
                let flushed = socket.handle_connect(self.connection, data, manager.as_ref());
                session.send(flushed);
            }
            PacketKind::ConnectError(payload) => {
                socket.handle_connect_error(payload, manager.as_ref());
                return Ok(true);
            }
            PacketKind::Event { data, id } => {
                socket.handle_event(data, id, self.connection, manager.as_ref());
            }
            PacketKind::Ack { data, id } => socket.handle_ack(id, data),
            PacketKind::Disconnect => {
                socket.handle_server_disconnect(manager.as_ref());
                return Ok(true);
            }
        }
        Ok(false)
    }
}
