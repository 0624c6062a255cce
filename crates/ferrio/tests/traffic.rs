//! Real traffic through `ferrio serve` (a child process) and what it shows: the HTTP API's emit
//! with acknowledgements answered by `ferrio-client` sockets, the Prometheus families of
//! `/metrics` after a polling handshake, an upgrade, an ack, a refusal and disconnections, and
//! the per-connection lines of the JSON log.

mod process;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrio_client::{ClientConfig, Manager, Payload, ReconnectionConfig, Socket};
use process::{request, Ferrio};
use serde_json::{json, Value};

const KEY: &str = "0123456789abcdef0123456789abcdef";

/// How long any awaited state may take to show; never reached when things work.
const PATIENCE: Duration = Duration::from_secs(15);

/// A POST to the API with the key; blocking, so run it off the runtime's threads.
fn post(port: u16, target: &str, body: Value) -> (u16, Value) {
    let answer = request(
        port,
        "POST",
        target,
        &[("X-API-Key", KEY), ("Content-Type", "application/json")],
        &body.to_string(),
    )
    .unwrap();
    (answer.status, answer.json())
}

async fn post_async(port: u16, target: &'static str, body: Value) -> (u16, Value) {
    tokio::task::spawn_blocking(move || post(port, target, body))
        .await
        .unwrap()
}

fn invalid(field: &str, message: &str) -> (u16, Value) {
    (
        400,
        json!({ "error": format!("{field}: {message}"), "code": "invalid_body", "field": field }),
    )
}

/// Every sample of `/metrics`, by series (`name{labels}`).
fn samples(port: u16) -> BTreeMap<String, f64> {
    let answer = request(port, "GET", "/metrics", &[], "").unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of family `name` (every label set) whose labels contain `labels`.
fn total(samples: &BTreeMap<String, f64>, name: &str, labels: &str) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (family, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            family == name && rest.contains(labels)
        })
        .map(|(_, value)| value)
        .sum()
}

/// Waits (bounded) until `done` holds for the metrics, then returns them.
async fn metrics_until(
    port: u16,
    what: &str,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = tokio::task::spawn_blocking(move || samples(port))
            .await
            .unwrap();
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "{what} never showed:\n{now:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `ferrio-client` socket on `/` (polling first, then the upgrade to WebSocket) that answers
/// event `confirm` (with its one argument `{"order": 7}`) with `"yes"` and two bytes when
/// `answers`, and never otherwise.
async fn client(server: &Ferrio, answers: bool) -> (Manager, Socket) {
    let manager = Manager::new(ClientConfig {
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        ..ClientConfig::new(server.url())
    })
    .unwrap();
    let socket = manager.socket("/").unwrap();
    socket.on("confirm", move |_socket, event| {
        let expected = event.payload.args == [json!({ "order": 7 })];
        if let (true, true, Some(ack)) = (answers, expected, event.ack) {
            let mut payload = Payload::new();
            payload.push("yes").unwrap();
            payload.push_binary(vec![0u8, 1]);
            ack.send(payload).unwrap();
        }
    });
    socket.connect().await.unwrap();
    (manager, socket)
}

/// The JSON records of the server's log; every line must be one.
fn records(server: &Ferrio) -> Vec<Value> {
    server
        .log()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_metrics_and_connection_logs_of_real_traffic() {
    let server = Ferrio::serve(&[
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_SERVER_ALLOWED_ORIGINS", "https://app.example"),
        ("FERRIO_LOG_FORMAT", "json"),
        ("FERRIO_LOG_LEVEL", "info"),
        ("FERRIO_LOG_CONNECTIONS", "true"),
        ("FERRIO_HISTORY_ENABLED", "true"),
        ("FERRIO_HISTORY_ROOMS", "^news$"),
    ]);
    let port = server.port;

    let (answering_manager, answering) = client(&server, true).await;
    let (silent_manager, silent) = client(&server, false).await;
    let (answering_id, silent_id) = (answering.id().unwrap(), silent.id().unwrap());
    // Both sessions began with a polling handshake and upgrade to WebSocket.
    metrics_until(port, "two upgrades", |m| {
        total(m, "ferrio_upgrades_total", "") >= 2.0
    })
    .await;

    // The API's stats count connections by transport: a third session stays on polling.
    let (polling_sid, stats) = tokio::task::spawn_blocking(move || {
        let open = request(port, "GET", "/socket.io/?EIO=4&transport=polling", &[], "").unwrap();
        assert_eq!(open.status, 200, "{}", open.body);
        let open: Value = serde_json::from_str(open.body.trim_start_matches('0')).unwrap();
        let sid = open["sid"].as_str().unwrap().to_owned();
        let stats = request(port, "GET", "/api/v1/stats", &[("X-API-Key", KEY)], "")
            .unwrap()
            .json();
        (sid, stats)
    })
    .await
    .unwrap();
    assert_eq!(
        stats["connections"],
        json!({ "total": 3, "polling": 1, "websocket": 2 }),
        "{stats}"
    );
    assert_eq!(stats["namespaces"]["/"]["sockets"], 2, "{stats}");
    // It closes itself: the Engine.IO close packet ends the session at once, as in the
    // reference server, so a later poll finds no session.
    let (closed, later) = tokio::task::spawn_blocking(move || {
        let target = format!("/socket.io/?EIO=4&transport=polling&sid={polling_sid}");
        let closed = request(port, "POST", &target, &[], "1").unwrap();
        (closed, request(port, "GET", &target, &[], "").unwrap())
    })
    .await
    .unwrap();
    assert_eq!((closed.status, closed.body.as_str()), (200, "ok"));
    assert_eq!(
        (later.status, later.body.as_str()),
        (400, r#"{"code":1,"message":"Session ID unknown"}"#)
    );

    // An emit asking for acknowledgements: one answer, one timeout.
    let (status, answer) = post_async(
        port,
        "/api/v1/emit",
        json!({ "event": "confirm", "data": { "order": 7 }, "ack": { "timeout": "3s" } }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let mut expected = vec![
        json!({ "socket": answering_id, "args": ["yes", { "$binary": "AAE=" }] }),
        json!({
            "socket": silent_id,
            "error": "no acknowledgement within the timeout",
            "code": "timeout"
        }),
    ];
    expected.sort_by_key(|entry| entry["socket"].as_str().unwrap().to_owned());
    assert_eq!(answer, json!({ "recipients": 2, "acks": expected }));

    // A room no socket is in: nobody to ask, nothing to wait for.
    let (status, answer) = post_async(
        port,
        "/api/v1/emit",
        json!({ "event": "confirm", "rooms": ["nobody-here"], "ack": {} }),
    )
    .await;
    assert_eq!(
        (status, answer),
        (200, json!({ "recipients": 0, "acks": [] }))
    );

    // Malformed acks are refused naming the field.
    let cases = [
        (
            json!({ "event": "e", "ack": 5 }),
            invalid("ack", "must be an object, not a number"),
        ),
        (
            json!({ "event": "e", "ack": { "timeout": "0s" } }),
            invalid("ack.timeout", "must be above 0"),
        ),
        (
            json!({ "event": "e", "ack": { "timeout": "2m" } }),
            invalid(
                "ack.timeout",
                "2m is longer than the longest wait, 60s: the request is held open meanwhile",
            ),
        ),
        (
            json!({ "event": "e", "ack": { "timeout": "soon" } }),
            invalid(
                "ack.timeout",
                "invalid duration \"soon\": write a number with a unit (500ms, 25s, 2m, 1h) \
                 or a bare number of milliseconds",
            ),
        ),
        (
            json!({ "event": "e", "ack": { "timeout": true } }),
            invalid(
                "ack.timeout",
                "must be a duration (\"5s\", \"500ms\") or a number of milliseconds, not a \
                 boolean",
            ),
        ),
        (
            json!({ "event": "e", "ack": { "timeout": 1.5 } }),
            invalid("ack.timeout", "1.5 is not a whole number of milliseconds"),
        ),
        (
            json!({ "event": "e", "ack": { "wait": "1s" } }),
            invalid("ack.wait", "unknown field"),
        ),
        (
            json!({ "event": "e", "rooms": ["news"], "ack": { "timeout": 500 } }),
            invalid(
                "ack",
                "not available for rooms that keep history (history.rooms): an emit to them is \
                 answered once it is on disk, not with the clients' acknowledgements",
            ),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            post_async(port, "/api/v1/emit", body.clone()).await,
            expected,
            "{body}"
        );
    }

    // A handshake from an origin outside server.allowed_origins is refused.
    let refused = tokio::task::spawn_blocking(move || {
        request(
            port,
            "GET",
            "/socket.io/?EIO=4&transport=polling",
            &[("Origin", "https://elsewhere.example")],
            "",
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(refused.status, 403, "{}", refused.body);

    // Both clients leave.
    answering_manager.disconnect();
    silent_manager.disconnect();
    let metrics = metrics_until(port, "both disconnections", |m| {
        total(m, "ferrio_disconnects_total", "") >= 2.0 && total(m, "ferrio_connections", "") == 0.0
    })
    .await;

    // Every family the operations guide names, with what this traffic put in it.
    for (family, labels) in [
        ("ferrio_handshakes_total", "transport=\"polling\""),
        ("ferrio_upgrades_total", ""),
        ("ferrio_disconnects_total", "reason=\""),
        ("ferrio_packets_received_total", "transport=\"polling\""),
        ("ferrio_packets_received_total", "transport=\"websocket\""),
        ("ferrio_bytes_received_total", "transport=\"websocket\""),
        ("ferrio_packets_sent_total", "transport=\"polling\""),
        ("ferrio_packets_sent_total", "transport=\"websocket\""),
        ("ferrio_bytes_sent_total", "transport=\"polling\""),
        ("ferrio_bytes_sent_total", "transport=\"websocket\""),
        ("ferrio_ack_duration_seconds_count", ""),
        ("ferrio_ack_timeouts_total", ""),
        ("ferrio_refusals_total", "reason=\"origin\""),
    ] {
        assert!(
            total(&metrics, family, labels) > 0.0,
            "{family}{{{labels}}} is missing or zero:\n{metrics:#?}"
        );
    }
    assert!(
        total(&metrics, "ferrio_handshakes_total", "transport=\"polling\"") >= 2.0,
        "{metrics:#?}"
    );
    // The gauges, read at the scrape: nobody is left.
    assert_eq!(
        metrics.get("ferrio_connections"),
        Some(&0.0),
        "{metrics:#?}"
    );
    assert_eq!(
        metrics.get("ferrio_sockets{namespace=\"/\"}"),
        Some(&0.0),
        "{metrics:#?}"
    );

    // One JSON line per connection and per disconnection, naming the socket.
    let deadline = Instant::now() + PATIENCE;
    let (connected, disconnected) = loop {
        let records = records(&server);
        let line = |message: &str, id: &str| {
            records
                .iter()
                .find(|r| r["fields"]["message"] == message && r["fields"]["id"] == id)
                .cloned()
        };
        if let (Some(c), Some(d)) = (
            line("connected", &answering_id),
            line("disconnected", &answering_id),
        ) {
            break (c, d);
        }
        assert!(
            Instant::now() < deadline,
            "no connection lines:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(connected["level"], "INFO", "{connected}");
    assert_eq!(connected["fields"]["nsp"], "/", "{connected}");
    assert_eq!(connected["fields"]["user"], "(anonymous)", "{connected}");
    assert!(
        connected["fields"]["remote"]
            .as_str()
            .is_some_and(|remote| remote.starts_with("127.0.0.1:")),
        "the peer, with its port: {connected}"
    );
    // No trusted proxy: the client's address is the peer's.
    assert_eq!(connected["fields"]["ip"], "127.0.0.1", "{connected}");
    assert_eq!(disconnected["level"], "INFO", "{disconnected}");
    // The manager closed its whole connection (no namespace DISCONNECT first).
    assert_eq!(
        disconnected["fields"]["reason"], "transport close",
        "{disconnected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_disconnects_each_client_with_server_shutting_down() {
    let mut server = Ferrio::serve(&[
        ("FERRIO_LOG_FORMAT", "json"),
        ("FERRIO_LOG_LEVEL", "info"),
        ("FERRIO_LOG_CONNECTIONS", "true"),
    ]);
    let (manager, socket) = client(&server, true).await;
    let id = socket.id().unwrap();
    server.terminate();
    let exit = tokio::task::spawn_blocking(move || {
        let exit = server.wait_exit(PATIENCE);
        (server, exit)
    })
    .await
    .unwrap();
    let (server, exit) = exit;
    assert!(
        exit.is_some_and(|status| status.success()),
        "{exit:?}\n{}",
        server.log()
    );
    let records = records(&server);
    let disconnected = records
        .iter()
        .find(|r| r["fields"]["message"] == "disconnected" && r["fields"]["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no disconnection line:\n{}", server.log()));
    // The reason as clients and the reference server word it.
    assert_eq!(
        disconnected["fields"]["reason"], "server shutting down",
        "{disconnected}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["fields"]["message"] == "every connection closed"),
        "{}",
        server.log()
    );
    drop(manager);
}
