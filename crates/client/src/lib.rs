//! An async Socket.IO client for tokio: for Rust services, bots, load tests and Ferrio's own
//! tools. It speaks Engine.IO v4 and Socket.IO protocol v5 (the servers of socket.io v3 and
//! later, and Ferrio), with the protocol codecs of `ferrio-engineio-proto` and
//! `ferrio-socketio-proto`, the same ones the server uses.
//!
//! - [`Manager`]: one connection to the server, over HTTP long-polling, WebSocket, or polling
//!   upgraded to WebSocket ([`ClientConfig::transports`], [`ClientConfig::upgrade`]); it
//!   reconnects with exponential backoff and jitter, exactly as the JS client
//!   ([`ReconnectionConfig`], [`backoff::Backoff`]).
//! - [`Socket`]: one namespace over that connection. Connect with an auth payload, emit, emit
//!   and wait for an acknowledgement, answer the server's acknowledgements, send and receive
//!   binary arguments ([`Payload`]), handle events by name, typed through serde, or all at
//!   once.
//! - Connection state recovery: when the server offers it, the socket keeps its private
//!   session id and the offset of the last event, sends them with the next CONNECT, and
//!   [`Socket::recovered`] says whether the server restored the session.
//! - Observable: [`Manager::state`] publishes a [`ConnectionState`], [`Socket::state`] a
//!   [`SocketState`], [`Manager::heartbeat`] the [`HeartbeatStats`] of the server's pings.
//!
//! ```no_run
//! use std::time::Duration;
//! use ferrio_client::{ClientConfig, Manager, Payload};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Manager::new(ClientConfig::new("http://127.0.0.1:3000"))?;
//! let socket = manager.socket("/")?;
//! socket.set_auth(json!({ "token": "abc" }).as_object().cloned());
//! socket.on_typed::<String, _>("greeting", |_socket, text, _ack| println!("{text}"));
//! socket.connect().await?;
//!
//! socket.emit("hello", json!({ "name": "ferrio" }))?;
//! let mut upload = Payload::new();
//! upload.push("report.bin")?.push_binary(vec![1u8, 2, 3]);
//! let answer = socket.emit_with_ack("upload", upload, Duration::from_secs(5)).await?;
//! println!("stored as {:?}", answer.get::<String>(0));
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! The decisions are sans-IO and tested on simulated time: the backoff ([`backoff`]), when to
//! reconnect (`reconnect.rs`), the heartbeat watch (over the shared `Heartbeat` state
//! machine). One task per manager drives the connection; transports run a reading and a
//! writing task each. Event handlers run on the manager's task, in order: keep them short.
//!
//! `https://` (and `wss://`) servers are reached over TLS with rustls, opened where TCP
//! connections are (`transport::stream`): hyper's client connection and tokio-tungstenite's
//! handshake both take the stream, so the transports are the same over TLS.
//!
//! # TLS
//!
//! By default the Mozilla root certificates are trusted (the `webpki-roots` crate; the
//! system's trust store is not read). A private authority is added with
//! [`TlsConfig::add_root_certificates_pem_file`]. A refused certificate ends the attempt with
//! [`OpenError::Certificate`], which says why ([`CertificateError`]: unknown issuer, expired,
//! not valid for the host, with the names it covers):
//!
//! ```no_run
//! use ferrio_client::{CertificateError, ClientConfig, ConnectError, Manager, ReconnectionConfig, TlsConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut tls = TlsConfig::default();
//! tls.add_root_certificates_pem_file("ca.pem")?;
//! let manager = Manager::new(ClientConfig {
//!     tls,
//!     reconnection: ReconnectionConfig { attempts: Some(0), ..ReconnectionConfig::default() },
//!     ..ClientConfig::new("https://chat.internal")
//! })?;
//! match manager.socket("/")?.connect().await {
//!     Err(ConnectError::ReconnectFailed { last_error: Some(error) }) => {
//!         if let Some(CertificateError::UnknownIssuer) = error.certificate() {
//!             eprintln!("the server's certificate authority is not in ca.pem");
//!         }
//!     }
//!     other => other?,
//! }
//! # Ok(())
//! # }
//! ```

mod codec;
mod config;
mod engine;
mod error;
mod event;
mod heartbeat;
mod manager;
mod reconnect;
mod socket;
mod state;
mod tls;
mod transport;
mod url;

pub mod backoff;

pub use config::{ClientConfig, ReconnectionConfig};
pub use error::{AckError, ConfigError, ConnectError, EmitError, OpenError};
pub use event::{AckSender, Event};
pub use ferrio_socketio_proto::{ArgError, Payload};
pub use manager::Manager;
pub use socket::{ConnectErrorHandler, ConnectHandler, DisconnectHandler, EventHandler, Socket};
pub use state::{
    ConnectRefused, ConnectionState, DisconnectReason, HeartbeatStats, SocketState, TransportKind,
};
pub use tls::{CertificateError, TlsConfig, TlsConfigError};
