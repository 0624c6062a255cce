//! A bounded churn-and-broadcast soak against the built `ferrio serve`.
//!
//! 2,000 WebSocket clients come in waves: each connects, joins a room, publishes to it and
//! joins another room, every step with an acknowledgement, then leaves (half of them cleanly,
//! half by dropping the connection). Meanwhile a publisher sends large broadcasts to a room where
//! some clients read and others stall (never read, with a small receive buffer). Checked:
//! every acknowledgement arrives exactly once; the stalled clients are disconnected as slow
//! consumers while the readers receive every broadcast in order; nothing panics; once every
//! client is gone the connection count is 0 and the server's memory is back near where it
//! started. Every wait is bounded.

mod process;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use process::Ferrio;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Clients of the churn, in all.
const CHURN_CLIENTS: usize = 2000;
/// Clients connected at once during the churn.
const WAVE: usize = 250;
/// Rooms the churning clients spread over.
const ROOMS: usize = 10;
/// Clients in the heavy room that read, and that stall.
const READERS: usize = 10;
const STALLERS: usize = 10;
/// Broadcasts to the heavy room, and their size: enough to fill a stalled client's socket
/// buffers and then its queue.
const HEAVY_MESSAGES: usize = 400;
const HEAVY_SIZE: usize = 32 * 1024;
/// The server's queue per client, kept small so that stalled clients are found soon.
const QUEUE: &str = "64";
/// Any single step.
const STEP: Duration = Duration::from_secs(20);
/// How much the server's resident memory may exceed its level after the warm-up.
const RSS_SLACK_KIB: u64 = 30 * 1024;

type Ws = WebSocketStream<TcpStream>;

/// What a client's step failed with.
type Failure = String;

async fn open(port: u16, small_receive_buffer: bool) -> Result<Ws, Failure> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if small_receive_buffer {
        socket
            .set_recv_buffer_size(4096)
            .map_err(|e| e.to_string())?;
    }
    let tcp = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"),
        tcp,
    )
    .await
    .map_err(|e| format!("websocket: {e}"))?;
    let first = next_text(&mut ws).await?;
    if !first.starts_with("0{\"sid\":") {
        return Err(format!("open packet: {first}"));
    }
    ws.send(Message::text("40"))
        .await
        .map_err(|e| e.to_string())?;
    let connected = next_text(&mut ws).await?;
    if !connected.starts_with("40{\"sid\":") {
        return Err(format!("connect answer: {connected}"));
    }
    Ok(ws)
}

/// The next text frame within [`STEP`], answering pings.
async fn next_text(ws: &mut Ws) -> Result<String, Failure> {
    loop {
        let frame = timeout(STEP, ws.next())
            .await
            .map_err(|_| "no frame in time".to_owned())?
            .ok_or("the server closed the connection")?
            .map_err(|e| format!("read: {e}"))?;
        match frame {
            Message::Text(text) if text.as_str() == "2" => {
                ws.send(Message::text("3"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            _ => {}
        }
    }
}

/// Emits `event` with `arg` and acknowledgement `id`.
async fn emit(ws: &mut Ws, id: u64, event: &str, arg: &serde_json::Value) -> Result<(), Failure> {
    let text = format!("42{id}{}", serde_json::json!([event, arg]));
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("emit: {e}"))
}

/// Reads until the acknowledgement `id` arrives, counting every acknowledgement on the way in
/// `acks`; other packets (broadcasts) are skipped.
async fn read_until_ack(
    ws: &mut Ws,
    id: u64,
    acks: &mut BTreeMap<u64, usize>,
) -> Result<serde_json::Value, Failure> {
    loop {
        let text = next_text(ws).await?;
        let Some(rest) = text.strip_prefix("43") else {
            continue;
        };
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        let got: u64 = rest[..digits].parse().map_err(|_| format!("ack: {text}"))?;
        *acks.entry(got).or_insert(0) += 1;
        if got == id {
            let value: serde_json::Value =
                serde_json::from_str(&rest[digits..]).map_err(|_| format!("ack: {text}"))?;
            return Ok(value[0].clone());
        }
    }
}

/// One churning client: join, publish, join again, each acknowledged, then a last join whose
/// acknowledgement closes the count (an acknowledgement sent twice would arrive before it).
async fn churn_client(port: u16, n: usize) -> Result<(), Failure> {
    let mut ws = open(port, false).await?;
    let room = format!("r{}", n % ROOMS);
    let mut acks = BTreeMap::new();
    emit(&mut ws, 1, "join", &serde_json::json!({ "room": room })).await?;
    let joined = read_until_ack(&mut ws, 1, &mut acks).await?;
    if joined["ok"] != true {
        return Err(format!("join: {joined}"));
    }
    let publish = serde_json::json!({ "room": room, "event": "chat", "data": { "from": n } });
    emit(&mut ws, 2, "publish", &publish).await?;
    let published = read_until_ack(&mut ws, 2, &mut acks).await?;
    if published["ok"] != true {
        return Err(format!("publish: {published}"));
    }
    emit(&mut ws, 3, "join", &serde_json::json!({ "room": "lobby" })).await?;
    read_until_ack(&mut ws, 3, &mut acks).await?;
    emit(&mut ws, 4, "leave", &serde_json::json!({ "room": room })).await?;
    read_until_ack(&mut ws, 4, &mut acks).await?;
    let expected: BTreeMap<u64, usize> = (1..=4).map(|id| (id, 1)).collect();
    if acks != expected {
        return Err(format!("acknowledgements seen (id: times): {acks:?}"));
    }
    if n % 2 == 0 {
        let _ = ws.close(None).await;
    }
    // Odd clients just drop the connection.
    Ok(())
}

/// A client of the heavy room that reads every broadcast and checks their order.
async fn reader(mut ws: Ws) -> Result<usize, Failure> {
    let mut next = 0usize;
    while next < HEAVY_MESSAGES {
        let text = next_text(&mut ws).await?;
        let Some(json) = text.strip_prefix("42") else {
            continue;
        };
        let packet: serde_json::Value =
            serde_json::from_str(json).map_err(|_| format!("event: {}", &text[..60]))?;
        if packet[0] != "heavy" {
            continue;
        }
        let seq = packet[1]["seq"].as_u64().ok_or("no seq")? as usize;
        if seq != next {
            return Err(format!("broadcast {seq} arrived when {next} was due"));
        }
        next += 1;
    }
    let _ = ws.close(None).await;
    Ok(next)
}

async fn join(ws: &mut Ws, room: &str) -> Result<(), Failure> {
    let mut acks = BTreeMap::new();
    emit(ws, 1, "join", &serde_json::json!({ "room": room })).await?;
    let answer = read_until_ack(ws, 1, &mut acks).await?;
    if answer["ok"] != true {
        return Err(format!("join {room}: {answer}"));
    }
    Ok(())
}

/// Runs `count` churning clients, `WAVE` at a time; the failures, if any.
async fn churn(port: u16, count: usize, first: usize) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut started = first;
    while started < first + count {
        let end = (started + WAVE).min(first + count);
        let wave: Vec<_> = (started..end)
            .map(|n| tokio::spawn(churn_client(port, n)))
            .collect();
        for (offset, task) in wave.into_iter().enumerate() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => {
                    failures.push(format!("client {}: {failure}", started + offset))
                }
                Err(panic) => failures.push(format!("client {}: {panic}", started + offset)),
            }
        }
        started = end;
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_and_broadcast_with_stalled_readers() {
    let server = Ferrio::start(&[
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^(lobby|heavy|r[0-9]+)$"),
        ("FERRIO_ROOMS_PUBLIC_PUBLISH", "^(heavy|r[0-9]+)$"),
        ("FERRIO_LIMITS_MAX_BUFFERED_PACKETS", QUEUE),
    ]);
    let port = server.port;

    // A warm-up wave, so that the baseline includes what the first clients make the process
    // allocate for good (runtime threads, buffers kept by the allocator).
    let failures = churn(port, WAVE, 0).await;
    assert!(failures.is_empty(), "warm-up: {failures:?}");
    assert_eq!(server.wait_connections(0.0, STEP), 0.0);
    let rss_start = server.rss_kib();

    // The heavy room: readers and stalled clients, and a publisher.
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut ws = open(port, false).await.expect("reader connects");
        join(&mut ws, "heavy").await.expect("reader joins");
        readers.push(tokio::spawn(reader(ws)));
    }
    let mut stalled = Vec::new();
    for _ in 0..STALLERS {
        let mut ws = open(port, true).await.expect("staller connects");
        join(&mut ws, "heavy").await.expect("staller joins");
        // From here on it never reads again.
        stalled.push(ws);
    }
    let mut publisher = open(port, false).await.expect("publisher connects");
    let publishing = tokio::spawn(async move {
        let filler = "x".repeat(HEAVY_SIZE);
        let mut acks = BTreeMap::new();
        for seq in 0..HEAVY_MESSAGES {
            let arg = serde_json::json!({
                "room": "heavy", "event": "heavy", "data": { "seq": seq, "filler": filler }
            });
            let id = seq as u64 + 1;
            emit(&mut publisher, id, "publish", &arg).await?;
            let answer = read_until_ack(&mut publisher, id, &mut acks).await?;
            if answer["ok"] != true {
                return Err(format!("publish {seq}: {answer}"));
            }
        }
        if acks.values().any(|times| *times != 1) || acks.len() != HEAVY_MESSAGES {
            return Err(format!(
                "publisher acknowledgements: {} ids, some twice",
                acks.len()
            ));
        }
        let _ = publisher.close(None).await;
        Ok::<(), Failure>(())
    });

    // The churn runs while the broadcasts flow.
    let churn_started = std::time::Instant::now();
    let failures = churn(port, CHURN_CLIENTS, WAVE).await;
    let churn_time = churn_started.elapsed();
    assert!(
        failures.is_empty(),
        "{} churn failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    timeout(STEP * 3, publishing)
        .await
        .expect("the publisher finished in time")
        .expect("no panic")
        .expect("every broadcast acknowledged once");
    for reader in readers {
        let got = timeout(STEP, reader)
            .await
            .expect("the reader finished in time")
            .expect("no panic")
            .expect("every broadcast, in order");
        assert_eq!(got, HEAVY_MESSAGES);
    }

    // Every stalled client was cut off as a slow consumer.
    let slow = "ferrio_refusals_total{reason=\"slow_consumer\"}";
    let deadline = std::time::Instant::now() + STEP;
    while server.metric(slow) < STALLERS as f64 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.metric(slow), STALLERS as f64, "{}", server.log());
    let cut = server
        .log()
        .lines()
        .filter(|line| {
            line.contains("refused: send queue full (64 packets): disconnecting the slow client")
        })
        .count();
    assert_eq!(cut, STALLERS);
    drop(stalled);

    assert_eq!(server.wait_connections(0.0, STEP), 0.0);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    let rss_end = server.rss_kib();
    println!(
        "soak: {} churn clients, {READERS} readers and {STALLERS} stalled in a room of {HEAVY_MESSAGES} broadcasts of {HEAVY_SIZE} bytes; churn took {churn_time:?}; server RSS after warm-up {rss_start} KiB, at the end {rss_end} KiB",
        CHURN_CLIENTS
    );
    assert!(
        rss_end <= rss_start + RSS_SLACK_KIB,
        "server RSS grew from {rss_start} KiB to {rss_end} KiB"
    );
}
