//! Several `ferrio serve` processes sharing rooms through a real `redis-server`, both started by
//! the test on free ports of 127.0.0.1, with `ferrio-client` sockets as the clients. The rooms
//! are joined and published to with the gateway's built-in `join`, `leave` and `publish`
//! events, as a browser would.
//!
//! Without `redis-server` these tests are skipped loudly, unless `CI=true`, where they fail.
//! Every wait is bounded; "exactly once" is checked by a short quiet period after the expected
//! messages.

mod cluster_common;
mod process;

use std::collections::BTreeSet;
use std::time::Duration;

use cluster_common::{eventually, FerrioNode, Member, RawSocket, RedisServer, QUIET};
use serde_json::json;

/// Three nodes on one Redis, each with a member of `lobby`.
async fn three_nodes_with_members(redis: &RedisServer) -> (Vec<FerrioNode>, Vec<Member>) {
    let nodes: Vec<FerrioNode> = (0..3)
        .map(|_| FerrioNode::start(&redis.url(), &[]))
        .collect();
    for node in &nodes {
        node.wait_cluster_size(3).await;
    }
    let mut members = Vec::new();
    for node in &nodes {
        let member = Member::connect(node).await;
        member.ok("join", "lobby").await;
        members.push(member);
    }
    (nodes, members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_any_node_reaches_every_member_on_every_node_exactly_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (nodes, mut members) = three_nodes_with_members(&redis).await;
    // A second member on node 0, and a client in no room on each node, which publishes.
    let mut extra = Member::connect(&nodes[0]).await;
    extra.ok("join", "lobby").await;
    let mut outsiders = Vec::new();
    for node in &nodes {
        outsiders.push(Member::connect(node).await);
    }
    for (i, outsider) in outsiders.iter().enumerate() {
        outsider
            .publish("lobby", "news", json!({ "from": i }))
            .await;
    }
    let expected: BTreeSet<String> = (0..3).map(|i| json!({ "from": i }).to_string()).collect();
    for member in members.iter_mut().chain([&mut extra]) {
        assert_eq!(member.receive_set(3).await, expected);
        member.expect_nothing(QUIET).await;
    }
    for outsider in &mut outsiders {
        outsider.expect_nothing(Duration::ZERO).await;
    }

    // The member on node 2 leaves: a publish from node 0 reaches the others only.
    members[2].ok("leave", "lobby").await;
    outsiders[0].publish("lobby", "news", json!("after")).await;
    for member in members.iter_mut().take(2).chain([&mut extra]) {
        assert_eq!(member.receive().await, json!("after").to_string());
        member.expect_nothing(QUIET).await;
    }
    members[2].expect_nothing(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_does_not_disturb_the_other_nodes_clients() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (mut nodes, mut members) = three_nodes_with_members(&redis).await;
    let killed = nodes.pop().expect("three nodes");
    let orphan = members.pop().expect("three members");
    killed.kill();
    // Redis sees the node go: the survivors count two nodes.
    for node in &nodes {
        node.wait_cluster_size(2).await;
        eventually("ferrio_cluster_nodes 2", || async {
            node.metrics().await.contains("\nferrio_cluster_nodes 2\n")
        })
        .await;
    }
    drop(orphan);
    members[0]
        .publish("lobby", "news", json!("still here"))
        .await;
    members[1].publish("lobby", "news", json!("me too")).await;
    // Each publisher is not sent its own publish (rooms.publish_to_sender is off).
    for (member, other) in members.iter_mut().zip(["\"me too\"", "\"still here\""]) {
        assert_eq!(member.receive().await, other);
        member.expect_nothing(QUIET).await;
        assert!(
            member.connected(),
            "a client of a surviving node was disconnected"
        );
        assert_eq!(member.disconnects(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_local_delivery_goes_on_and_the_cluster_heals() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let a = FerrioNode::start(&redis.url(), &[]);
    let b = FerrioNode::start(&redis.url(), &[]);
    a.wait_cluster_size(2).await;
    b.wait_cluster_size(2).await;
    let mut on_a = Member::connect(&a).await;
    on_a.ok("join", "lobby").await;
    let mut on_b = Member::connect(&b).await;
    on_b.ok("join", "lobby").await;
    let publisher = Member::connect(&a).await;
    // The gauge follows the link (it is set just after the link's state changes).
    eventually("ferrio_redis_connected 1", || async {
        a.metrics().await.contains("\nferrio_redis_connected 1\n")
    })
    .await;

    redis.kill();
    eventually("node a to see Redis down", || async {
        a.ready().await.contains("cluster: redis down")
    })
    .await;
    let ready = a.ready_answer().await;
    assert_eq!(
        ready,
        (
            200,
            "ready\ncluster: redis down (broadcasts reach this node's clients only)\n".to_owned()
        )
    );
    eventually("ferrio_redis_connected 0", || async {
        a.metrics().await.contains("\nferrio_redis_connected 0\n")
    })
    .await;
    let metrics = a.metrics().await;
    assert!(
        metrics.contains("\nferrio_redis_disconnects_total "),
        "{metrics}"
    );
    // Local delivery goes on; node b's member cannot be reached.
    publisher
        .publish("lobby", "news", json!("while down"))
        .await;
    assert_eq!(on_a.receive().await, json!("while down").to_string());

    redis.restart();
    for node in [&a, &b] {
        node.wait_cluster_size(2).await;
    }
    eventually("ferrio_redis_connected 1 again", || async {
        a.metrics().await.contains("\nferrio_redis_connected 1\n")
    })
    .await;
    publisher.publish("lobby", "news", json!("healed")).await;
    assert_eq!(on_a.receive().await, json!("healed").to_string());
    // The first thing b's member hears is the publish after the heal.
    assert_eq!(on_b.receive().await, json!("healed").to_string());
    on_a.expect_nothing(QUIET).await;
    on_b.expect_nothing(QUIET).await;
    assert!(on_a.connected() && on_b.connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_before_redis_joins_when_it_comes_up() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    redis.kill();
    let a = FerrioNode::start(&redis.url(), &[]);
    assert_eq!(
        a.ready_answer().await,
        (
            200,
            "ready\ncluster: redis down (broadcasts reach this node's clients only)\n".to_owned()
        )
    );
    redis.restart();
    let b = FerrioNode::start(&redis.url(), &[]);
    a.wait_cluster_size(2).await;
    b.wait_cluster_size(2).await;
    let mut on_a = Member::connect(&a).await;
    on_a.ok("join", "lobby").await;
    let on_b = Member::connect(&b).await;
    on_b.publish("lobby", "news", json!(1)).await;
    assert_eq!(on_a.receive().await, "1");
}

#[test]
fn config_check_accepts_a_redis_cluster_and_explains_a_bad_url() {
    let ok = cluster_common::config_check(&[
        ("FERRIO_CLUSTER_ADAPTER", "redis"),
        ("FERRIO_CLUSTER_REDIS_URL", "redis://:pw@127.0.0.1:6379/0"),
        ("FERRIO_CLUSTER_NODES", "3"),
    ]);
    assert_eq!(ok.0, 0, "{}", ok.1);
    // The password is a secret: never printed.
    assert!(!ok.1.contains("pw@"), "{}", ok.1);
    let bad = cluster_common::config_check(&[
        ("FERRIO_CLUSTER_ADAPTER", "redis"),
        ("FERRIO_CLUSTER_REDIS_URL", "http://127.0.0.1:6379"),
    ]);
    assert_eq!(bad.0, 1, "{}", bad.1);
    assert!(
        bad.1
            .contains("error[cluster-redis-url-invalid]: cluster.redis_url: invalid Redis URL: "),
        "{}",
        bad.1
    );
}

/// How many sockets node `node` has in `/`, from its metrics.
async fn sockets_on(node: &FerrioNode) -> Option<u64> {
    let metrics = node.metrics().await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("ferrio_sockets{namespace=\"/\"} "))
        .and_then(|n| n.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_replays_events_from_every_node_on_the_same_node_and_through_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let recovery = [("FERRIO_RECOVERY_ENABLED", "true")];
    let a = FerrioNode::start(&redis.url(), &recovery);
    let b = FerrioNode::start(&redis.url(), &recovery);
    a.wait_cluster_size(2).await;
    b.wait_cluster_size(2).await;

    let mut x = RawSocket::connect(b.port, None).await;
    let (sid, pid) = (x.connected["sid"].clone(), x.connected["pid"].clone());
    assert!(sid.is_string() && pid.is_string(), "{}", x.connected);
    x.send(r#"421["join",{"room":"lobby"}]"#).await;
    assert_eq!(x.text().await, r#"431[{"ok":true,"room":"lobby"}]"#);
    let mut watcher = Member::connect(&b).await;
    watcher.ok("join", "lobby").await;
    let publisher = Member::connect(&a).await;

    publisher.publish("lobby", "news", json!("one")).await;
    let one = x.event("news").await;
    assert_eq!(one[0], "one");
    let offset = one.get(1).cloned().expect("an offset after the data");
    assert_eq!(watcher.receive().await, "\"one\"");

    // The connection drops; what is published meanwhile, on either node, is kept on b.
    drop(x);
    eventually("b to see the socket go", || async {
        sockets_on(&b).await == Some(1)
    })
    .await;
    publisher.publish("lobby", "news", json!("two")).await;
    publisher.publish("lobby", "news", json!("three")).await;
    assert_eq!(watcher.receive().await, "\"two\"");
    assert_eq!(watcher.receive().await, "\"three\"");
    watcher.publish("lobby", "news", json!("four")).await;

    // Back on b: the same session, and every missed event, the remote ones included.
    let mut back = RawSocket::connect(b.port, Some(json!({ "pid": pid, "offset": offset }))).await;
    assert_eq!(back.connected["sid"], sid, "{}", back.connected);
    let mut last = offset;
    for expected in ["two", "three", "four"] {
        let args = back.event("news").await;
        assert_eq!(args[0], expected, "{args:?}");
        assert_eq!(args.len(), 2, "data and offset: {args:?}");
        assert_ne!(args[1], last);
        last = args[1].clone();
    }
    assert_eq!(back.text_within(QUIET).await, None);

    // Through the other node the session comes back too (a asks b for it), with what it
    // missed meanwhile from either node, once each.
    drop(back);
    eventually("b to see the socket go again", || async {
        sockets_on(&b).await == Some(1)
    })
    .await;
    let on_b = Member::connect(&b).await;
    publisher.publish("lobby", "news", json!("five")).await;
    on_b.publish("lobby", "news", json!("six")).await;
    // Each from its own node: no order between them.
    let both: BTreeSet<String> = ["\"five\"", "\"six\""].map(str::to_owned).into();
    assert_eq!(watcher.receive_set(2).await, both);
    let mut elsewhere =
        RawSocket::connect(a.port, Some(json!({ "pid": pid, "offset": last }))).await;
    assert_eq!(elsewhere.connected["sid"], sid, "{}", elsewhere.connected);
    assert_eq!(elsewhere.connected["pid"], pid, "{}", elsewhere.connected);
    let mut replayed = BTreeSet::new();
    for _ in 0..2 {
        let args = elsewhere.event("news").await;
        assert_eq!(args.len(), 2, "data and offset: {args:?}");
        assert!(replayed.insert(args[0].to_string()), "twice: {args:?}");
    }
    assert_eq!(replayed, both);
    assert_eq!(elsewhere.text_within(QUIET).await, None);
    // Its room came along: a later publish reaches it live, once.
    on_b.publish("lobby", "news", json!("seven")).await;
    assert_eq!(elsewhere.event("news").await[0], "seven");
    assert_eq!(elsewhere.text_within(QUIET).await, None);

    // A session no node holds: a new one, nothing replayed.
    let mut stranger = RawSocket::connect(
        a.port,
        Some(json!({ "pid": "nobody-holds-it", "offset": last })),
    )
    .await;
    assert!(stranger.connected["sid"].is_string());
    assert_ne!(stranger.connected["sid"], sid, "{}", stranger.connected);
    assert_ne!(stranger.connected["pid"], "nobody-holds-it");
    assert_eq!(stranger.text_within(QUIET).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_emit_on_one_node_reaches_the_clients_of_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = [("FERRIO_API_KEY", "cluster-test-key-0123456789abcdef")];
    let nodes: Vec<FerrioNode> = (0..3)
        .map(|_| FerrioNode::start(&redis.url(), &key))
        .collect();
    for node in &nodes {
        node.wait_cluster_size(3).await;
    }
    let mut members = Vec::new();
    for node in &nodes {
        let member = Member::connect(node).await;
        member.ok("join", "lobby").await;
        members.push(member);
    }
    let mut outsider = Member::connect(&nodes[1]).await;
    let port = nodes[0].port;
    let (status, body) = tokio::task::spawn_blocking(move || {
        cluster_common::http_post_json(
            port,
            "/api/v1/emit",
            key[0].1,
            &json!({ "rooms": ["lobby"], "event": "news", "data": { "via": "api" } }),
        )
    })
    .await
    .expect("join")
    .expect("the API answered");
    assert_eq!(status, 200, "{body}");
    for member in &mut members {
        assert_eq!(member.receive().await, json!({ "via": "api" }).to_string());
        member.expect_nothing(QUIET).await;
    }
    outsider.expect_nothing(Duration::ZERO).await;
}

/// Whether node and the npm packages of tests/redis are here (installed once if missing).
fn node_adapter_ready() -> bool {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !node {
        cluster_common::skip("node is not installed");
        return false;
    }
    let dir = cluster_common::repo_path("tests/redis");
    INSTALL.call_once(|| {
        if !dir.join("node_modules/@socket.io/redis-adapter").exists() {
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status();
            assert!(status.is_ok_and(|s| s.success()), "npm ci in tests/redis");
        }
    });
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ferrio_serve_and_a_node_socket_io_server_share_one_cluster() {
    if !node_adapter_ready() {
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let ferrio = FerrioNode::start(&redis.url(), &[]);
    // socket.io 4.8 with @socket.io/redis-adapter 8.3 (tests/redis/node-server.js).
    let mut child = tokio::process::Command::new("node")
        .arg("node-server.js")
        .arg(redis.url())
        .current_dir(cluster_common::repo_path("tests/redis"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let line = tokio::time::timeout(cluster_common::WAIT, lines.next_line())
        .await
        .expect("node started in time")
        .expect("read")
        .expect("a line");
    let node_port: u16 = line
        .strip_prefix("ready ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {line}"));
    ferrio.wait_cluster_size(2).await;

    let mut on_ferrio = Member::connect(&ferrio).await;
    on_ferrio.ok("join", "lobby").await;
    let mut on_node = RawSocket::connect(node_port, None).await;
    on_node.send(r#"421["join","lobby"]"#).await;
    assert_eq!(on_node.text().await, "431[]");

    // A Ferrio client publishes: the Node server's client in the room receives it.
    let publisher = Member::connect(&ferrio).await;
    publisher
        .publish("lobby", "news", json!({ "from": "ferrio" }))
        .await;
    assert_eq!(
        on_node.event("news").await,
        vec![json!({ "from": "ferrio" })]
    );
    assert_eq!(
        on_ferrio.receive().await,
        json!({ "from": "ferrio" }).to_string()
    );
    // The Node server broadcasts to the room: the Ferrio client receives it.
    on_node
        .send(r#"42["relay-to","lobby","news",{"from":"node"}]"#)
        .await;
    assert_eq!(
        on_ferrio.receive().await,
        json!({ "from": "node" }).to_string()
    );
    assert_eq!(on_node.event("news").await, vec![json!({ "from": "node" })]);
    on_ferrio.expect_nothing(QUIET).await;
    assert_eq!(on_node.text_within(QUIET).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_stays_until_another_node_claimed_the_sessions_it_sent_away() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = [
        ("FERRIO_RECOVERY_ENABLED", "true"),
        ("FERRIO_SERVER_SHUTDOWN_TIMEOUT", "15s"),
    ];
    let a = FerrioNode::start(&redis.url(), &env);
    let mut b = FerrioNode::start(&redis.url(), &env);
    a.wait_cluster_size(2).await;
    b.wait_cluster_size(2).await;

    let mut x = RawSocket::connect(b.port, None).await;
    let (sid, pid) = (x.connected["sid"].clone(), x.connected["pid"].clone());
    x.send(r#"421["join",{"room":"lobby"}]"#).await;
    assert_eq!(x.text().await, r#"431[{"ok":true,"room":"lobby"}]"#);
    let publisher = Member::connect(&a).await;
    publisher.publish("lobby", "news", json!("before")).await;
    let offset = x.event("news").await[1].clone();

    // b drains: x is told to go (the Engine.IO close), and comes back a moment later through a,
    // as a client behind a load balancer does. Meanwhile b must stay to hand its session over.
    b.terminate();
    assert_eq!(x.text().await, "1", "the close packet");
    drop(x);
    tokio::time::sleep(Duration::from_millis(600)).await;
    publisher.publish("lobby", "news", json!("missed")).await;
    let mut back = RawSocket::connect(a.port, Some(json!({ "pid": pid, "offset": offset }))).await;
    assert_eq!(
        back.connected["sid"],
        sid,
        "{}\n{}",
        back.connected,
        b.log()
    );
    assert_eq!(back.event("news").await[0], "missed");

    // Once it is claimed, b has nothing left to wait for: it exits long before its deadline.
    let exit = tokio::task::spawn_blocking(move || {
        let exit = b.wait_exit(Duration::from_secs(5));
        (b, exit)
    })
    .await
    .expect("join");
    let (b, exit) = exit;
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}\n{}", b.log());
    assert!(b.log().contains("every session claimed"), "{}", b.log());
}
