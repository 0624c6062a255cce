//! `ferrio doctor`, the built binary, against real servers on 127.0.0.1: Ferrio in process
//! (healthy, with CORS refusing the origin, with a namespace that wants a token), a plain HTTP
//! server that is not Socket.IO, and the official Node `socket.io` server.
//!
//! Then nginx (Debian's, run as this test's own process with a config in a temporary
//! directory) in front of Ferrio: configured right (all green), without the WebSocket upgrade
//! headers (the upgrade fails, with the nginx lines that fix it), and with a read timeout
//! shorter than the ping interval (the heartbeat fails, with `proxy_read_timeout`).
//!
//! Without `node` (or without `npm ci` in tests/interop), or without `nginx`, those tests are
//! skipped loudly, unless `CI=true`, where they fail.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use ferrio_engineio::{AllowOrigin, CorsConfig, EngineConfig};
use ferrio_socketio::{ConnectError, SocketIo, SocketIoConfig};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use ferrio_test_support::nginx::{free_port, in_ci};

#[path = "doctor/nginx.rs"]
mod nginx;
#[path = "doctor/tls.rs"]
mod tls;

/// The origin of the pretend web page.
const ORIGIN: &str = "http://app.test";
/// Every step, in order.
const STEPS: [&str; 12] = [
    "tcp",
    "tls",
    "handshake",
    "cors",
    "preflight",
    "long-poll",
    "upgrade",
    "websocket",
    "heartbeat",
    "eio3",
    "namespace",
    "event",
];
/// The longest a doctor run may take in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// What one doctor run printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `ferrio doctor` with `args`, bounded in time.
async fn doctor(args: &[&str]) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .arg("doctor")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ferrio doctor");
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("ferrio doctor finished in time")
        .expect("ferrio doctor output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("ferrio doctor {}\n{stdout}{stderr}", args.join(" "));
    Run {
        code: output.status.code().expect("exit code"),
        stdout,
        stderr,
    }
}

/// `ferrio doctor URL ARGS --json --timeout 5s`, which must exit with `code`: its JSON report.
async fn diagnose(url: &str, args: &[&str], code: i32) -> Value {
    let mut all = vec![url];
    all.extend_from_slice(args);
    all.extend(["--json", "--timeout", "5s"]);
    let run = doctor(&all).await;
    assert_eq!(run.code, code);
    run.json()
}

/// The step called `name` of a JSON report, which must have failed with `code`.
fn failed<'a>(report: &'a Value, name: &str, code: &str) -> &'a Value {
    let failed = step(report, name);
    assert_eq!(failed["status"], "fail", "{name}");
    assert_eq!(failed["code"], code, "{name}");
    failed
}

/// The step called `name` of a JSON report.
fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report}"))
}

fn text<'a>(step: &'a Value, field: &str) -> &'a str {
    step[field].as_str().unwrap_or_default()
}

/// Serves `app` on a free port of 127.0.0.1; returns its URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(ferrio_socketio::serve(listener, app));
    url
}

/// Ferrio in process with fast pings and the given CORS settings: `/` acknowledges the
/// doctor's event, `/secure` wants the token `sesame`.
async fn ferrio(cors: Option<CorsConfig>) -> String {
    ferrio_pinging(cors, Duration::from_millis(400)).await
}

/// [`ferrio`], pinging every `ping_interval`.
async fn ferrio_pinging(cors: Option<CorsConfig>, ping_interval: Duration) -> String {
    let config = SocketIoConfig {
        engine: EngineConfig {
            ping_interval,
            ping_timeout: Duration::from_millis(400),
            cors,
            ..SocketIoConfig::default().engine
        },
        ..SocketIoConfig::default()
    };
    let (service, io) = SocketIo::new(config);
    io.ns("/", |socket| {
        socket.on("ferrio:doctor", |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
    });
    let secure = io.ns("/secure", |_socket| {});
    secure.use_middleware(|socket| async move {
        match socket.auth()["token"].as_str() {
            Some("sesame") => Ok(()),
            _ => Err(ConnectError::with_data(
                "not authorized",
                serde_json::json!({ "hint": "ask for a token" }),
            )),
        }
    });
    serve(Router::new().route_service("/socket.io/", service)).await
}

fn allow(origin: &str) -> CorsConfig {
    CorsConfig {
        credentials: true,
        ..CorsConfig::new(AllowOrigin::List(vec![origin.to_owned()]))
    }
}

/// Asserts a JSON report lists every step in order, and returns the statuses by name.
fn statuses(report: &Value) -> Vec<(String, String)> {
    let steps = report["steps"].as_array().expect("steps");
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, STEPS, "every step, in order");
    for step in steps {
        assert!(step["duration_ms"].is_u64(), "{step}");
        assert!(step["detail"].is_string(), "{step}");
    }
    steps
        .iter()
        .map(|s| (text(s, "name").to_owned(), text(s, "status").to_owned()))
        .collect()
}

fn all_green(report: &Value) {
    let https = text(report, "url").starts_with("https://");
    for (name, status) in statuses(report) {
        let expected = if name == "tls" && !https {
            "skip"
        } else {
            "pass"
        };
        assert_eq!(status, expected, "step {name}: {}", step(report, &name));
    }
    assert_eq!(report["ok"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_ferrio_is_all_green() {
    let url = ferrio(Some(allow(ORIGIN))).await;
    let report = diagnose(&url, &["--origin", ORIGIN], 0).await;
    all_green(&report);
    assert!(text(step(&report, "event"), "detail").contains("acknowledged in"));
    assert_eq!(
        text(step(&report, "preflight"), "detail"),
        "OPTIONS answered 204 No Content: Access-Control-Allow-Origin http://app.test, \
         Access-Control-Allow-Methods GET,POST, Access-Control-Allow-Headers content-type, \
         Access-Control-Allow-Credentials true"
    );
    assert!(text(step(&report, "heartbeat"), "detail").contains("first ping after"));

    let run = doctor(&[&url, "--origin", ORIGIN, "--timeout", "5s"]).await;
    assert_eq!(run.code, 0);
    for name in STEPS.iter().filter(|n| **n != "tls") {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&format!("✓ {name} "))),
            "{name}: {}",
            run.stdout
        );
    }
    assert!(run
        .stdout
        .ends_with("OK: 11 passed, 0 warnings, 0 failed, 1 skipped\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ferrio_serve_passes_with_a_short_watch() {
    let port = free_port();
    let _server = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .env("FERRIO_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ferrio serve");
    let listening = async {
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), listening)
        .await
        .expect("ferrio serve listens");
    let url = format!("http://127.0.0.1:{port}");
    let run = doctor(&[&url, "--json", "--timeout", "1s"]).await;
    assert_eq!(run.code, 0, "warnings only");
    let report = run.json();
    for (name, status) in statuses(&report) {
        let expected = match name.as_str() {
            "tls" | "cors" | "preflight" => "skip",
            // 25 s between pings: a 1 s watch says so, and how to watch longer.
            "heartbeat" => "warn",
            _ => "pass",
        };
        assert_eq!(status, expected, "step {name}: {}", step(&report, &name));
    }
    assert_eq!(
        text(step(&report, "heartbeat"), "fix"),
        "run again with --timeout 27s to watch past one interval"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_that_does_not_allow_the_origin_is_diagnosed() {
    let url = ferrio(Some(allow("http://other.test"))).await;
    let report = diagnose(&url, &["--origin", ORIGIN], 1).await;
    let cors = step(&report, "cors");
    assert_eq!(cors["status"], "fail");
    assert_eq!(
        text(cors, "detail"),
        "no Access-Control-Allow-Origin for origin http://app.test: browsers on \
         http://app.test cannot read the handshake (\"blocked by CORS policy\")"
    );
    assert!(text(cors, "fix").contains(r#"cors: { origin: "http://app.test" }"#));
    // The preflight of the polling POST is not answered for this origin either.
    let preflight = failed(&report, "preflight", "cors-preflight-no-origin");
    assert_eq!(
        text(preflight, "detail"),
        "the preflight answer (204 No Content) has no Access-Control-Allow-Origin for \
         http://app.test: browsers block the polling POST"
    );
    assert!(
        text(preflight, "fix").starts_with(
            "Ferrio: `cors.origins = [\"http://app.test\"]` (FERRIO_CORS_ORIGINS), \
             `cors.credentials = true` for clients with credentials"
        ),
        "{preflight}"
    );
    assert!(
        text(preflight, "fix")
            .contains("nginx `add_header Access-Control-Allow-Origin $http_origin always;`"),
        "{preflight}"
    );
    // Only CORS is wrong.
    for (name, status) in statuses(&report) {
        if !matches!(name.as_str(), "tls" | "cors" | "preflight") {
            assert_eq!(status, "pass", "{name}");
        }
    }

    // No CORS settings at all (the reference server's default): the same diagnosis.
    let url = ferrio(None).await;
    let report = doctor(&[&url, "--origin", ORIGIN, "--json", "--timeout", "5s"])
        .await
        .json();
    assert_eq!(step(&report, "cors")["status"], "fail");

    // Without --origin, CORS is not checked.
    let report = doctor(&[&url, "--json", "--timeout", "5s"]).await.json();
    let cors = step(&report, "cors");
    assert_eq!(cors["status"], "skip");
    assert!(text(cors, "detail").starts_with("no --origin given"));

    // `*` works without credentials only.
    let url = ferrio(Some(CorsConfig {
        credentials: true,
        ..CorsConfig::any()
    }))
    .await;
    let run = doctor(&[&url, "--origin", ORIGIN, "--json", "--timeout", "5s"]).await;
    assert_eq!(run.code, 0, "a warning is not a failure");
    let report = run.json();
    let cors = step(&report, "cors");
    assert_eq!(cors["status"], "warn");
    assert!(text(cors, "detail").contains("browsers refuse `*` with credentials"));
    let preflight = step(&report, "preflight");
    assert_eq!(preflight["status"], "warn");
    assert_eq!(preflight["code"], "cors-preflight-no-credentials");
    assert_eq!(
        text(preflight, "detail"),
        "OPTIONS answered 204 No Content: Access-Control-Allow-Origin *, \
         Access-Control-Allow-Methods GET,POST, Access-Control-Allow-Headers content-type\n\
         without credentials only: browsers refuse Access-Control-Allow-Origin `*` with \
         credentials, so clients with withCredentials: true are blocked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_is_not_socket_io_fails_at_the_handshake() {
    let html = serve(Router::new().fallback(|| async { "<html>hello</html>" })).await;
    let run = doctor(&[&html, "--json", "--timeout", "3s"]).await;
    assert_eq!(run.code, 1);
    let report = run.json();
    statuses(&report);
    assert_eq!(step(&report, "tcp")["status"], "pass");
    let handshake = step(&report, "handshake");
    assert_eq!(handshake["status"], "fail");
    assert_eq!(
        text(handshake, "detail"),
        "answered 200 but not with an Engine.IO open packet: this is not a Socket.IO server \
         (body: \"<html>hello</html>\")"
    );
    assert!(text(handshake, "fix").contains("--path"));
    for name in ["cors", "long-poll", "upgrade", "eio3"] {
        assert_eq!(step(&report, name)["status"], "skip", "{name}");
    }

    let missing = serve(Router::new()).await;
    let report = doctor(&[&missing, "--json", "--timeout", "3s"])
        .await
        .json();
    let handshake = step(&report, "handshake");
    assert_eq!(handshake["status"], "fail");
    assert!(
        text(handshake, "detail")
            .starts_with("GET /socket.io/?EIO=4&transport=polling answered 404 Not Found"),
        "{handshake}"
    );
    assert!(text(handshake, "fix").starts_with("nothing answers at this path"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_fails_at_tcp_and_skips_the_rest() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let run = doctor(&[&url, "--json", "--timeout", "3s"]).await;
    assert_eq!(run.code, 1);
    let report = run.json();
    let statuses = statuses(&report);
    assert_eq!(statuses[0].1, "fail");
    assert!(text(step(&report, "tcp"), "fix").starts_with("nothing listens on 127.0.0.1:"));
    assert!(statuses[1..].iter().all(|(_, status)| status == "skip"));

    // https: the same, and a --ca-file that cannot be read stops the doctor before it starts.
    let https = url.replace("http://", "https://");
    let run = doctor(&[&https, "--json", "--timeout", "1s"]).await;
    assert_eq!(run.code, 1);
    assert_eq!(step(&run.json(), "tcp")["status"], "fail");
    let run = doctor(&[&https, "--ca-file", "/nonexistent/ca.pem"]).await;
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .starts_with("ferrio doctor: cannot read --ca-file /nonexistent/ca.pem: "),
        "{}",
        run.stderr
    );
    // TLS options with a plain http:// URL are a mistake, said before anything runs.
    let run = doctor(&[&url, "--insecure"]).await;
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "ferrio doctor: --ca-file and --insecure are for https:// URLs\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_auth_shows_the_connect_error() {
    let url = ferrio(Some(allow(ORIGIN))).await;
    let report = diagnose(&url, &["--namespace", "/secure", "--token", "wrong"], 1).await;
    let namespace = step(&report, "namespace");
    assert_eq!(namespace["status"], "fail");
    assert_eq!(
        text(namespace, "detail"),
        "the server refused /secure with auth {token}: CONNECT_ERROR \"not authorized\", data \
         {\"hint\":\"ask for a token\"}"
    );
    assert!(text(namespace, "fix").contains("refused this token"));
    assert_eq!(step(&report, "event")["status"], "skip");

    let run = doctor(&[
        &url,
        "--namespace",
        "/secure",
        "--token",
        "sesame",
        "--json",
        "--timeout",
        "5s",
    ])
    .await;
    let report = run.json();
    assert_eq!(step(&report, "namespace")["status"], "pass");
    // `/secure` has no handler for the doctor's event: a warning, not a failure.
    assert_eq!(step(&report, "event")["status"], "warn");
    assert_eq!(run.code, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_reference_server_is_all_green() {
    let Some(node) = node_server(&[]).await else {
        return;
    };
    let url = format!("http://127.0.0.1:{}", node.port);
    let report = diagnose(&url, &["--origin", ORIGIN], 0).await;
    node_is_green(&report, "skip");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_reference_server_over_tls_is_all_green() {
    // Node's own TLS (OpenSSL), no proxy: the doctor's TLS step and every step after it.
    let ca = ferrio_test_support::pki::TestCa::new("Ferrio test CA");
    let leaf = ca.leaf(
        &["127.0.0.1", "localhost"],
        ferrio_test_support::pki::Validity::CURRENT,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, ca_file) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, &leaf.cert).expect("write cert");
    std::fs::write(&key, &leaf.key).expect("write key");
    std::fs::write(&ca_file, ca.cert_pem()).expect("write ca");
    let env = [("TLS_CERT", cert.as_path()), ("TLS_KEY", key.as_path())];
    let Some(node) = node_server(&env).await else {
        return;
    };
    let url = format!("https://127.0.0.1:{}", node.port);
    let ca_path = ca_file.to_str().expect("utf-8 path");
    let args = [
        url.as_str(),
        "--ca-file",
        ca_path,
        "--origin",
        ORIGIN,
        "--json",
        "--timeout",
        "5s",
    ];
    let run = doctor(&args).await;
    assert_eq!(run.code, 0);
    let report = run.json();
    node_is_green(&report, "pass");
    assert!(
        text(step(&report, "tls"), "detail").starts_with(
            "TLS 1.3, certificate for 127.0.0.1, localhost issued by CN=Ferrio test CA"
        ),
        "{report}"
    );
}

/// Every step of a report on the Node server passed (`tls` as given), but `eio3`: socket.io
/// v4 refuses Engine.IO v3 unless allowEIO3, which is information only.
fn node_is_green(report: &Value, tls: &str) {
    for (name, status) in statuses(report) {
        let expected = match name.as_str() {
            "tls" => tls,
            "eio3" => "info",
            _ => "pass",
        };
        assert_eq!(status, expected, "step {name}: {}", step(report, &name));
    }
}

/// The official Node `socket.io` server of `tests/doctor/server.cjs`; killed when dropped.
struct NodeServer {
    _child: tokio::process::Child,
    port: u64,
}

/// Starts the Node server with `env`, or skips loudly (fails under CI) without node or the
/// npm packages.
async fn node_server(env: &[(&str, &std::path::Path)]) -> Option<NodeServer> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let modules = manifest.join("../../tests/interop/node_modules");
    let has_node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success());
    let why = if !has_node {
        Some("`node` is not installed")
    } else if !modules.join("socket.io").is_dir() {
        Some("the npm packages are missing: run `npm ci` in tests/interop")
    } else {
        None
    };
    if let Some(why) = why {
        assert!(!in_ci(), "the Node doctor test cannot run under CI: {why}");
        eprintln!(
            "\n************************************************************\n\
             * SKIPPED: ferrio doctor against the Node socket.io server *\n\
             * {why}\n\
             ************************************************************\n"
        );
        return None;
    }
    let mut command = Command::new("node");
    command
        .arg(manifest.join("tests/doctor/server.cjs"))
        .env("NODE_PATH", &modules)
        .env("ORIGIN", ORIGIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (name, path) in env {
        command.env(name, path);
    }
    let mut child = command.spawn().expect("spawn node");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the Node server listens in time")
    .expect("read")
    .expect("a line");
    let port: Value = serde_json::from_str(&line).expect("port line");
    Some(NodeServer {
        _child: child,
        port: port["port"].as_u64().expect("a port number"),
    })
}
