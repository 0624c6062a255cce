//! A Ferrio node and a Node Socket.IO node (`socket.io` + the official `@socket.io/redis-adapter`)
//! sharing one `redis-server`, and the official `@socket.io/redis-emitter` reaching Ferrio
//! clients. The npm packages are those of `tests/redis/package.json`, installed with `npm ci`
//! when `node_modules` is missing.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Frame, Node, RedisServer, WsClient, WAIT};
use ferrio_socketio::Payload;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

const QUIET: Duration = Duration::from_millis(300);

fn npm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/redis")
}

/// Whether `node` and the npm packages are there (installing them once if needed).
fn node_ready() -> bool {
    common::node_packages_ready(&npm_dir(), "@socket.io/redis-adapter")
}

/// A Node Socket.IO server with the official Redis adapter, killed when dropped.
struct NodeServer {
    _child: Child,
    addr: std::net::SocketAddr,
}

impl NodeServer {
    async fn start(redis_url: &str) -> Self {
        let mut child = Command::new("node")
            .arg("node-server.js")
            .arg(redis_url)
            .current_dir(npm_dir())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = timeout(WAIT, lines.next_line())
            .await
            .expect("node started in time")
            .expect("read")
            .expect("a line");
        let port: u16 = line
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected output: {line}"));
        Self {
            _child: child,
            addr: ([127, 0, 0, 1], port).into(),
        }
    }

    async fn client(&self) -> WsClient {
        let mut client = WsClient::connect(self.addr).await;
        client.join().await;
        client
    }
}

/// A Redis, a Ferrio node and a Node node, both subscribed.
async fn mixed() -> Option<(RedisServer, Node, NodeServer)> {
    if !node_ready() {
        return None;
    }
    let redis = RedisServer::start().await?;
    let ferrio = Node::start(&redis.url()).await;
    let node = NodeServer::start(&redis.url()).await;
    redis.wait_nodes(2).await;
    Some((redis, ferrio, node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_cross_between_ferrio_and_node_both_ways() {
    let Some((_redis, ferrio, node)) = mixed().await else {
        return;
    };
    let mut f = ferrio.client().await;
    let mut n = node.client().await;

    // Ferrio -> Node, JSON and binary.
    ferrio.io.emit("hello", json!({ "a": 1 })).expect("emit");
    f.expect(r#"42["hello",{"a":1}]"#).await;
    n.expect(r#"42["hello",{"a":1}]"#).await;
    let mut payload = Payload::new();
    payload.push_binary(vec![9u8, 8]);
    ferrio
        .io
        .of("/")
        .broadcast()
        .emit_payload("blob", payload)
        .expect("emit");
    for client in [&mut f, &mut n] {
        client
            .expect(r#"451-["blob",{"_placeholder":true,"num":0}]"#)
            .await;
        assert_eq!(client.frame().await, Frame::Binary(vec![9, 8]));
    }

    // Node -> Ferrio.
    n.send(r#"42["relay","from-node",{"x":[1,"two",null]},3.5]"#)
        .await;
    for client in [&mut f, &mut n] {
        client
            .expect(r#"42["from-node",{"x":[1,"two",null]},3.5]"#)
            .await;
    }

    // Node -> a room with a Ferrio socket in it.
    ferrio.join(&f.sid, "vip");
    n.send(r#"42["relay-to","vip","v",1]"#).await;
    f.expect(r#"42["v",1]"#).await;
    // Ferrio -> a room with a Node socket in it.
    n.send(r#"421["join","club"]"#).await;
    n.expect("431[]").await;
    ferrio.io.to("club").emit("c", 2).expect("emit");
    n.expect(r#"42["c",2]"#).await;

    f.expect_nothing(QUIET).await;
    n.expect_nothing(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_and_acks_span_ferrio_and_node() {
    let Some((_redis, ferrio, node)) = mixed().await else {
        return;
    };
    let mut f = ferrio.client().await;
    let mut n = node.client().await;
    ferrio.join(&f.sid, "vip");

    // Ferrio asks: the Node node answers REMOTE_FETCH.
    let sockets = ferrio.io.of("/").broadcast().fetch_sockets().await;
    let mut ids: Vec<String> = sockets.iter().map(|s| s.id.to_string()).collect();
    ids.sort();
    let mut expected = vec![f.sid.clone(), n.sid.clone()];
    expected.sort();
    assert_eq!(ids, expected);

    // Node asks: Ferrio answers.
    n.send(r#"421["fetch"]"#).await;
    let answer = n.recv().await;
    let list: Value =
        serde_json::from_str(answer.strip_prefix("431").expect("an ack")).expect("JSON");
    let ferrio_entry = list[0]
        .as_array()
        .expect("a list")
        .iter()
        .find(|s| s["id"] == f.sid.as_str())
        .unwrap_or_else(|| panic!("Ferrio's socket in {list}"))
        .clone();
    let mut rooms = vec![f.sid.clone(), "vip".to_owned()];
    rooms.sort();
    assert_eq!(ferrio_entry["rooms"], json!(rooms));

    // ALL_ROOMS, both ways.
    n.send(r#"421["join","club"]"#).await;
    n.expect("431[]").await;
    let rooms = ferrio.redis.all_rooms("/").await;
    for room in [&f.sid, &n.sid, "vip", "club"] {
        assert!(rooms.iter().any(|r| &**r == room), "{room} in {rooms:?}");
    }
    assert_eq!(ferrio.redis.server_count("/").await, 2);
    n.send(r#"422["all-rooms"]"#).await;
    let answer = n.recv().await;
    let rooms: Value =
        serde_json::from_str(answer.strip_prefix("432").expect("an ack")).expect("JSON");
    for room in [&f.sid, &n.sid, "vip", "club"] {
        assert!(
            rooms[0]
                .as_array()
                .expect("a list")
                .iter()
                .any(|r| r == room),
            "{room} in {rooms}"
        );
    }

    // Node broadcasts asking for acks: the Ferrio client's answer reaches it.
    n.send(r#"423["ask"]"#).await;
    for (client, answer) in [(&mut f, "\"fa\""), (&mut n, "\"na\"")] {
        let ask = client.recv().await;
        let id = ask
            .strip_prefix("42")
            .and_then(|rest| rest.strip_suffix(r#"["q",1]"#))
            .unwrap_or_else(|| panic!("an ask: {ask}"));
        client.send(&format!("43{id}[{answer}]")).await;
    }
    n.expect(r#"433[["fa","na"]]"#).await;

    // Ferrio broadcasts asking for acks: the Node client's answer comes back.
    let io = ferrio.io.clone();
    let acks = tokio::spawn(async move {
        io.of("/")
            .broadcast()
            .timeout(Duration::from_secs(3))
            .emit_with_ack("q2", Payload::new())
            .await
            .expect("emit")
    });
    for (client, answer) in [(&mut f, "\"fa\""), (&mut n, "\"na\"")] {
        let ask = client.recv().await;
        let id = ask
            .strip_prefix("42")
            .and_then(|rest| rest.strip_suffix(r#"["q2"]"#))
            .unwrap_or_else(|| panic!("an ask: {ask}"));
        client.send(&format!("43{id}[{answer}]")).await;
    }
    let mut answers: Vec<String> = acks
        .await
        .expect("join")
        .iter()
        .map(|r| {
            r.result
                .as_ref()
                .expect("answered")
                .get::<String>(0)
                .expect("a string")
        })
        .collect();
    answers.sort();
    assert_eq!(answers, ["fa", "na"]);

    // Node makes every socket join a room: the Ferrio socket joins.
    n.send(r#"42["join-all","everyone"]"#).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ferrio
        .io
        .of("/")
        .adapter()
        .rooms()
        .iter()
        .any(|r| &**r == "everyone")
    {
        assert!(tokio::time::Instant::now() < deadline, "never joined");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_emitter_reaches_ferrio_clients() {
    if !node_ready() {
        return;
    }
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let ferrio = Node::start(&redis.url()).await;
    redis.wait_nodes(1).await;
    let mut vip = ferrio.client().await;
    let mut other = ferrio.client().await;
    ferrio.join(&vip.sid, "vip");

    let status = timeout(
        WAIT,
        Command::new("node")
            .arg("emit.js")
            .arg(redis.url())
            .current_dir(npm_dir())
            .kill_on_drop(true)
            .status(),
    )
    .await
    .expect("the emitter finished in time")
    .expect("ran node");
    assert!(status.success());

    for client in [&mut vip, &mut other] {
        client
            .expect(r#"451-["from-emitter",{"n":1},{"_placeholder":true,"num":0}]"#)
            .await;
        assert_eq!(client.frame().await, Frame::Binary(vec![1, 2, 3]));
    }
    vip.expect(r#"42["vip-only","x"]"#).await;
    other.expect(r#"42["not-vip",2.5]"#).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rooms = ferrio
            .io
            .of("/")
            .adapter()
            .socket_rooms(&ferrio_socketio::SocketId::from_string(vip.sid.as_str()));
        if rooms.iter().any(|r| &**r == "vip2") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "socketsJoin never applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    vip.expect_nothing(QUIET).await;
    other.expect_nothing(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emits_cross_between_ferrio_and_node_both_ways() {
    let Some((_redis, ferrio, node)) = mixed().await else {
        return;
    };
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    ferrio.io.on_server_side_emit("from-node", move |event| {
        let _ = events.send(event.args);
    });
    ferrio.io.on_server_side_emit("question", |event| {
        let n = event.args.first().and_then(Value::as_i64).unwrap_or(0);
        if let Some(ack) = event.ack {
            ack.send(json!({ "ferrio": n + 1 }));
        }
    });
    let mut n = node.client().await;

    // Node -> Ferrio, without an acknowledgement.
    n.send(r#"42["server-emit",{"a":1},"two"]"#).await;
    let args = timeout(WAIT, received.recv())
        .await
        .expect("received in time")
        .expect("an event");
    assert_eq!(args, vec![json!({ "a": 1 }), json!("two")]);

    // Node -> Ferrio with an acknowledgement: Ferrio's answer is the only one.
    n.send(r#"421["server-ask"]"#).await;
    n.expect(r#"431[[{"ferrio":42}]]"#).await;

    // Ferrio -> Node, without and with an acknowledgement.
    ferrio
        .io
        .server_side_emit("from-ferrio", vec![json!([1, 2]), json!(null)])
        .expect("emit");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        n.send(r#"422["last-server-event"]"#).await;
        let answer = n.recv().await;
        if answer == r#"432[[[1,2],null]]"# {
            break;
        }
        assert_eq!(answer, "432[null]", "not yet, or the event as Node saw it");
        assert!(tokio::time::Instant::now() < deadline, "never received");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answers = ferrio
        .io
        .server_side_emit_with_ack("question", vec![json!(1)], Duration::from_secs(3))
        .await
        .expect("every server answered");
    assert_eq!(answers, vec![json!({ "node": 2 })]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_ferrio_nodes_hand_sessions_over_with_a_node_node_in_the_cluster() {
    if !node_ready() {
        return;
    }
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let f1 = Node::start_recovering(&redis.url()).await;
    let f2 = Node::start_recovering(&redis.url()).await;
    let node = NodeServer::start(&redis.url()).await;
    redis.wait_nodes(3).await;
    let mut n = node.client().await;

    // A recorded broadcast carries its sequence number in a fourth item: Node reads the rest.
    let mut x = WsClient::connect(f1.addr).await;
    let connected = x.join_with(None).await;
    let pid = connected["pid"].as_str().expect("a pid").to_owned();
    f1.join(&x.sid, "r");
    n.send(r#"421["join","r"]"#).await;
    n.expect("431[]").await;
    f1.io.to("r").emit("e", "seen").expect("emit");
    n.expect(r#"42["e","seen"]"#).await;
    let seen = x.recv().await;
    let offset = serde_json::from_str::<Value>(seen.strip_prefix("42").expect("an event"))
        .expect("JSON")[2]
        .as_str()
        .expect("an offset")
        .to_owned();

    // x loses its connection; events come from both Ferrio nodes and the Node node.
    let sid = x.sid.clone();
    drop(x);
    let deadline = tokio::time::Instant::now() + WAIT;
    while f1.io.of("/").socket_count() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "x never left f1");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f1.io.to("r").emit("e", "from-f1").expect("emit");
    n.send(r#"42["relay-to","r","e","from-node"]"#).await;
    f2.io.to("r").emit("e", "from-f2").expect("emit");
    // (The Node node delivers its own relay before what comes through Redis.)
    let mut on_node = Vec::new();
    for _ in 0..3 {
        on_node.push(n.recv().await);
    }
    on_node.sort();
    assert_eq!(
        on_node,
        [
            r#"42["e","from-f1"]"#,
            r#"42["e","from-f2"]"#,
            r#"42["e","from-node"]"#
        ]
    );

    // Back through f2: f1 hands the session over (the Node node ignores the request).
    let mut back = WsClient::connect(f2.addr).await;
    let connected = back
        .join_with(Some(json!({ "pid": pid, "offset": offset })))
        .await;
    assert_eq!(connected["sid"], sid.as_str(), "{connected}");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let text = back.recv().await;
        let args: Value =
            serde_json::from_str(text.strip_prefix("42").expect("an event")).expect("JSON");
        assert!(args[2].is_string(), "an offset of f2: {text}");
        replayed.push(args[1].as_str().expect("text").to_owned());
    }
    replayed.sort();
    assert_eq!(replayed, ["from-f1", "from-f2", "from-node"]);
    back.expect_nothing(QUIET).await;
    n.expect_nothing(QUIET).await;

    // The Node node never answers: a private id no node holds waits for the request timeout,
    // then gets a new session.
    let mut stranger = WsClient::connect(f2.addr).await;
    let fresh = stranger
        .join_with(Some(json!({ "pid": "nobody", "offset": offset })))
        .await;
    assert_ne!(fresh["pid"], "nobody");
    // The Node node still serves its clients.
    f2.io.to("r").emit("e", "after").expect("emit");
    n.expect(r#"42["e","after"]"#).await;
}
