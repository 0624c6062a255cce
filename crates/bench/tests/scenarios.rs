//! The load generator against an in-process Ferrio server implementing the benchmark contract,
//! at tiny sizes: every scenario completes and reports sane figures. Behaviour, not speed.

use clap::Parser;
use ferrio_bench::{run_scenario, Cli, Report};
use ferrio_socketio::{Payload, SocketIo, SocketIoConfig};
use serde_json::Value;

/// The contract's server (as `examples/bench_server`), on a free port of 127.0.0.1.
async fn start_server() -> u16 {
    let (service, io) = SocketIo::new(SocketIoConfig::default());
    io.ns("/", |socket| {
        socket.on("echo", |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
        socket.on("join", |socket, event| {
            if let Ok(room) = event.payload.get::<String>(0) {
                socket.join(room);
            }
            if let Some(ack) = event.ack {
                let _ = ack.send(Payload::new());
            }
        });
        socket.on("broadcast", |socket, mut event| {
            if let Ok(room) = event.payload.get::<String>(0) {
                let rest = Payload {
                    args: event.payload.args.split_off(1),
                    attachments: std::mem::take(&mut event.payload.attachments),
                };
                let _ = socket.namespace().to(room).emit_payload("bcast", rest);
            }
            if let Some(ack) = event.ack {
                let _ = ack.send(Payload::new());
            }
        });
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(ferrio_socketio::serve(listener, service));
    port
}

async fn bench(port: u16, args: &str) -> Report {
    let line = format!("ferrio-bench --quiet --port {port} --label test {args}");
    let cli = Cli::parse_from(line.split_whitespace());
    run_scenario(&cli).await.expect("the run takes place")
}

fn num(report: &Report, key: &str) -> f64 {
    match report.get(key) {
        Some(Value::Number(n)) => n.as_f64().unwrap(),
        other => panic!("{key} = {other:?} in {}", report.to_json_line()),
    }
}

fn assert_common(report: &Report, scenario: &str, port: u16) {
    assert_eq!(report.get("scenario"), Some(&Value::from(scenario)));
    assert_eq!(report.get("label"), Some(&Value::from("test")));
    assert_eq!(num(report, "port"), f64::from(port));
    assert!(num(report, "lg_threads") >= 1.0);
    assert_eq!(
        report.get("first_error"),
        Some(&Value::Null),
        "{}",
        report.to_json_line()
    );
    assert_eq!(num(report, "errors"), 0.0);
    // One JSON object on one line.
    let line = report.to_json_line();
    assert!(!line.contains('\n'));
    let parsed: Value = serde_json::from_str(&line).unwrap();
    assert!(parsed.is_object());
}

fn assert_latencies(report: &Report, prefix: &str) {
    let p50 = num(report, &format!("{prefix}_p50_us"));
    let p90 = num(report, &format!("{prefix}_p90_us"));
    let p99 = num(report, &format!("{prefix}_p99_us"));
    let p999 = num(report, &format!("{prefix}_p999_us"));
    let max = num(report, &format!("{prefix}_max_us"));
    assert!(num(report, &format!("{prefix}_samples")) > 0.0);
    assert!(
        p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{}",
        report.to_json_line()
    );
    assert!(max > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_holds_every_connection_and_reads_the_server_memory() {
    let port = start_server().await;
    let pid = std::process::id();
    let report = bench(
        port,
        &format!("--server-pid {pid} idle --conns 200 --hold 0.2 --concurrency 20"),
    )
    .await;
    assert_common(&report, "idle", port);
    assert_eq!(num(&report, "connected"), 200.0);
    assert_eq!(num(&report, "open_after_hold"), 200.0);
    assert!(num(&report, "conn_per_s") > 0.0);
    assert_latencies(&report, "hs");
    assert!(num(&report, "rss_before_kib") > 0.0);
    // Server and load generator share this process: both grow.
    assert!(
        num(&report, "kib_per_conn") > 0.0,
        "{}",
        report.to_json_line()
    );
    assert!(num(&report, "srv_cpu_ramp") >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_without_a_pid_reports_no_memory() {
    let port = start_server().await;
    let report = bench(port, "idle --conns 5 --hold 0 --concurrency 5").await;
    assert_common(&report, "idle", port);
    assert_eq!(report.get("kib_per_conn"), Some(&Value::Null));
    assert_eq!(report.get("srv_cpu_ramp"), Some(&Value::Null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_closed_loop_gets_every_ack_back_unchanged() {
    let port = start_server().await;
    let report = bench(port, "echo --conns 4 --duration 0.5 --warmup 0.1").await;
    assert_common(&report, "echo", port);
    assert!(num(&report, "acks") > 0.0);
    assert!(num(&report, "acks_per_s") > 0.0);
    assert_eq!(num(&report, "ack_mismatches"), 0.0);
    assert_latencies(&report, "rtt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_pipelined_keeps_several_in_flight() {
    let port = start_server().await;
    let report = bench(
        port,
        "echo --conns 2 --duration 0.5 --warmup 0.1 --inflight 8",
    )
    .await;
    assert_common(&report, "echo", port);
    assert_eq!(num(&report, "inflight"), 8.0);
    assert!(num(&report, "acks") > 0.0);
    assert_latencies(&report, "rtt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_at_a_fixed_rate_sends_about_that_many() {
    let port = start_server().await;
    let report = bench(port, "echo --conns 4 --duration 1 --warmup 0.2 --rate 200").await;
    assert_common(&report, "echo", port);
    let acks = num(&report, "acks");
    // 200/s for 1 s: the schedule is exact; a late timer moves a few sends across the edges.
    assert!((180.0..=220.0).contains(&acks), "{acks}");
    assert!(num(&report, "late_sends") >= 0.0);
    assert_latencies(&report, "rtt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_broadcast_to_every_receiver() {
    let port = start_server().await;
    let report = bench(
        port,
        "fanout --conns 20 --msgs 30 --duration 5 --drain-timeout 5",
    )
    .await;
    assert_common(&report, "fanout", port);
    assert_eq!(num(&report, "sent"), 30.0);
    assert_eq!(num(&report, "deliveries"), 600.0);
    assert_eq!(num(&report, "lost"), 0.0);
    assert!(num(&report, "deliveries_per_s") > 0.0);
    assert_latencies(&report, "lat");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_with_a_window_and_pacing_still_loses_nothing() {
    let port = start_server().await;
    let report = bench(
        port,
        "fanout --conns 10 --msgs 20 --duration 5 --window 2 --interval-ms 1 --drain-timeout 5",
    )
    .await;
    assert_common(&report, "fanout", port);
    assert_eq!(num(&report, "sent"), 20.0);
    assert_eq!(num(&report, "lost"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_connects_and_disconnects_within_its_bounds() {
    let port = start_server().await;
    let report = bench(port, "churn --duration 5 --concurrency 4 --max-cycles 40").await;
    assert_common(&report, "churn", port);
    assert_eq!(num(&report, "cycles"), 40.0);
    assert!(num(&report, "cycles_per_s") > 0.0);
    assert_latencies(&report, "hs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_echoes_over_long_polling() {
    let port = start_server().await;
    let report = bench(port, "poll --conns 3 --duration 0.5 --warmup 0.1").await;
    assert_common(&report, "poll", port);
    assert!(num(&report, "acks") > 0.0);
    assert!(num(&report, "acks_per_s") > 0.0);
    assert_latencies(&report, "rtt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_check_passes_every_item() {
    let port = start_server().await;
    let report = bench(port, "check").await;
    assert_common(&report, "check", port);
    assert_eq!(num(&report, "failed"), 0.0, "{}", report.to_json_line());
    assert_eq!(num(&report, "passed"), 8.0);
    for (key, value) in report.fields() {
        if key.starts_with("check_") {
            assert_eq!(value, &Value::from("pass"), "{key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_an_error_in_the_result() {
    // Bind and drop: a port nobody listens on.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = bench(port, "idle --conns 3 --hold 0 --concurrency 3").await;
    assert_eq!(num(&report, "connected"), 0.0);
    assert_eq!(num(&report, "errors"), 3.0);
    assert!(report
        .get("first_error")
        .unwrap()
        .as_str()
        .unwrap()
        .contains("tcp connect"));
}
