//! An Engine.IO server (protocol revisions 3 and 4) over HTTP long-polling and WebSocket, with
//! the upgrade between them, exposed as a tower [`EngineService`].
//!
//! The protocol itself lives in `ferrio-engineio-proto`; this crate drives it with tokio and
//! hyper. An application implements [`EngineHandler`] and gets [`Socket`]s to send on.
//!
//! Abuse resistance: every limit is a field of [`EngineConfig`] (or of [`ServeConfig`] for the
//! HTTP loop), refusals answer with a message naming the limit, and each is logged and counted
//! in [`REFUSALS_TOTAL`] through the `metrics` facade. The rate limiter is [`rate`], sans-IO.
//! Behind a reverse proxy, [`TrustedProxies`] finds the client's address for the per-address
//! limits. With the `tls` cargo feature, `serve_tls` serves over TLS (rustls) from PEM files
//! that `TlsFiles::reload` re-reads without dropping open connections (`docs/tls.md`).
//!
//! Metrics: besides refusals, the engine counts handshakes ([`HANDSHAKES_TOTAL`]), upgrades
//! ([`UPGRADES_TOTAL`]), disconnects by reason ([`DISCONNECTS_TOTAL`]) and Engine.IO packets and
//! bytes in and out ([`PACKETS_RECEIVED_TOTAL`], [`PACKETS_SENT_TOTAL`],
//! [`BYTES_RECEIVED_TOTAL`], [`BYTES_SENT_TOTAL`]), all through the `metrics` facade: install an
//! exporter before creating the [`Engine`] (the traffic counters are registered when it is
//! created).
//!
//! ```no_run
//! use std::sync::Arc;
//! use ferrio_engineio::{Engine, EngineConfig, EngineHandler, EngineService, Message, Socket,
//!     DisconnectReason};
//!
//! struct Echo;
//! impl EngineHandler for Echo {
//!     type Data = ();
//!     fn on_connect(&self, _socket: &Arc<Socket<()>>) {}
//!     fn on_message(&self, socket: &Arc<Socket<()>>, message: Message) {
//!         let _ = socket.send(message);
//!     }
//!     fn on_disconnect(&self, _socket: &Arc<Socket<()>>, _reason: DisconnectReason) {}
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(EngineConfig::default(), Echo);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! ferrio_engineio::serve(listener, EngineService::new(engine)).await
//! # }
//! ```

mod admission;
mod body;
mod config;
mod cors;
mod engine;
mod errors;
mod forwarded;
mod handler;
mod outbox;
mod pacing;
mod polling;
mod query;
pub mod rate;
mod reason;
mod refusal;
mod serve;
mod service;
mod socket;
mod telemetry;
mod timers;
#[cfg(feature = "tls")]
mod tls;
mod websocket;
mod wsconn;

pub use body::{BodyAborted, ResponseBody};
pub use config::{
    AllowRequest, ClientIp, CookieConfig, EngineConfig, RequestRefused, SameSite, Transports,
    DEFAULT_FANOUT_WINDOW, MAX_FANOUT_WINDOW,
};
pub use cors::{AllowOrigin, CorsConfig};
pub use engine::Engine;
pub use errors::{ErrorCode, SendError};
pub use ferrio_engineio_proto::{Message, ProtocolVersion, Sid, Text};
pub use forwarded::{IpNet, IpNetError, TrustedProxies};
pub use handler::EngineHandler;
pub use query::percent_decode;
pub use rate::RateLimit;
pub use reason::DisconnectReason;
pub use refusal::{count_refusal, REFUSALS_TOTAL};
pub use serve::{serve, serve_with, ServeConfig};
pub use service::EngineService;
pub use socket::{Handshake, Socket, TransportKind};
pub use telemetry::{
    BYTES_RECEIVED_TOTAL, BYTES_SENT_TOTAL, DISCONNECTS_TOTAL, FANOUT_PACED_TOTAL,
    FANOUT_PACE_TIMEOUTS_TOTAL, HANDSHAKES_TOTAL, PACKETS_RECEIVED_TOTAL, PACKETS_SENT_TOTAL,
    UPGRADES_TOTAL,
};
#[cfg(feature = "tls")]
pub use tls::{check_tls_files, serve_tls, TlsError, TlsFiles};
