//! Room history in Redis for every node (`history.store = "redis"`): `ferrio serve` nodes on a
//! real `redis-server`, both started by the test on free ports of 127.0.0.1. A message
//! published on one node (the `publish` event, the HTTP API) is read on another (the API, the
//! `history` event) in offset order, pages and retention hold cluster-wide, acknowledged
//! messages survive a SIGKILL of Redis and of the node, and while Redis is down emits to
//! durable rooms answer 503 and nothing else is disturbed.
//!
//! Without `redis-server` these tests are skipped loudly, unless `CI=true`, where they fail.
//! Every wait is bounded.

mod cluster_common;
mod process;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_common::{
    eventually, free_port, http_post_json, FerrioNode, RawSocket, RedisServer, QUIET, WAIT,
};
use ferrio_client::{ClientConfig, Manager, Payload, Socket, TransportKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// The API key of the nodes of these tests.
const KEY: &str = "cluster-history-key-0123456789abcdef";

/// A node on `redis_url` with the history of rooms `news*` in Redis (its own recovery file in
/// `dir`), rooms `news*` and `lobby` public to join and publish, and `env` on top.
fn node(redis_url: &str, dir: &Path, name: &str, env: &[(&str, &str)]) -> FerrioNode {
    let path = dir.join(format!("{name}.db")).display().to_string();
    let mut all = vec![
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_HISTORY_ENABLED", "true"),
        ("FERRIO_HISTORY_STORE", "redis"),
        ("FERRIO_HISTORY_ROOMS", "^news.*$"),
        ("FERRIO_HISTORY_PATH", path.as_str()),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^news.*$,^lobby$"),
        ("FERRIO_ROOMS_PUBLIC_PUBLISH", "^news.*$,^lobby$"),
    ];
    all.extend_from_slice(env);
    FerrioNode::start(redis_url, &all)
}

/// `POST /api/v1/emit` of `chat {text}` to `room`: status and answer.
fn emit(port: u16, room: &str, text: &str) -> std::io::Result<(u16, Value)> {
    let body = json!({ "event": "chat", "rooms": [room], "data": { "text": text } });
    let (status, answer) = http_post_json(port, "/api/v1/emit", KEY, &body)?;
    let answer = serde_json::from_str(&answer).unwrap_or(Value::String(answer));
    Ok((status, answer))
}

/// An emit that must succeed: the room's offset.
fn emit_ok(port: u16, room: &str, text: &str) -> u64 {
    let (status, answer) = emit(port, room, text).expect("answered");
    assert_eq!(status, 200, "{answer}");
    answer["offsets"][room]
        .as_u64()
        .unwrap_or_else(|| panic!("an offset in {answer}"))
}

/// `GET /api/v1/rooms/{room}/history?{query}`: status and page.
fn api_page(port: u16, room: &str, query: &str) -> (u16, Value) {
    let target = format!("/api/v1/rooms/{room}/history?{query}");
    let answer =
        process::request(port, "GET", &target, &[("X-API-Key", KEY)], "").expect("answered");
    (answer.status, answer.json())
}

/// (offset, text) of each message of a page.
fn entries(page: &Value) -> Vec<(u64, String)> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages in {page}"))
        .iter()
        .map(|m| {
            (
                m["offset"].as_u64().expect("offset"),
                m["args"][0]["text"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// Every message of a room through the API, page by page of `limit`.
fn api_history(port: u16, room: &str, limit: usize) -> Vec<(u64, String)> {
    let mut all = Vec::new();
    let mut after = 0;
    for _ in 0..1000 {
        let (status, page) = api_page(port, room, &format!("after={after}&limit={limit}"));
        assert_eq!(status, 200, "{page}");
        all.extend(entries(&page));
        after = page["next"].as_u64().unwrap_or(after);
        if page["more"] != json!(true) {
            return all;
        }
    }
    panic!("more than 1000 pages");
}

/// A client of `node` over WebSocket that records its `chat` events' texts.
async fn client(node: &FerrioNode) -> (Socket, mpsc::UnboundedReceiver<String>) {
    let mut config = ClientConfig::new(node.url());
    config.transports = vec![TransportKind::WebSocket];
    config.reconnection.enabled = false;
    let manager = Manager::new(config).expect("a client configuration");
    let socket = manager.socket("/").expect("the main namespace");
    let (tx, chats) = mpsc::unbounded_channel();
    socket.on("chat", move |_socket, event| {
        let data: Value = event.payload.get(0).unwrap_or(Value::Null);
        let _ = tx.send(data["text"].as_str().unwrap_or("?").to_owned());
    });
    tokio::time::timeout(WAIT, socket.connect())
        .await
        .expect("connected in time")
        .expect("connected");
    (socket, chats)
}

/// Emits `event(arg)` and returns the ack's first argument.
async fn call(socket: &Socket, event: &str, arg: Value) -> Value {
    let answer = socket
        .emit_with_ack(event, Payload::json(arg).expect("JSON"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{event}: no answer: {e}"));
    answer.get(0).expect("one JSON argument")
}

/// The next `chat` text within [`WAIT`].
async fn next_chat(chats: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, chats.recv())
        .await
        .expect("a chat in time")
        .expect("the socket is alive")
}

/// Runs blocking HTTP calls off the runtime's threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_published_on_one_node_is_read_on_the_other_in_offset_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let a = node(&redis.url(), dir.path(), "a", &[]);
    let b = node(&redis.url(), dir.path(), "b", &[]);
    a.wait_cluster_size(2).await;

    // Through the `publish` event on A, the API on A and the API on B, interleaved.
    let (publisher, _) = client(&a).await;
    let mut published = Vec::new();
    for i in 0..3 {
        let text = format!("event-{i}");
        let ack = call(
            &publisher,
            "publish",
            json!({ "room": "news", "event": "chat", "data": { "text": text } }),
        )
        .await;
        assert_eq!(ack["ok"], json!(true), "{ack}");
        published.push((ack["offset"].as_u64().expect("offset"), text));
        let (port_a, port_b) = (a.port, b.port);
        let text_a = format!("api-a-{i}");
        let text_b = format!("api-b-{i}");
        let (offset_a, offset_b) = blocking(move || {
            (
                emit_ok(port_a, "news", &text_a),
                emit_ok(port_b, "news", &text_b),
            )
        })
        .await;
        published.push((offset_a, format!("api-a-{i}")));
        published.push((offset_b, format!("api-b-{i}")));
    }
    let offsets: Vec<u64> = published.iter().map(|(o, _)| *o).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "one sequence for the cluster, in publishing order: {offsets:?}"
    );

    // On B through the API: pages of 4 with `next` and `more`, and the same on A.
    let port_b = b.port;
    let on_b = blocking(move || api_history(port_b, "news", 4)).await;
    assert_eq!(on_b, published);
    let port_a = a.port;
    let on_a = blocking(move || api_history(port_a, "news", 1000)).await;
    assert_eq!(on_a, published, "every node reads the same history");
    let after = published[1].0;
    let (status, page) =
        blocking(move || api_page(port_b, "news", &format!("after={after}&limit=3"))).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(entries(&page), published[2..5]);
    assert_eq!(page["next"], json!(published[4].0));
    assert_eq!(page["more"], json!(true));
    let (_, newest) = blocking(move || api_page(port_b, "news", "limit=2")).await;
    assert_eq!(
        entries(&newest),
        published[7..],
        "without after: the newest, oldest first"
    );
    assert_eq!(newest["more"], json!(false));

    // On B through the `history` event.
    let (reader, _) = client(&b).await;
    let page = call(
        &reader,
        "history",
        json!({ "room": "news", "after": published[5].0.to_string(), "limit": 2 }),
    )
    .await;
    assert_eq!(page["ok"], json!(true), "{page}");
    assert_eq!(entries(&page), published[6..8]);
    assert_eq!(page["next"], json!(published[7].0));
    assert_eq!(page["more"], json!(true));
    let rest = call(
        &reader,
        "history",
        json!({ "room": "news", "after": page["next"], "limit": 100 }),
    )
    .await;
    assert_eq!(entries(&rest), published[8..]);
    assert_eq!(rest["more"], json!(false));

    // The test's Redis keeps nothing on disk: the node says so at start and in /ready.
    assert!(
        b.ready().await.contains(
            "history: redis up, NOT on disk before acknowledged (appendonly no, appendfsync \
             everysec)\n"
        ),
        "{}",
        b.ready().await
    );
    eventually("the start-up warning", || async {
        a.log()
            .contains("history: Redis answers appends before they are on disk")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_count_holds_for_the_whole_cluster() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("FERRIO_HISTORY_MAX_MESSAGES", "5")];
    let a = node(&redis.url(), dir.path(), "a", &env);
    let b = node(&redis.url(), dir.path(), "b", &env);
    let (port_a, port_b) = (a.port, b.port);
    let published = blocking(move || {
        (0..8)
            .map(|i| {
                let port = if i % 2 == 0 { port_a } else { port_b };
                let text = format!("m{i}");
                (emit_ok(port, "news-capped", &text), text)
            })
            .collect::<Vec<_>>()
    })
    .await;
    for port in [port_a, port_b] {
        let kept = blocking(move || api_history(port, "news-capped", 1000)).await;
        assert_eq!(kept, published[3..], "the 5 newest of both nodes' messages");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_emit_survives_a_sigkill_of_redis_and_of_the_node() {
    let Some(mut redis) = RedisServer::start_durable() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("FERRIO_HISTORY_MAX_MESSAGES", "0")];
    let a = node(&redis.url(), dir.path(), "a", &env);
    assert!(
        a.ready().await.contains(
            "history: redis up, on disk before acknowledged (appendonly yes, appendfsync \
             always)\n"
        ),
        "{}",
        a.ready().await
    );

    // A burst from 6 backends; Redis and the node are killed while it is under way.
    let port = a.port;
    let answered = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut backends = Vec::new();
    for backend in 0..6 {
        let (answered, acked) = (answered.clone(), acked.clone());
        backends.push(std::thread::spawn(move || {
            for i in 0..200 {
                let text = format!("b{backend}-{i}");
                match emit(port, "news", &text) {
                    Ok((200, answer)) => {
                        let offset = answer["offsets"]["news"].as_u64().expect("offset");
                        acked.lock().expect("lock").push((offset, text));
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    // 503 once Redis is gone, then no answer once the node is gone.
                    Ok((503, answer)) => assert_eq!(answer["code"], json!("history_unavailable")),
                    Ok((status, answer)) => panic!("{status} {answer}"),
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + WAIT;
    while answered.load(Ordering::SeqCst) < 150 {
        assert!(Instant::now() < deadline, "the burst never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    redis.kill();
    a.kill();
    for backend in backends {
        backend.join().expect("backend");
    }
    let mut acked = std::mem::take(&mut *acked.lock().expect("lock"));
    acked.sort();
    assert!(acked.len() >= 150, "{} acknowledged", acked.len());

    redis.spawn();
    let b = node(&redis.url(), dir.path(), "a", &env);
    let port = b.port;
    let stored = blocking(move || api_history(port, "news", 1000)).await;
    let missing: Vec<&(u64, String)> = acked.iter().filter(|m| !stored.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged messages lost: {missing:?}",
        missing.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_durable_emits_answer_503_and_nothing_else_is_disturbed() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let a = node(&redis.url(), dir.path(), "a", &[]);
    let (news_member, mut news) = client(&a).await;
    assert_eq!(
        call(&news_member, "join", json!({ "room": "news" })).await["ok"],
        json!(true)
    );
    let (lobby_member, mut lobby) = client(&a).await;
    assert_eq!(
        call(&lobby_member, "join", json!({ "room": "lobby" })).await["ok"],
        json!(true)
    );
    let (publisher, _) = client(&a).await;
    let port = a.port;
    blocking(move || emit_ok(port, "news", "before")).await;
    assert_eq!(next_chat(&mut news).await, "before");

    redis.kill();
    let (status, answer) = blocking(move || emit(port, "news", "lost").expect("answered")).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], json!("history_unavailable"), "{answer}");
    let ack = call(
        &publisher,
        "publish",
        json!({ "room": "news", "event": "chat", "data": { "text": "lost too" } }),
    )
    .await;
    assert_eq!(ack["ok"], json!(false), "{ack}");
    assert!(
        ack["error"]
            .as_str()
            .is_some_and(|e| e
                .starts_with("the message could not be stored: the history store is unreachable")),
        "{ack}"
    );
    let (status, page) = blocking(move || api_page(port, "news", "limit=10")).await;
    assert_eq!(status, 503, "{page}");
    assert_eq!(page["code"], json!("history_unavailable"));

    // Rooms without history go on (on this node), and the node still answers and says why.
    let (status, answer) =
        blocking(move || emit(port, "lobby", "still here").expect("answered")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(next_chat(&mut lobby).await, "still here");
    let ack = call(
        &publisher,
        "publish",
        json!({ "room": "lobby", "event": "chat", "data": { "text": "and here" } }),
    )
    .await;
    assert_eq!(ack["ok"], json!(true), "{ack}");
    assert_eq!(next_chat(&mut lobby).await, "and here");
    let (status, ready) = a.ready_answer().await;
    assert_eq!(status, 200);
    assert!(
        ready.contains(
            "history: redis down (emits to durable rooms answer 503 history_unavailable)\n"
        ),
        "{ready}"
    );
    // Nothing of the refused messages reached anyone.
    if let Ok(Some(text)) = tokio::time::timeout(QUIET, news.recv()).await {
        panic!("a refused message was delivered: {text}");
    }

    // Redis back: durable emits work again, without a restart of the node.
    redis.restart();
    let mut healed = false;
    for _ in 0..100 {
        if let Ok((200, _)) = blocking(move || emit(port, "news", "after")).await {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healed, "durable emits work again once Redis is back");
    assert_eq!(next_chat(&mut news).await, "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_recovery_offsets_never_equal_a_history_offset_and_recovery_resumes_in_place() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [("FERRIO_RECOVERY_ENABLED", "true")];
    let a = node(&redis.url(), dir.path(), "a", &env);
    let b = node(&redis.url(), dir.path(), "b", &env);
    a.wait_cluster_size(2).await;

    let mut x = RawSocket::connect(a.port, None).await;
    let (sid, pid) = (x.connected["sid"].clone(), x.connected["pid"].clone());
    x.send(r#"421["join",{"room":"news"}]"#).await;
    assert_eq!(x.text().await, r#"431[{"ok":true,"room":"news"}]"#);
    x.send(r#"422["join",{"room":"lobby"}]"#).await;
    assert_eq!(x.text().await, r#"432[{"ok":true,"room":"lobby"}]"#);

    // Durable messages (history offsets, from Redis) and plain ones (this node's recovery
    // offsets), published on this node and on the other one, interleaved.
    let (port_a, port_b) = (a.port, b.port);
    let send_round = move |round: &str| {
        let news_a = emit_ok(port_a, "news", &format!("news-a-{round}"));
        let (status, _) = emit(port_a, "lobby", &format!("lobby-a-{round}")).expect("answered");
        assert_eq!(status, 200);
        emit_ok(port_b, "news", &format!("news-b-{round}"));
        let (status, _) = emit(port_b, "lobby", &format!("lobby-b-{round}")).expect("answered");
        assert_eq!(status, 200);
        news_a
    };
    let mut seen = Vec::new();
    for round in 0..5 {
        let round = round.to_string();
        let news_offset = blocking({
            let round = round.clone();
            move || send_round(&round)
        })
        .await;
        for expected in ["news-a", "lobby-a", "news-b", "lobby-b"] {
            let args = x.event("chat").await;
            assert_eq!(
                args[0]["text"],
                json!(format!("{expected}-{round}")),
                "{args:?}"
            );
            let offset = args[1].as_str().expect("an offset").to_owned();
            if expected == "news-a" {
                assert_eq!(
                    offset,
                    news_offset.to_string(),
                    "the live event's offset is its history offset"
                );
            }
            seen.push(offset);
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an offset was used twice: {seen:?}"
    );

    // Disconnected: what is published meanwhile comes back once, in order, from where it was.
    let last = seen.last().cloned().expect("offsets");
    drop(x);
    eventually("a to see the socket go", || async {
        a.metrics()
            .await
            .lines()
            .any(|line| line == "ferrio_sockets{namespace=\"/\"} 0")
    })
    .await;
    blocking(move || send_round("missed")).await;
    let mut back = RawSocket::connect(a.port, Some(json!({ "pid": pid, "offset": last }))).await;
    assert_eq!(back.connected["sid"], sid, "recovered: {}", back.connected);
    for expected in ["news-a", "lobby-a", "news-b", "lobby-b"] {
        let args = back.event("chat").await;
        assert_eq!(
            args[0]["text"],
            json!(format!("{expected}-missed")),
            "{args:?}"
        );
    }
    assert_eq!(back.text_within(QUIET).await, None, "nothing twice");
}

#[test]
fn a_node_refuses_to_start_while_redis_cannot_hand_out_its_offsets() {
    if RedisServer::start().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // A port where nothing listens.
    let nowhere = format!("redis://127.0.0.1:{}/", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FERRIO_SERVER_HOST", "127.0.0.1")
        .env("FERRIO_SERVER_PORT", free_port().to_string())
        .env("FERRIO_CLUSTER_ADAPTER", "redis")
        .env("FERRIO_CLUSTER_REDIS_URL", &nowhere)
        .env("FERRIO_HISTORY_ENABLED", "true")
        .env("FERRIO_HISTORY_STORE", "redis")
        .env("FERRIO_HISTORY_ROOMS", "^news$")
        .args(["serve", "--no-env-file"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferrio starts");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferrio kept running without Redis");
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr read");
    assert!(!status.success());
    let line = stderr.lines().next().unwrap_or_default();
    assert!(
        line.starts_with(
            "Error: history.store = \"redis\": Redis (cluster.redis_url) is unreachable ("
        ),
        "{stderr}"
    );
    assert!(
        line.ends_with(
            "); this node's recovery offsets are drawn from it, so the node cannot start before \
             Redis answers"
        ),
        "{stderr}"
    );
}
