//! Helpers of the cluster tests: a real `redis-server` run as a child process on a free port of
//! 127.0.0.1, Ferrio nodes with the Redis adapter on their own ports, and a raw Engine.IO
//! WebSocket client that asserts the exact packets a real client sees. Every wait is bounded.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrio_redis_adapter::{RedisAdapterConfig, RedisNode};
use ferrio_socketio::{RecoveryConfig, SocketId, SocketIo, SocketIoConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single step of a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// redis-server
// ---------------------------------------------------------------------------------------------

/// A `redis-server` child process, killed when dropped.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    binary: String,
    child: Option<Child>,
}

/// The `redis-server` binary, if installed.
fn redis_binary() -> Option<String> {
    if let Ok(path) = std::env::var("REDIS_SERVER") {
        return Some(path);
    }
    [
        "redis-server",
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
    ]
    .into_iter()
    .find(|bin| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .map(str::to_owned)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Starts a fresh server, or `None` (said loudly) when `redis-server` is not installed.
    /// Under `CI=true` a missing server fails the test instead.
    pub(crate) async fn start() -> Option<Self> {
        let Some(binary) = redis_binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("redis-server is not installed (apt-get install -y redis-server)");
            }
            eprintln!(
                "\n*** SKIPPED: redis-server is not installed (apt-get install -y redis-server) ***\n"
            );
            return None;
        };
        let mut server = Self {
            port: free_port(),
            binary,
            child: None,
        };
        server.spawn().await;
        Some(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if self.ping().await {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(Ok(mut conn)) = timeout(
            Duration::from_secs(1),
            client.get_multiplexed_async_connection(),
        )
        .await
        else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }

    /// Kills the server (as a crash would).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub(crate) async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// How many connections subscribe to `channel`.
    pub(crate) async fn num_sub(&self, channel: &str) -> usize {
        let client = redis::Client::open(self.url()).expect("url");
        let Ok(Ok(mut conn)) = timeout(
            Duration::from_secs(1),
            client.get_multiplexed_async_connection(),
        )
        .await
        else {
            return 0;
        };
        let answer: Vec<redis::Value> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        match answer.get(1) {
            Some(redis::Value::Int(n)) => *n as usize,
            _ => 0,
        }
    }

    /// `CLIENT LIST`.
    pub(crate) async fn client_list(&self) -> String {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = timeout(
            Duration::from_secs(1),
            client.get_multiplexed_async_connection(),
        )
        .await
        .expect("connected in time")
        .expect("connected");
        redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut conn)
            .await
            .expect("CLIENT LIST")
    }

    /// Waits until `count` nodes listen to the requests of namespace `/`.
    pub(crate) async fn wait_nodes(&self, count: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let n = self.num_sub("socket.io-request#/#").await;
            if n == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} nodes subscribed, expected {count}"
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// Ferrio nodes
// ---------------------------------------------------------------------------------------------

/// A Ferrio server with the Redis adapter, on its own port of 127.0.0.1.
pub(crate) struct Node {
    pub(crate) io: SocketIo,
    pub(crate) addr: SocketAddr,
    pub(crate) redis: RedisNode,
    task: JoinHandle<()>,
}

impl Node {
    pub(crate) async fn start(redis_url: &str) -> Self {
        Self::start_with(redis_url, |_| {}).await
    }

    /// A node whose main namespace's connect handler is `on_connection`.
    pub(crate) async fn start_with(
        redis_url: &str,
        on_connection: impl Fn(&std::sync::Arc<ferrio_socketio::Socket>) + Send + Sync + 'static,
    ) -> Self {
        Self::start_full(redis_url, None, false, on_connection).await
    }

    /// A node with connection state recovery on (the reference's defaults).
    pub(crate) async fn start_recovering(redis_url: &str) -> Self {
        Self::start_full(redis_url, Some(RecoveryConfig::default()), false, |_| {}).await
    }

    /// A recovering node whose assigned offsets travel to the other nodes
    /// (`share_assigned_offsets`, as with history in one shared store).
    #[allow(dead_code)] // Not every test file uses it.
    pub(crate) async fn start_recovering_sharing_offsets(redis_url: &str) -> Self {
        Self::start_full(redis_url, Some(RecoveryConfig::default()), true, |_| {}).await
    }

    async fn start_full(
        redis_url: &str,
        recovery: Option<RecoveryConfig>,
        share_assigned_offsets: bool,
        on_connection: impl Fn(&std::sync::Arc<ferrio_socketio::Socket>) + Send + Sync + 'static,
    ) -> Self {
        let redis = RedisNode::new(RedisAdapterConfig {
            requests_timeout: Duration::from_secs(3),
            min_reconnect_delay: Duration::from_millis(50),
            max_reconnect_delay: Duration::from_millis(300),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            ping_interval: Duration::from_millis(200),
            share_assigned_offsets,
            ..RedisAdapterConfig::new(redis_url)
        })
        .expect("a Redis node");
        let (service, io) = SocketIo::new(SocketIoConfig {
            adapter: redis.factory(),
            recovery,
            ..SocketIoConfig::default()
        });
        io.ns("/", on_connection);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = ferrio_socketio::serve(listener, service).await;
        });
        Self {
            io,
            addr,
            redis,
            task,
        }
    }

    /// A client connected to the main namespace.
    pub(crate) async fn client(&self) -> WsClient {
        let mut client = WsClient::connect(self.addr).await;
        client.join().await;
        client
    }

    /// Makes the local socket `sid` join `room`.
    pub(crate) fn join(&self, sid: &str, room: &str) {
        self.io
            .of("/")
            .socket(&SocketId::from_string(sid))
            .expect("a local socket")
            .join(room.to_owned());
    }

    /// Stops the node: its Redis links, its listener and its clients.
    pub(crate) fn stop(&self) {
        self.redis.close();
        self.io.close();
        self.task.abort();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.redis.close();
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// A raw WebSocket client
// ---------------------------------------------------------------------------------------------

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw Engine.IO v4 client over WebSocket.
pub(crate) struct WsClient {
    ws: WsStream,
    /// The Socket.IO socket id in `/`, once joined.
    pub(crate) sid: String,
}

/// One frame as the client saw it.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Closed,
}

impl WsClient {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket opened in time")
            .expect("websocket opened");
        let mut client = Self {
            ws,
            sid: String::new(),
        };
        let open = client.recv().await;
        assert!(open.starts_with('0'), "an open packet: {open}");
        client
    }

    /// Connects to `/` and keeps the socket id.
    pub(crate) async fn join(&mut self) {
        self.join_with(None).await;
    }

    /// Connects to `/` with `auth` (a recovery `{pid, offset}`), keeps the socket id and
    /// returns the CONNECT reply's data (`sid`, and `pid` with recovery on).
    pub(crate) async fn join_with(&mut self, auth: Option<Value>) -> Value {
        match auth {
            Some(auth) => self.send(&format!("40{auth}")).await,
            None => self.send("40").await,
        }
        let reply = self.recv().await;
        let data: Value = serde_json::from_str(
            reply
                .strip_prefix("40")
                .unwrap_or_else(|| panic!("not a CONNECT reply: {reply}")),
        )
        .expect("JSON");
        self.sid = data["sid"].as_str().expect("a sid").to_owned();
        data
    }

    /// The next frame, pings answered and skipped.
    pub(crate) async fn frame(&mut self) -> Frame {
        self.frame_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("no frame within {WAIT:?}"))
    }

    /// The next frame if one comes within `limit`.
    pub(crate) async fn frame_within(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match next {
                Some(Ok(WsMessage::Text(text))) if text.as_str() == "2" => {
                    self.send("3").await;
                    continue;
                }
                Some(Ok(WsMessage::Text(text))) => Frame::Text(text.as_str().to_owned()),
                Some(Ok(WsMessage::Binary(data))) => Frame::Binary(data.to_vec()),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => Frame::Closed,
            });
        }
    }

    /// The next text message.
    pub(crate) async fn recv(&mut self) -> String {
        match self.frame().await {
            Frame::Text(text) => text,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Asserts the next text message is exactly `expected`.
    pub(crate) async fn expect(&mut self, expected: &str) {
        assert_eq!(self.recv().await, expected);
    }

    /// Asserts nothing arrives within `limit`.
    pub(crate) async fn expect_nothing(&mut self, limit: Duration) {
        if let Some(frame) = self.frame_within(limit).await {
            panic!("unexpected frame: {frame:?}");
        }
    }

    pub(crate) async fn send(&mut self, text: &str) {
        timeout(WAIT, self.ws.send(WsMessage::text(text.to_owned())))
            .await
            .expect("sent in time")
            .expect("sent");
    }
}

/// A fresh `redis-server` for the test, or return from it (said loudly) when none is installed.
#[allow(unused_macros)] // Not every test file uses it.
macro_rules! redis_or_skip {
    () => {
        match common::RedisServer::start().await {
            Some(redis) => redis,
            None => return,
        }
    };
}

/// `n` nodes on `redis`, with connection state recovery on when `recovering`, once each counts
/// them all.
#[allow(dead_code)] // Not every test file uses it.
pub(crate) async fn cluster(redis: &RedisServer, n: usize, recovering: bool) -> Vec<Node> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(if recovering {
            Node::start_recovering(&redis.url()).await
        } else {
            Node::start(&redis.url()).await
        });
    }
    redis.wait_nodes(n).await;
    nodes
}

/// A folder of the repository, from this crate's.
#[allow(dead_code)] // Not every test file uses it.
pub(crate) fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Whether `node` and the npm packages of `dir` are there: `npm ci` in `dir` once when
/// `dir/node_modules/<package>` is missing, as `scripts/test.sh` does. A missing `node` skips
/// loudly, or fails under `CI=true`.
#[allow(dead_code)] // Not every test file uses it.
pub(crate) fn node_packages_ready(dir: &std::path::Path, package: &str) -> bool {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let has_node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_node {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "node is not installed"
        );
        eprintln!("\n*** SKIPPED: node is not installed ***\n");
        return false;
    }
    // One install at a time: tests of a file run in parallel.
    let _installing = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if !dir.join("node_modules").join(package).exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "npm ci in {}",
            dir.display()
        );
    }
    true
}
