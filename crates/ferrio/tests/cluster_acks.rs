//! The HTTP API's emit with acknowledgements across two `ferrio serve` nodes sharing a real
//! `redis-server`: the node the backend calls answers with the acknowledgements of the clients
//! of both nodes, and a timeout for the one that did not answer. Without `redis-server` the
//! test is skipped loudly, unless `CI=true`.

mod cluster_common;
mod process;

use cluster_common::{FerrioNode, RedisServer};
use ferrio_client::{ClientConfig, Manager, Payload, ReconnectionConfig, Socket};
use serde_json::{json, Value};

const KEY: &str = "cluster-test-key-0123456789abcdef";

/// A socket on `/` of `node` that acknowledges `confirm` with its `name` when `answers`.
async fn client(node: &FerrioNode, name: &'static str, answers: bool) -> (Manager, Socket) {
    let manager = Manager::new(ClientConfig {
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        ..ClientConfig::new(node.url())
    })
    .unwrap();
    let socket = manager.socket("/").unwrap();
    socket.on("confirm", move |_socket, event| {
        if let (true, Some(ack)) = (answers, event.ack) {
            let _ = ack.send(Payload::json(name).unwrap());
        }
    });
    socket.connect().await.unwrap();
    (manager, socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_with_ack_collects_the_answers_of_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = [("FERRIO_API_KEY", KEY)];
    let nodes: Vec<FerrioNode> = (0..2)
        .map(|_| FerrioNode::start(&redis.url(), &env))
        .collect();
    for node in &nodes {
        node.wait_cluster_size(2).await;
    }
    let (_a, here) = client(&nodes[0], "here", true).await;
    let (_b, there) = client(&nodes[1], "there", true).await;
    let (_c, _silent) = client(&nodes[1], "silent", false).await;
    let port = nodes[0].port;
    let (status, body) = tokio::task::spawn_blocking(move || {
        cluster_common::http_post_json(
            port,
            "/api/v1/emit",
            KEY,
            &json!({ "event": "confirm", "data": 1, "ack": { "timeout": "3s" } }),
        )
    })
    .await
    .unwrap()
    .expect("the API answered");
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let mut expected = vec![
        json!({ "socket": here.id().unwrap(), "args": ["here"] }),
        json!({ "socket": there.id().unwrap(), "args": ["there"] }),
    ];
    expected.sort_by_key(|entry| entry["socket"].as_str().unwrap().to_owned());
    // The other node says how many of its sockets it asked, not which: the silent one is
    // anonymous.
    expected.push(json!({
        "socket": null,
        "error": "no acknowledgement within the timeout",
        "code": "timeout"
    }));
    // `recipients` counts the sockets of the node called; `acks` those of every node.
    assert_eq!(answer, json!({ "recipients": 1, "acks": expected }));
}
