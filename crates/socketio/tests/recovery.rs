//! Connection state recovery over real connections: the private id in the CONNECT reply, the
//! offset on every recorded event, and a client coming back after a cut transport with the same
//! id, its rooms, and exactly the packets it missed, in order. Unknown or spent ids start fresh.

mod common;

use std::collections::HashSet;

use common::{recorder, Recorded, TestServer, WsClient};
use ferrio_socketio::{DisconnectReason, Payload, RecoveryConfig, Room, SocketIoConfig};
use serde_json::{json, Value};

async fn recovering_server() -> (TestServer, Recorded) {
    let server = TestServer::start_with(SocketIoConfig {
        recovery: Some(RecoveryConfig::default()),
        ..SocketIoConfig::default()
    })
    .await;
    let (handler, seen) = recorder();
    server.io.ns("/", handler);
    (server, seen)
}

/// Joins `/` with an optional auth payload; returns the reply's sid and pid, checking the reply
/// holds exactly those two.
async fn join(client: &mut WsClient, auth: Option<Value>) -> (String, String) {
    let auth = auth.map(|auth| auth.to_string());
    let data = client.connect_nsp("/", auth.as_deref()).await;
    let sid = data["sid"].as_str().expect("a sid").to_owned();
    let pid = data["pid"].as_str().expect("a pid").to_owned();
    assert_eq!(data, json!({ "sid": sid, "pid": pid }));
    (sid, pid)
}

/// Reads an event and splits off its trailing offset: `42["name",args...,"offset"]`.
async fn event(client: &mut WsClient) -> (Vec<Value>, String) {
    let text = client.recv().await;
    let json = text
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("not an event: {text:?}"));
    let mut args: Vec<Value> = serde_json::from_str(json).expect("JSON array");
    let offset = args
        .pop()
        .and_then(|last| last.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no offset in {text:?}"));
    (args, offset)
}

#[tokio::test]
async fn a_cut_transport_is_recovered_with_its_id_rooms_and_missed_packets() {
    let (server, mut seen) = recovering_server().await;
    let mut client = server.ws().await;
    let (sid, pid) = join(&mut client, None).await;
    assert_ne!(sid, pid);
    let socket = seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), sid);
    assert!(!socket.recovered());
    socket.join("room1");

    // Events carry an offset; events that ask for an ack do not.
    socket.emit("e", 1).expect("emitted");
    let (args, seen_offset) = event(&mut client).await;
    assert_eq!(args, vec![json!("e"), json!(1)]);
    server.io.emit("e", 2).expect("emitted");
    let (args, last_offset) = event(&mut client).await;
    assert_eq!(args, vec![json!("e"), json!(2)]);
    assert_ne!(seen_offset, last_offset);
    let asking = socket.clone();
    let ack = tokio::spawn(async move {
        asking
            .emit_with_ack("ask", Payload::new(), common::WAIT)
            .await
    });
    client.expect(r#"420["ask"]"#).await;
    client.send("430[]").await;
    ack.await.expect("task").expect("answered");

    // The network fails.
    socket.abort_transport();
    assert_eq!(client.until_closed().await, Vec::<String>::new());
    assert_eq!(
        seen.disconnects.next().await,
        (socket.id().clone(), DisconnectReason::TransportClose)
    );

    // What happens meanwhile: only what would have reached the socket is kept for it.
    server.io.to("room1").emit("m", "room1").expect("emitted");
    server.io.to("other").emit("m", "other").expect("emitted");
    server.io.emit("m", "everyone").expect("emitted");
    server
        .io
        .to("room1")
        .except("room1")
        .emit("m", "excluded")
        .expect("emitted");
    server
        .io
        .of("/")
        .broadcast()
        .volatile()
        .emit("m", "volatile")
        .expect("emitted");
    server
        .io
        .to(socket.id())
        .emit("m", "direct")
        .expect("emitted");

    // The client comes back with its pid and the last offset it saw.
    let mut client = server.ws().await;
    let (again, same_pid) = join(
        &mut client,
        Some(json!({ "pid": pid, "offset": last_offset, "token": "t" })),
    )
    .await;
    assert_eq!(
        (again.as_str(), same_pid.as_str()),
        (sid.as_str(), pid.as_str())
    );
    let mut offsets = HashSet::new();
    for expected in ["room1", "everyone", "direct"] {
        let (args, offset) = event(&mut client).await;
        assert_eq!(args, vec![json!("m"), json!(expected)]);
        assert!(offsets.insert(offset));
    }
    let recovered = seen.sockets.next().await;
    assert!(recovered.recovered());
    assert_eq!(recovered.id().as_str(), sid);
    assert_eq!(recovered.auth()["token"], json!("t"));
    assert!(recovered.rooms().contains(&Room::from("room1")));
    assert!(recovered.rooms().contains(&recovered.id().room()));

    // Exactly once: the next packet is a new one, and the rooms work again.
    server.io.to("room1").emit("m", "live").expect("emitted");
    let (args, offset) = event(&mut client).await;
    assert_eq!(args, vec![json!("m"), json!("live")]);
    assert!(offsets.insert(offset));
    recovered.emit("m", "direct again").expect("emitted");
    let (args, _) = event(&mut client).await;
    assert_eq!(args, vec![json!("m"), json!("direct again")]);

    // A session is restored once: the same pid again gets a fresh session.
    let mut third = server.ws().await;
    let (fresh, fresh_pid) = join(
        &mut third,
        Some(json!({ "pid": pid, "offset": last_offset })),
    )
    .await;
    assert_ne!(fresh, sid);
    assert_ne!(fresh_pid, pid);
    assert!(!seen.sockets.next().await.recovered());
}

#[tokio::test]
async fn unknown_pids_offsets_and_terminal_disconnections_get_a_fresh_session() {
    let (server, mut seen) = recovering_server().await;

    // A session whose transport was cut, left waiting.
    let mut client = server.ws().await;
    let (sid, pid) = join(&mut client, None).await;
    let socket = seen.sockets.next().await;
    socket.emit("e", 1).expect("emitted");
    let (_, offset) = event(&mut client).await;
    socket.abort_transport();
    seen.disconnects.next().await;

    let attempts = [
        json!({ "pid": "not-a-pid", "offset": offset }),
        json!({ "pid": pid, "offset": "not-an-offset" }),
        json!({ "pid": 1, "offset": offset }),
    ];
    let mut others = Vec::new();
    for auth in attempts {
        let mut other = server.ws().await;
        let (fresh, fresh_pid) = join(&mut other, Some(auth.clone())).await;
        assert_ne!(fresh, sid, "{auth}");
        assert_ne!(fresh_pid, pid, "{auth}");
        let socket = seen.sockets.next().await;
        assert!(!socket.recovered(), "{auth}");
        assert_eq!(socket.id().as_str(), fresh);
        // Nothing is replayed.
        socket.emit("first", 0).expect("emitted");
        let (args, _) = event(&mut other).await;
        assert_eq!(args, vec![json!("first"), json!(0)]);
        others.push(other);
    }

    // A client that leaves the namespace itself leaves no session behind.
    let mut client = server.ws().await;
    let (sid, pid) = join(&mut client, None).await;
    let socket = seen.sockets.next().await;
    socket.emit("e", 1).expect("emitted");
    let (_, offset) = event(&mut client).await;
    client.send("41").await;
    assert_eq!(
        seen.disconnects.next().await,
        (
            socket.id().clone(),
            DisconnectReason::ClientNamespaceDisconnect
        )
    );
    let (fresh, _) = join(&mut client, Some(json!({ "pid": pid, "offset": offset }))).await;
    assert_ne!(fresh, sid);
    assert!(!seen.sockets.next().await.recovered());
}

/// A recovered socket skips the middlewares by default (as in the reference server), and runs
/// them when `skip_middlewares` is off.
#[tokio::test]
async fn recovery_skips_the_middlewares_only_when_configured_to() {
    for skip_middlewares in [true, false] {
        let server = TestServer::start_with(SocketIoConfig {
            recovery: Some(RecoveryConfig {
                skip_middlewares,
                ..RecoveryConfig::default()
            }),
            ..SocketIoConfig::default()
        })
        .await;
        let (handler, mut seen) = recorder();
        let namespace = server.io.ns("/", handler);
        namespace.use_middleware(|socket| async move {
            if socket.auth().get("token").is_some() {
                Ok(())
            } else {
                Err(ferrio_socketio::ConnectError::new("no token"))
            }
        });

        let mut client = server.ws().await;
        let (sid, pid) = join(&mut client, Some(json!({"token": 1}))).await;
        let socket = seen.sockets.next().await;
        socket.emit("e", 1).expect("emitted");
        let (_, offset) = event(&mut client).await;
        socket.abort_transport();
        seen.disconnects.next().await;

        // Back without a token.
        let mut client = server.ws().await;
        let auth = json!({ "pid": pid, "offset": offset }).to_string();
        if skip_middlewares {
            let data = client.connect_nsp("/", Some(&auth)).await;
            assert_eq!(data, json!({ "sid": sid, "pid": pid }));
            assert!(seen.sockets.next().await.recovered());
        } else {
            client.send(&format!("40{auth}")).await;
            client.expect(r#"44{"message":"no token"}"#).await;
            seen.sockets.assert_empty();
        }
    }
}

#[tokio::test]
async fn a_packet_sent_while_a_recovered_sessions_middleware_runs_is_replayed_once() {
    let server = TestServer::start_with(SocketIoConfig {
        recovery: Some(RecoveryConfig {
            skip_middlewares: false,
            ..RecoveryConfig::default()
        }),
        ..SocketIoConfig::default()
    })
    .await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    // The middleware holds a CONNECT that asks for it until the test lets it go.
    let entered = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    {
        let (entered, release) = (entered.clone(), release.clone());
        server.io.of("/").use_middleware(move |socket| {
            let (entered, release) = (entered.clone(), release.clone());
            async move {
                if socket.auth()["hold"] == json!(true) {
                    entered.notify_one();
                    release.notified().await;
                }
                Ok(())
            }
        });
    }
    let mut client = server.ws().await;
    let (sid, pid) = join(&mut client, None).await;
    let socket = seen.sockets.next().await;
    socket.join("room1");
    server.io.to("room1").emit("m", "seen").expect("emitted");
    let (_, offset) = event(&mut client).await;
    socket.abort_transport();
    seen.disconnects.next().await;
    server.io.to("room1").emit("m", "before").expect("emitted");

    let mut back = server.ws().await;
    let auth = json!({ "pid": pid, "offset": offset, "hold": true });
    let joining = tokio::spawn(async move {
        let ids = join(&mut back, Some(auth)).await;
        (back, ids)
    });
    tokio::time::timeout(common::WAIT, entered.notified())
        .await
        .expect("the middleware runs");
    server.io.to("room1").emit("m", "during").expect("emitted");
    release.notify_one();
    let (mut back, (again, _)) = tokio::time::timeout(common::WAIT, joining)
        .await
        .expect("joined in time")
        .expect("task");
    assert_eq!(again, sid);
    for expected in ["before", "during"] {
        let (args, _) = event(&mut back).await;
        assert_eq!(args, vec![json!("m"), json!(expected)]);
    }
    server.io.to("room1").emit("m", "after").expect("emitted");
    let (args, _) = event(&mut back).await;
    assert_eq!(args, vec![json!("m"), json!("after")], "nothing twice");
}
