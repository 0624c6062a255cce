//! The session registry and the packet handling shared by both transports.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Instant, SystemTime};

use ferrio_engineio_proto::{Heartbeat, Packet, ProtocolVersion, Sid};
use http::request::Parts;

use crate::admission::{address_key, Admission};
use crate::refusal::Refusal;
use crate::socket::{
    Farewell, FarewellPacket, Handshake, SessionOwner, SocketParts, TransportKind,
};
use crate::telemetry::{count_disconnect, count_handshake, Traffic};
use crate::timers::Timers;
use crate::{DisconnectReason, EngineConfig, EngineHandler, Socket};

/// An Engine.IO server: its configuration, its handler and the open sessions.
///
/// Shared behind an `Arc` by the [`crate::EngineService`] clones and by every session.
pub struct Engine<H: EngineHandler> {
    config: EngineConfig,
    handler: H,
    sessions: RwLock<HashMap<Sid, Arc<Socket<H::Data>>>>,
    admission: Admission,
    traffic: Traffic,
    timers: Arc<Timers<H::Data>>,
    this: Weak<Engine<H>>,
}

impl<H: EngineHandler> Drop for Engine<H> {
    fn drop(&mut self) {
        self.timers.stop();
    }
}

impl<H: EngineHandler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

impl<H: EngineHandler> Engine<H> {
    /// Creates an engine.
    pub fn new(config: EngineConfig, handler: H) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            admission: Admission::new(&config),
            timers: Timers::new(config.ping_timeout),
            config,
            handler,
            sessions: RwLock::new(HashMap::new()),
            traffic: Traffic::new(),
            this: this.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The packet and byte counters.
    pub(crate) fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Fanned-out packets a client may have waiting for their sessions' tasks (0: no pacing),
    /// the configured window capped at what the pacing ring keeps apart.
    pub(crate) fn fanout_window(&self) -> u32 {
        self.config.fanout_window.min(crate::pacing::MAX_WINDOW)
    }

    /// The open session with this id, if any.
    pub fn session(&self, sid: Sid) -> Option<Arc<Socket<H::Data>>> {
        self.read_sessions().get(&sid).cloned()
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.read_sessions().len()
    }

    /// The transport of every open session, one entry per session (a snapshot).
    pub fn session_transports(&self) -> Vec<TransportKind> {
        self.read_sessions()
            .values()
            .map(|s| s.transport())
            .collect()
    }

    /// How many sessions are open from `ip`, as [`EngineConfig::max_connections_per_ip`] counts
    /// them (IPv6 by /64). Counted only while that limit is set; zero otherwise.
    pub fn sessions_from(&self, ip: IpAddr) -> usize {
        self.admission.sessions_of(address_key(ip))
    }

    /// The client address a request is limited under (see [`EngineConfig::client_ip`]), IPv6
    /// reduced to its /64.
    pub(crate) fn client_key(&self, parts: &Parts) -> Option<IpAddr> {
        let ip = match &self.config.client_ip {
            Some(find) => find(parts),
            None => parts.extensions.get::<SocketAddr>().map(SocketAddr::ip),
        };
        ip.map(address_key)
    }

    /// Takes a handshake token for the request's address, when a handshake rate is set.
    pub(crate) fn check_handshake_rate(&self, ip: Option<IpAddr>) -> Result<(), Refusal> {
        match ip {
            Some(ip) => self.admission.check_handshake(ip, Instant::now()),
            None => Ok(()),
        }
    }

    /// Closes every session with `reason`, each client getting a close packet.
    pub fn close_all(&self, reason: DisconnectReason) {
        let sessions: Vec<_> = self.read_sessions().values().cloned().collect();
        for socket in sessions {
            socket.close_with_reason(reason);
        }
    }

    fn read_sessions(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Sid, Arc<Socket<H::Data>>>> {
        self.sessions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_sessions(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<Sid, Arc<Socket<H::Data>>>> {
        self.sessions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a session and starts its heartbeat, unless the connection limits refuse it. The
    /// handler hears of it through [`Engine::announce`], once the handshake has been written.
    pub(crate) fn open_session(
        &self,
        parts: &Parts,
        ip: Option<IpAddr>,
        protocol: ProtocolVersion,
        transport: TransportKind,
        supports_binary: bool,
    ) -> Result<Arc<Socket<H::Data>>, Refusal> {
        let owner: Weak<dyn SessionOwner<H::Data>> = self.this.clone();
        // `Handshake::new` copies the URI and the header bytes into one buffer of the session's
        // own: the parser's values are slices of its 8 KiB read buffer, which a clone kept for
        // the session's life would keep alive (this clone is dropped once copied).
        let handshake = Handshake::new(
            parts.uri.clone(),
            &parts.headers,
            parts.extensions.get::<SocketAddr>().copied(),
            SystemTime::now(),
        );
        let heartbeat = Heartbeat::new(
            protocol,
            self.config.ping_interval,
            self.config.ping_timeout,
            Instant::now(),
        );
        let socket = {
            // The count and the insertion happen under one lock, so concurrent handshakes
            // cannot both take the last place.
            let mut sessions = self.write_sessions();
            if let Some(max) = self.config.max_connections {
                if sessions.len() >= max {
                    return Err(Refusal::MaxConnections { max });
                }
            }
            let counted_ip = match (self.config.max_connections_per_ip, ip) {
                (Some(max), Some(ip)) => {
                    self.admission.reserve(ip, max)?;
                    Some(ip)
                }
                _ => None,
            };
            let mut id = new_sid();
            while sessions.contains_key(&id) {
                // 120 random bits never collide in practice; if they do, draw again.
                id = new_sid();
            }
            let socket = Arc::new(Socket::new(SocketParts {
                id,
                protocol,
                supports_binary,
                transport,
                max_buffered_packets: self.config.max_buffered_packets,
                heartbeat,
                handshake,
                counted_ip,
                owner,
                data: H::Data::default(),
            }));
            sessions.insert(id, socket.clone());
            socket
        };
        count_handshake(transport, protocol);
        self.timers.watch(&socket);
        Ok(socket)
    }

    /// Adds the session cookie to a handshake answer, when configured.
    pub(crate) fn set_cookie(&self, headers: &mut http::HeaderMap, sid: Sid) {
        if let Some(cookie) = &self.config.cookie {
            if let Ok(value) = http::HeaderValue::from_str(&cookie.header_value(sid.as_str())) {
                headers.append(http::header::SET_COOKIE, value);
            }
        }
    }

    /// Tells the handler a session opened.
    pub(crate) fn announce(&self, socket: &Arc<Socket<H::Data>>) {
        self.handler.on_connect(socket);
    }

    /// Acts on one packet from a client. A session that is closing takes no more packets, as in
    /// the reference server: the application never hears from a session it closed (or that broke
    /// while a `POST` was still being read).
    pub(crate) fn handle_packet(&self, socket: &Arc<Socket<H::Data>>, packet: Packet) {
        if !socket.is_open() {
            return;
        }
        match packet {
            Packet::Message(message) => self.handler.on_message(socket, message),
            Packet::Ping(data) => {
                // Revision 3 clients ping and expect a pong; revision 4 clients never ping, but an
                // answer does no harm.
                socket.on_ping();
                let _ = socket.send_packet(Packet::Pong(data));
            }
            Packet::Pong(_) => socket.on_pong(),
            Packet::Close => {
                socket.close_with(
                    DisconnectReason::TransportClose,
                    Farewell::Packet(FarewellPacket::Noop),
                );
            }
            // Only meaningful during an upgrade, which handles them itself.
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }
}

impl<H: EngineHandler> SessionOwner<H::Data> for Engine<H> {
    fn session_closing(&self, socket: &Arc<Socket<H::Data>>) {
        self.timers.closing(socket);
    }

    fn session_closed(&self, socket: &Arc<Socket<H::Data>>, reason: DisconnectReason) {
        self.write_sessions().remove(&socket.id());
        if let Some(ip) = socket.counted_ip() {
            self.admission.release(ip);
        }
        tracing::debug!(sid = %socket.id(), %reason, "session closed");
        count_disconnect(reason);
        self.handler.on_disconnect(socket, reason);
    }
}

/// A new session id from the operating system's CSPRNG.
fn new_sid() -> Sid {
    let mut bytes = [0u8; Sid::RANDOM_BYTES];
    if getrandom::fill(&mut bytes).is_err() {
        // Without an OS random source there is no safe id; fall back to mixing the clock into the
        // address of a fresh allocation, which is still unique per process but guessable.
        tracing::error!("the operating system's random source failed; session ids are weak");
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..15].copy_from_slice(&nanos.to_le_bytes()[..15]);
    }
    Sid::from_random(bytes)
}
