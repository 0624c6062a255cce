//! The client against the official Node `socket.io` server (tests/interop/node_modules), run
//! from `tests/node/server.cjs` on a free port of 127.0.0.1: every transport mode, events,
//! acknowledgements both ways, binary, namespaces with auth, the server's disconnect, and
//! reconnection with connection state recovery.
//!
//! Without `node` (or without the npm packages: `npm ci` in tests/interop) the tests are
//! skipped with a loud message, unless `CI=true`, where they fail.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{bounded, next, record_states, states_until, wait_for, Mode};
use ferrio_client::{
    ClientConfig, ConnectError, ConnectionState, DisconnectReason, Manager, Payload,
    ReconnectionConfig, SocketState,
};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A running Node server; killed when dropped.
struct NodeServer {
    _child: Child,
    url: String,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// Skips the test (loudly), or fails it under CI.
fn unavailable(why: &str) -> Option<NodeServer> {
    if in_ci() {
        panic!("the Node interop tests cannot run under CI: {why}");
    }
    eprintln!(
        "\n\
         ************************************************************\n\
         * SKIPPED: ferrio-client Node interop test                 *\n\
         * {why}\n\
         ************************************************************\n"
    );
    None
}

async fn start_node() -> Option<NodeServer> {
    start_node_with(None).await
}

/// Starts the Node server; with `tls` (certificate and key PEM files) it serves https.
async fn start_node_with(tls: Option<(&std::path::Path, &std::path::Path)>) -> Option<NodeServer> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = manifest.join("tests/node/server.cjs");
    let modules = manifest.join("../../tests/interop/node_modules");
    if Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map_or(true, |status| !status.success())
    {
        return unavailable("`node` is not installed");
    }
    if !modules.join("socket.io").is_dir() {
        return unavailable("the npm packages are missing: run `npm ci` in tests/interop");
    }
    let mut command = Command::new("node");
    command
        .arg(&script)
        .env("NODE_PATH", &modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some((cert, key)) = tls {
        command.env("TLS_CERT", cert).env("TLS_KEY", key);
    }
    let mut child = command.spawn().expect("spawn node");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = bounded("the Node server to listen", lines.next_line())
        .await
        .expect("read the Node server's output")
        .expect("the Node server printed its port");
    #[derive(Deserialize)]
    struct Listening {
        port: u16,
    }
    let listening: Listening = serde_json::from_str(&line).expect("the port line");
    let scheme = if tls.is_some() { "https" } else { "http" };
    Some(NodeServer {
        _child: child,
        url: format!("{scheme}://127.0.0.1:{}", listening.port),
    })
}

#[derive(Debug, Deserialize, PartialEq)]
struct Welcome {
    id: String,
    recovered: bool,
    transport: String,
}

fn inbox(socket: &ferrio_client::Socket, name: &str) -> mpsc::UnboundedReceiver<Payload> {
    let (tx, rx) = mpsc::unbounded_channel();
    socket.on(name, move |_socket, event| {
        let _ = tx.send(event.payload);
    });
    rx
}

#[tokio::test]
async fn node_server_every_transport_mode() {
    let Some(node) = start_node().await else {
        return;
    };
    for mode in Mode::ALL {
        let manager = Manager::new(mode.config(&node.url)).expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        let mut welcome = inbox(&socket, "welcome");
        let mut echoes = inbox(&socket, "echo");
        socket.on("question", |_socket, event| {
            let asked: String = event.payload.get(0).expect("a question");
            if let Some(ack) = event.ack {
                ack.send_json(format!("{asked}? yes")).expect("sent");
            }
        });
        bounded("connect", socket.connect())
            .await
            .expect("connects");

        let hello: Welcome = next("welcome", &mut welcome)
            .await
            .get(0)
            .expect("typed welcome");
        assert_eq!(Some(hello.id.clone()), socket.id());
        assert!(!hello.recovered);
        let mut state = manager.state();
        wait_for("the final transport", &mut state, |s| {
            *s == ConnectionState::Connected {
                transport: mode.final_transport(),
            }
        })
        .await;
        let transport = socket
            .emit_with_ack("transport", Payload::new(), Duration::from_secs(5))
            .await
            .expect("acknowledged");
        assert_eq!(
            transport.args,
            [json!(mode.final_transport().as_str())],
            "{mode:?}"
        );

        // JSON echo (the server appends its recovery offset as a last argument).
        socket
            .emit("echo", json!({"text": "héllo", "n": [1, 2]}))
            .expect("emits");
        let echoed = next("echo", &mut echoes).await;
        assert_eq!(echoed.args[0], json!({"text": "héllo", "n": [1, 2]}));

        // Binary to the server and back.
        let mut binary = Payload::new();
        binary.push_binary(vec![0u8, 255, 7]);
        let nested = binary.attach(vec![42u8; 100_000]);
        binary.push(json!({"blob": nested})).expect("json");
        socket.emit_payload("echo", binary).expect("emits");
        let echoed = next("binary echo", &mut echoes).await;
        assert_eq!(
            echoed.binary_at(0).map(|b| b.to_vec()),
            Some(vec![0, 255, 7])
        );
        assert_eq!(
            echoed.binary_of(&echoed.args[1]["blob"]).map(|b| b.len()),
            Some(100_000)
        );

        // Acknowledgements: JSON, binary, and the server asking the client.
        let answer = socket
            .emit_with_ack(
                "ack",
                Payload::from_args(vec![json!(1), json!("two")]),
                Duration::from_secs(5),
            )
            .await
            .expect("acknowledged");
        assert_eq!(answer.args, [json!(1), json!("two")]);
        let answer = socket
            .emit_with_ack("binary", Payload::new(), Duration::from_secs(5))
            .await
            .expect("acknowledged");
        assert_eq!(answer.binary_at(0).map(|b| b.to_vec()), Some(vec![1, 2, 3]));
        assert_eq!(
            answer
                .binary_of(&answer.args[1]["nested"])
                .map(|b| b.to_vec()),
            Some("hé".as_bytes().to_vec())
        );
        let answer = socket
            .emit_with_ack(
                "ask",
                Payload::json("ready").expect("json"),
                Duration::from_secs(5),
            )
            .await
            .expect("acknowledged");
        assert_eq!(answer.args, [json!({"answer": "ready? yes"})]);

        manager.disconnect();
        wait_for("the close", &mut state, |s| {
            matches!(s, ConnectionState::Disconnected { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn node_server_namespaces_and_auth() {
    let Some(node) = start_node().await else {
        return;
    };
    let manager = Manager::new(Mode::Upgrade.config(&node.url)).expect("valid config");
    let root = manager.socket("/").expect("valid namespace");
    let admin = manager.socket("/admin").expect("valid namespace");
    admin.set_auth(json!({"token": "secret"}).as_object().cloned());
    bounded("connect /", root.connect()).await.expect("root");
    bounded("connect /admin", admin.connect())
        .await
        .expect("admin");
    let me = admin
        .emit_with_ack("whoami", Payload::new(), Duration::from_secs(5))
        .await
        .expect("acknowledged");
    assert_eq!(
        me.args,
        [json!({"nsp": "/admin", "auth": {"token": "secret"}})]
    );

    let intruder = Manager::new(Mode::WebSocket.config(&node.url)).expect("valid config");
    let refused = intruder.socket("/admin").expect("valid namespace");
    refused.set_auth(json!({"token": "guess"}).as_object().cloned());
    let error = bounded("refusal", refused.connect()).await;
    let Err(ConnectError::Refused(refusal)) = error else {
        panic!("expected a refusal, got {error:?}");
    };
    assert_eq!(refusal.message, "not authorized");
    assert_eq!(refusal.data, Some(json!({"code": 401})));
    assert!(matches!(
        &*refused.state().borrow(),
        SocketState::Refused(_)
    ));

    let unknown = manager.socket("/nowhere").expect("valid namespace");
    let error = bounded("refusal", unknown.connect()).await;
    assert!(
        matches!(&error, Err(ConnectError::Refused(r)) if r.message == "Invalid namespace"),
        "{error:?}"
    );
    // The shared connection is still fine.
    let me = admin
        .emit_with_ack("whoami", Payload::new(), Duration::from_secs(5))
        .await
        .expect("acknowledged");
    assert_eq!(me.args[0]["nsp"], "/admin");
}

#[tokio::test]
async fn node_server_disconnect_is_final() {
    let Some(node) = start_node().await else {
        return;
    };
    let manager = Manager::new(Mode::Polling.config(&node.url)).expect("valid config");
    let socket = manager.socket("/").expect("valid namespace");
    bounded("connect", socket.connect())
        .await
        .expect("connects");
    let mut states = record_states(manager.state());
    socket.emit("kick", ()).expect("emits");
    let seen = states_until("the close", &mut states, |s| {
        matches!(s, ConnectionState::Disconnected { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&ConnectionState::Disconnected {
            reason: DisconnectReason::ServerDisconnect
        })
    );
    assert_eq!(
        *socket.state().borrow(),
        SocketState::Disconnected {
            reason: DisconnectReason::ServerDisconnect
        }
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(states.try_recv().is_err(), "the client reconnected");
}

#[tokio::test]
async fn node_server_reconnects_and_recovers() {
    let Some(node) = start_node().await else {
        return;
    };
    for mode in Mode::ALL {
        let manager = Manager::new(ClientConfig {
            reconnection: ReconnectionConfig {
                delay: Duration::from_millis(500),
                delay_max: Duration::from_millis(500),
                randomization_factor: 0.0,
                ..ReconnectionConfig::default()
            },
            ..mode.config(&node.url)
        })
        .expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        let mut welcome = inbox(&socket, "welcome");
        let mut missed = inbox(&socket, "missed");
        bounded("connect", socket.connect())
            .await
            .expect("connects");
        let first: Welcome = next("welcome", &mut welcome).await.get(0).expect("typed");
        let mut state = manager.state();
        wait_for("the final transport", &mut state, |s| {
            *s == ConnectionState::Connected {
                transport: mode.final_transport(),
            }
        })
        .await;
        let mut states = record_states(manager.state());

        socket.emit("drop", ()).expect("emits");
        let seen = states_until("the reconnection", &mut states, |s| {
            matches!(s, ConnectionState::Connected { .. })
        })
        .await;
        assert!(
            seen.contains(&ConnectionState::ReconnectScheduled {
                attempt: 1,
                delay: Duration::from_millis(500)
            }),
            "{mode:?}: {seen:?}"
        );
        let mut socket_state = socket.state();
        wait_for("the socket to reconnect", &mut socket_state, |s| {
            matches!(s, SocketState::Connected { .. })
        })
        .await;
        assert!(socket.recovered(), "{mode:?}");
        assert_eq!(socket.id(), Some(first.id.clone()));
        let again: Welcome = next("welcome", &mut welcome).await.get(0).expect("typed");
        assert!(again.recovered);
        assert_eq!(again.id, first.id);
        assert_eq!(next("missed 1", &mut missed).await.args[0], json!(1));
        assert_eq!(next("missed 2", &mut missed).await.args[0], json!(2));
        manager.disconnect();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_server_over_its_own_tls() {
    let ca = ferrio_test_support::pki::TestCa::new("Ferrio test CA");
    let leaf = ca.leaf(
        &["127.0.0.1", "localhost"],
        ferrio_test_support::pki::Validity::CURRENT,
    );
    let dir = std::env::temp_dir().join(format!("ferrio-client-node-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &leaf.cert).expect("write cert");
    std::fs::write(&key, &leaf.key).expect("write key");
    let node = start_node_with(Some((&cert, &key))).await;
    let _ = std::fs::remove_dir_all(&dir);
    let Some(node) = node else {
        return;
    };
    let mut tls = ferrio_client::TlsConfig::default();
    tls.add_root_certificates_pem(ca.cert_pem().as_bytes())
        .expect("a certificate");
    for mode in Mode::ALL {
        let manager = Manager::new(ClientConfig {
            tls: tls.clone(),
            ..mode.config(&node.url)
        })
        .expect("valid config");
        let socket = manager.socket("/").expect("valid namespace");
        bounded("connect", socket.connect())
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let mut state = manager.state();
        wait_for("the final transport", &mut state, |s| {
            *s == ConnectionState::Connected {
                transport: mode.final_transport(),
            }
        })
        .await;
        let transport = socket
            .emit_with_ack("transport", Payload::new(), Duration::from_secs(5))
            .await
            .expect("acknowledged");
        assert_eq!(
            transport.args,
            [json!(mode.final_transport().as_str())],
            "{mode:?}"
        );
        manager.disconnect();
    }

    // Without the authority: refused, and the error says why.
    let manager = Manager::new(ClientConfig {
        reconnection: ReconnectionConfig {
            attempts: Some(0),
            ..ReconnectionConfig::default()
        },
        ..Mode::Polling.config(&node.url)
    })
    .expect("valid config");
    let error = bounded("connect", manager.socket("/").expect("ns").connect()).await;
    assert!(
        matches!(
            &error,
            Err(ConnectError::ReconnectFailed {
                last_error: Some(ferrio_client::OpenError::Certificate(
                    ferrio_client::CertificateError::UnknownIssuer
                ))
            })
        ),
        "{error:?}"
    );
}
