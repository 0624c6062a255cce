//! Client settings. Defaults are the official JS client's.

use std::time::Duration;

use http::HeaderMap;

use crate::{TlsConfig, TransportKind};

/// Settings of a [`Manager`](crate::Manager): where the server is, how to reach it, and how to
/// reconnect. Build one with [`ClientConfig::new`] and change fields with struct update syntax:
///
/// ```
/// use ferrio_client::{ClientConfig, TransportKind};
///
/// let config = ClientConfig {
///     transports: vec![TransportKind::WebSocket],
///     ..ClientConfig::new("http://127.0.0.1:3000")
/// };
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server, `http://host[:port]` or `https://host[:port]` (`ws://` and `wss://` are
    /// accepted as synonyms). No path and no query: see [`path`](Self::path) and
    /// [`query`](Self::query). `https://` connects over TLS, checked as [`tls`](Self::tls)
    /// says.
    pub url: String,
    /// Where the server mounts Engine.IO. Default `/socket.io/`; a trailing `/` is added when
    /// missing, as the JS client does.
    pub path: String,
    /// The transports to use, the first to open the connection. Default polling then
    /// WebSocket, as the JS client: open with polling, upgrade to WebSocket when the server
    /// offers it. `[WebSocket]` alone connects straight over WebSocket.
    pub transports: Vec<TransportKind>,
    /// Whether to upgrade from polling to WebSocket when both are listed and the server offers
    /// it. Default true.
    pub upgrade: bool,
    /// Extra query parameters sent with every Engine.IO request (`EIO`, `transport`, `sid` and
    /// `t` are the protocol's own and may not be used).
    pub query: Vec<(String, String)>,
    /// Extra headers sent with every HTTP request and the WebSocket handshake (an
    /// `Authorization` header, a cookie). `Host` is set by the client.
    pub headers: HeaderMap,
    /// How to reconnect after the connection is lost.
    pub reconnection: ReconnectionConfig,
    /// Which server certificates are trusted on `https://` servers. Default: the Mozilla
    /// root certificates.
    pub tls: TlsConfig,
    /// How long one attempt to open the connection may take, how long a probe for the
    /// WebSocket upgrade may take, and how long [`Socket::connect`](crate::Socket::connect)
    /// waits. Default 20 s (the JS client's `timeout`).
    pub timeout: Duration,
    /// Largest HTTP response body or WebSocket message accepted from the server, in bytes.
    /// Default 64 MiB.
    pub max_message_size: usize,
    /// Most binary attachments one received packet may announce. Default 32.
    pub max_attachments: usize,
    /// Most packets one socket keeps while it is not connected, to send once it is (the JS
    /// client's `sendBuffer`, which is unbounded). Emitting beyond it fails with
    /// [`EmitError::BufferFull`](crate::EmitError::BufferFull). Default 1024.
    pub send_buffer: usize,
    /// Most events one socket keeps when they arrive before the server's answer to its
    /// CONNECT (a server replaying missed events may send them first), to hand out once
    /// connected; more are dropped. Default 16384.
    pub receive_buffer: usize,
}

impl ClientConfig {
    /// The defaults, for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            path: "/socket.io/".to_owned(),
            transports: vec![TransportKind::Polling, TransportKind::WebSocket],
            upgrade: true,
            query: Vec::new(),
            headers: HeaderMap::new(),
            reconnection: ReconnectionConfig::default(),
            tls: TlsConfig::default(),
            timeout: Duration::from_secs(20),
            max_message_size: 64 << 20,
            max_attachments: 32,
            send_buffer: 1024,
            receive_buffer: 16_384,
        }
    }
}

/// How a lost connection is reopened. Defaults are the JS client's.
///
/// The delay before attempt `n` (from 1) is `delay * 2^(n-1)`, randomized by
/// `randomization_factor` and capped at `delay_max` (see [`Backoff`](crate::backoff::Backoff)).
/// The count starts over once a connection opens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectionConfig {
    /// Whether to reconnect at all. Default true.
    pub enabled: bool,
    /// How many attempts before giving up ([`ConnectionState::ReconnectFailed`]); `None` for
    /// no limit (the default, JS `Infinity`). `Some(0)` gives up at once.
    ///
    /// [`ConnectionState::ReconnectFailed`]: crate::ConnectionState::ReconnectFailed
    pub attempts: Option<u32>,
    /// The first delay. Default 1 s.
    pub delay: Duration,
    /// The longest delay. Default 5 s.
    pub delay_max: Duration,
    /// How much each delay is randomized, from 0 (not at all) to 1. Default 0.5.
    pub randomization_factor: f64,
}

impl Default for ReconnectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            attempts: None,
            delay: Duration::from_millis(1000),
            delay_max: Duration::from_millis(5000),
            randomization_factor: 0.5,
        }
    }
}
