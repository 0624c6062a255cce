//! Durable room history end to end: `ferrio serve` as a child process with the embedded store
//! in a directory the test owns (so that a restarted process finds it), and `ferrio-client`
//! sockets publishing and reading through the built-in `publish` and `history` events.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrio_client::{ClientConfig, Manager, Payload, ReconnectionConfig, Socket};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

/// Every wait of these tests ends by then.
const WAIT: Duration = Duration::from_secs(10);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `ferrio serve`, killed (SIGKILL) when dropped.
struct Ferrio {
    child: Child,
    port: u16,
}

impl Drop for Ferrio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ferrio {
    /// `ferrio serve` on `port` with the store in `dir` and rooms `news*` durable, public to
    /// join and publish; `env` adds or overrides settings.
    fn start(dir: &Path, port: u16, env: &[(&str, &str)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FERRIO_SERVER_HOST", "127.0.0.1")
            .env("FERRIO_SERVER_PORT", port.to_string())
            .env("FERRIO_HISTORY_ENABLED", "true")
            .env("FERRIO_HISTORY_PATH", dir.join("data/history.db"))
            .env("FERRIO_HISTORY_ROOMS", "^news.*$")
            .env("FERRIO_ROOMS_PUBLIC_JOIN", "^news.*$,^lobby$")
            .env("FERRIO_ROOMS_PUBLIC_PUBLISH", "^news.*$,^lobby$")
            .env("FERRIO_ROOMS_PUBLISH_TO_SENDER", "true")
            .envs(env.iter().copied())
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ferrio starts");
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("ferrio exited: {status}");
            }
            assert!(Instant::now() < deadline, "ferrio never listened");
            std::thread::sleep(Duration::from_millis(25));
        }
        server
    }

    /// Kills the process with SIGKILL: no shutdown, no flush.
    fn kill(mut self) {
        self.child.kill().expect("killed");
        self.child.wait().expect("reaped");
    }
}

/// The API key of the servers of these tests.
const KEY: &str = "0123456789abcdef0123456789abcdef";

/// One HTTP/1.1 request with the API key (connection closed after it): status and JSON body.
fn http(port: u16, method: &str, target: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line in {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body: {answer:?}"));
    (status, json)
}

/// Reads every page of a room's history through the API: (offset, text) pairs.
fn api_history(port: u16, room: &str) -> Vec<(u64, String)> {
    let mut stored = Vec::new();
    let mut after = 0;
    for _ in 0..100 {
        let target = format!("/api/v1/rooms/{room}/history?after={after}&limit=1000");
        let (status, page) = http(port, "GET", &target, "");
        assert_eq!(status, 200, "{page}");
        for message in page["messages"].as_array().expect("messages") {
            let text = message["args"][0]["text"]
                .as_str()
                .expect("text")
                .to_owned();
            stored.push((message["offset"].as_u64().expect("offset"), text));
        }
        after = page["next"].as_u64().unwrap_or(after);
        if page["more"] != json!(true) {
            break;
        }
    }
    stored
}

/// Events a client received: name and first argument.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn client(port: u16) -> (Socket, Received) {
    let reconnection = ReconnectionConfig {
        enabled: false,
        ..ReconnectionConfig::default()
    };
    client_with(port, reconnection).await
}

async fn client_with(port: u16, reconnection: ReconnectionConfig) -> (Socket, Received) {
    client_as(port, reconnection, None).await
}

async fn client_as(
    port: u16,
    reconnection: ReconnectionConfig,
    token: Option<&str>,
) -> (Socket, Received) {
    let manager = Manager::new(ClientConfig {
        reconnection,
        ..ClientConfig::new(format!("http://127.0.0.1:{port}"))
    })
    .expect("client config");
    let socket = manager.socket("/").expect("socket");
    if let Some(token) = token {
        socket.set_auth(json!({ "token": token }).as_object().cloned());
    }
    let received: Received = Arc::default();
    let sink = received.clone();
    socket.on_any(move |_socket, event| {
        let first = event.payload.args.first().cloned().unwrap_or(Value::Null);
        sink.lock().expect("lock").push((event.name.clone(), first));
    });
    tokio::time::timeout(WAIT, socket.connect())
        .await
        .expect("connected in time")
        .expect("connected");
    (socket, received)
}

/// Emits `event(arg)` and returns the first argument of the ack.
async fn call(socket: &Socket, event: &str, arg: Value) -> Value {
    let payload = Payload::json(arg).expect("JSON");
    let answer = socket
        .emit_with_ack(event, payload, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{event} acked: {e}"));
    answer.args.first().cloned().unwrap_or(Value::Null)
}

async fn publish(socket: &Socket, room: &str, text: &str) -> Value {
    call(
        socket,
        "publish",
        json!({ "room": room, "event": "chat", "data": { "text": text } }),
    )
    .await
}

fn texts(reply: &Value) -> Vec<String> {
    reply["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages in {reply}"))
        .iter()
        .map(|m| m["args"][0]["text"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Waits until `received` holds `count` events named `name`.
async fn wait_for(received: &Received, name: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let seen: Vec<Value> = received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect();
        if seen.len() >= count {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} {name} events",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_to_durable_rooms_are_stored_and_read_with_the_history_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Ferrio::start(dir.path(), free_port(), &[]);
    let (reader, received) = client(server.port).await;
    let joined = call(&reader, "join", json!({ "room": "news" })).await;
    assert_eq!(joined, json!({ "ok": true, "room": "news" }));
    let (publisher, _) = client(server.port).await;

    let mut offsets = Vec::new();
    for text in ["a", "b", "c"] {
        let ack = publish(&publisher, "news", text).await;
        assert_eq!(ack["ok"], json!(true), "{ack}");
        assert_eq!(ack["room"], json!("news"));
        offsets.push(
            ack["offset"]
                .as_u64()
                .unwrap_or_else(|| panic!("offset in {ack}")),
        );
    }
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    let live = wait_for(&received, "chat", 3).await;
    assert_eq!(
        live,
        [
            json!({"text": "a"}),
            json!({"text": "b"}),
            json!({"text": "c"})
        ]
    );

    // A page after the first message, then the rest.
    let page = call(
        &reader,
        "history",
        json!({ "room": "news", "after": offsets[0], "limit": 1 }),
    )
    .await;
    assert_eq!(page["ok"], json!(true), "{page}");
    assert_eq!(page["room"], json!("news"));
    assert_eq!(texts(&page), ["b"]);
    assert_eq!(page["next"], json!(offsets[1]));
    assert_eq!(page["more"], json!(true));
    let message = &page["messages"][0];
    assert_eq!(message["offset"], json!(offsets[1]));
    assert_eq!(message["event"], json!("chat"));
    assert!(
        message["at"]
            .as_u64()
            .is_some_and(|at| at > 1_600_000_000_000),
        "{message}"
    );
    // An offset as a string, as a client may keep it.
    let rest = call(
        &reader,
        "history",
        json!({ "room": "news", "after": offsets[1].to_string() }),
    )
    .await;
    assert_eq!(texts(&rest), ["c"]);
    assert_eq!(rest["more"], json!(false));
    // Without after: the newest.
    let newest = call(&reader, "history", json!({ "room": "news", "limit": 2 })).await;
    assert_eq!(texts(&newest), ["b", "c"]);

    // Refusals say why.
    let refusals = [
        (
            json!({ "room": "secret" }),
            "not allowed to join room secret",
        ),
        (json!({ "room": "lobby" }), "room lobby keeps no history"),
        (
            json!({ "room": "news", "limit": 0 }),
            "limit 0 is out of range: 1 to 1000",
        ),
        (
            json!({ "room": "news", "after": "x" }),
            "after must be an offset (a whole number), not \"x\"",
        ),
    ];
    for (arg, error) in refusals {
        let reply = call(&reader, "history", arg.clone()).await;
        assert_eq!(reply, json!({ "ok": false, "error": error }), "{arg}");
    }

    // A reserved event name is refused the same way in every room, and nothing is stored.
    for room in ["news", "lobby"] {
        let arg = json!({ "room": room, "event": "disconnect", "data": 1 });
        assert_eq!(
            call(&publisher, "publish", arg).await,
            json!({ "ok": false, "error": "cannot publish \"disconnect\": the event name \"disconnect\" is reserved" })
        );
    }
    let all = call(&reader, "history", json!({ "room": "news" })).await;
    assert_eq!(texts(&all), ["a", "b", "c"]);

    // A room that is not durable is published to as before, and keeps nothing.
    let ack = publish(&publisher, "lobby", "not kept").await;
    assert_eq!(ack, json!({ "ok": true, "room": "lobby" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_messages_of_each_room() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Ferrio::start(
        dir.path(),
        free_port(),
        &[("FERRIO_HISTORY_MAX_MESSAGES", "3")],
    );
    let (socket, _) = client(server.port).await;
    for i in 0..5 {
        publish(&socket, "news", &format!("n{i}")).await;
    }
    publish(&socket, "news-other", "kept").await;
    let page = call(&socket, "history", json!({ "room": "news", "after": 0 })).await;
    assert_eq!(texts(&page), ["n2", "n3", "n4"]);
    let page = call(&socket, "history", json!({ "room": "news-other" })).await;
    assert_eq!(texts(&page), ["kept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_older_than_max_age_are_gone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Ferrio::start(dir.path(), free_port(), &[("FERRIO_HISTORY_MAX_AGE", "1s")]);
    let (socket, _) = client(server.port).await;
    publish(&socket, "news", "old").await;
    // Past max_age for "old"; "new" is read well within its second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    publish(&socket, "news", "new").await;
    let page = call(&socket, "history", json!({ "room": "news", "after": 0 })).await;
    assert_eq!(texts(&page), ["new"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_publish_survives_a_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let server = Ferrio::start(dir.path(), port, &[("FERRIO_HISTORY_MAX_MESSAGES", "0")]);
    let (socket, _) = client(port).await;

    // A burst: every publish in flight at once; the server is killed as soon as the last ack
    // is in, with the writer possibly still busy with later ones.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..300 {
        let socket = socket.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let ack = publish(&socket, "news", &format!("m{i}")).await;
            if ack["ok"] == json!(true) {
                let offset = ack["offset"].as_u64().expect("offset");
                acked.lock().expect("lock").push((offset, format!("m{i}")));
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    server.kill();
    let mut acked = acked.lock().expect("lock").clone();
    acked.sort();
    assert_eq!(acked.len(), 300, "every publish was acknowledged");

    let server = Ferrio::start(dir.path(), port, &[("FERRIO_HISTORY_MAX_MESSAGES", "0")]);
    let (socket, _) = client(server.port).await;
    let mut stored = Vec::new();
    let mut after = json!(0);
    for _ in 0..10 {
        let page = call(
            &socket,
            "history",
            json!({ "room": "news", "after": after, "limit": 1000 }),
        )
        .await;
        for message in page["messages"].as_array().expect("messages") {
            let text = message["args"][0]["text"]
                .as_str()
                .expect("text")
                .to_owned();
            stored.push((message["offset"].as_u64().expect("offset"), text));
        }
        after = page["next"].clone();
        if page["more"] != json!(true) {
            break;
        }
    }
    assert_eq!(stored, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_emits_durably_and_reads_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Ferrio::start(dir.path(), free_port(), &[("FERRIO_API_KEY", KEY)]);
    let port = server.port;
    let (reader, received) = client(port).await;
    call(&reader, "join", json!({ "room": "news" })).await;

    let emit = json!({ "event": "chat", "rooms": ["news", "lobby"], "data": { "text": "api" } });
    let (status, answer) =
        tokio::task::spawn_blocking(move || http(port, "POST", "/api/v1/emit", &emit.to_string()))
            .await
            .expect("request");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["recipients"], json!(1));
    let offset = answer["offsets"]["news"]
        .as_u64()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(
        answer["offsets"].as_object().map(|o| o.len()),
        Some(1),
        "lobby keeps none"
    );
    assert_eq!(
        wait_for(&received, "chat", 1).await,
        [json!({ "text": "api" })]
    );

    let answers = tokio::task::spawn_blocking(move || {
        [
            http(port, "GET", "/api/v1/rooms/news/history?limit=10", ""),
            http(port, "GET", "/api/v1/rooms/lobby/history", ""),
            http(port, "GET", "/api/v1/rooms/news/history?after=x", ""),
            http(port, "GET", "/api/v1/rooms/news/history?limit=0", ""),
            http(port, "GET", "/api/v1/rooms/news/history?nope=1", ""),
            http(
                port,
                "GET",
                "/api/v1/rooms/news/history?namespace=/nowhere",
                "",
            ),
        ]
    })
    .await
    .expect("requests");
    let (status, page) = &answers[0];
    assert_eq!(*status, 200, "{page}");
    assert_eq!(page["namespace"], json!("/"));
    assert_eq!(page["room"], json!("news"));
    assert_eq!(page["messages"][0]["offset"], json!(offset));
    assert_eq!(page["messages"][0]["event"], json!("chat"));
    assert_eq!(page["messages"][0]["args"], json!([{ "text": "api" }]));
    assert_eq!(page["next"], json!(offset));
    assert_eq!(page["more"], json!(false));
    let expected = [
        (
            404,
            json!({ "error": "room \"lobby\" keeps no history (history.rooms lists the rooms that do)", "code": "not_found" }),
        ),
        (
            400,
            json!({ "error": "after: \"x\" is not an offset (a whole number)", "code": "invalid_query", "parameter": "after" }),
        ),
        (
            400,
            json!({ "error": "limit: \"0\" is not a number from 1 to 1000", "code": "invalid_query", "parameter": "limit" }),
        ),
        (
            400,
            json!({ "error": "nope: unknown parameter", "code": "invalid_query", "parameter": "nope" }),
        ),
        (
            404,
            json!({ "error": "namespace \"/nowhere\" is not served (server.namespaces lists the served ones)", "code": "unknown_namespace" }),
        ),
    ];
    for (answer, expected) in answers[1..].iter().zip(expected) {
        assert_eq!(answer, &expected);
    }
}

#[test]
fn without_history_the_route_says_how_to_turn_it_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Ferrio::start(
        dir.path(),
        free_port(),
        &[("FERRIO_API_KEY", KEY), ("FERRIO_HISTORY_ENABLED", "false")],
    );
    assert_eq!(
        http(server.port, "GET", "/api/v1/rooms/news/history", ""),
        (
            404,
            json!({
                "error": "room history is off: set history.enabled and history.rooms (docs/history.md)",
                "code": "not_found"
            })
        )
    );
}

#[test]
fn every_emit_answered_200_survives_a_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let env = [
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_HISTORY_MAX_MESSAGES", "0"),
    ];
    let server = Ferrio::start(dir.path(), port, &env);

    // A burst from 6 backends at once; the server is killed as soon as the last answer is in.
    let mut threads = Vec::new();
    for backend in 0..6 {
        threads.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            for i in 0..40 {
                let text = format!("b{backend}-{i}");
                let body = json!({ "event": "chat", "rooms": ["news"], "data": { "text": text } });
                let (status, answer) = http(port, "POST", "/api/v1/emit", &body.to_string());
                assert_eq!(status, 200, "{answer}");
                acked.push((answer["offsets"]["news"].as_u64().expect("offset"), text));
            }
            acked
        }));
    }
    let mut acked: Vec<(u64, String)> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("backend"))
        .collect();
    server.kill();
    acked.sort();
    assert_eq!(acked.len(), 240);

    let server = Ferrio::start(dir.path(), port, &env);
    assert_eq!(api_history(server.port, "news"), acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_across_a_sigkill_of_ferrio_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let env = [("FERRIO_RECOVERY_ENABLED", "true")];
    let server = Ferrio::start(dir.path(), port, &env);
    let retrying = ReconnectionConfig {
        enabled: true,
        attempts: Some(200),
        delay: Duration::from_millis(50),
        delay_max: Duration::from_millis(100),
        randomization_factor: 0.0,
    };
    let (a, received) = client_with(port, retrying).await;
    let id = a.id().expect("an id");
    assert!(!a.recovered());
    call(&a, "join", json!({ "room": "news" })).await;
    let (b, _) = client(port).await;
    publish(&b, "news", "p1").await;
    wait_for(&received, "chat", 1).await;
    // A durable publish is answered once its batch is on disk, and with it everything queued
    // before: a's session (its rooms) and the recovery packet of p1.
    publish(&b, "news-elsewhere", "sync").await;
    server.kill();

    let server = Ferrio::start(dir.path(), port, &env);
    let (c, _) = client(server.port).await;
    publish(&c, "news", "p2").await;
    let deadline = Instant::now() + WAIT;
    while !(a.connected() && a.recovered()) {
        assert!(Instant::now() < deadline, "a never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.id().as_deref(), Some(id.as_str()), "the same id");
    wait_for(&received, "chat", 2).await;
    // Its room is back, and nothing came twice.
    publish(&c, "news", "p3").await;
    let seen = wait_for(&received, "chat", 3).await;
    assert_eq!(
        seen,
        [
            json!({"text": "p1"}),
            json!({"text": "p2"}),
            json!({"text": "p3"})
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_user_keeps_the_permissions_of_its_token() {
    const SECRET: &str = "fedcba9876543210fedcba9876543210";
    let token = encode(
        &Header::default(),
        &json!({ "sub": "u1", "rooms": ["team_*"], "publish": ["team_*"], "exp": 4_000_000_000u64 }),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("token");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let env = [
        ("FERRIO_RECOVERY_ENABLED", "true"),
        ("FERRIO_AUTH_JWT_SECRET", SECRET),
        ("FERRIO_AUTH_ALLOW_ANONYMOUS", "true"),
        ("FERRIO_HISTORY_ROOMS", "^team_.+$"),
    ];
    let server = Ferrio::start(dir.path(), port, &env);
    let retrying = ReconnectionConfig {
        enabled: true,
        attempts: Some(200),
        delay: Duration::from_millis(50),
        delay_max: Duration::from_millis(100),
        randomization_factor: 0.0,
    };
    let (user, received) = client_as(port, retrying, Some(&token)).await;
    assert_eq!(
        call(&user, "join", json!({ "room": "team_a" })).await,
        json!({ "ok": true, "room": "team_a" })
    );
    let ack = publish(&user, "team_a", "before").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    wait_for(&received, "chat", 1).await;
    // Answered once on disk, with the recovery packet of "before" queued ahead of it.
    publish(&user, "team_b", "sync").await;
    server.kill();

    let _server = Ferrio::start(dir.path(), port, &env);
    let deadline = Instant::now() + WAIT;
    while !(user.connected() && user.recovered()) {
        assert!(Instant::now() < deadline, "the user never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Still the user of the token: its rooms and permissions, not an anonymous client's.
    let ack = publish(&user, "team_a", "after").await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    let page = call(&user, "history", json!({ "room": "team_a" })).await;
    assert_eq!(texts(&page), ["before", "after"]);
    let seen = wait_for(&received, "chat", 2).await;
    assert_eq!(seen, [json!({"text": "before"}), json!({"text": "after"})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offset_of_a_live_event_reads_on_in_the_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("FERRIO_RECOVERY_ENABLED", "true"), ("FERRIO_API_KEY", KEY)];
    let server = Ferrio::start(dir.path(), free_port(), &env);
    let port = server.port;
    let (reader, _) = client(port).await;
    // Every argument, the recovery offset last.
    let live: Arc<Mutex<Vec<Vec<Value>>>> = Arc::default();
    let sink = live.clone();
    reader.on_any(move |_socket, event| {
        if event.name == "chat" {
            sink.lock().expect("lock").push(event.payload.args.clone());
        }
    });
    call(&reader, "join", json!({ "room": "news" })).await;
    let (writer, _) = client(port).await;
    // Non-durable events in between take offsets of the same sequence.
    call(&writer, "join", json!({ "room": "lobby" })).await;

    // One live message through the publish event, one through the API.
    let ack = publish(&writer, "news", "seen 1").await;
    let published = ack["offset"].as_u64().unwrap_or_else(|| panic!("{ack}"));
    publish(&writer, "lobby", "not durable").await;
    let emit = json!({ "event": "chat", "rooms": ["news"], "data": { "text": "seen 2" } });
    let (status, answer) =
        tokio::task::spawn_blocking(move || http(port, "POST", "/api/v1/emit", &emit.to_string()))
            .await
            .expect("request");
    assert_eq!(status, 200, "{answer}");
    let emitted = answer["offsets"]["news"]
        .as_u64()
        .unwrap_or_else(|| panic!("{answer}"));
    let deadline = Instant::now() + WAIT;
    while live.lock().expect("lock").len() < 2 {
        assert!(Instant::now() < deadline, "the live events never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = live.lock().expect("lock").clone();
    let offsets: Vec<Option<u64>> = seen
        .iter()
        .map(|args| {
            args.last()
                .and_then(Value::as_str)
                .and_then(|o| o.parse().ok())
        })
        .collect();
    assert_eq!(
        offsets,
        [Some(published), Some(emitted)],
        "the live offsets are the history offsets: {seen:?}"
    );
    let last = emitted;

    // Gone while more is published, through both paths.
    reader.disconnect();
    publish(&writer, "news", "missed 1").await;
    publish(&writer, "lobby", "not durable either").await;
    let emit = json!({ "event": "chat", "rooms": ["news"], "data": { "text": "missed 2" } });
    let (status, answer) =
        tokio::task::spawn_blocking(move || http(port, "POST", "/api/v1/emit", &emit.to_string()))
            .await
            .expect("request");
    assert_eq!(status, 200, "{answer}");

    // Back as a page that mounts: the last live offset as `after`, by event and by API.
    let (page_client, _) = client(port).await;
    let page = call(
        &page_client,
        "history",
        json!({ "room": "news", "after": last.to_string() }),
    )
    .await;
    assert_eq!(texts(&page), ["missed 1", "missed 2"], "{page}");
    let target = format!("/api/v1/rooms/news/history?after={last}");
    let (status, page) = tokio::task::spawn_blocking(move || http(port, "GET", &target, ""))
        .await
        .expect("request");
    assert_eq!(status, 200, "{page}");
    assert_eq!(texts(&page), ["missed 1", "missed 2"], "{page}");
}
