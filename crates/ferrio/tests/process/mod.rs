//! The built `ferrio serve` as a child process on a free 127.0.0.1 port, shared by every test
//! that runs the gateway: a clean environment, logs in a file (printed when a test fails),
//! signals, the process's memory, and plain HTTP/1.1 requests to it.

#![allow(dead_code)] // Each test file uses part of it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a server may take to come up.
const START_LIMIT: Duration = Duration::from_secs(20);
/// How many free ports a start tries when another test takes its port meanwhile.
const START_TRIES: usize = 5;
/// The log level of [`Ferrio::serve`]: the gateway's debug lines, which tests read.
const DEBUG_LOG: (&str, &str) = ("FERRIO_LOG_LEVEL", "info,ferrio=debug");

/// A port free on 127.0.0.1 now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// tests/interop of the repository, where `npm ci` installs the official client.
pub(crate) fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Whether `node` and the official socket.io-client v4 (tests/interop/node_modules) are here;
/// without them the test is skipped loudly, or fails under `CI=true`.
pub(crate) fn node_client_available() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let what = if !node {
        "node"
    } else if !interop_dir().join("node_modules/sio-client-v4").is_dir() {
        "tests/interop/node_modules/sio-client-v4 (run `npm ci` in tests/interop)"
    } else {
        return true;
    };
    assert!(
        !ferrio_test_support::nginx::in_ci(),
        "{what} is missing, and CI=true: the test cannot run"
    );
    eprintln!("\n*** SKIPPED: {what} is missing; the test did not run ***\n");
    false
}

/// When a starting server counts as up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    /// It accepts TCP connections (TLS servers included).
    Accepts,
    /// `GET /health` answers 200.
    Health,
    /// Its log says it listens and `GET /health` answers 200.
    Listening,
}

/// How to start `ferrio`: the arguments, the environment on top of `PATH` and the host and
/// port, files written to its working directory first, and when it is up.
pub(crate) struct Launch<'a> {
    pub(crate) args: &'a [&'a str],
    pub(crate) env: Vec<(&'a str, &'a str)>,
    /// `(name, contents)`: written to the working directory before the start.
    pub(crate) files: Vec<(&'a str, String)>,
    pub(crate) ready: Ready,
}

impl<'a> Launch<'a> {
    /// `ferrio serve --no-env-file` at the debug log level with `env` on top, up once it logs
    /// that it listens and `/health` answers.
    pub(crate) fn serve(env: &[(&'a str, &'a str)]) -> Self {
        let mut all = vec![DEBUG_LOG];
        all.extend_from_slice(env);
        Launch {
            args: &["serve", "--no-env-file"],
            env: all,
            files: Vec::new(),
            ready: Ready::Listening,
        }
    }
}

/// A running `ferrio`, killed when dropped (its log printed if the test failed).
pub(crate) struct Ferrio {
    pub(crate) child: Child,
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Ferrio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- ferrio on port {} ---\n{}", self.port, self.log());
        }
    }
}

impl Ferrio {
    /// Starts `ferrio serve` with only `PATH`, `NO_COLOR`, the host and port, and `env` in its
    /// environment, and waits (20 s at most) until it accepts connections.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        Self::launch(&Self::plain(env))
    }

    /// [`Ferrio::start`] on a given port.
    pub(crate) fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        Self::launch_on(port, &Self::plain(env))
            .unwrap_or_else(|log| panic!("ferrio could not listen on {port}:\n{log}"))
    }

    fn plain<'a>(env: &[(&'a str, &'a str)]) -> Launch<'a> {
        // Plain log lines, which the tests read.
        let mut all = vec![("NO_COLOR", "1")];
        all.extend_from_slice(env);
        Launch {
            args: &["serve"],
            env: all,
            files: Vec::new(),
            ready: Ready::Accepts,
        }
    }

    /// Starts `ferrio serve` with only `PATH`, the host and port, the debug log level and `env`
    /// in its environment (no configuration file, no `.env`), and waits (20 s at most) until it
    /// logged that it listens and its `/health` answers.
    pub(crate) fn serve(env: &[(&str, &str)]) -> Self {
        Self::launch(&Launch::serve(env))
    }

    /// Starts `launch` on a free port. A port taken by another test between its choice and the
    /// server's bind is seen (the server exits) and another port is tried.
    pub(crate) fn launch(launch: &Launch) -> Self {
        for _ in 0..START_TRIES {
            if let Ok(server) = Self::launch_on(free_port(), launch) {
                return server;
            }
        }
        panic!("ferrio never came up on a free port");
    }

    /// Starts `launch` on `port` and waits (20 s at most) until it is up; its log if it could
    /// not listen on the port. Any other exit fails the test.
    pub(crate) fn launch_on(port: u16, launch: &Launch) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, contents) in &launch.files {
            std::fs::write(dir.path().join(name), contents).expect("write a file");
        }
        let log = dir.path().join("ferrio.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FERRIO_SERVER_HOST", "127.0.0.1")
            .env("FERRIO_SERVER_PORT", port.to_string())
            .envs(launch.env.iter().copied())
            .args(launch.args)
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("ferrio starts");
        let mut server = Self {
            child,
            port,
            log,
            dir,
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log();
                if log.contains("cannot listen") {
                    return Err(log); // The port was taken meanwhile.
                }
                panic!("ferrio exited ({status}):\n{log}");
            }
            let up = match launch.ready {
                Ready::Accepts => TcpStream::connect(("127.0.0.1", port)).is_ok(),
                Ready::Health => server.healthy(),
                // Its own log says it bound the port; /health then says it serves.
                Ready::Listening => {
                    server.log().contains("ferrio listening on") && server.healthy()
                }
            };
            if up {
                return Ok(server);
            }
            assert!(
                Instant::now() < deadline,
                "ferrio never came up ({:?}):\n{}",
                launch.ready,
                server.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn healthy(&self) -> bool {
        matches!(request(self.port, "GET", "/health", &[], ""), Ok(answer) if answer.status == 200)
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A directory that lives as long as the server.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`; false if it never does.
    pub(crate) fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// Sends a signal by name (`HUP`, `INT`, `KILL`, `TERM`) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        self.signal("TERM");
    }

    /// Waits (at most `limit`) for the process to exit; `None` if it did not.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The resident memory of the process in KiB (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// `GET path` on a fresh connection: the status code (0 without an answer) and the body.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        match request(self.port, "GET", path, &[], "") {
            Ok(answer) => (answer.status, answer.body),
            Err(_) => (0, String::new()),
        }
    }

    /// The value of a metric line of `/metrics` (the first whose name and labels start with
    /// `prefix`), or 0 when absent.
    pub(crate) fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (bounded) until `ferrio_connections` reads `count`; the last value read.
    pub(crate) fn wait_connections(&self, count: f64, limit: Duration) -> f64 {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.metric("ferrio_connections");
            if now == count || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The next text frame of a WebSocket (10 s at most), answering Engine.IO pings on the way.
pub(crate) async fn next_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            if text.as_str() == "2" {
                ws.send(Message::text("3")).await.expect("pong");
                continue;
            }
            return text.as_str().to_owned();
        }
    }
}

/// Socket.IO over a WebSocket on `stream` to `url`: the open packet read, the main namespace
/// connected. Returns the socket and the open packet.
pub(crate) async fn socketio_connect<S>(
    stream: S,
    url: &str,
) -> (tokio_tungstenite::WebSocketStream<S>, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, response) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("WebSocket");
    assert_eq!(response.status(), 101);
    let open = next_text(&mut ws).await;
    assert!(open.starts_with("0{\"sid\":"), "{open}");
    ws.send(Message::text("40")).await.expect("connect");
    let connected = next_text(&mut ws).await;
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    (ws, open)
}

/// [`socketio_connect`] over a direct WebSocket to the server on `port`.
pub(crate) async fn socketio_websocket(
    port: u16,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    String,
) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    socketio_connect(tcp, &url).await
}

/// Joins `lobby` with acknowledgement `id` and checks the answer.
pub(crate) async fn join_lobby<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, id: u32)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::text(format!(
        "42{id}[\"join\",{{\"room\":\"lobby\"}}]"
    )))
    .await
    .expect("emit");
    assert_eq!(
        next_text(ws).await,
        format!("43{id}[{{\"ok\":true,\"room\":\"lobby\"}}]")
    );
}

/// An HTTP answer: status, headers (names in lower case) and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    /// The value of header `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: not JSON: {:?} ({})", self.body, self.status))
    }
}

/// One request on a fresh connection, closed after the answer.
pub(crate) fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    request_on(stream, method, target, headers, body)
}

/// One request on `stream`, which is then closed.
pub(crate) fn request_on(
    mut stream: TcpStream,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}
