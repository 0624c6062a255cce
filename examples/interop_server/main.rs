//! The server the official-client interop matrix runs against: implements
//! `shared/interop/CONTRACT.md` exactly. Listens on `HOST:PORT` (default `127.0.0.1:3001`).
//!
//! Namespaces `/`, `/chat` and `/private` (the last behind a token middleware) share one set of
//! events: `echo`, `echo-event`, `push`, `request-ack`, `join`, `leave`, `to-room`,
//! `server-disconnect-me` and `drop-transport`; every connection is greeted with `welcome`.

#[path = "../common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use ferrio_history::{HistoryStore, SqliteConfig, SqliteStore};
use ferrio_socketio::{
    ConnectError, Event, Payload, RecoveryConfig, Socket, SocketIo, SocketIoConfig,
};
use serde_json::{json, Value};

fn main() -> std::io::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> std::io::Result<()> {
    common::init_tracing();

    let (service, io) = SocketIo::new(SocketIoConfig {
        recovery: Some(RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
        }),
        recovery_store: recovery_store()?,
        ..SocketIoConfig::default()
    });
    for name in ["/", "/chat", "/private"] {
        io.ns(name, on_connection);
    }
    io.of("/private")
        .use_middleware(|socket: Arc<Socket>| async move {
            if token_is_secret(&socket) {
                Ok(())
            } else {
                Err(ConnectError::with_data(
                    "unauthorized",
                    json!({ "reason": "bad token" }),
                ))
            }
        });

    let listener = common::bind_from_env(3001).await?;
    eprintln!("interop server on http://{}", listener.local_addr()?);
    ferrio_socketio::serve(listener, service).await
}

/// With `RECOVERY_STORE=<file>`, recovery state is kept in that SQLite file, so that clients
/// recover across a restart of this server (`tests/interop/recovery-restart.test.mjs`).
fn recovery_store() -> std::io::Result<Option<Arc<dyn HistoryStore>>> {
    let Some(path) = std::env::var_os("RECOVERY_STORE") else {
        return Ok(None);
    };
    let store = SqliteStore::open(SqliteConfig::new(path)).map_err(std::io::Error::other)?;
    Ok(Some(Arc::new(store)))
}

/// `auth.token == "secret"`, or, when the CONNECT carries no token (socket.io-client v2 sends
/// none in protocol v4's sense), `token=secret` in the handshake query.
fn token_is_secret(socket: &Socket) -> bool {
    match socket.auth().get("token") {
        Some(token) => token == "secret",
        None => socket.handshake().query_param("token").as_deref() == Some("secret"),
    }
}

fn on_connection(socket: &Arc<Socket>) {
    let _ = socket.emit(
        "welcome",
        json!({
            "sid": socket.id().as_str(),
            "nsp": socket.nsp(),
            "recovered": socket.recovered(),
            "auth": socket.auth(),
        }),
    );
    socket.on("echo", |_socket, event| {
        if let Some(ack) = event.ack {
            let _ = ack.send(event.payload);
        }
    });
    socket.on("echo-event", |socket, event| {
        let _ = socket.emit_payload("echo-event-back", event.payload);
        reply(event.ack, json!({ "ok": true }));
    });
    socket.on("push", |socket, event| {
        let Some((name, data)) = event_and_data(&event) else {
            return bad_request(event);
        };
        if socket.emit(&name, data).is_err() {
            // A reserved event name, which no server may emit.
            return bad_request(event);
        }
        reply(event.ack, json!({ "ok": true }));
    });
    socket.on("request-ack", |socket, event| {
        let Some((name, data)) = event_and_data(&event) else {
            return bad_request(event);
        };
        let socket = socket.clone();
        tokio::spawn(async move {
            let answer = match socket
                .emit_with_ack(
                    &name,
                    Payload::from_args(vec![data]),
                    Duration::from_secs(5),
                )
                .await
            {
                Ok(payload) => json!({ "reply": payload.args }),
                Err(_) => json!({ "error": "timeout" }),
            };
            reply(event.ack, answer);
        });
    });
    socket.on("join", |socket, event| {
        let Some(room) = room_of(&event) else {
            return bad_request(event);
        };
        socket.join(room.as_str());
        reply(event.ack, json!({ "room": room, "joined": true }));
    });
    socket.on("leave", |socket, event| {
        let Some(room) = room_of(&event) else {
            return bad_request(event);
        };
        socket.leave(room.as_str());
        reply(event.ack, json!({ "room": room, "left": true }));
    });
    socket.on("to-room", |socket, event| {
        let (Some(room), Some((name, data))) = (room_of(&event), event_and_data(&event)) else {
            return bad_request(event);
        };
        if socket
            .namespace()
            .to(room.as_str())
            .emit(&name, data)
            .is_err()
        {
            return bad_request(event);
        }
        reply(event.ack, json!({ "ok": true }));
    });
    socket.on("server-disconnect-me", |socket, _event| {
        socket.disconnect_with(true);
    });
    socket.on("drop-transport", |socket, event| {
        let missed = event
            .payload
            .args
            .first()
            .and_then(|arg| arg.get("missed"))
            .and_then(|m| Some((m.get("event")?.as_str()?.to_owned(), m.get("data")?.clone())));
        let namespace = socket.namespace().clone();
        let old_id = socket.id().clone();
        socket.abort_transport();
        if let Some((name, data)) = missed {
            // The abort above processed the disconnection synchronously: the session is kept for
            // recovery, and this emit is recorded for its replay.
            let _ = namespace.to(old_id).emit(&name, data);
        }
    });
}

/// `{"event": string, "data": any}` from the first argument.
fn event_and_data(event: &Event) -> Option<(String, Value)> {
    let arg = event.payload.args.first()?;
    let name = arg.get("event")?.as_str()?.to_owned();
    let data = arg.get("data").cloned().unwrap_or(Value::Null);
    Some((name, data))
}

/// `{"room": string}` from the first argument.
fn room_of(event: &Event) -> Option<String> {
    Some(
        event
            .payload
            .args
            .first()?
            .get("room")?
            .as_str()?
            .to_owned(),
    )
}

fn reply(ack: Option<ferrio_socketio::AckSender>, value: Value) {
    if let Some(ack) = ack {
        let _ = ack.send_json(value);
    }
}

fn bad_request(event: Event) {
    reply(event.ack, json!({ "ok": false, "error": "bad request" }));
}
