//! The client against a Ferrio server in the same process, over real sockets on 127.0.0.1:
//! every transport mode, namespaces, auth and refusals, acknowledgements both ways with
//! timeouts, binary both ways, the server's disconnect (no reconnection), transport loss
//! (reconnection with backoff), manual disconnect and reconnect, recovery, and the heartbeat.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    bounded, closed_url, eventually, next, record_states, states_until, wait_for, Mode, TestServer,
};
use ferrio_client::{
    AckError, ClientConfig, ConnectError, ConnectionState, DisconnectReason, Manager, OpenError,
    Payload, ReconnectionConfig, SocketState, TransportKind,
};
use ferrio_socketio::{ConnectError as ServerRefusal, RecoveryConfig, SocketIoConfig};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

/// The server side most tests use: echo events back, acknowledge with the arguments, stay
/// silent, disconnect on request.
fn echo_server(server: &TestServer) {
    server.io.ns("/", |socket| {
        socket.on("echo", |socket, event| {
            let _ = socket.emit_payload("echo", event.payload);
        });
        socket.on("ack", |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
        socket.on("silent", |_socket, _event| {});
        socket.on("kick", |socket, _event| socket.disconnect());
    });
}

/// Payloads received for one event name.
fn inbox(socket: &ferrio_client::Socket, name: &str) -> mpsc::UnboundedReceiver<Payload> {
    let (tx, rx) = mpsc::unbounded_channel();
    socket.on(name, move |_socket, event| {
        let _ = tx.send(event.payload);
    });
    rx
}

#[tokio::test]
async fn every_transport_mode_connects_emits_acks_and_carries_binary() {
    for mode in Mode::ALL {
        let server = TestServer::start().await;
        echo_server(&server);
        let manager = Manager::new(mode.config(&server.url())).expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        let mut echoes = inbox(&socket, "echo");

        bounded("connect", socket.connect())
            .await
            .expect("connects");
        assert!(socket.connected(), "{mode:?}");
        assert!(!socket.recovered());
        let id = socket.id().expect("an id");
        let mut state = manager.state();
        wait_for("the final transport", &mut state, |s| {
            *s == ConnectionState::Connected {
                transport: mode.final_transport(),
            }
        })
        .await;
        assert!(matches!(
            &*socket.state().borrow(),
            SocketState::Connected { id: seen, recovered: false } if *seen == id
        ));

        // Plain JSON round trip, typed on the way back.
        socket
            .emit("echo", json!({"n": 1, "s": "é"}))
            .expect("emits");
        let payload = next("the echo", &mut echoes).await;
        #[derive(Deserialize, PartialEq, Debug)]
        struct Data {
            n: u32,
            s: String,
        }
        assert_eq!(
            payload.get::<Data>(0).expect("typed"),
            Data {
                n: 1,
                s: "é".into()
            }
        );

        // Binary both ways: top level and nested, the server echoing the attachments.
        let mut binary = Payload::new();
        binary.push_binary(Bytes::from_static(&[0, 1, 2, 255]));
        let nested = binary.attach(vec![9u8; 70_000]);
        binary
            .push(json!({"file": nested, "name": "x"}))
            .expect("json");
        socket.emit_payload("echo", binary).expect("emits");
        let payload = next("the binary echo", &mut echoes).await;
        assert_eq!(
            payload.binary_at(0).map(|b| b.to_vec()),
            Some(vec![0, 1, 2, 255])
        );
        assert_eq!(
            payload.binary_of(&payload.args[1]["file"]).map(Bytes::len),
            Some(70_000)
        );
        assert_eq!(payload.args[1]["name"], "x");

        // An acknowledgement with binary arguments.
        let answer = socket
            .emit_with_ack("ack", Payload::binary(vec![7u8; 3]), Duration::from_secs(5))
            .await
            .expect("acknowledged");
        assert_eq!(answer.binary_at(0).map(|b| b.to_vec()), Some(vec![7, 7, 7]));

        // The server saw the transport the client settled on.
        let sockets = server.io.of("/").sockets();
        assert_eq!(sockets.len(), 1);
        assert_eq!(sockets[0].id().as_str(), id);
        assert_eq!(sockets[0].transport(), mode.server_transport(), "{mode:?}");

        socket.disconnect();
        eventually("the server to drop the connection", || {
            server.io.connection_count() == 0
        })
        .await;
        wait_for("the manager to close", &mut state, |s| {
            *s == ConnectionState::Disconnected {
                reason: DisconnectReason::ClientDisconnect,
            }
        })
        .await;
    }
}

#[tokio::test]
async fn path_query_and_headers_reach_the_server_in_every_mode() {
    for mode in Mode::ALL {
        let mut config = SocketIoConfig::default();
        config.engine.path = "/custom/".to_owned();
        let server = TestServer::with_config(config).await;
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        server.io.ns("/", move |socket| {
            let handshake = socket.handshake();
            let _ = seen_tx.send((
                handshake.query_param("room"),
                handshake
                    .headers()
                    .get("x-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ));
        });
        let mut client = mode.config(&server.url());
        client.path = "custom".to_owned();
        client.query = vec![("room".to_owned(), "a b&c".to_owned())];
        client
            .headers
            .insert("x-token", http::HeaderValue::from_static("t-1"));
        let manager = Manager::new(client).expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        bounded("connect", socket.connect())
            .await
            .expect("connects");
        assert_eq!(
            next("the handshake", &mut seen).await,
            (Some("a b&c".to_owned()), Some("t-1".to_owned())),
            "{mode:?}"
        );
        let mut state = manager.state();
        wait_for("the final transport", &mut state, |s| {
            *s == ConnectionState::Connected {
                transport: mode.final_transport(),
            }
        })
        .await;
        manager.disconnect();
    }
}

#[tokio::test]
async fn namespaces_share_one_connection_with_auth_and_refusals() {
    let server = TestServer::start().await;
    echo_server(&server);
    let admin = server.io.of("/admin");
    admin.use_middleware(|socket| async move {
        if socket.auth()["token"] == "secret" {
            Ok(())
        } else {
            Err(ServerRefusal::with_data(
                "not authorized",
                json!({"code": 401}),
            ))
        }
    });
    admin.on_connection(|socket| {
        let auth = socket.auth().clone();
        let _ = socket.emit("welcome", json!({"nsp": socket.nsp(), "auth": auth}));
    });

    let manager = Manager::new(Mode::Upgrade.config(&server.url())).expect("valid config");
    let root = manager.socket("/").expect("valid namespace");
    let admin_socket = manager.socket("admin").expect("valid namespace");
    assert_eq!(admin_socket.nsp(), "/admin");
    admin_socket.set_auth(json!({"token": "secret"}).as_object().cloned());
    let mut welcome = inbox(&admin_socket, "welcome");
    let mut root_echo = inbox(&root, "echo");
    let mut admin_echo = inbox(&admin_socket, "echo");

    bounded("connect /", root.connect()).await.expect("root");
    bounded("connect /admin", admin_socket.connect())
        .await
        .expect("admin");
    let payload = next("the welcome", &mut welcome).await;
    assert_eq!(
        payload.args[0],
        json!({"nsp": "/admin", "auth": {"token": "secret"}})
    );
    assert_eq!(server.io.connection_count(), 1);
    assert_ne!(root.id(), admin_socket.id());

    // Events are routed by namespace: /admin has no echo handler, / does.
    root.emit("echo", 1).expect("emits");
    assert_eq!(next("root echo", &mut root_echo).await.args, [json!(1)]);
    admin_socket.emit("echo", 2).expect("emits");
    root.emit("echo", 3).expect("emits");
    assert_eq!(next("root echo", &mut root_echo).await.args, [json!(3)]);
    assert!(admin_echo.try_recv().is_err());

    // A wrong token is refused with the server's message and data.
    let other = Manager::new(Mode::WebSocket.config(&server.url())).expect("valid config");
    let refused = other.socket("/admin").expect("valid namespace");
    refused.set_auth(json!({"token": "wrong"}).as_object().cloned());
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    refused.on_connect_error(move |_socket, error| {
        let _ = seen_tx.send(error.clone());
    });
    let error = bounded("refusal", refused.connect()).await;
    let Err(ConnectError::Refused(refusal)) = error else {
        panic!("expected a refusal, got {error:?}");
    };
    assert_eq!(refusal.message, "not authorized");
    assert_eq!(refusal.data, Some(json!({"code": 401})));
    assert_eq!(next("connect_error handler", &mut seen_rx).await, refusal);
    assert!(!refused.active());
    assert_eq!(*refused.state().borrow(), SocketState::Refused(refusal));
    // The refused socket was the connection's only one: it closes, and does not come back.
    let mut other_state = other.state();
    wait_for("the refused connection to close", &mut other_state, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;

    // An unknown namespace is refused too, on the shared connection, which stays up.
    let unknown = manager.socket("/nope").expect("valid namespace");
    let error = bounded("refusal", unknown.connect()).await;
    assert!(
        matches!(&error, Err(ConnectError::Refused(r)) if r.message == "Invalid namespace"),
        "{error:?}"
    );
    root.emit("echo", 4).expect("emits");
    assert_eq!(next("root echo", &mut root_echo).await.args, [json!(4)]);
    assert!(manager.socket("/a,b").is_err());
}

#[tokio::test]
async fn acknowledgements_both_ways_with_timeouts() {
    let server = TestServer::start().await;
    echo_server(&server);
    let (results_tx, mut results) = mpsc::unbounded_channel();
    server.io.ns("/ask", move |socket| {
        let socket = socket.clone();
        let results = results_tx.clone();
        tokio::spawn(async move {
            let mut question = ferrio_socketio::Payload::json("question").expect("json");
            question.push_binary(Bytes::from_static(b"\x01\x02"));
            let answered = socket
                .emit_with_ack("question", question, Duration::from_secs(5))
                .await;
            let ignored = socket
                .emit_with_ack(
                    "ignored",
                    ferrio_socketio::Payload::new(),
                    Duration::from_millis(200),
                )
                .await;
            let _ = results.send((answered, ignored));
        });
    });

    let manager = Manager::new(Mode::Polling.config(&server.url())).expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    bounded("connect", socket.connect())
        .await
        .expect("connects");

    // Client to server, answered.
    let answer = socket
        .emit_with_ack(
            "ack",
            Payload::json("hi").expect("json"),
            Duration::from_secs(5),
        )
        .await
        .expect("acknowledged");
    assert_eq!(answer.args, [json!("hi")]);
    // Client to server, never answered: a timeout, and the wait is forgotten.
    let started = tokio::time::Instant::now();
    let error = socket
        .emit_with_ack("silent", Payload::new(), Duration::from_millis(200))
        .await;
    assert!(matches!(error, Err(AckError::Timeout(_))), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    // Several at once each get their own answer.
    let (a, b) = tokio::join!(
        socket.emit_with_ack(
            "ack",
            Payload::json(1).expect("json"),
            Duration::from_secs(5)
        ),
        socket.emit_with_ack(
            "ack",
            Payload::json(2).expect("json"),
            Duration::from_secs(5)
        ),
    );
    assert_eq!(a.expect("first").args, [json!(1)]);
    assert_eq!(b.expect("second").args, [json!(2)]);

    // Server to client: the client answers one (with binary), ignores the other.
    let asked = manager.socket("/ask").expect("valid namespace");
    asked.on("question", |_socket, event| {
        assert_eq!(
            event.payload.binary_at(1).map(|b| b.to_vec()),
            Some(vec![1, 2])
        );
        let ack = event.ack.expect("the server asked for an ack");
        let mut answer = Payload::json("answer").expect("json");
        answer.push_binary(vec![3u8]);
        ack.send(answer).expect("sent");
    });
    asked.on("ignored", |_socket, event| assert!(event.ack.is_some()));
    bounded("connect /ask", asked.connect())
        .await
        .expect("connects");
    let (answered, ignored) = next("the server's results", &mut results).await;
    let answered = answered.expect("answered");
    assert_eq!(answered.args[0], json!("answer"));
    assert_eq!(answered.attachments, [Bytes::from_static(&[3])]);
    assert_eq!(ignored, Err(ferrio_socketio::AckError::Timeout));
}

#[tokio::test]
async fn events_emitted_before_connecting_are_sent_once_connected() {
    let server = TestServer::start().await;
    echo_server(&server);
    let manager = Manager::new(Mode::Upgrade.config(&server.url())).expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    let mut echoes = inbox(&socket, "echo");
    for n in 0..5 {
        socket.emit("echo", n).expect("buffered");
    }
    let acked = socket.emit_with_ack(
        "ack",
        Payload::json("early").expect("json"),
        Duration::from_secs(5),
    );
    let connect = socket.connect();
    let (acked, connected) = tokio::join!(acked, connect);
    connected.expect("connects");
    assert_eq!(acked.expect("acknowledged").args, [json!("early")]);
    for n in 0..5 {
        assert_eq!(next("buffered echo", &mut echoes).await.args, [json!(n)]);
    }

    // The buffer is bounded.
    let small = Manager::new(ClientConfig {
        send_buffer: 2,
        ..Mode::Polling.config(&server.url())
    })
    .expect("valid config");
    let waiting = small.socket("/").expect("valid namespace");
    waiting.emit("a", 1).expect("buffered");
    waiting.emit("a", 2).expect("buffered");
    assert!(matches!(
        waiting.emit("a", 3),
        Err(ferrio_client::EmitError::BufferFull { max: 2 })
    ));
    assert!(matches!(
        waiting.emit("connect", 3),
        Err(ferrio_client::EmitError::ReservedName(_))
    ));
}

#[tokio::test]
async fn typed_handlers_and_the_catch_all() {
    let server = TestServer::start().await;
    server.io.ns("/", |socket| {
        let _ = socket.emit("typed", json!({"name": "ada", "age": 36}));
        let _ = socket.emit("mistyped", "not an object");
        let _ = socket.emit("other", json!([1, 2]));
        let _ = socket.emit("last", true);
    });
    #[derive(Debug, Deserialize, PartialEq)]
    struct Person {
        name: String,
        age: u8,
    }
    let manager = Manager::new(Mode::WebSocket.config(&server.url())).expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    let (typed_tx, mut typed) = mpsc::unbounded_channel();
    socket.on_typed::<Person, _>("typed", move |_socket, person, ack| {
        assert!(ack.is_none());
        let _ = typed_tx.send(person);
    });
    socket.on_typed::<Person, _>("mistyped", |_socket, _person, _ack| {
        panic!("a string is not a person");
    });
    let (any_tx, mut any) = mpsc::unbounded_channel();
    socket.on_any(move |_socket, event| {
        let _ = any_tx.send((event.name, event.payload.args));
    });
    bounded("connect", socket.connect())
        .await
        .expect("connects");
    assert_eq!(
        next("typed", &mut typed).await,
        Person {
            name: "ada".into(),
            age: 36
        }
    );
    // Events with a handler of their own (even one that drops them) skip the catch-all.
    assert_eq!(
        next("catch-all", &mut any).await,
        ("other".to_owned(), vec![json!([1, 2])])
    );
    assert_eq!(
        next("catch-all", &mut any).await,
        ("last".to_owned(), vec![json!(true)])
    );
    socket.off("typed");
    server.io.emit("typed", 1).expect("emits");
    assert_eq!(next("catch-all", &mut any).await.0, "typed");
}

#[tokio::test]
async fn a_server_disconnect_is_final() {
    let server = TestServer::start().await;
    echo_server(&server);
    for mode in [Mode::Polling, Mode::WebSocket] {
        let manager = Manager::new(mode.config(&server.url())).expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        let (reasons_tx, mut reasons) = mpsc::unbounded_channel();
        socket.on_disconnect(move |_socket, reason| {
            let _ = reasons_tx.send(reason.clone());
        });
        bounded("connect", socket.connect())
            .await
            .expect("connects");
        let mut states = record_states(manager.state());

        socket.emit("kick", ()).expect("emits");
        assert_eq!(
            next("the disconnect", &mut reasons).await,
            DisconnectReason::ServerDisconnect
        );
        assert!(!socket.active());
        assert_eq!(
            *socket.state().borrow(),
            SocketState::Disconnected {
                reason: DisconnectReason::ServerDisconnect
            }
        );
        let seen = states_until("the connection to close", &mut states, |s| {
            matches!(s, ConnectionState::Disconnected { .. })
        })
        .await;
        assert_eq!(
            seen.last(),
            Some(&ConnectionState::Disconnected {
                reason: DisconnectReason::ServerDisconnect
            })
        );
        // Several reconnection delays later, nothing was attempted.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            states.try_recv().is_err(),
            "{mode:?}: the client reconnected"
        );
        assert!(!socket.connected());
        eventually("the server to drop the connection", || {
            server.io.connection_count() == 0
        })
        .await;

        // Connecting again is up to the application.
        bounded("reconnect", socket.connect())
            .await
            .expect("connects again");
        socket.disconnect();
    }
}

#[tokio::test]
async fn a_lost_transport_reconnects_with_backoff() {
    for mode in Mode::ALL {
        let server = TestServer::start().await;
        echo_server(&server);
        let manager = Manager::new(mode.config(&server.url())).expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        let mut echoes = inbox(&socket, "echo");
        let (connects_tx, mut connects) = mpsc::unbounded_channel();
        socket.on_connect(move |socket| {
            let _ = connects_tx.send(socket.id());
        });
        let (reasons_tx, mut reasons) = mpsc::unbounded_channel();
        socket.on_disconnect(move |_socket, reason| {
            let _ = reasons_tx.send(reason.clone());
        });
        bounded("connect", socket.connect())
            .await
            .expect("connects");
        let first_id = next("first connect", &mut connects).await;
        let mut state = manager.state();
        wait_for("the final transport", &mut state, |s| {
            *s == ConnectionState::Connected {
                transport: mode.final_transport(),
            }
        })
        .await;
        let mut states = record_states(manager.state());
        // A pending acknowledgement fails at once when the connection goes.
        let pending = {
            let socket = socket.clone();
            tokio::spawn(async move {
                socket
                    .emit_with_ack("silent", Payload::new(), Duration::from_secs(30))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;

        for server_socket in server.io.of("/").sockets() {
            server_socket.abort_transport();
        }
        let reason = next("the disconnect", &mut reasons).await;
        assert!(reason.is_recoverable(), "{mode:?}: {reason:?}");
        assert!(matches!(
            bounded("the pending ack", pending).await,
            Ok(Err(AckError::Disconnected))
        ));

        let seen = states_until("the reconnection", &mut states, |s| {
            matches!(s, ConnectionState::Connected { .. })
        })
        .await;
        let scheduled: Vec<_> = seen
            .iter()
            .filter_map(|s| match s {
                ConnectionState::ReconnectScheduled { attempt, delay } => Some((*attempt, *delay)),
                _ => None,
            })
            .collect();
        // First attempt: 100 ms randomized by half, and it succeeds.
        assert_eq!(scheduled.len(), 1, "{mode:?}: {seen:?}");
        assert_eq!(scheduled[0].0, 1);
        assert!(
            (50..=150).contains(&scheduled[0].1.as_millis()),
            "{:?}",
            scheduled[0]
        );
        assert!(seen.contains(&ConnectionState::Connecting));

        let second_id = next("reconnect", &mut connects).await;
        assert_ne!(first_id, second_id, "no recovery configured: a new session");
        assert!(!socket.recovered());
        socket.emit("echo", "again").expect("emits");
        assert_eq!(next("echo", &mut echoes).await.args, [json!("again")]);
        wait_for("the final transport", &mut state, |s| {
            *s == ConnectionState::Connected {
                transport: mode.final_transport(),
            }
        })
        .await;
    }
}

#[tokio::test]
async fn gives_up_after_the_allowed_attempts_with_growing_delays() {
    let url = closed_url().await;
    let manager = Manager::new(ClientConfig {
        timeout: Duration::from_secs(5),
        reconnection: ReconnectionConfig {
            attempts: Some(3),
            delay: Duration::from_millis(40),
            delay_max: Duration::from_millis(100),
            randomization_factor: 0.5,
            ..ReconnectionConfig::default()
        },
        ..ClientConfig::new(&url)
    })
    .expect("valid config");
    let mut states = record_states(manager.state());
    let socket = manager.socket("/").expect("valid namespace");
    let error = bounded("connect", socket.connect()).await;
    let Err(ConnectError::ReconnectFailed {
        last_error: Some(last_error),
    }) = &error
    else {
        panic!("expected to give up, got {error:?}");
    };
    assert!(
        matches!(last_error, OpenError::Transport(text) if text.contains("cannot connect")),
        "{last_error}"
    );
    assert!(manager.last_error().is_some());

    let seen = states_until("giving up", &mut states, |s| {
        *s == ConnectionState::ReconnectFailed
    })
    .await;
    let scheduled: Vec<_> = seen
        .iter()
        .filter_map(|s| match s {
            ConnectionState::ReconnectScheduled { attempt, delay } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(
        scheduled.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3],
        "{seen:?}"
    );
    for (attempt, delay) in scheduled {
        let base = 40u128 << (attempt - 1);
        let (low, high) = (base / 2, (base * 3 / 2).min(100));
        assert!(
            (low..=high).contains(&delay.as_millis()),
            "attempt {attempt}: {delay:?}"
        );
    }
    // The socket stays active: a manual reconnect tries again.
    assert!(socket.active());
    manager.reconnect();
    let seen = states_until("another round", &mut states, |s| {
        *s == ConnectionState::ReconnectFailed
    })
    .await;
    assert!(
        seen.iter()
            .any(|s| matches!(s, ConnectionState::ReconnectScheduled { attempt: 3, .. })),
        "{seen:?}"
    );

    // With reconnection off, the first failure is final.
    let once = Manager::new(ClientConfig {
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        ..ClientConfig::new(&url)
    })
    .expect("valid config");
    let error = bounded("connect", once.socket("/").expect("ns").connect()).await;
    assert!(
        matches!(
            &error,
            Err(ConnectError::Closed {
                reason: DisconnectReason::TransportError(_)
            })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_client_comes_back_when_the_server_does() {
    // The server is down at first; the client keeps trying and connects once it is up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let manager = Manager::new(Mode::Upgrade.config(&format!("http://{addr}"))).expect("config");
    let socket = manager.socket("/").expect("valid namespace");
    let connecting = tokio::spawn({
        let socket = socket.clone();
        async move { socket.connect().await }
    });
    let mut state = manager.state();
    wait_for("a scheduled attempt", &mut state, |s| {
        matches!(s, ConnectionState::ReconnectScheduled { attempt: 2.., .. })
    })
    .await;

    let (service, io) = ferrio_socketio::SocketIo::new(SocketIoConfig::default());
    io.ns("/", |_socket| {});
    let listener = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let server = tokio::spawn(ferrio_socketio::serve(listener, service));
    bounded("the connection", connecting)
        .await
        .expect("task")
        .expect("connects");
    assert!(socket.connected());
    server.abort();
}

#[tokio::test]
async fn manual_disconnect_and_reconnect() {
    let server = TestServer::start().await;
    echo_server(&server);
    let manager = Manager::new(Mode::WebSocket.config(&server.url())).expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    let mut echoes = inbox(&socket, "echo");
    bounded("connect", socket.connect())
        .await
        .expect("connects");
    let mut states = record_states(manager.state());

    manager.disconnect();
    let seen = states_until("the close", &mut states, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&ConnectionState::Disconnected {
            reason: DisconnectReason::ClientDisconnect
        })
    );
    let mut socket_state = socket.state();
    wait_for("the socket to be disconnected", &mut socket_state, |s| {
        *s == SocketState::Disconnected {
            reason: DisconnectReason::ClientDisconnect,
        }
    })
    .await;
    assert!(
        socket.active(),
        "the socket waits for the manager to reopen"
    );
    eventually("the server to see the close", || {
        server.io.connection_count() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        states.try_recv().is_err(),
        "no reconnection after disconnect()"
    );

    manager.reconnect();
    wait_for("the socket to reconnect", &mut socket_state, |s| {
        matches!(s, SocketState::Connected { .. })
    })
    .await;
    socket.emit("echo", "back").expect("emits");
    assert_eq!(next("echo", &mut echoes).await.args, [json!("back")]);

    // A manual reconnect while connected makes a new connection.
    let before = socket.id();
    manager.reconnect();
    wait_for("the socket to drop", &mut socket_state, |s| {
        !matches!(s, SocketState::Connected { .. })
    })
    .await;
    wait_for("the socket to reconnect", &mut socket_state, |s| {
        matches!(s, SocketState::Connected { .. })
    })
    .await;
    assert_ne!(socket.id(), before);

    // After disconnect(), a socket's connect() opens the connection again.
    manager.disconnect();
    wait_for("the close", &mut socket_state, |s| {
        matches!(s, SocketState::Disconnected { .. })
    })
    .await;
    bounded("connect", socket.connect())
        .await
        .expect("connects again");
    assert!(socket.connected());
}

#[tokio::test]
async fn connection_state_recovery_replays_missed_events() {
    for mode in Mode::ALL {
        let server = TestServer::with_config(SocketIoConfig {
            recovery: Some(RecoveryConfig::default()),
            ..SocketIoConfig::default()
        })
        .await;
        server.io.ns("/", |socket| {
            socket.join("news");
        });
        let manager = Manager::new(mode.config(&server.url())).expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        let mut ticks = inbox(&socket, "tick");
        bounded("connect", socket.connect())
            .await
            .expect("connects");
        assert!(!socket.recovered());
        let id = socket.id().expect("id");

        server.io.to("news").emit("tick", 1).expect("emits");
        let first = next("tick 1", &mut ticks).await;
        assert_eq!(first.args[0], json!(1));
        assert!(first.args[1].is_string(), "the server appended an offset");

        let mut state = manager.state();
        for server_socket in server.io.of("/").sockets() {
            server_socket.abort_transport();
        }
        wait_for("the reconnection to be scheduled", &mut state, |s| {
            matches!(s, ConnectionState::ReconnectScheduled { .. })
        })
        .await;
        eventually("the server to notice", || {
            server.io.of("/").socket_count() == 0
        })
        .await;
        server.io.to("news").emit("tick", 2).expect("emits");
        server.io.to("news").emit("tick", 3).expect("emits");

        let mut socket_state = socket.state();
        let connected = wait_for("the recovery", &mut socket_state, |s| {
            matches!(s, SocketState::Connected { .. })
        })
        .await;
        assert_eq!(
            connected,
            SocketState::Connected {
                id: id.clone(),
                recovered: true
            },
            "{mode:?}"
        );
        assert!(socket.recovered());
        assert_eq!(socket.id().as_deref(), Some(id.as_str()));
        assert_eq!(next("tick 2", &mut ticks).await.args[0], json!(2));
        assert_eq!(next("tick 3", &mut ticks).await.args[0], json!(3));
        // The room membership came back with the session.
        server.io.to("news").emit("tick", 4).expect("emits");
        assert_eq!(next("tick 4", &mut ticks).await.args[0], json!(4));
    }
}

#[tokio::test]
async fn heartbeat_stats_follow_the_server_pings() {
    let mut config = SocketIoConfig::default();
    config.engine.ping_interval = Duration::from_millis(100);
    config.engine.ping_timeout = Duration::from_millis(500);
    let server = TestServer::with_config(config).await;
    server.io.ns("/", |_socket| {});
    let manager = Manager::new(Mode::WebSocket.config(&server.url())).expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    bounded("connect", socket.connect())
        .await
        .expect("connects");
    let mut heartbeat = manager.heartbeat();
    let stats = wait_for("three pings", &mut heartbeat, |s| {
        s.is_some_and(|s| s.pings >= 3)
    })
    .await
    .expect("connected");
    assert_eq!(stats.ping_interval, Duration::from_millis(100));
    assert_eq!(stats.ping_timeout, Duration::from_millis(500));
    let gap = stats.last_ping_gap.expect("a gap");
    assert!(gap >= Duration::from_millis(90), "{gap:?}");
    let rtt = stats.round_trip_estimate.expect("an estimate");
    assert!(rtt < Duration::from_millis(500), "{rtt:?}");
    assert!(stats.deadline > stats.last_ping.expect("a ping"));
    // Answering the pings keeps the connection open well past the ping timeout.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(socket.connected());
    assert_eq!(
        *manager.state().borrow(),
        ConnectionState::Connected {
            transport: TransportKind::WebSocket
        }
    );
    manager.disconnect();
    wait_for("the stats to clear", &mut heartbeat, Option::is_none).await;
}

#[tokio::test]
async fn a_server_that_stops_pinging_times_out() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    // A WebSocket server that opens a session with a short heartbeat, then never pings.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let accepted = accepted_tx.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let open = r#"0{"sid":"silent-server-id","upgrades":[],"pingInterval":100,"pingTimeout":100,"maxPayload":1000}"#;
                if ws.send(Message::text(open)).await.is_err() {
                    return;
                }
                let _ = accepted.send(());
                while let Some(Ok(message)) = ws.next().await {
                    // Accept the namespace, then say nothing more.
                    if message.to_text().is_ok_and(|t| t.starts_with("40")) {
                        let _ = ws.send(Message::text(r#"40{"sid":"abc"}"#)).await;
                    }
                }
            });
        }
    });

    let manager = Manager::new(ClientConfig {
        transports: vec![TransportKind::WebSocket],
        reconnection: ReconnectionConfig {
            delay: Duration::from_secs(60),
            ..ReconnectionConfig::default()
        },
        ..ClientConfig::new(format!("http://{addr}"))
    })
    .expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    let (reasons_tx, mut reasons) = mpsc::unbounded_channel();
    socket.on_disconnect(move |_socket, reason| {
        let _ = reasons_tx.send(reason.clone());
    });
    bounded("connect", socket.connect())
        .await
        .expect("connects");
    next("the session", &mut accepted).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        next("the ping timeout", &mut reasons).await,
        DisconnectReason::PingTimeout
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut state = manager.state();
    wait_for("a scheduled reconnection", &mut state, |s| {
        matches!(s, ConnectionState::ReconnectScheduled { attempt: 1, .. })
    })
    .await;
    manager.disconnect();
    server.abort();
}

#[tokio::test]
async fn dropping_every_handle_stops_the_client() {
    let server = TestServer::start().await;
    echo_server(&server);
    let manager = Manager::new(Mode::Polling.config(&server.url())).expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    bounded("connect", socket.connect())
        .await
        .expect("connects");
    let state = manager.state();
    drop(socket);
    drop(manager);
    eventually("the server to see the client go", || {
        server.io.connection_count() == 0
    })
    .await;
    assert!(matches!(
        &*state.borrow(),
        ConnectionState::Disconnected { .. }
    ));
}

#[test]
fn configuration_errors_are_typed() {
    assert!(matches!(
        Manager::new(ClientConfig::new("http://127.0.0.1:1")),
        Err(ferrio_client::ConfigError::NoRuntime)
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        assert!(matches!(
            Manager::new(ClientConfig {
                transports: vec![],
                ..ClientConfig::new("http://127.0.0.1:1")
            }),
            Err(ferrio_client::ConfigError::NoTransport)
        ));
        assert!(matches!(
            Manager::new(ClientConfig::new("ftp://127.0.0.1:1")),
            Err(ferrio_client::ConfigError::UnsupportedScheme(s)) if s == "ftp"
        ));
    });
}
