//! The server side of the side-by-side benchmarks: implements `shared/bench/CONTRACT.md`.
//!
//! One process listening on `HOST:PORT` (default `127.0.0.1:3000`), Engine.IO v4 over a direct
//! WebSocket with pingInterval 25 s / pingTimeout 20 s, namespace `/` with three events:
//! - `echo`: acknowledged with the same arguments;
//! - `join` `<room>`: joins the room, then acknowledges with no arguments;
//! - `broadcast` `<room>` `<payload>`: emits `bcast` `<payload>` to the room (encoded once for
//!   every member), then acknowledges with no arguments.
//!
//! The handlers are registered once for the namespace (`Namespace::on`); with
//! `BENCH_HANDLERS=socket` each socket registers its own in the connection handler instead, as a
//! Node server does (`docs/benchmarks.md` gives the memory of both).
//!
//! `BENCH_FANOUT_WINDOW=<n>` sets `EngineConfig::fanout_window` (fan-out pacing; `0` turns it
//! off), for the trade-off table in `docs/benchmarks.md`; the default is the library's.
//!
//! It logs nothing per connection or message, and exits at once on SIGTERM.

#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;

use ferrio_socketio::{Event, Payload, Socket, SocketIo, SocketIoConfig};

fn main() -> std::io::Result<()> {
    // Workers follow the CPUs this process may run on: one when the harness pins it.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> std::io::Result<()> {
    let mut config = SocketIoConfig::default();
    if let Some(window) = std::env::var("BENCH_FANOUT_WINDOW")
        .ok()
        .and_then(|value| value.parse().ok())
    {
        config.engine.fanout_window = window;
    }
    let (service, io) = SocketIo::new(config);
    let root = io.of("/");
    if std::env::var("BENCH_HANDLERS").as_deref() == Ok("socket") {
        // Each socket gets its own three handlers, as a Node server's `socket.on` does.
        root.on_connection(|socket| {
            socket.on("echo", echo);
            socket.on("join", join);
            socket.on("broadcast", broadcast);
        });
    } else {
        // One set for every socket of the namespace: nothing per connection.
        root.on("echo", echo);
        root.on("join", join);
        root.on("broadcast", broadcast);
    }

    let listener = common::bind_from_env(3000).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = ferrio_socketio::serve(listener, service) => result,
        _ = terminate.recv() => std::process::exit(0),
    }
}

/// `echo`: acknowledged with the same arguments.
fn echo(_socket: &Arc<Socket>, event: Event) {
    if let Some(ack) = event.ack {
        let _ = ack.send(event.payload);
    }
}

/// `join <room>`: joins, then acknowledges.
fn join(socket: &Arc<Socket>, event: Event) {
    if let Ok(room) = event.payload.get::<String>(0) {
        socket.join(room);
    }
    if let Some(ack) = event.ack {
        let _ = ack.send(Payload::new());
    }
}

/// `broadcast <room> <payload>`: `bcast <payload>` to the room (encoded once), then the ack.
fn broadcast(socket: &Arc<Socket>, mut event: Event) {
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
}
