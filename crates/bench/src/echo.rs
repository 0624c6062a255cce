//! `echo`: emit `echo` with an ack, closed loop (K in flight per connection, writes coalesced)
//! or at a fixed total rate; acks/s and round-trip latency.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{bounded, classify, open_many, Errors, EventTemplate, Incoming, Ws, PONG};
use crate::procfs::CpuMark;
use crate::{progress, CommonArgs, EchoArgs, Histogram, Report};

/// The one 32-byte string argument the contract's echo carries.
pub(crate) const ARG: &str = "ferrio-bench-echo-0123456789abcd";

/// Messages handled between two flushes at most.
const BATCH: usize = 256;
/// Unanswered echoes a connection allows itself in rate mode before it gives up.
const MAX_PENDING: usize = 4096;
/// How long to wait for the acks of the last sends after the measured phase.
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
struct Phases {
    start: Instant,
    warm_end: Instant,
    end: Instant,
    stop: Instant,
}

impl Phases {
    fn measured(&self, sent: Instant) -> bool {
        sent >= self.warm_end && sent < self.end
    }
}

struct Shared {
    template: EventTemplate,
    expected: String,
    errors: Arc<Errors>,
    acks: AtomicU64,
}

/// One connection's state and figures.
struct EchoConn {
    pending: VecDeque<(u64, Instant)>,
    next_id: u64,
    rtt: Histogram,
    acks: u64,
    late: u64,
    mismatches: u64,
}

impl EchoConn {
    fn new(inflight: usize) -> Self {
        Self {
            pending: VecDeque::with_capacity(inflight.max(4)),
            next_id: 1,
            rtt: Histogram::new(),
            acks: 0,
            late: 0,
            mismatches: 0,
        }
    }

    /// Queues one echo (written at the next flush).
    async fn feed_echo(&mut self, ws: &mut Ws, shared: &Shared) -> Result<(), String> {
        let id = self.next_id;
        self.next_id += 1;
        ws.feed(shared.template.message(id))
            .await
            .map_err(|e| format!("send: {e}"))?;
        self.pending.push_back((id, Instant::now()));
        Ok(())
    }

    /// Handles one message; returns whether an ack arrived.
    async fn on_message(
        &mut self,
        ws: &mut Ws,
        message: &Message,
        shared: &Shared,
        phases: &Phases,
    ) -> Result<bool, String> {
        match classify(message) {
            Incoming::Ping => {
                ws.feed(Message::Text(PONG))
                    .await
                    .map_err(|e| format!("pong: {e}"))?;
                Ok(false)
            }
            Incoming::Ack(id, body) => {
                let now = Instant::now();
                let Some(at) = self.pending.iter().position(|&(pending, _)| pending == id) else {
                    return Err(format!("ack for unknown id {id}"));
                };
                let (_, sent) = self.pending.remove(at).expect("position is in range");
                if body != shared.expected {
                    self.mismatches += 1;
                    if self.mismatches == 1 {
                        shared
                            .errors
                            .record(format!("echo ack body {body:?} != {:?}", shared.expected));
                    }
                }
                if phases.measured(sent) {
                    self.rtt.record(now.duration_since(sent).as_micros() as u64);
                    self.acks += 1;
                }
                Ok(true)
            }
            Incoming::Closed => Err("closed by the server".to_owned()),
            _ => Ok(false),
        }
    }

    /// Handles `first` and whatever else is ready (≤ BATCH), then flushes once.
    /// Returns the number of acks handled.
    async fn on_batch(
        &mut self,
        ws: &mut Ws,
        first: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        shared: &Shared,
        phases: &Phases,
        resend: bool,
    ) -> Result<u64, String> {
        let mut acks = 0;
        let mut next = first;
        for _ in 0..BATCH {
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(format!("read: {e}")),
                None => return Err("connection closed by the server".to_owned()),
            };
            if self.on_message(ws, &message, shared, phases).await? {
                acks += 1;
                if resend && Instant::now() < phases.end {
                    self.feed_echo(ws, shared).await?;
                }
            }
            match ws.next().now_or_never() {
                Some(message) => next = message,
                None => break,
            }
        }
        ws.flush().await.map_err(|e| format!("flush: {e}"))?;
        Ok(acks)
    }
}

async fn closed_loop(mut ws: Ws, inflight: usize, shared: Arc<Shared>, phases: Phases) -> EchoConn {
    let mut conn = EchoConn::new(inflight);
    let result = bounded(phases.stop + Duration::from_secs(1), async {
        tokio::time::sleep_until(phases.start.into()).await;
        for _ in 0..inflight.max(1) {
            conn.feed_echo(&mut ws, &shared).await?;
        }
        ws.flush().await.map_err(|e| format!("flush: {e}"))?;
        let stop = tokio::time::Instant::from_std(phases.stop);
        while !(conn.pending.is_empty() && Instant::now() >= phases.end) {
            let first = tokio::select! {
                message = ws.next() => message,
                _ = tokio::time::sleep_until(stop) => break,
            };
            let acks = conn
                .on_batch(&mut ws, first, &shared, &phases, true)
                .await?;
            shared.acks.fetch_add(acks, Ordering::Relaxed);
        }
        Ok::<_, String>(())
    })
    .await;
    if let Err(error) = result {
        shared.errors.record(error);
    }
    conn
}

async fn rate_loop(
    mut ws: Ws,
    interval: Duration,
    offset: Duration,
    shared: Arc<Shared>,
    phases: Phases,
) -> EchoConn {
    let mut conn = EchoConn::new(16);
    let result = bounded(phases.stop + Duration::from_secs(1), async {
        let stop = tokio::time::Instant::from_std(phases.stop);
        let mut next_at = phases.start + offset;
        loop {
            let now = Instant::now();
            if now >= phases.end && conn.pending.is_empty() {
                break;
            }
            let sending = next_at < phases.end;
            tokio::select! {
                biased;
                message = ws.next() => {
                    let acks = conn.on_batch(&mut ws, message, &shared, &phases, false).await?;
                    shared.acks.fetch_add(acks, Ordering::Relaxed);
                }
                _ = tokio::time::sleep_until(next_at.into()), if sending => {
                    if conn.pending.len() >= MAX_PENDING {
                        return Err(format!("{MAX_PENDING} echoes unanswered on one connection"));
                    }
                    let now = Instant::now();
                    if next_at >= phases.warm_end && now.duration_since(next_at) > interval {
                        conn.late += 1;
                    }
                    conn.feed_echo(&mut ws, &shared).await?;
                    ws.flush().await.map_err(|e| format!("flush: {e}"))?;
                    next_at += interval;
                }
                _ = tokio::time::sleep_until(stop) => break,
            }
        }
        Ok::<_, String>(())
    })
    .await;
    if let Err(error) = result {
        shared.errors.record(error);
    }
    conn
}

pub(crate) async fn run(
    common: &CommonArgs,
    args: &EchoArgs,
    errors: &Arc<Errors>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let connected = Arc::new(AtomicU64::new(0));
    let counter = connected.clone();
    let total = args.conns;
    let ticker = progress::every_second(
        common.quiet,
        "echo connect",
        Duration::from_secs(600),
        move || format!("{}/{} connected", counter.load(Ordering::Relaxed), total),
    );
    let (sockets, _) = open_many(
        common.port,
        args.conns,
        args.concurrency,
        common.connect_timeout(),
        None,
        errors,
        &connected,
    )
    .await;
    progress::stop(ticker);
    let conns = sockets.len();
    anyhow::ensure!(
        conns > 0,
        "no connection: {}",
        errors.first().unwrap_or_default()
    );

    let shared = Arc::new(Shared {
        template: EventTemplate::new("echo", vec![ARG.into()]),
        expected: serde_json::to_string(&[ARG])?,
        errors: errors.clone(),
        acks: AtomicU64::new(0),
    });
    let start = Instant::now() + Duration::from_millis(50);
    let warm_end = start + Duration::from_secs_f64(args.warmup.max(0.0));
    let end = warm_end + Duration::from_secs_f64(args.duration.max(0.001));
    let phases = Phases {
        start,
        warm_end,
        end,
        stop: end + DRAIN,
    };

    let mut tasks = Vec::with_capacity(conns);
    for (index, ws) in sockets.into_iter().enumerate() {
        let shared = shared.clone();
        tasks.push(match args.rate {
            Some(rate) => {
                let interval = Duration::from_secs_f64(conns as f64 / rate.max(1e-3));
                let offset = interval.mul_f64(index as f64 / conns as f64);
                tokio::spawn(rate_loop(ws, interval, offset, shared, phases))
            }
            None => tokio::spawn(closed_loop(ws, args.inflight, shared, phases)),
        });
    }

    let counter = shared.clone();
    let mut last = 0;
    let ticker = progress::every_second(
        common.quiet,
        "echo",
        phases.stop - Instant::now(),
        move || {
            let now = counter.acks.load(Ordering::Relaxed);
            let line = format!("{} acks/s (measured so far {now})", now - last);
            last = now;
            line
        },
    );
    tokio::time::sleep_until(warm_end.into()).await;
    let cpu_start = CpuMark::now(common.server_pid);
    tokio::time::sleep_until(end.into()).await;
    let (srv_cpu, lg_cpu) = CpuMark::now(common.server_pid).since(&cpu_start);

    let mut rtt = Histogram::new();
    let (mut acks, mut late, mut mismatches) = (0, 0, 0);
    for task in tasks {
        match task.await {
            Ok(conn) => {
                rtt.merge(&conn.rtt);
                acks += conn.acks;
                late += conn.late;
                mismatches += conn.mismatches;
            }
            Err(error) => errors.record(format!("echo task: {error}")),
        }
    }
    progress::stop(ticker);

    report.set("conns", conns);
    report.set_f64("duration_s", Some(args.duration), 3);
    report.set_f64("warmup_s", Some(args.warmup), 3);
    report.set_f64("rate", args.rate, 1);
    report.set(
        "inflight",
        if args.rate.is_some() {
            serde_json::Value::Null
        } else {
            args.inflight.into()
        },
    );
    report.set("acks", acks);
    report.set_f64(
        "acks_per_s",
        Some(acks as f64 / args.duration.max(0.001)),
        1,
    );
    report.set_latency("rtt", &rtt);
    report.set("late_sends", late);
    report.set("ack_mismatches", mismatches);
    report.set_f64("srv_cpu", srv_cpu, 3);
    report.set_f64("lg_cpu", lg_cpu, 3);
    Ok(())
}
