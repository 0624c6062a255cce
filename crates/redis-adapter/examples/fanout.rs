//! Fan-out throughput with 1, 2 and 3 Ferrio nodes sharing a Redis, against the in-memory
//! adapter, on this machine.
//!
//! ```text
//! cargo run --release -p ferrio-redis-adapter --example fanout [clients] [messages]
//! ```
//!
//! Starts `redis-server` on a free port of 127.0.0.1 (or uses `REDIS_URL`), spreads the clients
//! (raw WebSocket, Engine.IO v4) evenly over the nodes, emits `messages` events from node 0 and
//! reports how long until every client received every event. The events are sent in one burst:
//! past the per-socket send queue (a few hundred events), clients that fall behind are
//! disconnected, as in production, and the run fails; keep `messages` under it. The difference between the
//! in-memory run and the one-node Redis run is the cost of publishing; the runs with more
//! nodes add crossing Redis to subscribers.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrio_redis_adapter::{RedisAdapterConfig, RedisNode};
use ferrio_socketio::{SocketIo, SocketIoConfig};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

async fn start_node(adapter: Option<&RedisNode>) -> (SocketIo, SocketAddr) {
    let mut config = SocketIoConfig::default();
    if let Some(node) = adapter {
        config.adapter = node.factory();
    }
    let (service, io) = SocketIo::new(config);
    io.ns("/", |_| {});
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = ferrio_socketio::serve(listener, service).await;
    });
    (io, addr)
}

/// A client that counts events and reports when it has `expected` of them.
async fn client(addr: SocketAddr, expected: usize, done: tokio::sync::mpsc::Sender<()>) {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let _open = ws.next().await;
    ws.send(Message::text("40")).await.expect("send");
    let _connected = ws.next().await;
    let _ = done.send(()).await;
    let mut seen = 0;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            if text.as_str() == "2" {
                let _ = ws.send(Message::text("3")).await;
            } else if text.as_str().starts_with("42") {
                seen += 1;
                if seen == expected {
                    let _ = done.send(()).await;
                }
            }
        }
    }
}

async fn run(redis_url: Option<&str>, nodes: usize, clients: usize, messages: usize) -> Duration {
    let mut ios = Vec::new();
    let mut redis_nodes = Vec::new();
    for _ in 0..nodes {
        let redis =
            redis_url.map(|url| RedisNode::new(RedisAdapterConfig::new(url)).expect("node"));
        ios.push(start_node(redis.as_ref()).await);
        redis_nodes.extend(redis);
    }
    // Wait for every node to subscribe.
    if redis_url.is_some() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis_nodes[0].server_count("/").await < nodes {
            assert!(Instant::now() < deadline, "nodes did not subscribe");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(clients * 2);
    for i in 0..clients {
        tokio::spawn(client(ios[i % nodes].1, messages, done_tx.clone()));
    }
    for _ in 0..clients {
        done_rx.recv().await.expect("connected");
    }
    let started = Instant::now();
    let io = ios[0].0.clone();
    for n in 0..messages {
        io.emit("tick", n).expect("emit");
        if n % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    for _ in 0..clients {
        tokio::time::timeout(Duration::from_secs(120), done_rx.recv())
            .await
            .expect("every client got every event in time")
            .expect("done");
    }
    let elapsed = started.elapsed();
    for (io, _) in &ios {
        io.close();
    }
    for node in &redis_nodes {
        node.close();
    }
    elapsed
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let mut server = None;
    let url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            let port = free_port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server (apt-get install -y redis-server, or set REDIS_URL)");
            server = Some(KillOnDrop(child));
            tokio::time::sleep(Duration::from_millis(300)).await;
            format!("redis://127.0.0.1:{port}/")
        }
    };
    println!("{clients} clients, {messages} events from node 0, every client gets every event");
    println!(
        "{:<22} {:>10} {:>16} {:>14}",
        "setup", "time", "deliveries/s", "events/s"
    );
    // A first run warms up the allocator and the runtime; it is not reported.
    let _ = run(None, 1, clients, messages).await;
    let local = run(None, 1, clients, messages).await;
    report("in-memory, 1 node", local, clients, messages);
    for nodes in 1..=3 {
        let elapsed = run(Some(&url), nodes, clients, messages).await;
        report(
            &format!("redis, {nodes} node(s)"),
            elapsed,
            clients,
            messages,
        );
    }
    drop(server);
}

/// Stops the redis-server this run started, even when the run panics.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn report(setup: &str, elapsed: Duration, clients: usize, messages: usize) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{setup:<22} {:>8.0}ms {:>16.0} {:>14.0}",
        secs * 1000.0,
        (clients * messages) as f64 / secs,
        messages as f64 / secs,
    );
}
