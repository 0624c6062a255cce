use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

use crate::cors::{AllowOrigin, CorsConfig};
use crate::rate::RateLimit;

/// [`EngineConfig::fanout_window`] by default.
pub const DEFAULT_FANOUT_WINDOW: u32 = 10;

/// The largest [`EngineConfig::fanout_window`]: larger values are taken as this.
pub const MAX_FANOUT_WINDOW: u32 = crate::pacing::MAX_WINDOW;

/// The transports a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket, directly or as an upgrade from polling.
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Self {
            polling: true,
            websocket: true,
        }
    }
}

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (needs `Secure` in browsers).
    None,
}

/// The optional session cookie (`io=<sid>`), which lets a load balancer keep a polling client on
/// the node that holds its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Cookie name; `io` by default.
    pub name: String,
    /// Cookie path; `/` by default.
    pub path: String,
    /// Whether the cookie is `HttpOnly` (default true).
    pub http_only: bool,
    /// Whether the cookie is `Secure` (default false).
    pub secure: bool,
    /// The `SameSite` attribute (default `Lax`).
    pub same_site: SameSite,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "io".to_owned(),
            path: "/".to_owned(),
            http_only: true,
            secure: false,
            same_site: SameSite::Lax,
        }
    }
}

impl CookieConfig {
    /// The `Set-Cookie` header value for a session.
    pub(crate) fn header_value(&self, sid: &str) -> String {
        let mut value = format!("{}={}; Path={}", self.name, sid, self.path);
        if self.http_only {
            value.push_str("; HttpOnly");
        }
        if self.secure {
            value.push_str("; Secure");
        }
        value.push_str(match self.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        value
    }
}

/// Why a handshake was refused by [`EngineConfig::allow_request`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestRefused {
    /// Message sent to the client in the `{"code":4,"message":...}` body; "Forbidden" when unset.
    pub message: Option<String>,
}

/// A check run on every handshake request before a session is created.
pub type AllowRequest = Arc<dyn Fn(&Parts) -> Result<(), RequestRefused> + Send + Sync>;

/// Finds the client's address for the per-address limits: see [`EngineConfig::client_ip`].
pub type ClientIp = Arc<dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync>;

/// Settings of an Engine.IO server. Defaults match the reference Node server.
///
/// The limits that the reference server does not have (connections, handshake rate, origins)
/// are off by default; `docs/limits.md` lists every limit, its default and what a client sees
/// when it is hit.
#[derive(Clone)]
pub struct EngineConfig {
    /// Request path the server answers on; `/engine.io/` by default (`/socket.io/` when mounted
    /// under the Socket.IO layer).
    pub path: String,
    /// Accepted transports.
    pub transports: Transports,
    /// Whether polling clients may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// Whether clients speaking Engine.IO revision 3 (socket.io-client v2) are accepted.
    pub allow_eio3: bool,
    /// How often the server pings (v4), or the client must ping (v3). 25 s by default.
    pub ping_interval: Duration,
    /// How late a pong (v4) or the next ping (v3) may be. 20 s by default.
    pub ping_timeout: Duration,
    /// How long an upgrade may take from the WebSocket's opening to the upgrade packet. 10 s.
    pub upgrade_timeout: Duration,
    /// Largest message (WebSocket) or request body (polling) accepted, in bytes. 1 MB.
    pub max_payload: u64,
    /// Packets queued for one session before sends fail with [`crate::SendError::Full`].
    pub max_buffered_packets: usize,
    /// Fan-out pacing: how many of a client's packets that each woke several sessions (a
    /// broadcast to a room, say) may still be waiting for those sessions' WebSocket tasks
    /// before the server stops reading from that client (and writing to it, its
    /// acknowledgements included) until the oldest has been taken. 10 by default, at most 32;
    /// 0 turns pacing off. A client is never held up by recipients too slow to read (their
    /// queue bound deals with them), nor for more than a second. See the module `pacing`.
    ///
    /// Without it, a client that broadcasts as fast as it is acknowledged queues broadcasts
    /// faster than they are written, and every delivery waits behind the whole backlog; with
    /// it, the writes still gather several broadcasts per system call while a delivery waits
    /// for about one round of writes.
    pub fanout_window: u32,
    /// Cross-origin settings; `None` sends no CORS headers.
    pub cors: Option<CorsConfig>,
    /// The session cookie; `None` sets none.
    pub cookie: Option<CookieConfig>,
    /// A check run on every handshake; a refusal answers 403 `{"code":4,...}`.
    pub allow_request: Option<AllowRequest>,
    /// Most bytes a WebSocket connection takes per read call (at most 16 KiB), 8 KiB by default.
    /// Reads land in a scratch array on the stack, not in a buffer kept with the connection: only
    /// the bytes of a frame still incomplete are kept, until it completes, so an idle connection
    /// holds no read buffer whatever this is. It bounds the bytes per read call, not the message
    /// size ([`EngineConfig::max_payload`] does).
    pub ws_read_buffer_size: usize,
    /// Most sessions open at once; a handshake beyond it is answered 503
    /// `{"code":6,"message":"Too many connections (max N)"}`. `None` (the default): no limit
    /// but memory and file descriptors.
    pub max_connections: Option<usize>,
    /// Most sessions open at once from one client address (see [`EngineConfig::client_ip`];
    /// IPv6 addresses count by their /64 prefix); a handshake beyond it is answered 429
    /// `{"code":7,"message":"Too many connections from this address (max N)"}`. `None` by
    /// default: behind a proxy, or a carrier's NAT, many clients share one address.
    pub max_connections_per_ip: Option<usize>,
    /// Handshakes allowed per client address, as a token bucket (IPv6 by /64 again); one beyond
    /// it is answered 429 `{"code":7,"message":"Too many handshakes (max 20 per 10s)"}`. Only
    /// requests without a session id count: a session's own polls and posts never do. `None`
    /// by default.
    pub handshake_rate_per_ip: Option<RateLimit>,
    /// Origins allowed to connect. When set, any request (handshake, poll, post, WebSocket)
    /// whose `Origin` header is present but not allowed is answered 403
    /// `{"code":4,"message":"Origin not allowed"}`; requests without `Origin` (non-browser
    /// clients) pass. `None` (the default) checks nothing.
    ///
    /// This is separate from [`EngineConfig::cors`] on purpose: CORS only tells a browser
    /// whether a page may read an answer, and never stops a WebSocket, whereas this refuses the
    /// request itself. Set both to the same list to allow a set of sites and refuse the rest.
    pub allowed_origins: Option<AllowOrigin>,
    /// How long the body of a polling `POST` may take to arrive once its headers are in. Past
    /// it the client gets 408 `{"code":8,...}` and the session closes with "transport error".
    /// 30 s by default: a real client's body arrives in one go, and the heartbeat would give
    /// up on a session whose upload stalls for longer anyway.
    pub polling_body_timeout: Duration,
    /// Finds the client's address for the per-address limits. `None` (the default) uses the
    /// peer of the TCP connection, which [`crate::serve`] puts in each request's extensions as
    /// a [`std::net::SocketAddr`]. Behind a reverse proxy, read its header here (the last
    /// address the proxy appended to `X-Forwarded-For`, never one the client could forge).
    /// Requests whose address is unknown are not subject to per-address limits.
    pub client_ip: Option<ClientIp>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            path: "/engine.io/".to_owned(),
            transports: Transports::default(),
            allow_upgrades: true,
            allow_eio3: true,
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            max_buffered_packets: 1024,
            fanout_window: DEFAULT_FANOUT_WINDOW,
            cors: None,
            cookie: None,
            allow_request: None,
            ws_read_buffer_size: 8 * 1024,
            max_connections: None,
            max_connections_per_ip: None,
            handshake_rate_per_ip: None,
            allowed_origins: None,
            polling_body_timeout: Duration::from_secs(30),
            client_ip: None,
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("transports", &self.transports)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("allow_eio3", &self.allow_eio3)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("max_buffered_packets", &self.max_buffered_packets)
            .field("fanout_window", &self.fanout_window)
            .field("cors", &self.cors)
            .field("cookie", &self.cookie)
            .field("allow_request", &self.allow_request.is_some())
            .field("ws_read_buffer_size", &self.ws_read_buffer_size)
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("handshake_rate_per_ip", &self.handshake_rate_per_ip)
            .field("allowed_origins", &self.allowed_origins)
            .field("polling_body_timeout", &self.polling_body_timeout)
            .field("client_ip", &self.client_ip.is_some())
            .finish()
    }
}

impl EngineConfig {
    /// Whether a request path is this server's (with or without the trailing slash).
    pub(crate) fn matches_path(&self, path: &str) -> bool {
        path == self.path || self.path.strip_suffix('/') == Some(path)
    }

    /// Whether a request passes the origin check: it has no `Origin`, or no allow-list is set,
    /// or the list allows it. `Err` holds the refused origin.
    pub(crate) fn check_origin(&self, headers: &http::HeaderMap) -> Result<(), String> {
        let (Some(allowed), Some(origin)) =
            (&self.allowed_origins, headers.get(http::header::ORIGIN))
        else {
            return Ok(());
        };
        match origin.to_str() {
            Ok(text) if allowed.allows(text) => Ok(()),
            _ => Err(String::from_utf8_lossy(origin.as_bytes()).into_owned()),
        }
    }
}
