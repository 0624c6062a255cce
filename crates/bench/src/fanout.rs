//! `fanout`: N receivers in room `r`; one more client broadcasts, waiting for each ack;
//! deliveries/s, delivery latency (from the timestamp in the payload) and lost deliveries.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::conn::{bounded, classify, open_many, Errors, Incoming, Ws, PONG};
use crate::procfs::CpuMark;
use crate::{progress, CommonArgs, FanoutArgs, Histogram, Report};

/// The room every receiver joins.
const ROOM: &str = "r";
/// Messages handled between two flushes at most.
const BATCH: usize = 256;
/// How long the sender waits for one broadcast's ack.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

struct Shared {
    /// The clock payload timestamps count from.
    base: Instant,
    receivers: u32,
    /// Deliveries per broadcast, kept only when a window is set.
    per_msg: Vec<AtomicU32>,
    complete: Notify,
    deliveries: AtomicU64,
    errors: Arc<Errors>,
}

/// `(timestamp ns, sequence)` of a `bcast` event body `["bcast","T<ns>:<seq>:…"]`.
pub(crate) fn parse_bcast(body: &str) -> Option<(u64, u64)> {
    let rest = body.strip_prefix("[\"bcast\",\"T")?;
    let (ns, rest) = rest.split_once(':')?;
    let (seq, _) = rest.split_once(':')?;
    Some((ns.parse().ok()?, seq.parse().ok()?))
}

/// The Engine.IO message `42<id>["broadcast","r","T<ns>:<seq>:xxx…"]`, payload `size` bytes.
pub(crate) fn broadcast_message(id: u64, ns: u64, seq: u64, size: usize) -> Message {
    let mut ids = itoa::Buffer::new();
    let mut out = String::with_capacity(size + 48);
    out.push_str("42");
    out.push_str(ids.format(id));
    out.push_str("[\"broadcast\",\"");
    out.push_str(ROOM);
    out.push_str("\",\"");
    let payload_start = out.len();
    out.push('T');
    out.push_str(ids.format(ns));
    out.push(':');
    out.push_str(ids.format(seq));
    out.push(':');
    while out.len() - payload_start < size {
        out.push('x');
    }
    out.push_str("\"]");
    Message::Text(Utf8Bytes::from(out))
}

struct Received {
    latencies_us: Vec<u32>,
    count: u64,
    last: Option<Instant>,
}

/// `Some((broadcasts sent, stop waiting at))` once the sender is done.
type SentWatch = watch::Receiver<Option<(u64, Instant)>>;

async fn receive(
    mut ws: Ws,
    shared: Arc<Shared>,
    mut sent: SentWatch,
    bound: Instant,
    cap: usize,
) -> Received {
    let mut got = Received {
        latencies_us: Vec::with_capacity(cap.min(4096)),
        count: 0,
        last: None,
    };
    let result = bounded(bound + Duration::from_secs(5), async {
        loop {
            let deadline = match *sent.borrow() {
                Some((total, _)) if got.count >= total => break,
                Some((_, deadline)) => deadline,
                None => bound,
            };
            let first = tokio::select! {
                message = ws.next() => message,
                changed = sent.changed() => {
                    if changed.is_err() {
                        return Err("the sender went away".to_owned());
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(deadline.into()) => break,
            };
            let mut next = first;
            let mut pongs = false;
            let before = got.count;
            for _ in 0..BATCH {
                let message = match next {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Err(format!("receiver read: {e}")),
                    None => return Err("a receiver was closed by the server".to_owned()),
                };
                match classify(&message) {
                    Incoming::Ping => {
                        ws.feed(Message::Text(PONG))
                            .await
                            .map_err(|e| format!("pong: {e}"))?;
                        pongs = true;
                    }
                    Incoming::Event(body) => {
                        let now = Instant::now();
                        if let Some((ns, seq)) = parse_bcast(body) {
                            let at = now.duration_since(shared.base).as_nanos() as u64;
                            let micros = at.saturating_sub(ns) / 1000;
                            got.latencies_us
                                .push(micros.min(u64::from(u32::MAX)) as u32);
                            got.count += 1;
                            got.last = Some(now);
                            if let Some(counter) = shared.per_msg.get(seq as usize) {
                                if counter.fetch_add(1, Ordering::AcqRel) + 1 == shared.receivers {
                                    shared.complete.notify_waiters();
                                }
                            }
                        }
                    }
                    Incoming::Closed => {
                        return Err("a receiver was closed by the server".to_owned())
                    }
                    _ => {}
                }
                match ws.next().now_or_never() {
                    Some(message) => next = message,
                    None => break,
                }
            }
            shared
                .deliveries
                .fetch_add(got.count - before, Ordering::Relaxed);
            if pongs {
                ws.flush().await.map_err(|e| format!("flush: {e}"))?;
            }
        }
        Ok(())
    })
    .await;
    if let Err(error) = result {
        shared.errors.record(error);
    }
    got
}

struct Sent {
    count: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

async fn send(
    mut ws: Ws,
    shared: &Shared,
    args: &FanoutArgs,
    send_end: Instant,
    sent: &mut Sent,
) -> Result<(), String> {
    let interval = Duration::from_millis(args.interval_ms);
    for seq in 0..args.msgs {
        if Instant::now() >= send_end {
            break;
        }
        if args.window > 0 && seq >= args.window {
            let counter = &shared.per_msg[(seq - args.window) as usize];
            while counter.load(Ordering::Acquire) < shared.receivers {
                let notified = shared.complete.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if counter.load(Ordering::Acquire) >= shared.receivers {
                    break;
                }
                if Instant::now() >= send_end {
                    return Ok(());
                }
                let _ = tokio::time::timeout(Duration::from_millis(10), notified).await;
            }
        }
        if let (Some(last), false) = (sent.last, interval.is_zero()) {
            tokio::time::sleep_until((last + interval).into()).await;
        }
        let id = seq + 1;
        let now = Instant::now();
        let ns = now.duration_since(shared.base).as_nanos() as u64;
        if let Err(e) = ws
            .send(broadcast_message(id, ns, seq, args.payload_size))
            .await
        {
            return Err(format!("broadcast send: {e}"));
        }
        sent.first.get_or_insert(now);
        sent.last = Some(now);
        let acked = tokio::time::timeout(ACK_TIMEOUT, async {
            loop {
                let message = match ws.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => return Err(format!("sender read: {e}")),
                    None => return Err("the sender was closed by the server".to_owned()),
                };
                match classify(&message) {
                    Incoming::Ping => ws
                        .send(Message::Text(PONG))
                        .await
                        .map_err(|e| format!("pong: {e}"))?,
                    Incoming::Ack(got, _) if got == id => return Ok(()),
                    Incoming::Closed => {
                        return Err("the sender was closed by the server".to_owned())
                    }
                    _ => {}
                }
            }
        })
        .await;
        match acked {
            Ok(Ok(())) => sent.count += 1,
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                return Err(format!(
                    "broadcast {seq} not acknowledged after {ACK_TIMEOUT:?}"
                ))
            }
        }
    }
    Ok(())
}

pub(crate) async fn run(
    common: &CommonArgs,
    args: &FanoutArgs,
    errors: &Arc<Errors>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let connected = Arc::new(AtomicU64::new(0));
    let counter = connected.clone();
    let total = args.conns;
    let ticker = progress::every_second(
        common.quiet,
        "fanout connect+join",
        Duration::from_secs(600),
        move || format!("{}/{} joined", counter.load(Ordering::Relaxed), total),
    );
    let timeout = common.connect_timeout();
    let (receivers, _) = open_many(
        common.port,
        args.conns,
        args.concurrency,
        timeout,
        Some(ROOM),
        errors,
        &connected,
    )
    .await;
    progress::stop(ticker);
    let (mut senders, _) = open_many(common.port, 1, 1, timeout, None, errors, &connected).await;
    let sender = senders
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no sender: {}", errors.first().unwrap_or_default()))?;
    anyhow::ensure!(
        !receivers.is_empty(),
        "no receiver: {}",
        errors.first().unwrap_or_default()
    );
    let n = receivers.len();

    let shared = Arc::new(Shared {
        base: Instant::now(),
        receivers: n as u32,
        per_msg: if args.window > 0 {
            (0..args.msgs).map(|_| AtomicU32::new(0)).collect()
        } else {
            Vec::new()
        },
        complete: Notify::new(),
        deliveries: AtomicU64::new(0),
        errors: errors.clone(),
    });
    let duration = Duration::from_secs_f64(args.duration.max(0.001));
    let drain = Duration::from_secs_f64(args.drain_timeout.max(0.0));
    let start = Instant::now();
    let send_end = start + duration;
    // Receivers stop by themselves at the latest here, even if the sender hangs.
    let bound = send_end + ACK_TIMEOUT + Duration::from_secs(1) + drain;
    let (sent_tx, sent_rx) = watch::channel(None);
    let cap = args.msgs.min(1 << 20) as usize;
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|ws| tokio::spawn(receive(ws, shared.clone(), sent_rx.clone(), bound, cap)))
        .collect();

    let counter = shared.clone();
    let mut last = 0;
    let ticker =
        progress::every_second(common.quiet, "fanout", bound - Instant::now(), move || {
            let now = counter.deliveries.load(Ordering::Relaxed);
            let line = format!("{} deliveries/s (total {now})", now - last);
            last = now;
            line
        });
    let cpu_start = CpuMark::now(common.server_pid);
    let mut sent = Sent {
        count: 0,
        first: None,
        last: None,
    };
    let sending = send(sender, &shared, args, send_end, &mut sent);
    if let Err(error) = bounded(send_end + ACK_TIMEOUT + Duration::from_secs(1), sending).await {
        errors.record(error);
    }
    let _ = sent_tx.send(Some((sent.count, Instant::now() + drain)));
    if !common.quiet {
        eprintln!(
            "[fanout] {} broadcasts sent; waiting for every delivery",
            sent.count
        );
    }

    let mut latency = Histogram::new();
    let (mut deliveries, mut last_delivery) = (0u64, None::<Instant>);
    for task in tasks {
        match task.await {
            Ok(got) => {
                for micros in &got.latencies_us {
                    latency.record(u64::from(*micros));
                }
                deliveries += got.count;
                last_delivery = last_delivery.max(got.last);
            }
            Err(error) => errors.record(format!("receiver task: {error}")),
        }
    }
    let (srv_cpu, lg_cpu) = CpuMark::now(common.server_pid).since(&cpu_start);
    progress::stop(ticker);
    drop(sent_tx);

    let span = match (sent.first, last_delivery) {
        (Some(first), Some(last)) if last > first => Some(last.duration_since(first).as_secs_f64()),
        _ => None,
    };
    let expected = n as u64 * sent.count;
    report.set("conns", n);
    report.set("msgs", args.msgs);
    report.set("sent", sent.count);
    report.set_f64(
        "send_s",
        sent.first
            .zip(sent.last)
            .map(|(a, b)| (b - a).as_secs_f64()),
        3,
    );
    report.set("deliveries", deliveries);
    report.set("lost", expected.saturating_sub(deliveries));
    report.set_f64("deliveries_per_s", span.map(|s| deliveries as f64 / s), 1);
    report.set_latency("lat", &latency);
    report.set("window", args.window);
    report.set("interval_ms", args.interval_ms);
    report.set("payload_size", args.payload_size);
    report.set_f64("srv_cpu", srv_cpu, 3);
    report.set_f64("lg_cpu", lg_cpu, 3);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_payload_reads_back() {
        let Message::Text(text) = broadcast_message(7, 123_456, 9, 40) else {
            panic!()
        };
        assert!(text
            .as_str()
            .starts_with("427[\"broadcast\",\"r\",\"T123456:9:x"));
        // What a receiver gets: 42["bcast",<payload>].
        let payload = text.as_str().split_once(",\"r\",").unwrap().1;
        assert_eq!(payload.len(), 40 + 2 + 1); // quotes and the closing bracket
        let body = format!("[\"bcast\",{payload}");
        assert_eq!(parse_bcast(&body), Some((123_456, 9)));
        assert_eq!(parse_bcast("[\"other\",\"T1:2:\"]"), None);
    }
}
