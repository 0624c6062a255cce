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
    pub(crate) log: Log,
    pub(crate) auth: Auth,
    pub(crate) api: Api,
    pub(crate) cluster: Cluster,
}

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Server {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            port: 3000,
            path: "/socket.io/".to_owned(),
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
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            enabled: false,
            handshakes_per_10s: 20,
            events_per_second: 50,
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Auth {
    pub(crate) require_auth: bool,
    pub(crate) jwt_secret: String,
    pub(crate) jwt_public_key: String,
}

/// The HTTP API for backends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Api {
    pub(crate) key: String,
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
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            nodes: 1,
            adapter: AdapterKind::Local,
            redis_url: String::new(),
        }
    }
}
