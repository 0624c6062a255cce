//! Webhooks of `ferrio serve`, end to end: the built binary, configured by environment
//! variables, calling a real HTTP backend in the test process, with ferrio-client sockets as
//! the clients. Every wait is bounded.

mod backend;
mod process;

use std::time::Duration;

use backend::{Backend, Reply};
use ferrio_client::{ClientConfig, ConnectError, Manager, Payload, ReconnectionConfig, Socket};
use hmac::{Hmac, Mac};
use jsonwebtoken::{encode, EncodingKey, Header};
use process::Ferrio;
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
const HOOK_SECRET: &str = "hook-secret";
/// How long the acks of these tests may take: the webhook timeout is shorter.
const ACK_WAIT: Duration = Duration::from_secs(10);

/// The backend of these tests, by the event name (`echo`, `fail`, `text`, `hang`) or the
/// connect payload (`deny`).
fn backend_reply(request: &backend::Recorded) -> Reply {
    let body = request.json();
    match request.path.as_str() {
        "/connect" if body["auth"]["deny"] == json!(true) => {
            Reply::Json(403, json!({ "message": "you are banned" }))
        }
        "/connect" if body["auth"]["vip"] == json!(true) => {
            Reply::Json(200, json!({ "rooms": ["vip", "team_a"] }))
        }
        "/event" => match body["event"].as_str() {
            Some("echo") => Reply::Json(200, json!([{ "got": body["args"][0] }, "second"])),
            Some("object") => Reply::Json(200, json!({ "ok": true })),
            Some("empty") => Reply::Text(204, ""),
            Some("fail") => Reply::Json(500, json!({ "message": "database down" })),
            Some("text") => Reply::Text(200, "not json"),
            Some("hang") => Reply::Hang,
            _ => Reply::Json(404, json!({ "message": "no such event" })),
        },
        _ => Reply::Text(200, ""),
    }
}

fn client(port: u16) -> Socket {
    let config = ClientConfig {
        transports: vec![ferrio_client::TransportKind::WebSocket],
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        timeout: Duration::from_secs(10),
        ..ClientConfig::new(format!("http://127.0.0.1:{port}"))
    };
    Manager::new(config).unwrap().socket("/").unwrap()
}

async fn connect(port: u16, auth: Value) -> Result<Socket, ConnectError> {
    let socket = client(port);
    socket.set_auth(auth.as_object().cloned());
    socket.connect().await.map(|()| socket)
}

async fn ack(socket: &Socket, event: &str, arg: Value) -> Vec<Value> {
    socket
        .emit_with_ack(event, Payload::json(arg).unwrap(), ACK_WAIT)
        .await
        .unwrap_or_else(|e| panic!("no ack for {event}: {e}"))
        .args
}

fn token(sub: &str) -> String {
    encode(
        &Header::default(),
        &json!({ "sub": sub, "exp": 4_000_000_000u64 }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn start(backend: &Backend, extra: &[(&str, &str)]) -> Ferrio {
    let events = format!("{}/event", backend.url);
    let connect = format!("{}/connect", backend.url);
    let disconnect = format!("{}/disconnect", backend.url);
    let mut env = vec![
        ("FERRIO_WEBHOOKS_EVENTS_URL", events.as_str()),
        ("FERRIO_WEBHOOKS_CONNECT_URL", connect.as_str()),
        ("FERRIO_WEBHOOKS_DISCONNECT_URL", disconnect.as_str()),
        ("FERRIO_WEBHOOKS_TIMEOUT", "2s"),
        ("FERRIO_WEBHOOKS_SECRET", HOOK_SECRET),
        ("FERRIO_AUTH_JWT_SECRET", SECRET),
        ("FERRIO_AUTH_ALLOW_ANONYMOUS", "true"),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
    ];
    env.extend_from_slice(extra);
    // Started off the runtime's threads: it waits for the port with blocking sleeps.
    tokio::task::block_in_place(|| Ferrio::serve(&env))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_answer_is_the_ack_and_the_call_is_signed() {
    let backend = Backend::start(backend_reply).await;
    let server = start(&backend, &[]);
    let socket = connect(server.port, json!({ "token": token("alice"), "x": 1 }))
        .await
        .unwrap();
    assert_eq!(
        ack(&socket, "join", json!({ "room": "lobby" })).await,
        vec![json!({ "ok": true, "room": "lobby" })]
    );

    let args = ack(&socket, "echo", json!({ "n": 1 })).await;
    assert_eq!(args, vec![json!({ "got": { "n": 1 } }), json!("second")]);
    assert_eq!(
        ack(&socket, "object", json!(null)).await,
        vec![json!({ "ok": true })]
    );
    assert_eq!(
        ack(&socket, "empty", json!(null)).await,
        Vec::<Value>::new()
    );

    let call = backend.wait_for("/event", 1).await.remove(0);
    let body = call.json();
    assert_eq!(body["event"], "echo");
    assert_eq!(body["namespace"], "/");
    assert_eq!(body["args"], json!([{ "n": 1 }]));
    assert_eq!(body["socket"]["id"], json!(socket.id().unwrap()));
    assert_eq!(body["socket"]["user"], "alice");
    assert_eq!(body["socket"]["rooms"], json!(["lobby", "user:alice"]));
    assert_eq!(body["socket"]["transport"], "websocket");
    assert!(body["socket"]["address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(body["socket"]["ip"], "127.0.0.1");
    assert_eq!(call.headers["content-type"], "application/json");
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(&call.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        call.headers["x-ferrio-signature"].to_str().unwrap(),
        format!("sha256={expected}")
    );

    // The connect call carried the identity and the auth payload without the token.
    let connect = backend.wait_for("/connect", 1).await.remove(0).json();
    assert_eq!(connect["socket"]["user"], "alice");
    assert_eq!(connect["auth"], json!({ "x": 1 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_failures_reach_the_ack_as_errors() {
    let backend = Backend::start(backend_reply).await;
    let server = start(&backend, &[]);
    let socket = connect(server.port, json!({})).await.unwrap();
    assert_eq!(
        ack(&socket, "fail", json!(1)).await,
        vec![json!({ "error": "webhook answered 500 Internal Server Error: database down" })]
    );
    assert_eq!(
        ack(&socket, "text", json!(1)).await,
        vec![json!({
            "error": "webhook answer is not JSON (expected ident at line 1 column 2): not json"
        })]
    );
    assert_eq!(
        ack(&socket, "nosuch", json!(1)).await,
        vec![json!({ "error": "webhook answered 404 Not Found: no such event" })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_backend_times_out_and_blocks_no_one() {
    let backend = Backend::start(backend_reply).await;
    let server = start(&backend, &[]);
    let a = connect(server.port, json!({})).await.unwrap();
    let b = connect(server.port, json!({})).await.unwrap();
    let hanging = {
        let a = a.clone();
        tokio::spawn(async move { ack(&a, "hang", json!(null)).await })
    };
    backend.wait_for("/event", 1).await;
    // While that call hangs, the same socket and another one are served.
    assert_eq!(
        ack(&a, "echo", json!("a")).await,
        vec![json!({ "got": "a" }), json!("second")]
    );
    assert_eq!(
        ack(&b, "echo", json!("b")).await,
        vec![json!({ "got": "b" }), json!("second")]
    );
    assert!(
        !hanging.is_finished(),
        "the hanging call was answered early"
    );
    assert_eq!(
        hanging.await.unwrap(),
        vec![json!({ "error": "webhook timed out after 2s" })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_is_an_ack_error() {
    let port = process::free_port();
    let down = format!("http://127.0.0.1:{port}/event");
    let server = tokio::task::block_in_place(|| {
        Ferrio::serve(&[
            ("FERRIO_WEBHOOKS_EVENTS_URL", down.as_str()),
            ("FERRIO_WEBHOOKS_EVENTS", "report,echo"),
        ])
    });
    let socket = connect(server.port, json!({})).await.unwrap();
    let args = ack(&socket, "report", json!({})).await;
    let error = args[0]["error"].as_str().unwrap();
    let prefix = format!("webhook unreachable: 127.0.0.1:{port}: ");
    assert!(error.starts_with(&prefix), "{error}");
    assert!(error.contains("refused"), "{error}");
    // Not in webhooks.events: never forwarded, and the ack says so.
    assert_eq!(
        ack(&socket, "other", json!({})).await,
        vec![json!({ "error": "unknown event \"other\"" })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_hook_refuses_and_the_disconnect_hook_hears_why() {
    let backend = Backend::start(backend_reply).await;
    let server = start(&backend, &[]);
    match connect(server.port, json!({ "deny": true })).await {
        Err(ConnectError::Refused(refused)) => {
            assert_eq!(refused.message, "you are banned");
            assert_eq!(
                refused.data,
                Some(json!({ "reason": "webhook_refused", "status": 403 }))
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|s| s.id())),
    }
    let socket = connect(server.port, json!({})).await.unwrap();
    let id = socket.id().unwrap();
    assert_eq!(
        ack(&socket, "join", json!({ "room": "lobby" })).await,
        vec![json!({ "ok": true, "room": "lobby" })]
    );
    socket.disconnect();
    let call = backend.wait_for("/disconnect", 1).await.remove(0).json();
    assert_eq!(call["reason"], "client namespace disconnect");
    // The rooms it was in when it left.
    assert_eq!(call["socket"]["rooms"], json!(["lobby"]));
    assert_eq!(call["socket"]["id"], json!(id));
    assert_eq!(call["socket"]["user"], Value::Null);
    assert_eq!(call["namespace"], "/");
    // The refused connection never connected: it has no disconnection.
    assert_eq!(backend.requests_to("/disconnect").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_hook_that_is_down_refuses_connections() {
    let down = format!("http://127.0.0.1:{}/connect", process::free_port());
    let server = tokio::task::block_in_place(|| {
        Ferrio::serve(&[
            ("FERRIO_WEBHOOKS_CONNECT_URL", down.as_str()),
            ("FERRIO_WEBHOOKS_TIMEOUT", "1s"),
        ])
    });
    match connect(server.port, json!({})).await {
        Err(ConnectError::Refused(refused)) => {
            assert!(
                refused
                    .message
                    .starts_with("connect webhook unreachable: 127.0.0.1:"),
                "{}",
                refused.message
            );
            assert_eq!(refused.data, Some(json!({ "reason": "webhook_failed" })));
        }
        other => panic!("expected a refusal, got {:?}", other.map(|s| s.id())),
    }
}

/// The `/metrics` line of `ferrio_webhook_calls_total` with these labels, if any.
async fn calls_metric(port: u16, hook: &str, outcome: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(ACK_WAIT, stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    answer
        .lines()
        .find(|line| {
            line.starts_with("ferrio_webhook_calls_total{")
                && line.contains(&format!("hook=\"{hook}\""))
                && line.contains(&format!("outcome=\"{outcome}\""))
        })
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_max_in_flight_are_refused_at_once_and_counted() {
    let backend = Backend::start(backend_reply).await;
    let events = format!("{}/event", backend.url);
    let server = tokio::task::block_in_place(|| {
        Ferrio::serve(&[
            ("FERRIO_WEBHOOKS_EVENTS_URL", events.as_str()),
            ("FERRIO_WEBHOOKS_TIMEOUT", "2s"),
            ("FERRIO_WEBHOOKS_MAX_IN_FLIGHT", "1"),
        ])
    });
    let socket = connect(server.port, json!({})).await.unwrap();
    let hanging = {
        let socket = socket.clone();
        tokio::spawn(async move { ack(&socket, "hang", json!(null)).await })
    };
    backend.wait_for("/event", 1).await;
    assert_eq!(
        ack(&socket, "echo", json!(1)).await,
        vec![json!({ "error": "too many webhook calls in flight (at most 1)" })]
    );
    assert_eq!(backend.requests_to("/event").len(), 1, "not forwarded");
    assert_eq!(
        hanging.await.unwrap(),
        vec![json!({ "error": "webhook timed out after 2s" })]
    );
    // The place is free again.
    assert_eq!(
        ack(&socket, "echo", json!(2)).await,
        vec![json!({ "got": 2 }), json!("second")]
    );
    for (outcome, count) in [("overloaded", 1), ("timeout", 1), ("ok", 1)] {
        let line = calls_metric(server.port, "event", outcome)
            .await
            .unwrap_or_else(|| panic!("no {outcome} line"));
        assert!(line.ends_with(&format!(" {count}")), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_every_served_namespace_are_forwarded() {
    let backend = Backend::start(backend_reply).await;
    let server = start(&backend, &[("FERRIO_SERVER_NAMESPACES", "/,/team-*")]);
    let config = ClientConfig {
        transports: vec![ferrio_client::TransportKind::WebSocket],
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        timeout: Duration::from_secs(10),
        ..ClientConfig::new(format!("http://127.0.0.1:{}", server.port))
    };
    let socket = Manager::new(config).unwrap().socket("/team-red").unwrap();
    socket.connect().await.unwrap();
    assert_eq!(
        ack(&socket, "echo", json!("red")).await,
        vec![json!({ "got": "red" }), json!("second")]
    );
    let call = backend.wait_for("/event", 1).await.remove(0).json();
    assert_eq!(call["namespace"], "/team-red");
    assert_eq!(call["socket"]["namespace"], "/team-red");
    let connect = backend.wait_for("/connect", 1).await.remove(0).json();
    assert_eq!(connect["namespace"], "/team-red");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reuse_kept_alive_connections() {
    let backend = Backend::start(backend_reply).await;
    let server = start(&backend, &[]);
    let socket = connect(server.port, json!({})).await.unwrap();
    for n in 0..5 {
        assert_eq!(
            ack(&socket, "echo", json!(n)).await,
            vec![json!({ "got": n }), json!("second")]
        );
    }
    let calls = backend.wait_for("/event", 5).await;
    let mut peers: Vec<_> = calls.iter().map(|c| c.peer.expect("a peer")).collect();
    peers.sort();
    peers.dedup();
    // One after the other, the calls go out on a kept connection (a new one only when the
    // kept one was idle too long, which back-to-back calls are not).
    assert!(peers.len() < 5, "every call opened a connection: {peers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_closes_each_connection_is_served_too() {
    let backend =
        Backend::start(|request| Reply::JsonThenClose(200, json!([request.json()["args"][0]])))
            .await;
    let events = format!("{}/event", backend.url);
    let server = tokio::task::block_in_place(|| {
        Ferrio::serve(&[("FERRIO_WEBHOOKS_EVENTS_URL", events.as_str())])
    });
    let socket = connect(server.port, json!({})).await.unwrap();
    for n in 0..10 {
        assert_eq!(ack(&socket, "echo", json!(n)).await, vec![json!(n)]);
    }
    let calls = backend.wait_for("/event", 10).await;
    let mut peers: Vec<_> = calls.iter().map(|c| c.peer.expect("a peer")).collect();
    peers.sort();
    peers.dedup();
    assert_eq!(peers.len(), 10, "a closed connection was reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_backend_must_present_a_trusted_certificate() {
    use std::sync::Arc;
    // A TLS server with a self-signed certificate, which no public root vouches for.
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // The client gives up during the handshake: nothing is ever served.
            let _ = acceptor.accept(stream).await;
        }
    });
    let events = format!("https://localhost:{port}/event");
    let server = tokio::task::block_in_place(|| {
        Ferrio::serve(&[("FERRIO_WEBHOOKS_EVENTS_URL", events.as_str())])
    });
    let socket = connect(server.port, json!({})).await.unwrap();
    assert_eq!(
        ack(&socket, "echo", json!(1)).await,
        vec![json!({ "error": "webhook TLS failed: invalid peer certificate: UnknownIssuer" })]
    );
    assert!(handshakes.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_backend_of_a_private_ca_is_trusted_through_ca_file() {
    use ferrio_test_support::pki::{TestCa, Validity};

    let ca = TestCa::new("Ferrio webhook test CA");
    let leaf = ca.leaf(&["localhost"], Validity::CURRENT);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();

    let acceptor = tokio_rustls::TlsAcceptor::from(leaf.rustls_server_config());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(b"[\"over tls\"]")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });

    let events = format!("https://localhost:{port}/event");
    let ca_path = ca_file.display().to_string();
    let server = tokio::task::block_in_place(|| {
        Ferrio::serve(&[
            ("FERRIO_WEBHOOKS_EVENTS_URL", events.as_str()),
            ("FERRIO_WEBHOOKS_CA_FILE", ca_path.as_str()),
        ])
    });
    let socket = connect(server.port, json!({})).await.unwrap();
    assert_eq!(
        ack(&socket, "echo", json!(1)).await,
        vec![json!("over tls")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_ip_is_the_forwarded_one() {
    let backend = Backend::start(backend_reply).await;
    let server = start(
        &backend,
        &[("FERRIO_SERVER_TRUSTED_PROXIES", "127.0.0.1/32")],
    );
    let mut headers = http::HeaderMap::new();
    headers.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
    let config = ClientConfig {
        transports: vec![ferrio_client::TransportKind::WebSocket],
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        headers,
        timeout: Duration::from_secs(10),
        ..ClientConfig::new(format!("http://127.0.0.1:{}", server.port))
    };
    let socket = Manager::new(config).unwrap().socket("/").unwrap();
    socket.connect().await.unwrap();
    ack(&socket, "echo", json!(1)).await;
    let call = backend.wait_for("/event", 1).await.remove(0).json();
    assert_eq!(call["socket"]["ip"], "203.0.113.7");
    assert!(call["socket"]["address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_answer_may_name_rooms_to_join() {
    let backend = Backend::start(backend_reply).await;
    let server = start(&backend, &[]);
    let vip = connect(server.port, json!({ "vip": true })).await.unwrap();
    let other = connect(server.port, json!({})).await.unwrap();
    ack(&vip, "echo", json!("v")).await;
    ack(&other, "echo", json!("o")).await;
    let calls = backend.wait_for("/event", 2).await;
    let rooms_of = |arg: &str| {
        calls
            .iter()
            .map(|c| c.json())
            .find(|b| b["args"][0] == json!(arg))
            .map(|b| b["socket"]["rooms"].clone())
    };
    assert_eq!(rooms_of("v"), Some(json!(["team_a", "vip"])));
    assert_eq!(rooms_of("o"), Some(json!([])));
}
