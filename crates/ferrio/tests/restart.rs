//! The server killed and restarted on the same port while official socket.io-client v4 clients
//! (tests/interop/node_modules) reconnect with their backoff: directly, and through a real nginx
//! that stays up in front of it. The clients must lose the connection, fail at least one attempt
//! while the server is down, come back, and exchange an event through a room again.

mod process;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use ferrio_test_support::nginx::{nginx_binary, Nginx, NginxConfig};
use process::{interop_dir, node_client_available, Ferrio};
use serde_json::Value;

/// Clients per run.
const CLIENTS: usize = 5;
/// How long the server stays down: several of the clients' retries (200 ms, doubling to 400 ms).
const DOWNTIME: Duration = Duration::from_millis(1500);

/// The clients: connect, join `lobby`, say `connected`; then, once every client has lost the
/// connection and come back (re-joining `lobby`), one publishes to the room and the others must
/// receive it. Prints one JSON line of results. Bounded by its own 30 s timer.
const SCRIPT: &str = r#"
const { io } = require("sio-client-v4");
const URL = process.env.URL;
const N = Number(process.env.CLIENTS);
const out = (o) => console.log(JSON.stringify(o));
setTimeout(() => { out({ fatal: "script timeout", clients: state() }); process.exit(2); }, 30000);
const clients = [];
const state = () => clients.map((c) => ({ connects: c.connects, disconnects: c.disconnects,
  attempts: c.attempts, errors: c.errors, got: c.got }));
const join = (c) => c.s.timeout(5000).emitWithAck("join", { room: "lobby" });
for (let i = 0; i < N; i++) {
  const s = io(URL, { forceNew: true, reconnectionDelay: 200, reconnectionDelayMax: 400,
    randomizationFactor: 0 });
  const c = { s, connects: 0, disconnects: [], attempts: 0, errors: 0, got: [], sids: [] };
  s.on("connect", () => { c.connects++; c.sids.push(s.id); });
  s.on("disconnect", (reason) => c.disconnects.push(reason));
  s.on("connect_error", () => c.errors++);
  s.io.on("reconnect_attempt", () => c.attempts++);
  s.on("news", (data) => c.got.push(data));
  clients.push(c);
}
const until = async (pred) => { while (!pred()) await new Promise((r) => setTimeout(r, 20)); };
(async () => {
  await until(() => clients.every((c) => c.connects === 1));
  // On WebSocket, so that the server going away is a closed WebSocket for every client.
  await until(() => clients.every((c) => c.s.io.engine.transport.name === "websocket"));
  for (const c of clients) {
    const answer = await join(c);
    if (!answer.ok) throw new Error("join: " + JSON.stringify(answer));
  }
  out({ connected: true });
  await until(() => clients.every((c) => c.connects === 2));
  for (const c of clients) {
    const answer = await join(c);
    if (!answer.ok) throw new Error("re-join: " + JSON.stringify(answer));
  }
  const sent = await clients[0].s.timeout(5000).emitWithAck("publish",
    { room: "lobby", event: "news", data: "after restart" });
  await until(() => clients.slice(1).every((c) => c.got.length === 1));
  out({ done: true, sent, clients: state(),
        new_ids: clients.every((c) => c.sids[0] !== c.sids[1]) });
  for (const c of clients) c.s.close();
  process.exit(0);
})().catch((e) => { out({ fatal: String(e.stack), clients: state() }); process.exit(3); });
"#;

/// The node script running against `url`.
struct Clients {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    _stdin: ChildStdin,
}

impl Drop for Clients {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Clients {
    fn start(url: &str) -> Self {
        let mut child = Command::new("node")
            .arg("-e")
            .arg(SCRIPT)
            .current_dir(interop_dir())
            .env("URL", url)
            .env("CLIENTS", CLIENTS.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
            _stdin: stdin,
        }
    }

    /// The next JSON line; the script's own timer bounds the wait.
    fn next(&mut self) -> Value {
        let line = self
            .lines
            .next()
            .expect("the script printed a line before exiting")
            .expect("read");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }
}

/// Runs the scenario with the clients talking to `url` (the server, or a proxy in front of it);
/// returns the restarted server.
fn restart_while_clients_reconnect(url: &str, server: Ferrio, env: &[(&str, &str)]) -> Ferrio {
    let port = server.port;
    let mut clients = Clients::start(url);
    let first = clients.next();
    assert_eq!(
        first,
        serde_json::json!({ "connected": true }),
        "{}",
        server.log()
    );

    server.kill();
    std::thread::sleep(DOWNTIME);
    let server = Ferrio::start_on(port, env);

    let result = clients.next();
    assert_eq!(
        result["done"],
        true,
        "{result}\nserver log:\n{}",
        server.log()
    );
    assert_eq!(
        result["sent"],
        serde_json::json!({ "ok": true, "room": "lobby" })
    );
    assert_eq!(result["new_ids"], true, "{result}");
    let states = result["clients"].as_array().expect("clients");
    assert_eq!(states.len(), CLIENTS);
    for (i, state) in states.iter().enumerate() {
        assert_eq!(state["connects"], 2, "client {i}: {state}");
        assert_eq!(
            state["disconnects"],
            serde_json::json!(["transport close"]),
            "client {i}: {state}"
        );
        // At least one attempt failed while the server was down: the backoff did the work.
        assert!(
            state["errors"].as_u64().unwrap_or(0) >= 1,
            "client {i}: {state}"
        );
        assert!(
            state["attempts"].as_u64().unwrap_or(0) >= 2,
            "client {i}: {state}"
        );
        if i > 0 {
            assert_eq!(
                state["got"],
                serde_json::json!(["after restart"]),
                "client {i}: {state}"
            );
        }
    }
    server
}

const ENV: &[(&str, &str)] = &[
    ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
    ("FERRIO_ROOMS_PUBLIC_PUBLISH", "^lobby$"),
];

#[test]
fn official_clients_reconnect_after_a_server_restart() {
    if !node_client_available() {
        return;
    }
    let server = Ferrio::start(ENV);
    let url = format!("http://127.0.0.1:{}", server.port);
    restart_while_clients_reconnect(&url, server, ENV);
}

#[test]
fn official_clients_reconnect_through_nginx_after_a_server_restart() {
    if !node_client_available() {
        return;
    }
    let Some(binary) = nginx_binary("the restart test through nginx") else {
        return;
    };
    let server = Ferrio::start(ENV);
    let nginx = Nginx::start(
        &binary,
        NginxConfig {
            server: format!(
                "location / {{\n\
                   proxy_pass http://127.0.0.1:{};\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Upgrade $http_upgrade;\n\
                   proxy_set_header Connection \"upgrade\";\n\
                   proxy_set_header Host $host;\n\
                   proxy_read_timeout 60s;\n\
                 }}",
                server.port
            ),
            ..NginxConfig::default()
        },
    );
    let _restarted = restart_while_clients_reconnect(&nginx.url("http"), server, ENV);
    // The same nginx, up all along, reaches the restarted server.
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", nginx.port)).expect("nginx is up");
    probe
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    probe
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut probe, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}
