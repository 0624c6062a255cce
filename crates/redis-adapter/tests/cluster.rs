//! Several Ferrio nodes sharing rooms through a real `redis-server`.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{cluster, Node, WsClient};
use ferrio_socketio::Payload;

/// Long enough for a stray duplicate to show up.
const QUIET: Duration = Duration::from_millis(300);

/// Reads `n` text messages and returns them sorted.
async fn recv_set(client: &mut WsClient, n: usize) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let message = client.recv().await;
        assert!(seen.insert(message.clone()), "received twice: {message}");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_from_any_node_reaches_every_client_on_every_node_once() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 3, false).await;
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(node.client().await);
        clients.push(node.client().await);
    }
    for (i, node) in nodes.iter().enumerate() {
        node.io.emit("news", i).expect("emit");
    }
    let expected: BTreeSet<String> = (0..3).map(|i| format!("42[\"news\",{i}]")).collect();
    for client in &mut clients {
        assert_eq!(recv_set(client, 3).await, expected);
    }
    for client in &mut clients {
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_broadcasts_stay_on_their_node() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 2, false).await;
    let mut a = nodes[0].client().await;
    let mut b = nodes[1].client().await;
    nodes[0]
        .io
        .of("/")
        .broadcast()
        .local()
        .emit("here", 1)
        .expect("emit");
    a.expect("42[\"here\",1]").await;
    b.expect_nothing(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_and_except_apply_on_every_node() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 2, false).await;
    let mut a1 = nodes[0].client().await;
    let mut a2 = nodes[0].client().await;
    let mut b1 = nodes[1].client().await;
    let mut b2 = nodes[1].client().await;
    nodes[0].join(&a1.sid, "red");
    nodes[1].join(&b1.sid, "red");
    nodes[1].join(&b2.sid, "red");
    nodes[1].join(&b2.sid, "muted");

    // One room: published on the room's own channel.
    nodes[0].io.to("red").emit("r", 1).expect("emit");
    a1.expect("42[\"r\",1]").await;
    b1.expect("42[\"r\",1]").await;
    b2.expect("42[\"r\",1]").await;

    // A room minus another, from the other node.
    nodes[1]
        .io
        .to("red")
        .except("muted")
        .emit("r", 2)
        .expect("emit");
    a1.expect("42[\"r\",2]").await;
    b1.expect("42[\"r\",2]").await;

    // Every socket but one, by its own room, across nodes.
    nodes[0]
        .io
        .of("/")
        .broadcast()
        .except(b1.sid.clone())
        .emit("r", 3)
        .expect("emit");
    a1.expect("42[\"r\",3]").await;
    a2.expect("42[\"r\",3]").await;
    b2.expect("42[\"r\",3]").await;

    // A socket on another node, by its own room.
    nodes[0]
        .io
        .to(b2.sid.clone())
        .emit("dm", "hi")
        .expect("emit");
    b2.expect("42[\"dm\",\"hi\"]").await;

    for client in [&mut a1, &mut a2, &mut b1, &mut b2] {
        client.expect_nothing(QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_arguments_cross_nodes() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 2, false).await;
    let mut b = nodes[1].client().await;
    let mut payload = Payload::new();
    payload
        .push("file")
        .expect("json")
        .push_binary(vec![1u8, 2, 3]);
    nodes[0]
        .io
        .of("/")
        .broadcast()
        .emit_payload("blob", payload)
        .expect("emit");
    b.expect(r#"451-["blob","file",{"_placeholder":true,"num":0}]"#)
        .await;
    assert_eq!(b.frame().await, common::Frame::Binary(vec![1, 2, 3]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_join_leave_and_disconnect_span_nodes() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 3, false).await;
    let a = nodes[0].client().await;
    let mut b = nodes[1].client().await;
    let mut c = nodes[2].client().await;
    nodes[2].join(&c.sid, "blue");

    let all = nodes[0].io.of("/").broadcast().fetch_sockets().await;
    let ids: BTreeSet<String> = all.iter().map(|s| s.id.to_string()).collect();
    let expected: BTreeSet<String> = [&a.sid, &b.sid, &c.sid].into_iter().cloned().collect();
    assert_eq!(ids, expected);
    let remote_c = all
        .iter()
        .find(|s| s.id.to_string() == c.sid)
        .expect("c is described");
    assert!(remote_c.rooms.iter().any(|r| &**r == "blue"));

    assert_eq!(nodes[0].redis.server_count("/").await, 3);
    let rooms = nodes[0].redis.all_rooms("/").await;
    for room in [&a.sid, &b.sid, &c.sid, &"blue".to_owned()] {
        assert!(rooms.iter().any(|r| **r == **room), "{room} in {rooms:?}");
    }

    let blue = nodes[1].io.to("blue").fetch_sockets().await;
    assert_eq!(blue.len(), 1);
    assert_eq!(blue[0].id.to_string(), c.sid);

    // Remote join, then a room broadcast reaches the joined sockets.
    nodes[0].io.to(b.sid.clone()).sockets_join("blue");
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while nodes[1]
        .io
        .of("/")
        .adapter()
        .rooms()
        .iter()
        .all(|r| &**r != "blue")
    {
        assert!(tokio::time::Instant::now() < deadline, "b never joined");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes[0].io.to("blue").emit("blue", 1).expect("emit");
    b.expect("42[\"blue\",1]").await;
    c.expect("42[\"blue\",1]").await;

    // Remote leave.
    nodes[0].io.to("blue").sockets_leave("blue");
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !nodes[0].io.to("blue").fetch_sockets().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "still in blue");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Remote disconnect.
    nodes[0].io.to(c.sid.clone()).disconnect_sockets(false);
    c.expect("41").await;
    b.expect_nothing(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_acknowledgements_come_back_from_every_node() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 2, false).await;
    let mut a = nodes[0].client().await;
    let mut b = nodes[1].client().await;
    let io = nodes[0].io.clone();
    let acks = tokio::spawn(async move {
        io.of("/")
            .broadcast()
            .timeout(Duration::from_secs(3))
            .emit_with_ack("ask", Payload::json(7).expect("json"))
            .await
            .expect("emit")
    });
    for (client, answer) in [(&mut a, "\"from-a\""), (&mut b, "\"from-b\"")] {
        let ask = client.recv().await;
        let id = ask
            .strip_prefix("42")
            .and_then(|rest| rest.strip_suffix("[\"ask\",7]"))
            .unwrap_or_else(|| panic!("an ask with an id: {ask}"));
        client.send(&format!("43{id}[{answer}]")).await;
    }
    let responses = acks.await.expect("join");
    let mut answers: Vec<(String, String)> = responses
        .iter()
        .map(|r| {
            let payload = r.result.as_ref().expect("acknowledged");
            (
                r.socket.to_string(),
                payload.get::<String>(0).expect("a string"),
            )
        })
        .collect();
    answers.sort();
    let mut expected = vec![
        (a.sid.clone(), "from-a".to_owned()),
        (b.sid.clone(), "from-b".to_owned()),
    ];
    expected.sort();
    assert_eq!(answers, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dropped_does_not_affect_the_others() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 3, false).await;
    let mut a = nodes[0].client().await;
    let mut b = nodes[1].client().await;
    let mut c = nodes[2].client().await;
    nodes[2].stop();
    let _ = c.frame().await; // its connection ends
    redis.wait_nodes(2).await;

    nodes[0].io.emit("still", 1).expect("emit");
    a.expect("42[\"still\",1]").await;
    b.expect("42[\"still\",1]").await;
    let started = tokio::time::Instant::now();
    let sockets = nodes[1].io.of("/").broadcast().fetch_sockets().await;
    assert_eq!(sockets.len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fetch_sockets waited for the dropped node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_local_delivery_goes_on_and_the_cluster_heals() {
    let mut redis = redis_or_skip!();
    let nodes = cluster(&redis, 2, false).await;
    let mut a = nodes[0].client().await;
    let mut b = nodes[1].client().await;
    nodes[0].io.emit("before", 1).expect("emit");
    a.expect("42[\"before\",1]").await;
    b.expect("42[\"before\",1]").await;

    redis.kill();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while nodes[0].redis.is_connected() || nodes[1].redis.is_connected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the loss went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[0].io.emit("during", 2).expect("emit");
    a.expect("42[\"during\",2]").await;
    b.expect_nothing(QUIET).await;
    // fetch_sockets answers with what it knows.
    assert_eq!(
        nodes[0].io.of("/").broadcast().fetch_sockets().await.len(),
        1
    );

    redis.restart().await;
    redis.wait_nodes(2).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !(nodes[0].redis.is_connected() && nodes[1].redis.is_connected()) {
        assert!(tokio::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The publishing side notices a dead connection at its first use; retry until through.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let mut n = 3;
    loop {
        nodes[0].io.emit("after", n).expect("emit");
        a.expect(&format!("42[\"after\",{n}]")).await;
        if let Some(frame) = b.frame_within(Duration::from_millis(300)).await {
            assert_eq!(frame, common::Frame::Text(format!("42[\"after\",{n}]")));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "cross-node delivery never healed"
        );
        n += 1;
    }
    nodes[1].io.emit("back", 0).expect("emit");
    a.expect("42[\"back\",0]").await;
    b.expect("42[\"back\",0]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_checked_without_being_dropped() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 1, false).await;
    // Several ping intervals (200 ms in these tests) on an idle cluster.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(nodes[0].redis.is_connected());
    let clients = redis.client_list().await;
    let subscriber = clients
        .lines()
        .find(|line| line.contains("psub=1"))
        .unwrap_or_else(|| panic!("no subscriber in {clients}"));
    let age: u64 = subscriber
        .split(' ')
        .find_map(|field| field.strip_prefix("age="))
        .and_then(|age| age.parse().ok())
        .expect("an age");
    assert!(age >= 1, "the subscriber reconnected: {subscriber}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_before_redis_join_the_cluster_when_it_comes_up() {
    let mut redis = redis_or_skip!();
    redis.kill();
    let first = Node::start(&redis.url()).await;
    let second = Node::start(&redis.url()).await;
    let mut a = first.client().await;
    let mut b = second.client().await;
    // Redis is down: local delivery only.
    first.io.emit("alone", 1).expect("emit");
    a.expect("42[\"alone\",1]").await;
    assert!(!first.redis.is_connected());

    redis.restart().await;
    redis.wait_nodes(2).await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let mut n = 0;
    loop {
        second.io.emit("together", n).expect("emit");
        b.expect(&format!("42[\"together\",{n}]")).await;
        if let Some(frame) = a.frame_within(Duration::from_millis(300)).await {
            assert_eq!(frame, common::Frame::Text(format!("42[\"together\",{n}]")));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never joined");
        n += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emits_reach_the_other_nodes_and_answers_come_back() {
    let redis = redis_or_skip!();
    let nodes = cluster(&redis, 3, false).await;
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    for (i, node) in nodes.iter().enumerate() {
        let events = events.clone();
        node.io.on_server_side_emit("hello", move |event| {
            let _ = events.send((i, event.args));
        });
        node.io.on_server_side_emit("who", move |event| {
            if let Some(ack) = event.ack {
                ack.send(serde_json::json!(i));
            }
        });
    }
    nodes[0]
        .io
        .server_side_emit("hello", vec![serde_json::json!("world")])
        .expect("emit");
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let (node, args) = tokio::time::timeout(common::WAIT, received.recv())
            .await
            .expect("in time")
            .expect("an event");
        assert_eq!(args, vec![serde_json::json!("world")]);
        assert!(seen.insert(node), "node {node} received it twice");
    }
    // The emitter is not among the receivers.
    assert_eq!(seen, BTreeSet::from([1, 2]));
    assert!(
        tokio::time::timeout(QUIET, received.recv()).await.is_err(),
        "one event too many"
    );

    let mut answers = nodes[1]
        .io
        .server_side_emit_with_ack("who", Vec::new(), Duration::from_secs(3))
        .await
        .expect("every other node answered");
    answers.sort_by_key(|v| v.as_u64());
    assert_eq!(answers, vec![serde_json::json!(0), serde_json::json!(2)]);

    // A node that does not answer: the emitter gets what came and how many were expected.
    nodes[2].io.on_server_side_emit("who", |_event| {});
    let error = nodes[1]
        .io
        .server_side_emit_with_ack("who", Vec::new(), Duration::from_millis(500))
        .await
        .expect_err("node 2 stays silent");
    assert_eq!(
        error,
        ferrio_socketio::ServerSideEmitError::Timeout {
            responses: vec![serde_json::json!(0)],
            expected: 2,
        }
    );

    // Redis gone: the emitter is told, rather than hearing "no other server".
    let mut redis = redis;
    redis.kill();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while nodes[1].redis.is_connected() {
        assert!(tokio::time::Instant::now() < deadline, "never saw Redis go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        nodes[1]
            .io
            .server_side_emit_with_ack("who", Vec::new(), Duration::from_secs(1))
            .await,
        Err(ferrio_socketio::ServerSideEmitError::Unreachable(
            "the link to Redis is down".to_owned()
        ))
    );
}
