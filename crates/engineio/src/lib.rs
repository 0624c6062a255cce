//! An Engine.IO server (protocol revisions 3 and 4) over HTTP long-polling and WebSocket, with
//! the upgrade between them, exposed as a tower [`EngineService`].
//!
//! The protocol itself lives in `ferrio-engineio-proto`; this crate drives it with tokio and
//! hyper. An application implements [`EngineHandler`] and gets [`Socket`]s to send on.
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

mod body;
mod config;
mod cors;
mod engine;
mod errors;
mod handler;
mod outbox;
mod polling;
mod query;
mod reason;
mod serve;
mod service;
mod socket;
mod websocket;

pub use body::{BodyAborted, ResponseBody};
pub use config::{AllowRequest, CookieConfig, EngineConfig, RequestRefused, SameSite, Transports};
pub use cors::{AllowOrigin, CorsConfig};
pub use engine::Engine;
pub use errors::{ErrorCode, SendError};
pub use ferrio_engineio_proto::{Message, ProtocolVersion, Sid, Text};
pub use handler::EngineHandler;
pub use query::percent_decode;
pub use reason::DisconnectReason;
pub use serve::serve;
pub use service::EngineService;
pub use socket::{Handshake, Socket, TransportKind};
