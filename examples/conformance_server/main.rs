//! The server the official Engine.IO and Socket.IO protocol test suites run against.
//!
//! Listens on `HOST:PORT` (default `127.0.0.1:3000`) with the timings the suites expect
//! (pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000, CORS `*`):
//! - `/engine.io/`: a bare Engine.IO server that echoes every message back.
//! - `/socket.io/`: a Socket.IO server (connect timeout 1 s). Namespace `/` emits `auth` with the
//!   CONNECT payload on connection, answers `message` with `message-back` (same arguments) and
//!   acknowledges `message-with-ack` with its arguments; `/custom` emits `auth`; every other
//!   namespace is refused with "Invalid namespace".
//!
//! See `shared/interop/PROTOCOL-SUITES.md` for how the suites are run.

#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use ferrio_engineio::{
    CorsConfig, DisconnectReason, Engine, EngineConfig, EngineHandler, EngineService, Message,
    Socket,
};
use ferrio_socketio::{SocketIo, SocketIoConfig};

/// Echoes every message back to its sender.
struct Echo;

impl EngineHandler for Echo {
    type Data = ();

    fn on_connect(&self, _socket: &Arc<Socket<()>>) {}

    fn on_message(&self, socket: &Arc<Socket<()>>, message: Message) {
        let _ = socket.send(message);
    }

    fn on_disconnect(&self, _socket: &Arc<Socket<()>>, _reason: DisconnectReason) {}
}

fn suite_config(path: &str) -> EngineConfig {
    EngineConfig {
        path: path.to_owned(),
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        cors: Some(CorsConfig::any()),
        ..EngineConfig::default()
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_tracing();

    let engine = EngineService::new(Engine::new(suite_config("/engine.io/"), Echo));
    let (socketio, io) = SocketIo::new(SocketIoConfig {
        engine: suite_config("/socket.io/"),
        connect_timeout: Duration::from_secs(1),
        ..SocketIoConfig::default()
    });
    io.ns("/", |socket| {
        let _ = socket.emit("auth", socket.auth());
        socket.on("message", |socket, event| {
            let _ = socket.emit_payload("message-back", event.payload);
        });
        socket.on("message-with-ack", |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
    });
    io.ns("/custom", |socket| {
        let _ = socket.emit("auth", socket.auth());
    });
    let app = Router::new()
        .route_service("/engine.io/", engine.clone())
        .route_service("/engine.io", engine)
        .route_service("/socket.io/", socketio.clone())
        .route_service("/socket.io", socketio);

    let listener = common::bind_from_env(3000).await?;
    eprintln!("conformance server on http://{}", listener.local_addr()?);
    ferrio_engineio::serve(listener, app).await
}
