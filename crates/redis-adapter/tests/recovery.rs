//! Connection state recovery across the nodes of a cluster (real `redis-server`, Ferrio nodes
//! with recovery on): a client that comes back through another node gets its session back with
//! every event it missed exactly once, in each sender's order, including events racing its
//! reconnection; a durable message's assigned offset is the same on every node.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{cluster, Node, WsClient, WAIT};
use serde_json::{json, Value};
use tokio::time::{sleep, Instant};

/// Long enough for a stray duplicate to show up.
const QUIET: Duration = Duration::from_millis(500);

/// Notes event `origin:i`, asserting each origin's events come once and in order.
fn note_in_order(by_origin: &mut BTreeMap<String, Vec<usize>>, text: &str) {
    let (origin, i) = text.split_once(':').expect("origin:i");
    let seen = by_origin.entry(origin.to_owned()).or_default();
    let i: usize = i.parse().expect("a number");
    assert!(
        seen.last().is_none_or(|&prev| prev < i),
        "{text} out of order or twice after {seen:?}"
    );
    seen.push(i);
}

/// An event as the client saw it: its name, its arguments before the offset, and the offset.
fn event(text: &str) -> (String, Vec<Value>, String) {
    let args: Vec<Value> = serde_json::from_str(
        text.strip_prefix("42")
            .unwrap_or_else(|| panic!("not an event: {text}")),
    )
    .expect("JSON");
    let (name, rest) = args.split_first().expect("a name");
    let (offset, data) = rest.split_last().expect("an offset after the data");
    (
        name.as_str().expect("a name").to_owned(),
        data.to_vec(),
        offset.as_str().expect("an offset").to_owned(),
    )
}

/// Waits until node `node` has `n` sockets in `/`.
async fn wait_sockets(node: &Node, n: usize) {
    let deadline = Instant::now() + WAIT;
    while node.io.of("/").socket_count() != n {
        assert!(Instant::now() < deadline, "the node never had {n} sockets");
        sleep(Duration::from_millis(10)).await;
    }
}

/// Emits `"<origin>:<i>"` to room `r` from `node`.
fn emit(node: &Node, origin: &str, i: usize) {
    node.io
        .to("r")
        .emit("e", format!("{origin}:{i}"))
        .expect("emit");
}

/// Reads events until `expected` of them came, then checks nothing more comes: each
/// `"<origin>:<i>"` once, each origin's in order. Returns the events by origin and the last
/// offset.
async fn receive_exactly(
    client: &mut WsClient,
    expected: usize,
) -> (BTreeMap<String, Vec<usize>>, String) {
    let mut by_origin: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut last = String::new();
    for _ in 0..expected {
        let (name, data, offset) = event(&client.recv().await);
        assert_eq!(name, "e");
        note_in_order(&mut by_origin, data[0].as_str().expect("text"));
        last = offset;
    }
    client.expect_nothing(QUIET).await;
    (by_origin, last)
}

/// A client on `node`, in room `r`, that saw one event (so that it holds an offset), then lost
/// its connection: its pid and last offset.
async fn client_gone_from(node: &Node) -> (String, String, String) {
    let mut client = WsClient::connect(node.addr).await;
    let connected = client.join_with(None).await;
    let pid = connected["pid"]
        .as_str()
        .expect("recovery is on: a pid")
        .to_owned();
    node.join(&client.sid, "r");
    node.io.to("r").emit("e", "seen:0").expect("emit");
    let (_, _, offset) = event(&client.recv().await);
    let sid = client.sid.clone();
    drop(client);
    wait_sockets(node, 0).await;
    (sid, pid, offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_through_another_node_gets_its_session_and_every_missed_event_once() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 3, true).await;
    let (sid, pid, offset) = client_gone_from(&nodes[0]).await;

    // Missed: from the node it was on, from the node it comes back through, from a third.
    for i in 1..=3 {
        for (node, origin) in nodes.iter().zip(["A", "B", "C"]) {
            emit(node, origin, i);
        }
    }
    // A message to a room it is not in, and one sent only to A's own sockets: not for it.
    nodes[1].io.to("other").emit("e", "other:1").expect("emit");
    // Let every node record everything before the client comes back (the racing case is below).
    sleep(Duration::from_millis(200)).await;

    let mut back = WsClient::connect(nodes[1].addr).await;
    let connected = back
        .join_with(Some(json!({ "pid": pid, "offset": offset })))
        .await;
    assert_eq!(
        connected["sid"],
        sid.as_str(),
        "the same session: {connected}"
    );
    assert_eq!(connected["pid"], pid.as_str());
    let (by_origin, last) = receive_exactly(&mut back, 9).await;
    for origin in ["A", "B", "C"] {
        assert_eq!(by_origin[origin], [1, 2, 3], "{origin}: {by_origin:?}");
    }
    assert!(nodes[0].io.of("/").socket_count() == 0 && nodes[1].io.of("/").socket_count() == 1);

    // Its room came with it: a later room emit from any node reaches it once, live.
    emit(&nodes[2], "C", 4);
    let (by_origin, later) = receive_exactly(&mut back, 1).await;
    assert_eq!(by_origin["C"], [4]);

    // The offsets it now holds are B's: it drops again and comes back to B from the last one.
    drop(back);
    wait_sockets(&nodes[1], 0).await;
    emit(&nodes[0], "A", 5);
    sleep(Duration::from_millis(200)).await;
    let mut again = WsClient::connect(nodes[1].addr).await;
    let connected = again
        .join_with(Some(json!({ "pid": pid, "offset": later })))
        .await;
    assert_eq!(connected["sid"], sid.as_str(), "{connected}");
    let (by_origin, _) = receive_exactly(&mut again, 1).await;
    assert_eq!(by_origin["A"], [5]);
    assert_ne!(last, later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_racing_a_reconnection_through_another_node_are_neither_lost_nor_doubled() {
    let redis = redis_or_skip!();
    let nodes = std::sync::Arc::new(cluster(&redis, 3, true).await);
    for round in 0..3 {
        let (sid, pid, offset) = client_gone_from(&nodes[round % 3]).await;
        let through = (round + 1) % 3;
        // A bounded burst from every node, started as the client reconnects.
        const BURST: usize = 60;
        let burst = {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                for i in 1..=BURST {
                    for (node, origin) in nodes.iter().zip(["A", "B", "C"]) {
                        emit(node, origin, i);
                    }
                    if i % 10 == 0 {
                        tokio::task::yield_now().await;
                        sleep(Duration::from_millis(2)).await;
                    }
                }
            })
        };
        sleep(Duration::from_millis(3)).await;
        let mut back = WsClient::connect(nodes[through].addr).await;
        let connected = back
            .join_with(Some(json!({ "pid": pid, "offset": offset })))
            .await;
        assert_eq!(connected["sid"], sid.as_str(), "round {round}: {connected}");
        burst.await.expect("the burst ran");
        let (by_origin, _) = receive_exactly(&mut back, 3 * BURST).await;
        for origin in ["A", "B", "C"] {
            assert_eq!(
                by_origin[origin],
                (1..=BURST).collect::<Vec<_>>(),
                "round {round}, {origin}"
            );
        }
        drop(back);
        wait_sockets(&nodes[through], 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_no_node_holds_starts_afresh_without_waiting_for_the_timeout() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 2, true).await;
    let started = Instant::now();
    let mut client = WsClient::connect(nodes[1].addr).await;
    let connected = client
        .join_with(Some(json!({ "pid": "nobody-has-it", "offset": "0-0" })))
        .await;
    assert!(connected["sid"].is_string(), "{connected}");
    assert_ne!(connected["pid"], "nobody-has-it");
    // Every other node said no: no wait for the request timeout (3 s here).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    client.expect_nothing(QUIET).await;

    // A session taken once is not handed over twice.
    let (_sid, pid, offset) = client_gone_from(&nodes[0]).await;
    let mut first = WsClient::connect(nodes[1].addr).await;
    let resumed = first
        .join_with(Some(json!({ "pid": pid, "offset": offset })))
        .await;
    let mut second = WsClient::connect(nodes[0].addr).await;
    let fresh = second
        .join_with(Some(json!({ "pid": pid, "offset": offset })))
        .await;
    assert_eq!(resumed["pid"], pid.as_str());
    assert_ne!(fresh["pid"], pid.as_str());
    assert_ne!(fresh["sid"], resumed["sid"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_offset_is_the_same_on_every_node_when_offsets_are_shared() {
    let redis = redis_or_skip!();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(Node::start_recovering_sharing_offsets(&redis.url()).await);
    }
    redis.wait_nodes(2).await;
    let mut b = nodes[1].client().await;
    nodes[1].join(&b.sid, "r");
    nodes[0]
        .io
        .to("r")
        .with_offset(42)
        .emit("durable", "x")
        .expect("emit");
    b.expect(r#"42["durable","x","42"]"#).await;
    // A fresh offset stays each node's own.
    nodes[0].io.to("r").emit("fresh", "y").expect("emit");
    let (name, _, offset) = event(&b.recv().await);
    assert_eq!(name, "fresh");
    assert!(
        offset.parse::<u64>().is_err(),
        "a node-local offset: {offset}"
    );
    b.expect_nothing(QUIET).await;
}

/// The official socket.io-client v4 (`tests/redis/recovering-client.js`), one JSON object per
/// line on its stdout.
mod official {
    use std::path::PathBuf;
    use std::process::Stdio;

    use serde_json::Value;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
    use tokio::process::{Child, ChildStdin, ChildStdout, Command};
    use tokio::time::timeout;

    use super::WAIT;

    fn repo() -> PathBuf {
        crate::common::repo_path("")
    }

    /// Whether `node` and the client package are there (see `common::node_packages_ready`).
    pub(super) fn ready() -> bool {
        crate::common::node_packages_ready(&repo().join("tests/interop"), "sio-client-v4")
    }

    pub(super) struct Client {
        _child: Child,
        stdin: ChildStdin,
        lines: Lines<BufReader<ChildStdout>>,
    }

    impl Client {
        pub(super) fn start(url: &str) -> Self {
            let mut child = Command::new("node")
                .arg(repo().join("tests/redis/recovering-client.js"))
                .arg(url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn node");
            let stdin = child.stdin.take().expect("stdin");
            let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
            Self {
                _child: child,
                stdin,
                lines,
            }
        }

        /// The next thing the client reports, if one comes within `limit`.
        pub(super) async fn next_within(&mut self, limit: std::time::Duration) -> Option<Value> {
            let line = timeout(limit, self.lines.next_line()).await.ok()?;
            let line = line.expect("read").expect("the client is running");
            Some(serde_json::from_str(&line).expect("JSON"))
        }

        pub(super) async fn next(&mut self) -> Value {
            self.next_within(WAIT)
                .await
                .unwrap_or_else(|| panic!("the client reported nothing within {WAIT:?}"))
        }

        pub(super) async fn send(&mut self, line: &str) {
            self.stdin
                .write_all(format!("{line}\n").as_bytes())
                .await
                .expect("written");
            self.stdin.flush().await.expect("flushed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_recovers_through_another_node_with_racing_events_once_each() {
    if !official::ready() {
        return;
    }
    let redis = redis_or_skip!();
    let nodes = std::sync::Arc::new(cluster(&redis, 3, true).await);
    let url = |node: &Node| format!("http://{}", node.addr);
    let mut client = official::Client::start(&url(&nodes[0]));
    let connected = client.next().await;
    assert_eq!(connected["connect"]["recovered"], false, "{connected}");
    let id = connected["connect"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    nodes[0].join(&id, "r");
    emit(&nodes[0], "seen", 0);
    assert_eq!(client.next().await["args"][0], "seen:0");

    // Its network fails (the server side of the connection is cut, no goodbye).
    nodes[0]
        .io
        .of("/")
        .socket(&ferrio_socketio::SocketId::from_string(id.as_str()))
        .expect("on A")
        .abort_transport();
    assert_eq!(client.next().await["disconnect"], "transport close");
    wait_sockets(&nodes[0], 0).await;
    for i in 1..=3 {
        for (node, origin) in nodes.iter().zip(["A", "B", "C"]) {
            emit(node, origin, i);
        }
    }
    // Back through B while every node emits a burst.
    const BURST: usize = 40;
    let burst = {
        let nodes = nodes.clone();
        tokio::spawn(async move {
            for i in 4..4 + BURST {
                for (node, origin) in nodes.iter().zip(["A", "B", "C"]) {
                    emit(node, origin, i);
                }
                sleep(Duration::from_millis(1)).await;
            }
        })
    };
    client.send(&format!("connect {}", url(&nodes[1]))).await;
    let mut by_origin: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut reconnected = None;
    while by_origin.values().map(Vec::len).sum::<usize>() < 3 * (3 + BURST) {
        let report = client.next().await;
        if let Some(connect) = report.get("connect") {
            assert!(reconnected.is_none(), "connected twice: {report}");
            reconnected = Some(connect.clone());
            continue;
        }
        assert!(
            reconnected.is_some(),
            "an event before the connection: {report}"
        );
        assert_eq!(report["event"], "e", "{report}");
        note_in_order(&mut by_origin, report["args"][0].as_str().expect("text"));
    }
    burst.await.expect("the burst ran");
    let reconnected = reconnected.expect("reconnected");
    assert_eq!(
        reconnected["recovered"], true,
        "socket.recovered: {reconnected}"
    );
    assert_eq!(reconnected["id"], id.as_str(), "the same id");
    for origin in ["A", "B", "C"] {
        assert_eq!(
            by_origin[origin],
            (1..4 + BURST).collect::<Vec<_>>(),
            "{origin}"
        );
    }
    assert_eq!(client.next_within(QUIET).await, None, "nothing more");
    // Its room came along: a later emit from A reaches it on B, once.
    emit(&nodes[0], "A", 100);
    assert_eq!(client.next().await["args"][0], "A:100");
    assert_eq!(client.next_within(QUIET).await, None);
    client.send("exit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_offset_stays_on_its_node_unless_offsets_are_shared() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 2, true).await;
    let mut b = nodes[1].client().await;
    nodes[1].join(&b.sid, "r");
    nodes[0]
        .io
        .to("r")
        .with_offset(42)
        .emit("durable", "x")
        .expect("emit");
    // Node 1's own store could hand out 42 for a packet of its own: it numbers this one itself.
    let (name, args, offset) = event(&b.recv().await);
    assert_eq!((name.as_str(), args), ("durable", vec![json!("x")]));
    assert!(
        offset.parse::<u64>().is_err(),
        "a node-local offset: {offset}"
    );
    b.expect_nothing(QUIET).await;
}
