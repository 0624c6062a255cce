//! `idle`: open N connections (≤ C handshakes in flight), hold them, measure the server's memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::conn::{classify, connect, Errors, Incoming, Ws, PONG};
use crate::procfs::{rss_kib, CpuMark};
use crate::{progress, CommonArgs, Histogram, IdleArgs, Report};

pub(crate) async fn run(
    common: &CommonArgs,
    args: &IdleArgs,
    errors: &Arc<Errors>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let rss_before = common.server_pid.and_then(rss_kib);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (result_tx, mut result_rx) = mpsc::unbounded_channel::<Result<Duration, String>>();
    let connected = Arc::new(AtomicU64::new(0));
    let ramp_limit = Duration::from_secs_f64(args.ramp_timeout.max(0.0));
    // Every holder gives up by itself after this, even if the run is abandoned.
    let give_up = Instant::now() + ramp_limit + Duration::from_secs_f64(args.hold.max(0.0) + 60.0);

    let counter = connected.clone();
    let total = args.conns;
    let ticker = progress::every_second(common.quiet, "idle ramp", ramp_limit, move || {
        format!("{}/{} connected", counter.load(Ordering::Relaxed), total)
    });
    let cpu_start = CpuMark::now(common.server_pid);
    let start = Instant::now();

    let spawner = {
        let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
        let timeout = common.connect_timeout();
        let (port, n, errors, connected) =
            (common.port, args.conns, errors.clone(), connected.clone());
        tokio::spawn(async move {
            for _ in 0..n {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (result_tx, stop_rx, errors, connected) = (
                    result_tx.clone(),
                    stop_rx.clone(),
                    errors.clone(),
                    connected.clone(),
                );
                tokio::spawn(async move {
                    let outcome = connect(port, timeout).await;
                    drop(permit);
                    match outcome {
                        Ok((ws, took)) => {
                            connected.fetch_add(1, Ordering::Relaxed);
                            let _ = result_tx.send(Ok(took));
                            drop(result_tx);
                            if !hold(ws, stop_rx, give_up, &errors).await {
                                connected.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                        Err(error) => {
                            let _ = result_tx.send(Err(error));
                        }
                    }
                });
            }
        })
    };

    let mut handshakes = Histogram::new();
    let ramp_deadline = tokio::time::Instant::from_std(start + ramp_limit);
    let mut finished = 0;
    while finished < args.conns {
        match tokio::time::timeout_at(ramp_deadline, result_rx.recv()).await {
            Ok(Some(Ok(took))) => handshakes.record(took.as_micros() as u64),
            Ok(Some(Err(error))) => errors.record(error),
            Ok(None) => break,
            Err(_) => {
                errors.record(format!("ramp not complete after {ramp_limit:?}"));
                break;
            }
        }
        finished += 1;
    }
    let ramp = start.elapsed();
    let (srv_cpu, lg_cpu) = CpuMark::now(common.server_pid).since(&cpu_start);
    progress::stop(ticker);
    spawner.abort();
    let ok = handshakes.len();

    if !common.quiet {
        eprintln!(
            "[idle] {ok} connected in {:.2}s; holding {}s",
            ramp.as_secs_f64(),
            args.hold
        );
    }
    tokio::time::sleep(Duration::from_secs_f64(args.hold.max(0.0))).await;
    let rss_after = common.server_pid.and_then(rss_kib);
    let still_open = connected.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);

    report.set("conns", args.conns);
    report.set("connected", ok);
    report.set("concurrency", args.concurrency);
    report.set_f64("ramp_s", Some(ramp.as_secs_f64()), 3);
    report.set_f64(
        "conn_per_s",
        Some(ok as f64 / ramp.as_secs_f64().max(1e-9)),
        1,
    );
    report.set_latency("hs", &handshakes);
    report.set_f64("hold_s", Some(args.hold), 3);
    report.set("open_after_hold", still_open);
    report.set("rss_before_kib", rss_before);
    report.set("rss_after_kib", rss_after);
    let per_conn = match (rss_before, rss_after) {
        (Some(before), Some(after)) if ok > 0 => Some((after as f64 - before as f64) / ok as f64),
        _ => None,
    };
    report.set_f64("kib_per_conn", per_conn, 2);
    report.set_f64("srv_cpu_ramp", srv_cpu, 3);
    report.set_f64("lg_cpu_ramp", lg_cpu, 3);
    Ok(())
}

/// Keeps one connection open, answering pings, until `stop` (or `give_up`). `false` when the
/// connection failed first.
async fn hold(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    give_up: Instant,
    errors: &Errors,
) -> bool {
    let give_up = tokio::time::Instant::from_std(give_up);
    loop {
        tokio::select! {
            _ = stop.changed() => return true,
            _ = tokio::time::sleep_until(give_up) => return true,
            message = ws.next() => match message {
                Some(Ok(message)) => match classify(&message) {
                    Incoming::Ping => {
                        match tokio::time::timeout_at(give_up, ws.send(Message::Text(PONG))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(error)) => {
                                errors.record(format!("pong: {error}"));
                                return false;
                            }
                            Err(_) => return true,
                        }
                    }
                    Incoming::Closed => {
                        errors.record("the server closed an idle connection");
                        return false;
                    }
                    _ => {}
                },
                Some(Err(error)) => {
                    errors.record(format!("idle read: {error}"));
                    return false;
                }
                None => {
                    errors.record("an idle connection ended");
                    return false;
                }
            },
        }
    }
}
