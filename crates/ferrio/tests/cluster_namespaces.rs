//! The HTTP API acting on a namespace that only another node's clients reached: two
//! `ferrio serve` nodes sharing a real `redis-server`, serving `/tenant-*`. Without
//! `redis-server` the test is skipped loudly, unless `CI=true`.

mod cluster_common;
mod process;

use std::sync::{Arc, Mutex};

use cluster_common::{eventually, FerrioNode, RedisServer, WAIT};
use ferrio_client::{ClientConfig, Manager, Socket, TransportKind};
use serde_json::{json, Value};

const KEY: &str = "cluster-test-key-0123456789abcdef";

/// What a client of `/tenant-a` saw: `news` arguments and disconnect reasons.
#[derive(Default)]
struct Seen {
    news: Vec<Value>,
    disconnects: Vec<String>,
}

async fn tenant_client(node: &FerrioNode) -> (Manager, Socket, Arc<Mutex<Seen>>) {
    let mut config = ClientConfig::new(node.url());
    config.transports = vec![TransportKind::WebSocket];
    config.reconnection.enabled = false;
    let manager = Manager::new(config).expect("a client configuration");
    let socket = manager.socket("/tenant-a").expect("a namespace");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    socket.on("news", move |_socket, event| {
        let data: Value = event.payload.get(0).unwrap_or(Value::Null);
        sink.lock().unwrap().news.push(data);
    });
    let sink = seen.clone();
    socket.on_disconnect(move |_socket, reason| {
        sink.lock()
            .unwrap()
            .disconnects
            .push(reason.as_str().to_owned());
    });
    tokio::time::timeout(WAIT, socket.connect())
        .await
        .expect("connected in time")
        .expect("connected");
    (manager, socket, seen)
}

async fn post(node: &FerrioNode, path: &'static str, body: Value) -> (u16, String) {
    let port = node.port;
    tokio::task::spawn_blocking(move || cluster_common::http_post_json(port, path, KEY, &body))
        .await
        .expect("join")
        .expect("the API answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_emit_and_disconnect_reach_a_namespace_that_only_another_node_serves_yet() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = [
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_SERVER_NAMESPACES", "/tenant-*"),
    ];
    let nodes: Vec<FerrioNode> = (0..2)
        .map(|_| FerrioNode::start(&redis.url(), &env))
        .collect();
    for node in &nodes {
        node.wait_cluster_size(2).await;
    }
    // Only node 1 has a client in /tenant-a; the backend calls node 0.
    let (_manager, _socket, seen) = tenant_client(&nodes[1]).await;

    let (status, body) = post(
        &nodes[0],
        "/api/v1/emit",
        json!({ "namespace": "/tenant-a", "event": "news", "data": { "via": "node 0" } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually("the client on node 1 gets the emit", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().news == vec![json!({ "via": "node 0" })] }
    })
    .await;

    // A namespace no node serves is still refused by name.
    let (status, body) = post(
        &nodes[0],
        "/api/v1/emit",
        json!({ "namespace": "/other", "event": "news" }),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown_namespace"), "{body}");

    let (status, body) = post(
        &nodes[0],
        "/api/v1/sockets/disconnect",
        json!({ "namespace": "/tenant-a", "select": { "all": true } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually("the client on node 1 is disconnected", || {
        let seen = seen.clone();
        async move { seen.lock().unwrap().disconnects == vec!["io server disconnect".to_owned()] }
    })
    .await;
}
