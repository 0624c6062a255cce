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
//! Only `http://` (and `ws://`) is supported for now. TLS would be added where TCP
//! connections are opened (`transport::connect_tcp`): hyper's client connection and
//! tokio-tungstenite's handshake both take any async stream, so a rustls stream slots in
//! without changing the transports.

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
mod transport;
mod url;

pub mod backoff;

pub use config::{ClientConfig, ReconnectionConfig};
pub use error::{AckError, ConfigError, ConnectError, EmitError};
pub use event::{AckSender, Event};
pub use ferrio_socketio_proto::{ArgError, Payload};
pub use manager::Manager;
pub use socket::{ConnectErrorHandler, ConnectHandler, DisconnectHandler, EventHandler, Socket};
pub use state::{
    ConnectRefused, ConnectionState, DisconnectReason, HeartbeatStats, SocketState, TransportKind,
};
