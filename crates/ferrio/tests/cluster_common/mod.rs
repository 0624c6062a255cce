//! Helpers of the multi-node tests: a real `redis-server` and real `ferrio serve` processes on
//! free ports of 127.0.0.1, plain HTTP probes of `/ready` and `/metrics`, and `ferrio-client`
//! sockets that join and publish with the gateway's built-in events. Every wait is bounded.

#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrio_client::{ClientConfig, Manager, Payload, Socket, TransportKind};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::process::{request, Ferrio, Launch, Ready};

/// The longest any single step may take.
pub(crate) const WAIT: Duration = Duration::from_secs(20);
/// Long enough for a stray duplicate to show up.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

pub(crate) use crate::process::free_port;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says loudly that a test did not run, or fails it under `CI=true`.
pub(crate) fn skip(why: &str) {
    assert!(!ci(), "{why}, and CI=true: the test cannot run");
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

/// Waits until `check` holds, polling; panics naming `what` after [`WAIT`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// redis-server
// ---------------------------------------------------------------------------------------------

/// A `redis-server` child process on a free port, killed when dropped.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Whether it keeps its data across a kill (`appendonly yes`, `appendfsync always`).
    durable: bool,
}

impl RedisServer {
    /// Starts a fresh server without persistence, or `None` (said loudly) when `redis-server`
    /// is not installed.
    pub(crate) fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// Starts a fresh server that writes every command to its append-only file and fsyncs it
    /// before answering (`appendonly yes`, `appendfsync always`): what it acknowledged survives
    /// a kill, and a restart finds it.
    #[allow(dead_code)] // Not every test file uses it.
    pub(crate) fn start_durable() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            skip("redis-server is not installed (apt-get install -y redis-server)");
            return None;
        }
        let mut server = Self {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("a temporary directory"),
            durable,
        };
        server.spawn();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the process on the server's port (and directory, where a durable server keeps
    /// its data), and waits until it answers.
    pub(crate) fn spawn(&mut self) {
        let persistence: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(self.dir.path())
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while !self.ping() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// Kills the server, as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port: empty, unless it is durable.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------------------------
// ferrio serve
// ---------------------------------------------------------------------------------------------

/// A `ferrio serve` process with the Redis adapter, killed when dropped; its log is printed
/// when a test fails.
pub(crate) struct FerrioNode {
    pub(crate) port: u16,
    process: Ferrio,
}

impl FerrioNode {
    /// Starts a node on `redis_url` where anyone may join and publish to `lobby`, with `env`
    /// on top, and waits until it answers `/health`.
    pub(crate) fn start(redis_url: &str, env: &[(&str, &str)]) -> Self {
        Self::from(Ferrio::launch(&Self::launch(redis_url, env)))
    }

    /// [`FerrioNode::start`] on a given port.
    pub(crate) fn start_on(port: u16, redis_url: &str, env: &[(&str, &str)]) -> Self {
        let process = Ferrio::launch_on(port, &Self::launch(redis_url, env))
            .unwrap_or_else(|log| panic!("ferrio could not listen on {port}:\n{log}"));
        Self::from(process)
    }

    fn launch<'a>(redis_url: &'a str, env: &[(&'a str, &'a str)]) -> Launch<'a> {
        let mut all = vec![
            ("FERRIO_CLUSTER_ADAPTER", "redis"),
            ("FERRIO_CLUSTER_REDIS_URL", redis_url),
            ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
            ("FERRIO_ROOMS_PUBLIC_PUBLISH", "^lobby$"),
            ("FERRIO_LOG_LEVEL", "info"),
        ];
        all.extend_from_slice(env);
        Launch {
            args: &["serve"],
            env: all,
            files: Vec::new(),
            ready: Ready::Health,
        }
    }

    fn from(process: Ferrio) -> Self {
        Self {
            port: process.port,
            process,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the node logged so far.
    pub(crate) fn log(&self) -> String {
        self.process.log()
    }

    /// `GET /ready`: status and body.
    pub(crate) async fn ready_answer(&self) -> (u16, String) {
        let port = self.port;
        tokio::task::spawn_blocking(move || http_get(port, "/ready"))
            .await
            .expect("join")
            .expect("/ready answered")
    }

    /// The body of `GET /ready`.
    pub(crate) async fn ready(&self) -> String {
        self.ready_answer().await.1
    }

    /// The body of `GET /metrics`.
    pub(crate) async fn metrics(&self) -> String {
        let port = self.port;
        tokio::task::spawn_blocking(move || http_get(port, "/metrics"))
            .await
            .expect("join")
            .expect("/metrics answered")
            .1
    }

    /// Waits until Redis is up for this node and counts `n` nodes in the cluster.
    pub(crate) async fn wait_cluster_size(&self, n: usize) {
        let line = format!("cluster: redis up, {n} nodes\n");
        eventually(&format!("{} to count {n} nodes", self.url()), || async {
            self.ready().await.contains(&line)
        })
        .await;
    }

    /// Sends SIGTERM: the node drains.
    pub(crate) fn terminate(&self) {
        self.process.terminate();
    }

    /// Waits (at most `limit`) for the process to exit: its status, or `None` if it did not.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.process.wait_exit(limit)
    }

    /// Kills the process with SIGKILL: no goodbye to Redis or to its clients.
    pub(crate) fn kill(self) {
        self.process.kill();
    }
}

/// One `GET` on a fresh connection: status and body.
pub(crate) fn http_get(port: u16, target: &str) -> std::io::Result<(u16, String)> {
    request(port, "GET", target, &[], "").map(|answer| (answer.status, answer.body))
}

/// One `POST` of a JSON body with an `X-API-Key` header on a fresh connection: status and body.
pub(crate) fn http_post_json(
    port: u16,
    target: &str,
    key: &str,
    body: &Value,
) -> std::io::Result<(u16, String)> {
    let headers = [("X-API-Key", key), ("Content-Type", "application/json")];
    request(port, "POST", target, &headers, &body.to_string())
        .map(|answer| (answer.status, answer.body))
}

/// `ferrio config check` with only `env`: its exit code and everything it printed.
pub(crate) fn config_check(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(["config", "check"])
        .output()
        .expect("run ferrio config check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// A `ferrio-client` socket on the main namespace that records its `news` events.
pub(crate) struct Member {
    socket: Socket,
    news: mpsc::UnboundedReceiver<String>,
    disconnects: Arc<AtomicUsize>,
}

impl Member {
    /// Connects over WebSocket to `node`.
    pub(crate) async fn connect(node: &FerrioNode) -> Self {
        let mut config = ClientConfig::new(node.url());
        config.transports = vec![TransportKind::WebSocket];
        config.reconnection.enabled = false;
        let manager = Manager::new(config).expect("a client configuration");
        let socket = manager.socket("/").expect("the main namespace");
        let (tx, news) = mpsc::unbounded_channel();
        socket.on("news", move |_socket, event| {
            let data: Value = event.payload.get(0).unwrap_or(Value::Null);
            let _ = tx.send(data.to_string());
        });
        let disconnects = Arc::new(AtomicUsize::new(0));
        let counter = disconnects.clone();
        socket.on_disconnect(move |_socket, _reason| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::timeout(WAIT, socket.connect())
            .await
            .expect("connected in time")
            .expect("connected");
        Self {
            socket,
            news,
            disconnects,
        }
    }

    async fn ask(&self, event: &str, arg: Value) -> Value {
        let answer = self
            .socket
            .emit_with_ack(event, Payload::json(arg).expect("JSON"), WAIT)
            .await
            .unwrap_or_else(|e| panic!("{event}: no answer: {e}"));
        answer.get(0).expect("one JSON argument")
    }

    /// Sends built-in event `event` (`join` or `leave`) for `room` and asserts it succeeded.
    pub(crate) async fn ok(&self, event: &str, room: &str) {
        let answer = self.ask(event, json!({ "room": room })).await;
        assert_eq!(
            answer,
            json!({ "ok": true, "room": room }),
            "{event} {room}"
        );
    }

    /// Publishes `data` as `event` to `room` and asserts the gateway accepted it.
    pub(crate) async fn publish(&self, room: &str, event: &str, data: Value) {
        let answer = self
            .ask(
                "publish",
                json!({ "room": room, "event": event, "data": data }),
            )
            .await;
        assert_eq!(answer, json!({ "ok": true, "room": room }), "publish");
    }

    /// The next `news` event's data, as JSON text.
    pub(crate) async fn receive(&mut self) -> String {
        tokio::time::timeout(WAIT, self.news.recv())
            .await
            .expect("a news event in time")
            .expect("the socket is alive")
    }

    /// The next `n` `news` events, each distinct.
    pub(crate) async fn receive_set(&mut self, n: usize) -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            let message = self.receive().await;
            assert!(seen.insert(message.clone()), "received twice: {message}");
        }
        seen
    }

    /// Asserts no `news` event comes within `limit`.
    pub(crate) async fn expect_nothing(&mut self, limit: Duration) {
        if let Ok(Some(message)) = tokio::time::timeout(limit, self.news.recv()).await {
            panic!("unexpected news: {message}");
        }
    }

    /// Whether the socket is connected.
    pub(crate) fn connected(&self) -> bool {
        self.socket.connected()
    }

    /// How many times the socket was disconnected.
    pub(crate) fn disconnects(&self) -> usize {
        self.disconnects.load(Ordering::SeqCst)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.socket.disconnect();
    }
}

/// The path of a file of the repository.
pub(crate) fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

// ---------------------------------------------------------------------------------------------
// A raw Socket.IO client, for what a test must see byte for byte (recovery's pid and offsets)
// ---------------------------------------------------------------------------------------------

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One Engine.IO v4 WebSocket connection to the main namespace.
pub(crate) struct RawSocket {
    ws: Ws,
    /// The CONNECT answer's data: `{"sid", "pid"}`.
    pub(crate) connected: Value,
}

impl RawSocket {
    /// Connects to `/` of the node on `port`, with `auth` in the CONNECT packet.
    pub(crate) async fn connect(port: u16, auth: Option<Value>) -> Self {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connected");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, stream))
            .await
            .expect("opened in time")
            .expect("opened");
        let mut socket = Self {
            ws,
            connected: Value::Null,
        };
        let open = socket.text().await;
        assert!(open.starts_with('0'), "an OPEN packet: {open}");
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        socket
            .ws
            .send(Message::text(connect))
            .await
            .expect("CONNECT sent");
        let answer = socket.text().await;
        socket.connected = serde_json::from_str(
            answer
                .strip_prefix("40")
                .unwrap_or_else(|| panic!("a CONNECT answer: {answer}")),
        )
        .expect("JSON");
        socket
    }

    /// The next text packet, pings answered.
    pub(crate) async fn text(&mut self) -> String {
        self.text_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("no packet within {WAIT:?}"))
    }

    /// The next text packet if one comes within `limit`.
    pub(crate) async fn text_within(&mut self, limit: Duration) -> Option<String> {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?
                .expect("the connection is open")
                .expect("a valid message");
            if let Message::Text(text) = message {
                if text.as_str() == "2" {
                    self.ws.send(Message::text("3")).await.expect("pong");
                    continue;
                }
                return Some(text.as_str().to_owned());
            }
        }
    }

    /// Sends a text packet.
    pub(crate) async fn send(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::text(
                text.to_owned(),
            ))
            .await
            .expect("sent");
    }

    /// The arguments of the next event, after its name `name`.
    pub(crate) async fn event(&mut self, name: &str) -> Vec<Value> {
        let text = self.text().await;
        let array: Value = serde_json::from_str(
            text.strip_prefix("42")
                .unwrap_or_else(|| panic!("an EVENT: {text}")),
        )
        .expect("JSON");
        let mut args = array.as_array().expect("an array").clone();
        assert_eq!(args.first(), Some(&Value::from(name)), "{text}");
        args.remove(0);
        args
    }
}
