//! Fan-out across real `ferrio serve` processes sharing a `redis-server`: 1, 2 and 3 nodes,
//! clients spread evenly over them, every event entering at node 0 through the gateway's
//! built-in `publish` event; and the latency one event pays for crossing Redis.
//!
//! ```text
//! cargo build --release -p ferrio
//! cargo run --release -p ferrio-redis-adapter --example cluster_fanout -- \
//!     target/release/ferrio [clients] [events]
//! ```
//! (`bench/cluster.sh` does both.) Needs `redis-server` on the PATH. Every process listens on
//! a free port of 127.0.0.1 and is killed at the end.
//!
//! - Fan-out: `clients` raw WebSocket clients (Engine.IO v4) join room `lobby`; a publisher on
//!   node 0 publishes `events` events, at most 64 unacknowledged; the time runs until every
//!   client received every event. The CPU time of the ferrio processes (from `/proc`, in 10 ms
//!   ticks) is reported per 1000 deliveries, redis-server's for the whole run. The in-memory run (one node,
//!   `cluster.adapter = "local"`) is the baseline.
//! - CPU per event: 20 000 events to one client, on one in-memory node, then on a 2-node
//!   cluster whose second node has no client: what publishing and receiving one event cost.
//! - Crossing Redis: one publisher on node 0 and one receiver, on node 0 then on node 1; each
//!   event is published when the previous one arrived; the difference of the medians is what
//!   one event pays for the trip through Redis to another process.

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The longest any step may take.
const WAIT: Duration = Duration::from_secs(60);
/// Publishes waiting for their acknowledgement at most.
const WINDOW: usize = 64;
/// Sequential events of the latency run.
const ROUND_TRIPS: usize = 500;

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// User + system CPU time so far, from `/proc/PID/stat` (0 where unavailable).
    fn cpu(&self) -> Duration {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())) else {
            return Duration::ZERO;
        };
        // Fields after the command name (which may hold spaces): utime and stime are the
        // 12th and 13th, in clock ticks (100 per second on Linux).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return Duration::ZERO;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start_redis() -> (Proc, String) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install -y redis-server)");
    (Proc(child), format!("redis://127.0.0.1:{port}/"))
}

fn start_ferrio(bin: &str, redis_url: Option<&str>) -> (Proc, u16) {
    let port = free_port();
    let mut command = Command::new(bin);
    command
        .env_clear()
        .env("FERRIO_SERVER_HOST", "127.0.0.1")
        .env("FERRIO_SERVER_PORT", port.to_string())
        .env("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$")
        .env("FERRIO_ROOMS_PUBLIC_PUBLISH", "^lobby$")
        .env("FERRIO_LOG_LEVEL", "warn")
        .arg("serve")
        .stdout(Stdio::null());
    if let Some(url) = redis_url {
        command
            .env("FERRIO_CLUSTER_ADAPTER", "redis")
            .env("FERRIO_CLUSTER_REDIS_URL", url);
    }
    (Proc(command.spawn().expect("spawn ferrio")), port)
}

/// `GET /ready`'s body, or "" while the node does not answer.
async fn ready(port: u16) -> String {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let request = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
}

/// Waits until every node answers and, with Redis, counts `nodes` nodes.
async fn wait_ready(ports: &[u16], redis: bool) {
    let want = format!("redis up, {} nodes", ports.len());
    let deadline = Instant::now() + WAIT;
    for &port in ports {
        loop {
            let body = ready(port).await;
            if body.contains("200 OK") && (!redis || body.contains(&want)) {
                break;
            }
            assert!(Instant::now() < deadline, "node {port} not ready: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The next text message, pings answered.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a valid message");
        if let Message::Text(text) = message {
            if text.as_str() == "2" {
                ws.send(Message::text("3")).await.expect("pong");
                continue;
            }
            return text.as_str().to_owned();
        }
    }
}

/// A client connected to `/` of the node on `port`, in room `lobby`.
async fn member(port: u16) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    assert!(next_text(&mut ws).await.starts_with('0'), "an OPEN packet");
    ws.send(Message::text("40")).await.expect("send");
    assert!(next_text(&mut ws).await.starts_with("40"), "a CONNECT");
    ws.send(Message::text(r#"421["join",{"room":"lobby"}]"#))
        .await
        .expect("send");
    assert_eq!(
        next_text(&mut ws).await,
        r#"431[{"ok":true,"room":"lobby"}]"#
    );
    ws
}

/// A publisher (connected, in no room) on `port`.
async fn publisher(port: u16) -> Ws {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    assert!(next_text(&mut ws).await.starts_with('0'));
    ws.send(Message::text("40")).await.expect("send");
    assert!(next_text(&mut ws).await.starts_with("40"));
    ws
}

fn publish_message(id: usize) -> Message {
    Message::text(format!(
        r#"42{id}["publish",{{"room":"lobby","event":"tick","data":{id}}}]"#
    ))
}

/// Counts `tick` events; reports once `expected` came.
async fn count(mut ws: Ws, expected: usize, done: tokio::sync::mpsc::Sender<()>) {
    let mut seen = 0;
    while seen < expected {
        if next_text(&mut ws).await.starts_with(r#"42["tick""#) {
            seen += 1;
        }
    }
    let _ = done.send(()).await;
    // Stay connected until the run ends.
    while ws.next().await.is_some() {}
}

struct FanOut {
    elapsed: Duration,
    ferrio_cpu: Duration,
    redis_cpu: Duration,
}

async fn fan_out(bin: &str, nodes: usize, redis: bool, clients: usize, events: usize) -> FanOut {
    let server = redis.then(start_redis);
    let url = server.as_ref().map(|(_, url)| url.as_str());
    let procs: Vec<(Proc, u16)> = (0..nodes).map(|_| start_ferrio(bin, url)).collect();
    let ports: Vec<u16> = procs.iter().map(|(_, port)| *port).collect();
    wait_ready(&ports, redis).await;
    let (done, mut finished) = tokio::sync::mpsc::channel(clients);
    for i in 0..clients {
        let ws = member(ports[i % nodes]).await;
        tokio::spawn(count(ws, events, done.clone()));
    }
    let mut sender = publisher(ports[0]).await;
    let cpu_before: Duration = procs.iter().map(|(p, _)| p.cpu()).sum();
    let redis_before = server.as_ref().map_or(Duration::ZERO, |(p, _)| p.cpu());
    let started = Instant::now();
    let mut unacked = VecDeque::new();
    for id in 1..=events {
        if unacked.len() == WINDOW {
            wait_ack(&mut sender, &mut unacked).await;
        }
        sender.send(publish_message(id)).await.expect("publish");
        unacked.push_back(id);
    }
    while !unacked.is_empty() {
        wait_ack(&mut sender, &mut unacked).await;
    }
    for _ in 0..clients {
        tokio::time::timeout(WAIT, finished.recv())
            .await
            .expect("every client got every event in time")
            .expect("a client");
    }
    let elapsed = started.elapsed();
    FanOut {
        elapsed,
        ferrio_cpu: procs.iter().map(|(p, _)| p.cpu()).sum::<Duration>() - cpu_before,
        redis_cpu: server.as_ref().map_or(Duration::ZERO, |(p, _)| p.cpu()) - redis_before,
    }
}

/// CPU time per event of the publishing node and, with Redis, of a second node with no client
/// (what receiving one event from Redis costs when there is nothing to deliver): `events`
/// events published at node 0 to its one member.
async fn cpu_per_event(bin: &str, redis: bool, events: usize) -> (Duration, Option<Duration>) {
    let server = redis.then(start_redis);
    let url = server.as_ref().map(|(_, url)| url.as_str());
    let nodes = if redis { 2 } else { 1 };
    let procs: Vec<(Proc, u16)> = (0..nodes).map(|_| start_ferrio(bin, url)).collect();
    let ports: Vec<u16> = procs.iter().map(|(_, port)| *port).collect();
    wait_ready(&ports, redis).await;
    let (done, mut finished) = tokio::sync::mpsc::channel(1);
    tokio::spawn(count(member(ports[0]).await, events, done));
    let mut sender = publisher(ports[0]).await;
    let before: Vec<Duration> = procs.iter().map(|(p, _)| p.cpu()).collect();
    let mut unacked = VecDeque::new();
    for id in 1..=events {
        if unacked.len() == WINDOW {
            wait_ack(&mut sender, &mut unacked).await;
        }
        sender.send(publish_message(id)).await.expect("publish");
        unacked.push_back(id);
    }
    while !unacked.is_empty() {
        wait_ack(&mut sender, &mut unacked).await;
    }
    tokio::time::timeout(WAIT, finished.recv())
        .await
        .expect("the member got every event in time")
        .expect("the member");
    // The other node receives from Redis at its own pace: let it finish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let per_event = |i: usize| (procs[i].0.cpu() - before[i]) / events as u32;
    (per_event(0), redis.then(|| per_event(1)))
}

/// Reads until the acknowledgement of the oldest publish.
async fn wait_ack(ws: &mut Ws, unacked: &mut VecDeque<usize>) {
    let id = unacked.pop_front().expect("a publish waiting");
    let expected = format!(r#"43{id}[{{"ok":true,"room":"lobby"}}]"#);
    loop {
        if next_text(ws).await == expected {
            return;
        }
    }
}

/// Median and 99th percentile of sequential publish-to-receipt times, the receiver on node
/// `receiver_node` of a 2-node cluster, the publisher on node 0.
async fn round_trips(ports: &[u16], receiver_node: usize) -> (Duration, Duration) {
    let mut receiver = member(ports[receiver_node]).await;
    let mut sender = publisher(ports[0]).await;
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for id in 1..=ROUND_TRIPS {
        let start = Instant::now();
        sender.send(publish_message(id)).await.expect("publish");
        let expected = format!(r#"42["tick",{id}]"#);
        while next_text(&mut receiver).await != expected {}
        times.push(start.elapsed());
        let mut unacked = VecDeque::from([id]);
        wait_ack(&mut sender, &mut unacked).await;
    }
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let bin = args
        .next()
        .unwrap_or_else(|| "target/release/ferrio".to_owned());
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let events: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    println!(
        "fan-out: {clients} clients spread over the nodes, {events} events published at node 0"
    );
    println!(
        "{:<24} {:>9} {:>14} {:>10} {:>22} {:>23}",
        "setup",
        "time",
        "deliveries/s",
        "events/s",
        "ferrio CPU ms/1000 dlv",
        "redis CPU ms, whole run"
    );
    // A first run warms the page cache and the machine up; it is not reported.
    let _ = fan_out(&bin, 1, false, clients, events).await;
    let runs = [
        ("in-memory, 1 node", 1, false),
        ("redis, 1 node", 1, true),
        ("redis, 2 nodes", 2, true),
        ("redis, 3 nodes", 3, true),
    ];
    for (setup, nodes, redis) in runs {
        let run = fan_out(&bin, nodes, redis, clients, events).await;
        let secs = run.elapsed.as_secs_f64();
        let deliveries = (clients * events) as f64;
        println!(
            "{setup:<24} {:>7.0}ms {:>14.0} {:>10.0} {:>22.2} {:>23.0}",
            secs * 1000.0,
            deliveries / secs,
            events as f64 / secs,
            run.ferrio_cpu.as_secs_f64() * 1000.0 / (deliveries / 1000.0),
            run.redis_cpu.as_secs_f64() * 1000.0,
        );
    }

    let cpu_events = 20_000;
    let (in_memory, _) = cpu_per_event(&bin, false, cpu_events).await;
    let (publishing, other) = cpu_per_event(&bin, true, cpu_events).await;
    let other = other.unwrap_or_default();
    println!("\nCPU per event, {cpu_events} events to one client on node 0:");
    println!(
        "  in-memory node:                     {:>6.1} us",
        micros(in_memory)
    );
    println!(
        "  redis, publishing node:             {:>6.1} us  (publishing: {:+.1} us)",
        micros(publishing),
        micros(publishing) - micros(in_memory)
    );
    println!(
        "  redis, other node, no client there: {:>6.1} us  (receiving and decoding)",
        micros(other)
    );

    let (_redis, url) = start_redis();
    let procs: Vec<(Proc, u16)> = (0..2).map(|_| start_ferrio(&bin, Some(&url))).collect();
    let ports: Vec<u16> = procs.iter().map(|(_, port)| *port).collect();
    wait_ready(&ports, true).await;
    let (same_median, same_p99) = round_trips(&ports, 0).await;
    let (cross_median, cross_p99) = round_trips(&ports, 1).await;
    println!("\none event, publish to receipt, {ROUND_TRIPS} in sequence (2 nodes on Redis):");
    println!(
        "  receiver on the publisher's node:  median {:>7.1} us, p99 {:>7.1} us",
        micros(same_median),
        micros(same_p99)
    );
    println!(
        "  receiver on the other node:        median {:>7.1} us, p99 {:>7.1} us",
        micros(cross_median),
        micros(cross_p99)
    );
    println!(
        "  crossing Redis costs one event     {:>7.1} us (difference of the medians)",
        micros(cross_median) - micros(same_median)
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
