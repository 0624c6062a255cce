//! `poll`: echo with ack over HTTP long-polling (no WebSocket): the polling client's round trip.
//!
//! Each client holds two keep-alive HTTP/1.1 connections, as a browser does: one for the POSTs
//! that carry its packets, one for the GETs that fetch the server's. One echo is in flight per
//! client: POST `42<id>["echo",arg]`, then GET until `43<id>[arg]` comes back (answering pings
//! with a POST `3`). The round trip is from the POST to the GET response that holds the ack.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrio_engineio_proto::{payload, Message as EioMessage, OpenData, Packet, ProtocolVersion};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::conn::{bounded, classify_socketio, Errors, EventTemplate, Incoming};
use crate::echo::ARG;
use crate::procfs::CpuMark;
use crate::{progress, CommonArgs, Histogram, PollArgs, Report};

/// How long one HTTP request may take (a long-poll GET returns within pingInterval).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

async fn http_connection(port: u16) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| format!("tcp connect to 127.0.0.1:{port}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, connection) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // Ends when the sender is dropped or the server closes.
    tokio::spawn(connection);
    Ok(sender)
}

/// One long-polling client: its two connections and its session's URI.
struct PollClient {
    get: SendRequest<Full<Bytes>>,
    post: SendRequest<Full<Bytes>>,
    uri: String,
    port: u16,
}

async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    port: u16,
    method: http::Method,
    uri: &str,
    body: Bytes,
) -> Result<Bytes, String> {
    let work = async {
        sender
            .ready()
            .await
            .map_err(|e| format!("HTTP connection: {e}"))?;
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, format!("127.0.0.1:{port}"))
            .header(http::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP request: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("HTTP body: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
        }
        Ok(body)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, work)
        .await
        .map_err(|_| format!("HTTP request not answered after {REQUEST_TIMEOUT:?}"))?
}

impl PollClient {
    /// Engine.IO handshake over polling, then the Socket.IO connect to `/`.
    async fn open(port: u16) -> Result<Self, String> {
        let mut get = http_connection(port).await?;
        let post = http_connection(port).await?;
        let body = request(
            &mut get,
            port,
            http::Method::GET,
            "/socket.io/?EIO=4&transport=polling",
            Bytes::new(),
        )
        .await?;
        let packets = payload::decode(body, ProtocolVersion::V4, false)
            .map_err(|e| format!("bad handshake body: {e}"))?;
        let Some(Packet::Open(json)) = packets.first() else {
            return Err(format!("expected the open packet, got {packets:?}"));
        };
        let open = OpenData::parse(json).map_err(|e| format!("bad open packet: {e}"))?;
        let mut client = Self {
            get,
            post,
            uri: format!("/socket.io/?EIO=4&transport=polling&sid={}", open.sid),
            port,
        };
        client.post(Bytes::from_static(b"40")).await?;
        loop {
            for packet in client.poll().await? {
                if let Packet::Message(EioMessage::Text(text)) = packet {
                    if text.as_str().starts_with('0') {
                        return Ok(client);
                    }
                    if text.as_str().starts_with('4') {
                        return Err(format!("connect refused: {}", text.as_str()));
                    }
                }
            }
        }
    }

    async fn post(&mut self, body: Bytes) -> Result<(), String> {
        request(
            &mut self.post,
            self.port,
            http::Method::POST,
            &self.uri,
            body,
        )
        .await?;
        Ok(())
    }

    /// One GET; pings in it are answered at once, the other packets returned.
    async fn poll(&mut self) -> Result<Vec<Packet>, String> {
        let body = request(
            &mut self.get,
            self.port,
            http::Method::GET,
            &self.uri,
            Bytes::new(),
        )
        .await?;
        let packets = payload::decode(body, ProtocolVersion::V4, false)
            .map_err(|e| format!("bad polling body: {e}"))?;
        let mut rest = Vec::with_capacity(packets.len());
        for packet in packets {
            match packet {
                Packet::Ping(_) => self.post(Bytes::from_static(b"3")).await?,
                Packet::Close => return Err("the server closed the session".to_owned()),
                other => rest.push(other),
            }
        }
        Ok(rest)
    }
}

struct PollResult {
    rtt: Histogram,
    acks: u64,
}

async fn echo_loop(
    template: Arc<EventTemplate>,
    expected: Arc<str>,
    (warm_end, end): (Instant, Instant),
    errors: Arc<Errors>,
    counter: Arc<AtomicU64>,
    mut client: PollClient,
) -> PollResult {
    let mut got = PollResult {
        rtt: Histogram::new(),
        acks: 0,
    };
    let result = bounded(end + REQUEST_TIMEOUT + Duration::from_secs(1), async {
        let mut id = 0;
        while Instant::now() < end {
            id += 1;
            let sent = Instant::now();
            client.post(Bytes::from(template.text(id))).await?;
            'wait: loop {
                for packet in client.poll().await? {
                    let Packet::Message(EioMessage::Text(text)) = packet else {
                        continue;
                    };
                    match classify_socketio(text.as_str()) {
                        Incoming::Ack(got_id, body) if got_id == id => {
                            if body != &*expected {
                                return Err(format!("echo ack body {body:?} != {expected:?}"));
                            }
                            break 'wait;
                        }
                        Incoming::Closed => return Err("disconnected by the server".to_owned()),
                        _ => {}
                    }
                }
            }
            if sent >= warm_end && sent < end {
                got.rtt.record(sent.elapsed().as_micros() as u64);
                got.acks += 1;
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Leave: Socket.IO disconnect and Engine.IO close in one POST.
        let _ = client.post(Bytes::from_static(b"41\x1e1")).await;
        Ok(())
    })
    .await;
    if let Err(error) = result {
        errors.record(error);
    }
    got
}

pub(crate) async fn run(
    common: &CommonArgs,
    args: &PollArgs,
    errors: &Arc<Errors>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut clients = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        match tokio::time::timeout(common.connect_timeout(), PollClient::open(common.port)).await {
            Ok(Ok(client)) => clients.push(client),
            Ok(Err(error)) => errors.record(error),
            Err(_) => errors.record("polling handshake timed out"),
        }
    }
    anyhow::ensure!(
        !clients.is_empty(),
        "no client: {}",
        errors.first().unwrap_or_default()
    );
    let conns = clients.len();
    let template = Arc::new(EventTemplate::new("echo", vec![ARG.into()]));
    let expected: Arc<str> = serde_json::to_string(&[ARG])?.into();
    let start = Instant::now();
    let warm_end = start + Duration::from_secs_f64(args.warmup.max(0.0));
    let end = warm_end + Duration::from_secs_f64(args.duration.max(0.001));
    let counter = Arc::new(AtomicU64::new(0));

    let tasks: Vec<_> = clients
        .into_iter()
        .map(|client| {
            tokio::spawn(echo_loop(
                template.clone(),
                expected.clone(),
                (warm_end, end),
                errors.clone(),
                counter.clone(),
                client,
            ))
        })
        .collect();
    let shown = counter.clone();
    let mut last = 0;
    let ticker = progress::every_second(
        common.quiet,
        "poll",
        end - start + REQUEST_TIMEOUT,
        move || {
            let now = shown.load(Ordering::Relaxed);
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
    let mut acks = 0;
    for task in tasks {
        match task.await {
            Ok(got) => {
                rtt.merge(&got.rtt);
                acks += got.acks;
            }
            Err(error) => errors.record(format!("poll task: {error}")),
        }
    }
    progress::stop(ticker);
    report.set("conns", conns);
    report.set_f64("duration_s", Some(args.duration), 3);
    report.set_f64("warmup_s", Some(args.warmup), 3);
    report.set("acks", acks);
    report.set_f64(
        "acks_per_s",
        Some(acks as f64 / args.duration.max(0.001)),
        1,
    );
    report.set_latency("rtt", &rtt);
    report.set_f64("srv_cpu", srv_cpu, 3);
    report.set_f64("lg_cpu", lg_cpu, 3);
    Ok(())
}
