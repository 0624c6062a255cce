//! The history store measured: appends per second to the SQLite store (batched, one fsync per
//! commit, `synchronous = FULL`), and how long a client waits for 10 000 missed packets when it
//! recovers, from the same process and from a new process on the same store.
//!
//! `cargo run --release --example history_bench [-- APPENDS MISSED]` (defaults 20000 10000).
//! Prints one line per figure; the store lives in a temporary directory (`$TMPDIR`), so the disk
//! measured is that one.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ferrio_history::{HistoryStore, NewMessage, Retention, SqliteConfig, SqliteStore};
use ferrio_socketio::{RecoveryConfig, SocketIo, SocketIoConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Every wait ends by then.
const WAIT: Duration = Duration::from_secs(30);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let appends: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let missed: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(appends, missed))
}

async fn run(appends: usize, missed: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("ferrio-history-bench-{}", std::process::id()));
    let result = measure(&dir, appends, missed).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    dir: &std::path::Path,
    appends: usize,
    missed: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStore::open(SqliteConfig {
        retention: Retention::UNLIMITED,
        ..SqliteConfig::new(dir.join("appends.db"))
    })?);
    for writers in [1, 16, 256] {
        let count = if writers == 1 {
            appends.min(500)
        } else {
            appends
        };
        let rate = append_rate(&store, writers, count).await?;
        println!("history appends, {writers:>3} concurrent appender(s): {rate:>9.0} appends/s ({count} appends, each on disk when acknowledged)");
    }
    drop(store);

    let path = dir.join("recovery.db");
    let (same, across) = replay(&path, missed).await?;
    println!(
        "recovery replay of {missed} missed packets, same process:  {:>7.1} ms",
        ms(same)
    );
    println!("recovery replay of {missed} missed packets, after a restart: {:>7.1} ms (store loaded by the new process before)", ms(across));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `count` appends from `writers` tasks, each awaiting its append before the next.
async fn append_rate(
    store: &Arc<SqliteStore>,
    writers: usize,
    count: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let share = count / writers + usize::from(w < count % writers);
        tasks.push(tokio::spawn(async move {
            for i in 0..share {
                let message = NewMessage {
                    event: "chat".to_owned(),
                    args: vec![json!({ "text": format!("message {i} of writer {w}") })],
                    at: SystemTime::now(),
                };
                store
                    .append("/", &format!("room-{}", w % 8), message)
                    .await?;
            }
            Ok::<_, ferrio_history::HistoryError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// A server with recovery on `path`, on a free port.
async fn server(
    path: &std::path::Path,
    missed: usize,
) -> Result<(SocketIo, u16, Arc<SqliteStore>), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(path))?);
    let recovery_store: Arc<dyn HistoryStore> = store.clone();
    let mut config = SocketIoConfig {
        recovery: Some(RecoveryConfig::default()),
        recovery_store: Some(recovery_store),
        ..SocketIoConfig::default()
    };
    // The replay is queued at once: the queue must hold it (limits.max_buffered_packets).
    config.engine.max_buffered_packets = missed + 64;
    let (service, io) = SocketIo::new(config);
    io.ns("/", |socket| socket.join("r"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(ferrio_socketio::serve(listener, service));
    Ok((io, port, store))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> Result<String, Box<dyn std::error::Error>> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await? {
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                ws.send(Message::text("3")).await?
            }
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("connection closed".into()),
        }
    }
}

/// Opens a WebSocket session and joins `/` with `auth`; returns the CONNECT reply's data.
async fn join(
    port: u16,
    auth: Option<Value>,
) -> Result<(Ws, Value, Instant), Box<dyn std::error::Error>> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    next_text(&mut ws).await?; // the Engine.IO open packet
    let started = Instant::now();
    let connect = match auth {
        Some(auth) => format!("40{auth}"),
        None => "40".to_owned(),
    };
    ws.send(Message::text(connect)).await?;
    let reply = next_text(&mut ws).await?;
    let data = reply
        .strip_prefix("40")
        .ok_or_else(|| format!("not a CONNECT reply: {reply}"))?;
    Ok((ws, serde_json::from_str(data)?, started))
}

/// The offset at the end of an event packet `42[...,"offset"]`.
fn offset_of(text: &str) -> Result<String, Box<dyn std::error::Error>> {
    let args: Vec<Value> = serde_json::from_str(text.trim_start_matches("42"))?;
    Ok(args
        .last()
        .and_then(Value::as_str)
        .ok_or("no offset")?
        .to_owned())
}

/// Cuts a client off, has `missed` packets sent to its room, and times its recovery: once on
/// the same server, once on a new server on the same store.
async fn replay(
    path: &std::path::Path,
    missed: usize,
) -> Result<(Duration, Duration), Box<dyn std::error::Error>> {
    let (io, port, store) = server(path, missed).await?;
    let mut times = Vec::new();
    for restart in [false, true] {
        let (mut ws, reply, _) = join(port, None).await?;
        let pid = reply["pid"].as_str().ok_or("no pid")?.to_owned();
        io.to("r").emit("tick", 0)?;
        let offset = offset_of(&next_text(&mut ws).await?)?;
        drop(ws); // the network fails: no close frame
        let deadline = Instant::now() + WAIT;
        while io.of("/").socket_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for i in 0..missed {
            io.to("r").emit("tick", i)?;
        }
        // After a restart: a new server on the same file, which must have everything first.
        let restarted = if restart {
            store.flush()?;
            let opening = Instant::now();
            let restarted = server(path, missed).await?;
            println!(
                "new process: store opened, recovery state loaded ({} packets missed in it) in {:.1} ms",
                missed,
                ms(opening.elapsed())
            );
            Some(restarted)
        } else {
            None
        };
        let port = restarted.as_ref().map_or(port, |(_, port, _)| *port);
        let (mut ws, reply, started) =
            join(port, Some(json!({ "pid": pid, "offset": offset }))).await?;
        if reply["pid"] != json!(pid) {
            return Err(format!("not recovered: {reply}").into());
        }
        for _ in 0..missed {
            next_text(&mut ws).await?;
        }
        times.push(started.elapsed());
    }
    Ok((times[0], times[1]))
}
