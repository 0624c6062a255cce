//! The plain WebSocket endpoint of `ferrio serve`, end to end: the built binary, a raw
//! WebSocket client (tokio-tungstenite) speaking the JSON frames, and a Socket.IO client
//! (ferrio-client) in the same rooms. Every wait is bounded.

mod backend;
mod process;

use std::time::Duration;

use ferrio_client::{ClientConfig, Manager, Payload, ReconnectionConfig, Socket};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{encode, EncodingKey, Header};
use process::Ferrio;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
/// The longest any one frame is waited for.
const WAIT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<TcpStream>;

fn start(env: &[(&str, &str)]) -> Ferrio {
    tokio::task::block_in_place(|| Ferrio::serve(env))
}

/// Opens `/ws` + `query` with extra headers.
async fn open(port: u16, query: &str, headers: &[(&'static str, &str)]) -> Ws {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!("ws://127.0.0.1:{port}/ws{query}")
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap()
        .0
}

/// The next JSON frame (pings skipped); panics on anything else.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection open")
            .expect("a valid frame");
        match frame {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The close frame that ends the connection (text frames before it are returned too).
async fn closed(ws: &mut Ws) -> (Vec<Value>, Option<(CloseCode, String)>) {
    let mut texts = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Text(text))) => {
                texts.push(serde_json::from_str(text.as_str()).unwrap())
            }
            Some(Ok(Message::Close(frame))) => {
                return (texts, frame.map(|f| (f.code, f.reason.to_string())))
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return (texts, None),
        }
    }
}

async fn sio_client(port: u16, auth: Value) -> Socket {
    let config = ClientConfig {
        transports: vec![ferrio_client::TransportKind::WebSocket],
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        timeout: WAIT,
        ..ClientConfig::new(format!("http://127.0.0.1:{port}"))
    };
    let socket = Manager::new(config).unwrap().socket("/").unwrap();
    socket.set_auth(auth.as_object().cloned());
    socket.connect().await.unwrap();
    socket
}

async fn sio_ack(socket: &Socket, event: &str, arg: Value) -> Value {
    socket
        .emit_with_ack(event, Payload::json(arg).unwrap(), WAIT)
        .await
        .unwrap()
        .args
        .remove(0)
}

fn token(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_socketio_clients_share_rooms() {
    let server = start(&[
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
        ("FERRIO_ROOMS_PUBLIC_PUBLISH", "^lobby$"),
    ]);
    let mut ws = open(server.port, "", &[]).await;
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "connected");
    assert_eq!(hello["namespace"], "/");
    assert!(hello["id"].as_str().is_some_and(|id| !id.is_empty()));

    send(&mut ws, json!({ "type": "join", "room": "lobby", "id": 1 })).await;
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "joined", "room": "lobby", "id": 1 })
    );

    // A Socket.IO client's publish reaches the plain client.
    let sio = sio_client(server.port, json!({})).await;
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    sio.on("chat", move |_, event| {
        let _ = events.send(event.payload.args);
    });
    assert_eq!(
        sio_ack(&sio, "join", json!({ "room": "lobby" })).await,
        json!({ "ok": true, "room": "lobby" })
    );
    assert_eq!(
        sio_ack(
            &sio,
            "publish",
            json!({ "room": "lobby", "event": "news", "data": { "a": 1 } })
        )
        .await,
        json!({ "ok": true, "room": "lobby" })
    );
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "event", "event": "news", "data": { "a": 1 } })
    );

    // The plain client's publish reaches the Socket.IO client.
    send(
        &mut ws,
        json!({ "type": "publish", "room": "lobby", "event": "chat", "data": "hi", "id": "p" }),
    )
    .await;
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "published", "room": "lobby", "id": "p" })
    );
    let args = tokio::time::timeout(WAIT, received.recv())
        .await
        .expect("the event in time")
        .unwrap();
    assert_eq!(args, vec![json!("hi")]);

    send(&mut ws, json!({ "type": "leave", "room": "lobby" })).await;
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "left", "room": "lobby" })
    );
    send(&mut ws, json!({ "type": "ping", "id": 9 })).await;
    assert_eq!(next(&mut ws).await, json!({ "type": "pong", "id": 9 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_precise_errors_and_the_connection_stays() {
    let server = start(&[]);
    let mut ws = open(server.port, "", &[]).await;
    assert_eq!(next(&mut ws).await["type"], "connected");

    ws.send(Message::text("{oops")).await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "error", "message": "invalid JSON: key must be a string at line 1 column 2" })
    );
    send(&mut ws, json!({ "type": "dance" })).await;
    assert_eq!(
        next(&mut ws).await,
        json!({
            "type": "error",
            "message": "unknown frame type \"dance\": expected join, leave, publish, emit or ping"
        })
    );
    send(&mut ws, json!({ "type": "join", "id": 4 })).await;
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "error", "message": "invalid join frame: missing field `room`" })
    );
    // No room is public here: the room policy refuses.
    send(
        &mut ws,
        json!({ "type": "join", "room": "secret", "id": 5 }),
    )
    .await;
    assert_eq!(
        next(&mut ws).await,
        json!({
            "type": "error",
            "message": "not allowed to join room secret",
            "request": "join",
            "room": "secret",
            "id": 5
        })
    );
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "error", "message": "binary frames are not supported: send JSON text frames" })
    );
    send(&mut ws, json!({ "type": "emit", "event": "connect" })).await;
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "error", "message": "event name \"connect\" is reserved" })
    );
    // Still connected.
    send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut ws).await, json!({ "type": "pong" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_and_the_room_policy_apply() {
    let server = start(&[
        ("FERRIO_AUTH_JWT_SECRET", SECRET),
        ("FERRIO_AUTH_REQUIRE_AUTH", "true"),
    ]);
    // No token: refused with the reason, then closed as a policy violation.
    let mut ws = open(server.port, "", &[]).await;
    let (texts, close) = closed(&mut ws).await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0]["type"], "error");
    assert_eq!(texts[0]["reason"], "missing_token");
    assert!(texts[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("authentication required: no token"));
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.starts_with("authentication required"), "{reason}");

    // An expired token: refused with its reason.
    let expired = token(json!({ "sub": "bob", "exp": 1000 }));
    let mut ws = open(server.port, &format!("?token={expired}"), &[]).await;
    let (texts, _) = closed(&mut ws).await;
    assert_eq!(
        texts,
        vec![json!({ "type": "error", "message": "token expired", "reason": "expired_token" })]
    );

    // A valid token in the query: the claims decide the rooms.
    let good = token(json!({ "sub": "alice", "rooms": ["team_*"], "exp": 4_000_000_000u64 }));
    let mut ws = open(server.port, &format!("?token={good}"), &[]).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    send(&mut ws, json!({ "type": "join", "room": "team_a" })).await;
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "joined", "room": "team_a" })
    );
    send(&mut ws, json!({ "type": "join", "room": "other" })).await;
    assert_eq!(
        next(&mut ws).await["message"],
        "not allowed to join room other"
    );

    // The same token in an Authorization header; the user's own room reaches it.
    let bearer = format!("Bearer {good}");
    let mut ws2 = open(server.port, "", &[("authorization", bearer.as_str())]).await;
    assert_eq!(next(&mut ws2).await["type"], "connected");
    let publisher =
        token(json!({ "sub": "carol", "publish": ["user:*"], "exp": 4_000_000_000u64 }));
    let sio = sio_client(server.port, json!({ "token": publisher })).await;
    assert_eq!(
        sio_ack(
            &sio,
            "publish",
            json!({ "room": "user:alice", "event": "dm", "data": "psst" })
        )
        .await,
        json!({ "ok": true, "room": "user:alice" })
    );
    let expected = json!({ "type": "event", "event": "dm", "data": "psst" });
    assert_eq!(next(&mut ws).await, expected);
    assert_eq!(next(&mut ws2).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_pinged_then_closed() {
    let server = start(&[
        ("FERRIO_WS_PING_INTERVAL", "200ms"),
        ("FERRIO_WS_PING_TIMEOUT", "200ms"),
    ]);
    let mut ws = open(server.port, "", &[]).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    // Not reading means not answering the pings (tungstenite answers them as it reads).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut pings = 0;
    let close = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(frame))) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(pings >= 1);
    let close = close.expect("a close frame");
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "ping timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_request_gets_a_clear_error() {
    let server = start(&[]);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.ends_with(
        r#"{"error":"expected a WebSocket upgrade (GET with Connection: Upgrade and Upgrade: websocket)"}"#
    ), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_closes_with_1009() {
    let server = start(&[("FERRIO_LIMITS_MAX_PAYLOAD", "1000")]);
    let mut ws = open(server.port, "", &[]).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    let big = json!({ "type": "emit", "event": "e", "data": "x".repeat(5000) });
    send(&mut ws, big).await;
    let (texts, close) = closed(&mut ws).await;
    assert!(texts.is_empty(), "{texts:?}");
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, CloseCode::Size);
    assert!(reason.starts_with("frame too large: "), "{reason}");
}

/// `POST path` with a JSON body and the API key; the status line and the body.
async fn api_post(port: u16, key: &str, path: &str, body: Value) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_emits_reach_plain_clients() {
    const KEY: &str = "api-key-0123456789abcdef0123456789abcdef";
    let server = start(&[
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
    ]);
    let mut ws = open(server.port, "", &[]).await;
    let id = next(&mut ws).await["id"].as_str().unwrap().to_owned();
    send(&mut ws, json!({ "type": "join", "room": "lobby" })).await;
    assert_eq!(next(&mut ws).await["type"], "joined");

    let (status, body) = api_post(
        server.port,
        KEY,
        "/api/v1/emit",
        json!({ "rooms": ["lobby"], "event": "notice", "data": { "x": 1 } }),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "event", "event": "notice", "data": { "x": 1 } })
    );

    // To the socket itself, with several arguments, one of them binary.
    let (status, body) = api_post(
        server.port,
        KEY,
        "/api/v1/emit",
        json!({ "sockets": [id], "event": "file", "args": ["name", { "$binary": "AQID" }] }),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    assert_eq!(
        next(&mut ws).await,
        json!({
            "type": "event",
            "event": "file",
            "data": "name",
            "args": ["name", { "base64": "AQID" }]
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_go_to_the_events_webhook_and_come_back_as_acks() {
    let backend = backend::Backend::start(|request| {
        let body = request.json();
        if request.path == "/connect" {
            return backend::Reply::Text(204, "");
        }
        match body["event"].as_str() {
            Some("order:create") => {
                backend::Reply::Json(200, json!({ "order": body["args"][0]["item"] }))
            }
            _ => backend::Reply::Json(500, json!({ "message": "boom" })),
        }
    })
    .await;
    let events = format!("{}/event", backend.url);
    let connect = format!("{}/connect", backend.url);
    let server = start(&[
        ("FERRIO_WEBHOOKS_EVENTS_URL", events.as_str()),
        ("FERRIO_WEBHOOKS_CONNECT_URL", connect.as_str()),
    ]);
    let mut ws = open(server.port, "", &[]).await;
    let id = next(&mut ws).await["id"].clone();
    // The connect webhook saw the plain client as any other socket.
    let call = backend.wait_for("/connect", 1).await.remove(0).json();
    assert_eq!(call["socket"]["id"], id);

    send(
        &mut ws,
        json!({ "type": "emit", "event": "order:create", "data": { "item": "tea" }, "id": 7 }),
    )
    .await;
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "ack", "id": 7, "data": { "order": "tea" } })
    );
    send(
        &mut ws,
        json!({ "type": "emit", "event": "other", "id": "x" }),
    )
    .await;
    assert_eq!(
        next(&mut ws).await,
        json!({
            "type": "ack",
            "id": "x",
            "data": { "error": "webhook answered 500 Internal Server Error: boom" }
        })
    );
    // Without an id the event is posted and nothing comes back.
    send(
        &mut ws,
        json!({ "type": "emit", "event": "order:create", "data": { "item": "cake" } }),
    )
    .await;
    let calls = backend.wait_for("/event", 3).await;
    assert_eq!(calls[2].json()["args"], json!([{ "item": "cake" }]));
    // Without data, the event has no argument; with "data": null, one.
    send(&mut ws, json!({ "type": "emit", "event": "bare" })).await;
    send(
        &mut ws,
        json!({ "type": "emit", "event": "null", "data": null }),
    )
    .await;
    let calls = backend.wait_for("/event", 5).await;
    let args: Vec<(Value, Value)> = calls[3..]
        .iter()
        .map(|c| (c.json()["event"].clone(), c.json()["args"].clone()))
        .collect();
    assert!(args.contains(&(json!("bare"), json!([]))), "{args:?}");
    assert!(args.contains(&(json!("null"), json!([null]))), "{args:?}");
    send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut ws).await, json!({ "type": "pong" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_tells_plain_clients_to_go() {
    let server = start(&[("FERRIO_SERVER_SHUTDOWN_TIMEOUT", "5s")]);
    let mut ws = open(server.port, "", &[]).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    server.signal("TERM");
    let (texts, close) = closed(&mut ws).await;
    assert_eq!(
        texts,
        vec![json!({ "type": "disconnected", "reason": "server closed the connection" })]
    );
    let (code, reason) = close.expect("a close frame");
    assert_eq!(code, CloseCode::Away);
    assert_eq!(reason, "server closed the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_parameter_picks_the_namespace() {
    let server = start(&[
        ("FERRIO_SERVER_NAMESPACES", "/,/chat"),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
        ("FERRIO_ROOMS_PUBLIC_PUBLISH", "^lobby$"),
    ]);
    let mut ws = open(server.port, "?namespace=chat", &[]).await;
    assert_eq!(next(&mut ws).await["namespace"], "/chat");
    send(&mut ws, json!({ "type": "join", "room": "lobby" })).await;
    assert_eq!(next(&mut ws).await["type"], "joined");
    // A publish to "lobby" of the main namespace is another room: it does not arrive.
    let main = sio_client(server.port, json!({})).await;
    assert_eq!(
        sio_ack(
            &main,
            "publish",
            json!({ "room": "lobby", "event": "elsewhere", "data": 0 })
        )
        .await,
        json!({ "ok": true, "room": "lobby" })
    );
    let config = ClientConfig {
        transports: vec![ferrio_client::TransportKind::WebSocket],
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        timeout: WAIT,
        ..ClientConfig::new(format!("http://127.0.0.1:{}", server.port))
    };
    let chat = Manager::new(config).unwrap().socket("/chat").unwrap();
    chat.connect().await.unwrap();
    assert_eq!(
        sio_ack(
            &chat,
            "publish",
            json!({ "room": "lobby", "event": "here", "data": 1 })
        )
        .await,
        json!({ "ok": true, "room": "lobby" })
    );
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "event", "event": "here", "data": 1 })
    );
    // A namespace the server does not serve is refused as for Socket.IO clients.
    let mut ws = open(server.port, "?namespace=/admin", &[]).await;
    let (texts, close) = closed(&mut ws).await;
    assert_eq!(
        texts,
        vec![json!({ "type": "error", "message": "Invalid namespace" })]
    );
    assert_eq!(close.expect("a close frame").0, CloseCode::Policy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dropped_by_the_rate_limit_are_answered_with_an_error() {
    let server = start(&[
        ("FERRIO_RATE_LIMIT_ENABLED", "true"),
        ("FERRIO_RATE_LIMIT_EVENTS_PER_SECOND", "1"),
        ("FERRIO_WEBHOOKS_TIMEOUT", "1s"),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
    ]);
    let mut ws = open(server.port, "", &[]).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
    for id in 1..=3 {
        send(
            &mut ws,
            json!({ "type": "join", "room": "lobby", "id": id }),
        )
        .await;
    }
    assert_eq!(
        next(&mut ws).await,
        json!({ "type": "joined", "room": "lobby", "id": 1 })
    );
    // The first refused event is announced, as to Socket.IO clients ...
    assert_eq!(
        next(&mut ws).await,
        json!({
            "type": "event",
            "event": "error",
            "data": { "message": "Too many events (max 1 per 1s)" }
        })
    );
    // ... and every refused request is given up with an error once its time is over.
    let mut given_up = [next(&mut ws).await, next(&mut ws).await];
    given_up.sort_by_key(|frame| frame["id"].as_i64());
    for (frame, id) in given_up.iter().zip(2..) {
        assert_eq!(
            *frame,
            json!({
                "type": "error",
                "message": "no answer within 3s: the server dropped the request (over the event \
                            rate limit?)",
                "request": "join",
                "room": "lobby",
                "id": id
            })
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_allow_list_applies() {
    let server = start(&[("FERRIO_SERVER_ALLOWED_ORIGINS", "https://app.example")]);
    let mut ws = open(server.port, "", &[("origin", "https://evil.example")]).await;
    let (texts, close) = closed(&mut ws).await;
    assert_eq!(
        texts,
        vec![json!({
            "type": "error",
            "message": "connection refused: Origin not allowed",
            "status": 403
        })]
    );
    assert_eq!(close.expect("a close frame").0, CloseCode::Policy);
    let mut ws = open(server.port, "", &[("origin", "https://app.example")]).await;
    assert_eq!(next(&mut ws).await["type"], "connected");
}
