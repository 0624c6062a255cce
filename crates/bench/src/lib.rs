//! `ferrio-bench`: a Socket.IO load generator for `shared/bench/CONTRACT.md`.
//!
//! It speaks Engine.IO v4 over direct WebSockets to `127.0.0.1` with the shared `ferrio-*-proto`
//! codecs, answers every ping, and runs one of four scenarios:
//!
//! - `idle`: N connections opened (≤ C handshakes in flight) and held; connect rate, handshake
//!   latency and, given `--server-pid`, the server's memory per connection.
//! - `echo`: C connections emit `echo` with an ack in a closed loop (`--inflight K` per
//!   connection, writes coalesced) or at a fixed total `--rate`; acks/s and round-trip latency.
//! - `fanout`: N receivers in room `r`, one more client broadcasts M payloads; deliveries/s,
//!   delivery latency and lost deliveries.
//! - `churn`: connect, Socket.IO connect and close in a loop; cycles/s and handshake latency.
//! - `poll`: echo with ack over HTTP long-polling only: the polling client's round trip.
//! - `check`: the contract check, pass/fail per item.
//!
//! Progress goes to stderr every second; at the end a summary table goes to stderr and one JSON
//! line with the contract's field names to stdout. Every loop is bounded in count and in time.
//!
//! [`run`] is the whole command line (a binary calls it with its arguments);
//! [`run_scenario`] runs parsed arguments inside the caller's Tokio runtime.

mod check;
mod churn;
mod conn;
mod echo;
mod fanout;
mod hist;
mod idle;
mod poll;
mod procfs;
mod progress;
mod report;

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use hist::Histogram;
pub use report::Report;

/// The load generator's command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferrio-bench",
    about = "Socket.IO load generator (shared/bench/CONTRACT.md)"
)]
pub struct Cli {
    /// Options every scenario takes.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Server port on 127.0.0.1 (the only host the load generator targets).
    #[arg(long, global = true, default_value_t = 3000)]
    pub port: u16,
    /// Free text copied into the result line.
    #[arg(long, global = true, default_value = "")]
    pub label: String,
    /// PID of the server, to read its RSS and CPU time from /proc.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Load-generator worker threads (default: the CPUs this process may run on).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Seconds one connection may take to complete its handshake.
    #[arg(long, global = true, default_value_t = 15.0)]
    pub connect_timeout: f64,
    /// No progress lines on stderr.
    #[arg(long, global = true)]
    pub quiet: bool,
}

/// One of the contract's scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Scenario {
    /// N idle connections: connect rate, handshake latency, server memory per connection.
    Idle(IdleArgs),
    /// Emit with ack: acks/s and round-trip latency.
    Echo(EchoArgs),
    /// Broadcast to a room: deliveries/s, delivery latency, lost deliveries.
    Fanout(FanoutArgs),
    /// Connect and disconnect in a loop: cycles/s.
    Churn(ChurnArgs),
    /// Echo with ack over HTTP long-polling: the polling round trip.
    Poll(PollArgs),
    /// The contract check: pass/fail per item (open packet, heartbeat, connect, echo, join,
    /// broadcast).
    Check,
}

/// `idle` options.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Connections to open and hold.
    #[arg(long, default_value_t = 10_000)]
    pub conns: usize,
    /// Seconds to hold them once all are connected.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Handshakes in flight at most.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Give up the ramp after this many seconds.
    #[arg(long, default_value_t = 300.0)]
    pub ramp_timeout: f64,
}

/// `echo` options.
#[derive(Debug, Clone, Args)]
pub struct EchoArgs {
    /// Connections.
    #[arg(long, default_value_t = 100)]
    pub conns: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Fixed total rate (echoes/s over all connections) instead of the closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Echoes in flight per connection in the closed loop.
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Handshakes in flight at most while connecting.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
}

/// `fanout` options.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Receivers in the room.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Broadcasts to send at most.
    #[arg(long, default_value_t = 2000)]
    pub msgs: u64,
    /// Seconds of sending at most.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Don't send broadcast k before broadcast k−W reached every receiver (0: off).
    #[arg(long, default_value_t = 0)]
    pub window: u64,
    /// Milliseconds between broadcasts (0: back-to-back, each after the previous ack).
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// Seconds to wait for every delivery after the last broadcast.
    #[arg(long, default_value_t = 120.0)]
    pub drain_timeout: f64,
    /// Payload string length in bytes (at least the timestamp and sequence).
    #[arg(long, default_value_t = 64)]
    pub payload_size: usize,
    /// Handshakes in flight at most while connecting.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
}

/// `churn` options.
#[derive(Debug, Clone, Args)]
pub struct ChurnArgs {
    /// Seconds of churning.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Connect/disconnect loops running side by side.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Stop after this many cycles in all.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_cycles: u64,
}

/// `poll` options.
#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// Long-polling clients, one echo in flight each.
    #[arg(long, default_value_t = 10)]
    pub conns: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
}

impl CommonArgs {
    fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout.max(0.001))
    }
}

/// The worker threads [`run`] uses for these arguments.
pub fn lg_threads(common: &CommonArgs) -> usize {
    common
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Runs the scenario of `cli` on the current Tokio runtime and returns its result.
///
/// The result carries `scenario`, `label`, `port`, `lg_threads` and `first_error` plus the
/// scenario's figures. Errors of single connections are counted in the result, not returned;
/// an `Err` means the run could not take place. Not cancel-safe: dropping it midway leaves
/// connection tasks running until their own deadlines.
pub async fn run_scenario(cli: &Cli) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let name = match cli.scenario {
        Scenario::Idle(_) => "idle",
        Scenario::Echo(_) => "echo",
        Scenario::Fanout(_) => "fanout",
        Scenario::Churn(_) => "churn",
        Scenario::Poll(_) => "poll",
        Scenario::Check => "check",
    };
    report.set("scenario", name);
    report.set("label", cli.common.label.as_str());
    report.set("port", cli.common.port);
    report.set("lg_threads", lg_threads(&cli.common));
    report.set("first_error", serde_json::Value::Null);
    let errors = std::sync::Arc::new(conn::Errors::default());
    match &cli.scenario {
        Scenario::Idle(args) => idle::run(&cli.common, args, &errors, &mut report).await?,
        Scenario::Echo(args) => echo::run(&cli.common, args, &errors, &mut report).await?,
        Scenario::Fanout(args) => fanout::run(&cli.common, args, &errors, &mut report).await?,
        Scenario::Churn(args) => churn::run(&cli.common, args, &errors, &mut report).await?,
        Scenario::Poll(args) => poll::run(&cli.common, args, &errors, &mut report).await?,
        Scenario::Check => check::run(&cli.common, &errors, &mut report).await?,
    }
    report.set("errors", errors.count());
    if let Some(first) = errors.first() {
        report.set("first_error", first);
    }
    Ok(report)
}

/// The whole command: parses `args` (program name first), runs the scenario on a runtime of
/// [`lg_threads`] workers, prints the summary table to stderr and the JSON line to stdout.
pub fn run<I, T>(args: I) -> anyhow::Result<Report>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_cli(Cli::parse_from(args))
}

/// Runs parsed arguments as [`run`] does: for callers that embed [`Cli`] in their own command
/// line (`ferrio bench`).
pub fn run_cli(cli: Cli) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(lg_threads(&cli.common))
        .enable_all()
        .build()?;
    let report = runtime.block_on(run_scenario(&cli))?;
    // Connection tasks past their deadlines are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    eprintln!("\n{}", report.to_table());
    println!("{}", report.to_json_line());
    Ok(report)
}
