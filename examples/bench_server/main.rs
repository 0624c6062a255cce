//! The server side of the side-by-side benchmarks: implements `shared/bench/CONTRACT.md`.
//!
//! One process listening on `HOST:PORT` (default `127.0.0.1:3000`), Engine.IO v4 over a direct
//! WebSocket with pingInterval 25 s / pingTimeout 20 s, namespace `/` with three events:
//! - `echo`: acknowledged with the same arguments;
//! - `join` `<room>`: joins the room, then acknowledges with no arguments;
//! - `broadcast` `<room>` `<payload>`: emits `bcast` `<payload>` to the room (encoded once for
//!   every member), then acknowledges with no arguments.
//!
//! It logs nothing per connection or message, and exits at once on SIGTERM.

#[path = "../common/mod.rs"]
mod common;

use ferrio_socketio::{Payload, SocketIo, SocketIoConfig};

fn main() -> std::io::Result<()> {
    // Workers follow the CPUs this process may run on: one when the harness pins it.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> std::io::Result<()> {
    let (service, io) = SocketIo::new(SocketIoConfig::default());
    io.ns("/", |socket| {
        socket.on("echo", |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
        socket.on("join", |socket, event| {
            if let Ok(room) = event.payload.get::<String>(0) {
                socket.join(room);
            }
            if let Some(ack) = event.ack {
                let _ = ack.send(Payload::new());
            }
        });
        socket.on("broadcast", |socket, mut event| {
            if let Ok(room) = event.payload.get::<String>(0) {
                let rest = Payload {
                    args: event.payload.args.split_off(1),
                    attachments: std::mem::take(&mut event.payload.attachments),
                };
                let _ = socket.namespace().to(room).emit_payload("bcast", rest);
            }
            if let Some(ack) = event.ack {
                let _ = ack.send(Payload::new());
            }
        });
    });

    let listener = common::bind_from_env(3000).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = ferrio_socketio::serve(listener, service) => result,
        _ = terminate.recv() => std::process::exit(0),
    }
}
