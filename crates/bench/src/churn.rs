//! `churn`: connect, Socket.IO connect, close, in C loops side by side; cycles/s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::{close, connect, Errors};
use crate::procfs::CpuMark;
use crate::{progress, ChurnArgs, CommonArgs, Histogram, Report};

pub(crate) async fn run(
    common: &CommonArgs,
    args: &ChurnArgs,
    errors: &Arc<Errors>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(args.duration.max(0.001));
    let start = Instant::now();
    let end = start + duration;
    let cycles = Arc::new(AtomicU64::new(0));
    // Each cycle claims a ticket first, so `max_cycles` bounds the total.
    let tickets = Arc::new(AtomicU64::new(0));
    let timeout = common.connect_timeout();
    let cpu_start = CpuMark::now(common.server_pid);

    let counter = cycles.clone();
    let mut last = 0;
    let ticker = progress::every_second(common.quiet, "churn", duration + timeout, move || {
        let now = counter.load(Ordering::Relaxed);
        let line = format!("{} cycles/s (total {now})", now - last);
        last = now;
        line
    });
    let tasks: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (cycles, tickets, errors, port, max) = (
                cycles.clone(),
                tickets.clone(),
                errors.clone(),
                common.port,
                args.max_cycles,
            );
            tokio::spawn(async move {
                let mut handshakes = Histogram::new();
                while Instant::now() < end && tickets.fetch_add(1, Ordering::Relaxed) < max {
                    match connect(port, timeout).await {
                        Ok((ws, took)) => {
                            handshakes.record(took.as_micros() as u64);
                            close(ws, Duration::from_secs(1)).await;
                            cycles.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            errors.record(error);
                            // Back off a little so a refusing server is not spun against.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
                handshakes
            })
        })
        .collect();
    let mut handshakes = Histogram::new();
    for task in tasks {
        match task.await {
            Ok(hist) => handshakes.merge(&hist),
            Err(error) => errors.record(format!("churn task: {error}")),
        }
    }
    let elapsed = start.elapsed();
    let (srv_cpu, lg_cpu) = CpuMark::now(common.server_pid).since(&cpu_start);
    progress::stop(ticker);
    let done = cycles.load(Ordering::Relaxed);
    report.set("concurrency", args.concurrency);
    report.set_f64("duration_s", Some(elapsed.as_secs_f64()), 3);
    report.set("cycles", done);
    report.set_f64(
        "cycles_per_s",
        Some(done as f64 / elapsed.as_secs_f64().max(1e-9)),
        1,
    );
    report.set_latency("hs", &handshakes);
    report.set_f64("srv_cpu", srv_cpu, 3);
    report.set_f64("lg_cpu", lg_cpu, 3);
    Ok(())
}
