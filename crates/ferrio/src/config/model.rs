//! The typed configuration of the gateway. `docs/configuration.md` documents every field.
//!
//! "No limit" is written `0` for the counts, so that every key has a plain value in every
//! source (TOML, `.env`, environment, flags).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::serde_duration;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) server: Server,
    pub(crate) engine: Engine,
    pub(crate) heartbeat: Heartbeat,
    pub(crate) limits: Limits,
    pub(crate) rate_limit: RateLimit,
    pub(crate) cors: Cors,
    pub(crate) recovery: Recovery,
    pub(crate) history: History,
    pub(crate) log: Log,
    pub(crate) auth: Auth,
    pub(crate) rooms: Rooms,
    pub(crate) api: Api,
    pub(crate) cluster: Cluster,
    pub(crate) webhooks: Webhooks,
    pub(crate) ws: Ws,
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Server {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
    /// Namespaces served: names (`/chat`) or globs (`/team-*`); `/` is always served.
    pub(crate) namespaces: Vec<String>,
    /// Whether `GET /metrics` answers with the Prometheus metrics.
    pub(crate) metrics: bool,
    /// A PEM certificate chain file; with `tls_key`, the server speaks TLS (reloaded on SIGHUP).
    pub(crate) tls_cert: String,
    /// The PEM private key file of `tls_cert`.
    pub(crate) tls_key: String,
    /// Origins allowed to connect at all (browsers' `Origin` header); empty checks none.
    pub(crate) allowed_origins: Vec<String>,
    /// Networks (CIDR) of reverse proxies whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub(crate) trusted_proxies: Vec<String>,
    /// How long a shutdown (SIGTERM, SIGINT) waits for clients to leave before exiting.
    #[serde(with = "serde_duration")]
    pub(crate) shutdown_timeout: Duration,
    /// Whether a handshake answer sets the session cookie (`io=<sid>`), which load balancers
    /// can route on; off by default, as in the reference server.
    pub(crate) cookie: bool,
    /// The session cookie's name.
    pub(crate) cookie_name: String,
    /// The session cookie's `Path`.
    pub(crate) cookie_path: String,
    /// Whether the session cookie is `HttpOnly` (hidden from the page's scripts).
    pub(crate) cookie_http_only: bool,
    /// Whether the session cookie is `Secure` even though this server speaks plain HTTP (behind a
    /// TLS-terminating proxy); with TLS here it always is.
    pub(crate) cookie_secure: bool,
    /// The session cookie's `SameSite` attribute.
    pub(crate) cookie_same_site: SameSite,
}

impl Server {
    /// Whether the server speaks TLS: both files are set (a lint refuses one without the other).
    pub(crate) fn speaks_tls(&self) -> bool {
        !self.tls_cert.is_empty() && !self.tls_key.is_empty()
    }

    /// Whether the session cookie carries `Secure`: asked for, or the server speaks TLS, where
    /// every client is on https and the attribute costs nothing.
    pub(crate) fn cookie_is_secure(&self) -> bool {
        self.cookie_secure || self.speaks_tls()
    }
}

/// The `SameSite` attribute of the session cookie; written lowercase, read in any case, since
/// browsers' documentation capitalises it (`Lax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also sent on top-level navigations from other sites; browsers' default.
    Lax,
    /// Sent on cross-site requests too; browsers require `Secure` with it.
    None,
}

impl<'de> Deserialize<'de> for SameSite {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.to_ascii_lowercase().as_str() {
            "strict" => Ok(Self::Strict),
            "lax" => Ok(Self::Lax),
            "none" => Ok(Self::None),
            _ => Err(serde::de::Error::custom(format!(
                "{text:?} is not a SameSite value: expected \"strict\", \"lax\" or \"none\""
            ))),
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 3000,
            path: "/socket.io/".to_owned(),
            namespaces: vec!["/".to_owned()],
            metrics: true,
            tls_cert: String::new(),
            tls_key: String::new(),
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            shutdown_timeout: Duration::from_secs(10),
            cookie: false,
            cookie_name: "io".to_owned(),
            cookie_path: "/".to_owned(),
            cookie_http_only: true,
            cookie_secure: false,
            cookie_same_site: SameSite::Lax,
        }
    }
}

/// A transport clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    Polling,
    Websocket,
}

/// Engine.IO settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Engine {
    pub(crate) transports: Vec<Transport>,
    pub(crate) allow_upgrades: bool,
    pub(crate) allow_eio3: bool,
}

impl Default for Engine {
    fn default() -> Self {
        Self {
            transports: vec![Transport::Polling, Transport::Websocket],
            allow_upgrades: true,
            allow_eio3: true,
        }
    }
}

/// Heartbeat and handshake timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Heartbeat {
    #[serde(with = "serde_duration")]
    pub(crate) ping_interval: Duration,
    #[serde(with = "serde_duration")]
    pub(crate) ping_timeout: Duration,
    #[serde(with = "serde_duration")]
    pub(crate) upgrade_timeout: Duration,
    #[serde(with = "serde_duration")]
    pub(crate) connect_timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            upgrade_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(45),
        }
    }
}

/// Sizes and counts; `0` means no limit where noted in the docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Limits {
    pub(crate) max_payload: u64,
    pub(crate) max_connections: u64,
    pub(crate) max_connections_per_ip: u64,
    pub(crate) max_buffered_packets: u64,
    pub(crate) fanout_window: u64,
    pub(crate) max_attachments: u64,
    pub(crate) max_rooms_per_socket: u64,
    #[serde(with = "serde_duration")]
    pub(crate) polling_body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload: 1_000_000,
            max_connections: 0,
            max_connections_per_ip: 0,
            max_buffered_packets: 1024,
            fanout_window: u64::from(ferrio_engineio::DEFAULT_FANOUT_WINDOW),
            max_attachments: 32,
            max_rooms_per_socket: 0,
            polling_body_timeout: Duration::from_secs(30),
        }
    }
}

/// Rate limiting of handshakes (per client address) and events (per socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RateLimit {
    pub(crate) enabled: bool,
    pub(crate) handshakes_per_10s: u32,
    pub(crate) events_per_second: u32,
    /// What happens to an event over `events_per_second`.
    pub(crate) over_limit: OverLimit,
}

/// What happens to an event over the event rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OverLimit {
    /// The event is dropped; the client is told once per run of dropped events.
    Drop,
    /// The client is told, then disconnected from the namespace.
    Disconnect,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            handshakes_per_10s: 20,
            events_per_second: 50,
            over_limit: OverLimit::Drop,
        }
    }
}

/// Cross-origin settings; no origins sends no CORS headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cors {
    pub(crate) origins: Vec<String>,
    pub(crate) credentials: bool,
    pub(crate) methods: Vec<String>,
    pub(crate) headers: Vec<String>,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            credentials: false,
            methods: vec!["GET".to_owned(), "POST".to_owned()],
            headers: Vec::new(),
        }
    }
}

/// Connection state recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Recovery {
    pub(crate) enabled: bool,
    #[serde(with = "serde_duration")]
    pub(crate) window: Duration,
}

impl Default for Recovery {
    fn default() -> Self {
        Self {
            enabled: false,
            window: Duration::from_secs(120),
        }
    }
}

/// Where the rooms' history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HistoryStoreKind {
    /// The embedded SQLite file (`history.path`), one per node.
    Sqlite,
    /// Redis (the cluster's `cluster.redis_url`), shared by every node; recovery stays in
    /// each node's file.
    Redis,
}

/// Durable room history, and the store that keeps connection state recovery across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct History {
    /// Open the store (`path`): durable rooms, and recovery that survives a restart.
    pub(crate) enabled: bool,
    /// Where the rooms' history is kept: the embedded file or the cluster's Redis.
    pub(crate) store: HistoryStoreKind,
    /// The SQLite file (the history with `store = "sqlite"`, recovery always); its
    /// directory is created when missing.
    pub(crate) path: String,
    /// Rooms that keep history: regular expressions.
    pub(crate) rooms: Vec<String>,
    /// Most messages kept per room; `0`: no limit.
    pub(crate) max_messages: u64,
    /// Oldest message kept; `0`: no limit.
    #[serde(with = "serde_duration")]
    pub(crate) max_age: Duration,
}

impl Default for History {
    fn default() -> Self {
        Self {
            enabled: false,
            store: HistoryStoreKind::Sqlite,
            path: "./ferrio-data/history.db".to_owned(),
            rooms: Vec::new(),
            max_messages: 1000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Log {
    pub(crate) level: String,
    pub(crate) format: LogFormat,
    pub(crate) connections: bool,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
            connections: false,
        }
    }
}

/// Client authentication (JWT). Empty strings are "not set".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Auth {
    /// Refuse clients without a valid token (needs a key).
    pub(crate) require_auth: bool,
    /// Let clients without a token in (anonymous) when a key is set.
    pub(crate) allow_anonymous: bool,
    /// HS256 secret.
    pub(crate) jwt_secret: String,
    /// PEM public key (RS256 or ES256), as text.
    pub(crate) jwt_public_key: String,
    /// A file holding a PEM public key (RS256 or ES256).
    pub(crate) jwt_public_key_path: String,
    /// A file holding a JWKS (`{"keys": [...]}`), keys chosen by the token's `kid`.
    pub(crate) jwks_path: String,
    /// `HS256`, `RS256` or `ES256`; empty accepts any algorithm the configured keys verify.
    pub(crate) jwt_algorithm: String,
    /// The cookie a token is read from, after the auth payload and the `Authorization` header.
    pub(crate) cookie_name: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[serde(with = "serde_duration")]
    pub(crate) leeway: Duration,
    /// Accepted `aud` values; empty checks none.
    pub(crate) audience: Vec<String>,
    /// The required `iss`; empty checks none.
    pub(crate) issuer: String,
    /// A JWKS fetched over HTTP(S), cached, refetched for an unknown `kid`.
    pub(crate) jwks_url: String,
    /// How long a fetched JWKS is used before it is fetched again.
    #[serde(with = "serde_duration")]
    pub(crate) jwks_cache_ttl: Duration,
    /// A PEM file of CA certificates also trusted for an `https://` `jwks_url`.
    pub(crate) jwks_ca_file: String,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            require_auth: false,
            allow_anonymous: false,
            jwt_secret: String::new(),
            jwt_public_key: String::new(),
            jwt_public_key_path: String::new(),
            jwks_path: String::new(),
            jwt_algorithm: String::new(),
            cookie_name: "token".to_owned(),
            leeway: Duration::from_secs(5),
            audience: Vec::new(),
            issuer: String::new(),
            jwks_url: String::new(),
            jwks_cache_ttl: Duration::from_secs(600),
            jwks_ca_file: String::new(),
        }
    }
}

impl Auth {
    /// Whether a key to verify tokens with is configured.
    pub(crate) fn has_key(&self) -> bool {
        !(self.jwt_secret.is_empty()
            && self.jwt_public_key.is_empty()
            && self.jwt_public_key_path.is_empty()
            && self.jwks_path.is_empty()
            && self.jwks_url.is_empty())
    }
}

/// Which rooms clients may join and publish to through the built-in `join`, `leave` and
/// `publish` events, besides what their token's claims allow. Patterns are regular expressions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Rooms {
    /// Rooms authenticated users may join.
    pub(crate) join: Vec<String>,
    /// Rooms authenticated users may publish to.
    pub(crate) publish: Vec<String>,
    /// Rooms anyone, anonymous clients included, may join.
    pub(crate) public_join: Vec<String>,
    /// Rooms anyone, anonymous clients included, may publish to.
    pub(crate) public_publish: Vec<String>,
    /// Whether a publisher also receives what it publishes (when it is in the room).
    pub(crate) publish_to_sender: bool,
}

/// The HTTP API for backends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Api {
    /// The key backends present; empty turns the API off.
    pub(crate) key: String,
    /// The longest request body, in bytes.
    pub(crate) max_body: u64,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            key: String::new(),
            max_body: 1_000_000,
        }
    }
}

/// Which adapter carries broadcasts between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AdapterKind {
    Local,
    Redis,
}

/// Running several nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Cluster {
    pub(crate) nodes: u32,
    pub(crate) adapter: AdapterKind,
    pub(crate) redis_url: String,
    /// The prefix of the Redis channels (`key` of `@socket.io/redis-adapter`): nodes share
    /// rooms only with nodes of the same prefix.
    pub(crate) redis_key: String,
    /// How long a request to the other nodes (fetch sockets, rooms, server-side emits) waits
    /// for their answers.
    #[serde(with = "serde_duration")]
    pub(crate) request_timeout: Duration,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            nodes: 1,
            adapter: AdapterKind::Local,
            redis_url: String::new(),
            redis_key: "socket.io".to_owned(),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Webhooks to the backend: client events, connections and disconnections, as JSON POSTs.
/// Empty URLs are "not set".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Webhooks {
    /// Where client events (other than the built-in ones) are posted; the answer is the ack.
    pub(crate) events_url: String,
    /// Event names forwarded; empty forwards every event.
    pub(crate) events: Vec<String>,
    /// Called before a connection is accepted; a non-2xx answer refuses it.
    pub(crate) connect_url: String,
    /// Told of every disconnection, with the reason.
    pub(crate) disconnect_url: String,
    /// How long one call may take.
    #[serde(with = "serde_duration")]
    pub(crate) timeout: Duration,
    /// Signs each body (HMAC-SHA256, `X-Ferrio-Signature`); empty signs nothing.
    pub(crate) secret: String,
    /// Calls under way at once, all webhooks together; `0`: no limit.
    pub(crate) max_in_flight: u64,
    /// A PEM file of CA certificates also trusted for `https://` webhooks (a private PKI).
    pub(crate) ca_file: String,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            events_url: String::new(),
            events: Vec::new(),
            connect_url: String::new(),
            disconnect_url: String::new(),
            timeout: Duration::from_secs(5),
            secret: String::new(),
            max_in_flight: 1000,
            ca_file: String::new(),
        }
    }
}

/// The plain WebSocket endpoint for clients without a Socket.IO library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Ws {
    pub(crate) enabled: bool,
    pub(crate) path: String,
    /// How often the server sends a WebSocket ping.
    #[serde(with = "serde_duration")]
    pub(crate) ping_interval: Duration,
    /// How long after a ping the client may stay silent before it is closed.
    #[serde(with = "serde_duration")]
    pub(crate) ping_timeout: Duration,
}

impl Default for Ws {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/ws".to_owned(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
        }
    }
}
