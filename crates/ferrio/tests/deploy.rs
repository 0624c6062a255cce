//! The `deploy/` folder, exercised for real: `deploy/nginx.conf` with its upstreams pointed at
//! `ferrio serve` processes on free ports (and nginx's own files in a temporary directory), in
//! front of a real `redis-server`, with the official socket.io-client v4 connecting through it
//! (long-polling first, then the upgrade to WebSocket, as browsers do); the systemd unit checked
//! by `systemd-analyze verify`; the docker-compose settings checked by `ferrio config check`.
//!
//! Without nginx, redis-server, node or the npm packages of tests/interop these tests are
//! skipped loudly, unless `CI=true`, where they fail. Every wait is bounded.

mod cluster_common;
mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster_common::{
    eventually, free_port, repo_path, skip, FerrioNode, Member, RedisServer, WAIT,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How many official clients connect through nginx, each from its own loopback address.
const CLIENTS: usize = 12;

/// `deploy/nginx.conf` made runnable here: upstreams on `ports`, listening on
/// 127.0.0.1:`listen`, one worker, and its logs and temporary files in `dir`. With `sticky`
/// false the `hash` line is removed, to show what happens without stickiness.
fn render_nginx_conf(ports: &[u16], listen: u16, dir: &Path, sticky: bool) -> String {
    let mut conf = std::fs::read_to_string(repo_path("deploy/nginx.conf")).expect("nginx.conf");
    let mut servers = String::new();
    for port in ports {
        servers.push_str(&format!("        server 127.0.0.1:{port};\n"));
    }
    let upstreams =
        "        server ferrio1:3000;\n        server ferrio2:3000;\n        server ferrio3:3000;\n";
    let d = dir.display();
    let replacements = [
        (upstreams.to_owned(), servers),
        (
            "        listen 80;\n".to_owned(),
            format!("        listen 127.0.0.1:{listen};\n"),
        ),
        // One worker: its round robin is the only one, so the unsticky case is deterministic.
        (
            "worker_processes auto;\n".to_owned(),
            "worker_processes 1;\n".to_owned(),
        ),
        (
            "http {\n".to_owned(),
            format!(
                "http {{\n    log_format routed '$remote_addr \"$request_uri\" $upstream_addr $status';\n    \
                 access_log {d}/access.log routed;\n    client_body_temp_path {d}/body;\n    \
                 proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
                 uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
            ),
        ),
    ];
    for (from, to) in replacements {
        assert_eq!(
            conf.matches(&from).count(),
            1,
            "deploy/nginx.conf has {from:?}"
        );
        conf = conf.replace(&from, &to);
    }
    if !sticky {
        let hash = "        hash $remote_addr consistent;\n";
        assert_eq!(conf.matches(hash).count(), 1, "deploy/nginx.conf is sticky");
        conf = conf.replace(hash, "");
    }
    conf
}

/// A real nginx in the foreground, stopped when dropped; its error log is printed when a test
/// fails.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    /// nginx with `deploy/nginx.conf` in front of `ports`, or `None` (said loudly) when nginx is
    /// not installed.
    fn start(ports: &[u16], sticky: bool) -> Option<Self> {
        let Some(binary) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
        else {
            skip("nginx is not installed (apt-get install -y nginx)");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        // nginx's workers may run as another user (nobody) when the tests run as root.
        set_mode(dir.path(), 0o755);
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, render_nginx_conf(ports, port, dir.path(), sticky))
            .expect("write nginx.conf");
        let d = dir.path().display();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {d}/nginx.pid; error_log {d}/error.log info;"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let nginx = Self { child, dir, port };
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx never listened:\n{}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(nginx)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Each logged request: client address, request URI, upstream address, status.
    fn access_log(&self) -> Vec<(String, String, String, u16)> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (addr, rest) = line.split_once(" \"")?;
                let (uri, rest) = rest.split_once("\" ")?;
                let (upstream, status) = rest.rsplit_once(' ')?;
                Some((
                    addr.to_owned(),
                    uri.to_owned(),
                    upstream.to_owned(),
                    status.parse().ok()?,
                ))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- nginx error log ---\n{}", self.error_log());
        }
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Official clients, each from its own loopback address (so that nginx's `hash $remote_addr`
/// spreads them): connect with polling, upgrade, join `lobby`, print their state, then wait
/// for `EXPECTED` `news` events each (and a little more, for duplicates) and print them.
const CLIENT_SCRIPT: &str = r#"
const http = require("http");
const { io } = require("sio-client-v4");
const [URL, COUNT, EXPECTED] = [process.env.URL, +process.env.COUNT, +process.env.EXPECTED];
const out = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
setTimeout(() => { out({ fatal: "script timeout" }); process.exit(2); }, 25000);
(async () => {
  const clients = [];
  for (let i = 0; i < COUNT; i++) {
    const localAddress = `127.0.0.${i + 2}`;
    const s = io(URL, {
      forceNew: true,
      reconnection: false,
      transports: ["polling", "websocket"],
      // Polling requests go through the agent, the WebSocket through localAddress.
      agent: new http.Agent({ keepAlive: true, localAddress }),
      localAddress,
    });
    const got = [];
    s.on("news", (data) => got.push(data));
    const upgraded = new Promise((resolve) => {
      s.io.on("open", () => s.io.engine.once("upgrade", () => resolve()));
    });
    await new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", (e) => reject(new Error(`client ${i}: ${e.message}`)));
    });
    await upgraded;
    const joined = await s.timeout(5000).emitWithAck("join", { room: "lobby" });
    clients.push({ s, got, joined, localAddress });
  }
  out({
    ready: clients.map((c) => ({
      sid: c.s.io.engine.id,
      transport: c.s.io.engine.transport.name,
      joined: c.joined,
    })),
  });
  for (let i = 0; i < 200 && clients.some((c) => c.got.length < EXPECTED); i++) await sleep(50);
  await sleep(300);
  out({ got: clients.map((c) => c.got), connected: clients.map((c) => c.s.connected) });
  for (const c of clients) c.s.close();
  await sleep(200);
  process.exit(0);
})().catch((e) => { out({ fatal: String(e.stack) }); process.exit(3); });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_clients_through_the_deploy_nginx_conf_stick_upgrade_and_get_every_broadcast_once()
{
    if !process::node_client_available() {
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes: Vec<FerrioNode> = (0..3)
        .map(|_| FerrioNode::start(&redis.url(), &[]))
        .collect();
    for node in &nodes {
        node.wait_cluster_size(3).await;
    }
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let Some(nginx) = Nginx::start(&ports, true) else {
        return;
    };

    let mut script = tokio::process::Command::new("node")
        .arg("-e")
        .arg(CLIENT_SCRIPT)
        .current_dir(repo_path("tests/interop"))
        .env("URL", nginx.url())
        .env("COUNT", CLIENTS.to_string())
        .env("EXPECTED", nodes.len().to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn node");
    let mut lines = BufReader::new(script.stdout.take().expect("stdout")).lines();
    let ready = next_json(&mut lines).await;
    let clients = ready["ready"]
        .as_array()
        .unwrap_or_else(|| panic!("not ready: {ready}"));
    assert_eq!(clients.len(), CLIENTS);
    for client in clients {
        assert_eq!(client["transport"], "websocket", "{client}");
        assert_eq!(client["joined"], json!({ "ok": true, "room": "lobby" }));
    }

    // One publish entering at each node, from clients connected to the nodes directly.
    for (i, node) in nodes.iter().enumerate() {
        let publisher = Member::connect(node).await;
        publisher.publish("lobby", "news", json!(i)).await;
    }
    let done = next_json(&mut lines).await;
    let expected: Vec<Value> = (0..nodes.len()).map(|i| json!(i)).collect();
    let got = done["got"]
        .as_array()
        .unwrap_or_else(|| panic!("no result: {done}"));
    for received in got {
        let mut received = received.as_array().expect("a list").clone();
        received.sort_by_key(|v| v.as_u64());
        assert_eq!(received, expected, "every broadcast exactly once");
    }
    assert_eq!(done["connected"], json!(vec![true; CLIENTS]));
    let status = tokio::time::timeout(WAIT, script.wait())
        .await
        .expect("the script ended")
        .expect("status");
    assert!(status.success(), "{status}");

    // nginx's own account: every request of a session went to one node, none was refused,
    // and the clients were spread over more than one node.
    let sid_of = |uri: &str| {
        uri.split(['?', '&'])
            .find_map(|p| p.strip_prefix("sid="))
            .map(str::to_owned)
    };
    eventually("nginx to log the WebSocket sessions", || async {
        nginx
            .access_log()
            .iter()
            .filter(|(_, uri, _, _)| uri.contains("transport=websocket"))
            .count()
            >= CLIENTS
    })
    .await;
    let log = nginx.access_log();
    let mut upstreams_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (addr, uri, upstream, status) in &log {
        assert!(
            *status < 400,
            "{addr} {uri} -> {upstream} answered {status}"
        );
        if let Some(sid) = sid_of(uri) {
            upstreams_of
                .entry(sid)
                .or_default()
                .insert(upstream.clone());
        }
    }
    for client in clients {
        let sid = client["sid"].as_str().expect("a sid");
        let upstreams = upstreams_of.get(sid).expect("requests of the session");
        assert_eq!(upstreams.len(), 1, "session {sid} went to {upstreams:?}");
    }
    let used: BTreeSet<&String> = upstreams_of.values().flatten().collect();
    let mut spread: BTreeMap<&String, usize> = BTreeMap::new();
    for upstream in upstreams_of.values().flatten() {
        *spread.entry(upstream).or_default() += 1;
    }
    eprintln!("sessions per node: {spread:?}");
    assert!(
        used.len() >= 2,
        "{CLIENTS} client addresses all hashed to {used:?}"
    );
}

/// The next line the script printed, as JSON.
async fn next_json(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the script answered in time")
        .expect("read")
        .expect("a line");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// One HTTP/1.1 request on a new connection: status and body.
fn request(port: u16, method: &str, target: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {answer:?}"));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    // nginx may answer chunked: the tests only need the first chunk.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split_once("\r\n")
            .map(|(_, rest)| rest.split("\r\n").next().unwrap_or(""))
            .unwrap_or("")
            .to_owned()
    } else {
        body.to_owned()
    };
    (status, body)
}

/// Opens a polling session and returns its sid.
fn polling_handshake(port: u16) -> String {
    let (status, body) = request(port, "GET", "/socket.io/?EIO=4&transport=polling", "");
    assert_eq!(status, 200, "{body}");
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("an OPEN packet"))
        .unwrap_or_else(|e| panic!("{e}: {body}"));
    open["sid"].as_str().expect("a sid").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_needs_sticky_sessions_the_deploy_conf_has_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes: Vec<FerrioNode> = (0..2)
        .map(|_| FerrioNode::start(&redis.url(), &[]))
        .collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();

    // Without `hash`, nginx's round robin sends the session's second request to the other
    // node, which does not know it.
    let Some(round_robin) = Nginx::start(&ports, false) else {
        return;
    };
    let sid = polling_handshake(round_robin.port);
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        request(round_robin.port, "POST", &target, "40"),
        (
            400,
            r#"{"code":1,"message":"Session ID unknown"}"#.to_owned()
        )
    );
    drop(round_robin);

    // With deploy/nginx.conf as it is, every request of the client reaches its node.
    let Some(sticky) = Nginx::start(&ports, true) else {
        return;
    };
    let sid = polling_handshake(sticky.port);
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(
        request(sticky.port, "POST", &target, "40"),
        (200, "ok".to_owned())
    );
    let (status, body) = request(sticky.port, "GET", &target, "");
    assert_eq!(status, 200);
    assert!(body.starts_with("40{\"sid\":"), "a CONNECT answer: {body}");
}

#[test]
fn the_systemd_unit_verifies() {
    let installed = Command::new("systemd-analyze")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        skip("systemd-analyze is not installed");
        return;
    }
    let unit = std::fs::read_to_string(repo_path("deploy/ferrio.service")).expect("the unit");
    let exec = "ExecStart=/usr/local/bin/ferrio serve";
    assert_eq!(unit.matches(exec).count(), 1);
    // The unit as installed, with the binary of this build where it expects one.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("ferrio.service");
    std::fs::write(
        &path,
        unit.replace(
            exec,
            &format!("ExecStart={} serve", env!("CARGO_BIN_EXE_ferrio")),
        ),
    )
    .expect("write the unit");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Unknown or misspelt settings are only warned about: none may be.
    assert_eq!(stderr.trim(), "", "systemd-analyze verify complained");
}

#[test]
fn the_docker_compose_settings_pass_config_check_without_a_warning() {
    let compose =
        std::fs::read_to_string(repo_path("deploy/docker-compose.yml")).expect("compose file");
    let env: Vec<(String, String)> = compose
        .lines()
        .filter_map(|line| {
            let (name, value) = line.trim().split_once(": ")?;
            name.starts_with("FERRIO_")
                .then(|| (name.to_owned(), value.trim_matches('"').to_owned()))
        })
        .collect();
    let names: BTreeSet<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    for needed in [
        "FERRIO_CLUSTER_ADAPTER",
        "FERRIO_CLUSTER_REDIS_URL",
        "FERRIO_CLUSTER_NODES",
    ] {
        assert!(names.contains(needed), "{needed} in docker-compose.yml");
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (code, text) = cluster_common::config_check(&env);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning["), "{text}");
    assert!(!text.contains("error["), "{text}");
}

#[test]
fn the_cluster_guides_name_only_real_settings_variables_and_metrics() {
    let configuration =
        std::fs::read_to_string(repo_path("docs/configuration.md")).expect("configuration.md");
    for guide in ["docs/cluster.md", "deploy/README.md"] {
        let text = std::fs::read_to_string(repo_path(guide)).expect("the guide");
        // Every TOML block loads and passes `ferrio config check` as written.
        for block in text.split("```toml\n").skip(1) {
            let toml = block.split_once("```").expect("a closed block").0;
            let dir = tempfile::tempdir().expect("a temporary directory");
            std::fs::write(dir.path().join("ferrio.toml"), toml).expect("write");
            let output = Command::new(env!("CARGO_BIN_EXE_ferrio"))
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .args([
                    "config",
                    "check",
                    "--no-env-file",
                    "--config",
                    "ferrio.toml",
                ])
                .output()
                .expect("run ferrio");
            let report = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && !report.contains("warning["),
                "{guide}: {toml}\n{report}{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // Every variable, key and metric it names is in the reference.
        let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        for word in words {
            let word = word.trim_end_matches('.');
            // File names (docs/cluster.md, bench/cluster.sh) are not settings.
            if [".md", ".sh", ".rs"].iter().any(|ext| word.ends_with(ext)) {
                continue;
            }
            let named = word.starts_with("FERRIO_")
                || (word.starts_with("cluster.") && word.len() > "cluster.".len())
                || (word.starts_with("ferrio_") && word.len() > "ferrio_".len());
            if named {
                assert!(
                    configuration.contains(&format!("`{word}`")),
                    "{guide} names {word}, which docs/configuration.md does not have"
                );
            }
        }
    }
}
