//! One load-generator connection: a direct Engine.IO v4 WebSocket to `127.0.0.1`, the Socket.IO
//! connect to namespace `/`, and the fast paths every scenario shares.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrio_engineio_proto::{
    ws as eio_ws, OpenData, Packet as EioPacket, PacketType, ProtocolVersion,
};
use ferrio_socketio_proto::{encode_text_into, Decoder, Packet as SioPacket, PacketKind};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

/// A connected WebSocket.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// The Engine.IO pong, sent for every ping (allocation-free).
pub(crate) const PONG: Utf8Bytes = Utf8Bytes::from_static("3");

/// Small buffers: idle runs hold tens of thousands of these.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(16 * 1024)
}

/// What arrived on a connection, as far as the scenarios care.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// An Engine.IO ping: answer [`PONG`].
    Ping,
    /// A Socket.IO ack for namespace `/`: its id and its JSON arguments, as on the wire.
    Ack(u64, &'a str),
    /// A Socket.IO event without ack id for namespace `/`: its JSON array, as on the wire.
    Event(&'a str),
    /// The connection is closing (Engine.IO close, Socket.IO disconnect or WebSocket close).
    Closed,
    /// Anything else (ignored).
    Other,
}

/// Classifies one WebSocket message without allocating.
pub(crate) fn classify(message: &Message) -> Incoming<'_> {
    let text = match message {
        Message::Text(text) => text.as_str(),
        Message::Close(_) => return Incoming::Closed,
        _ => return Incoming::Other,
    };
    let bytes = text.as_bytes();
    match bytes.first().map(|&b| PacketType::from_char(b)) {
        Some(Ok(PacketType::Ping)) => Incoming::Ping,
        Some(Ok(PacketType::Close)) => Incoming::Closed,
        Some(Ok(PacketType::Message)) => classify_socketio(&text[1..]),
        _ => Incoming::Other,
    }
}

/// Classifies a Socket.IO packet (the text of an Engine.IO message) without allocating.
pub(crate) fn classify_socketio(text: &str) -> Incoming<'_> {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'1') => Incoming::Closed,
        Some(b'2') if bytes.get(1) == Some(&b'[') => Incoming::Event(&text[1..]),
        Some(b'3') => {
            let digits = bytes[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            match text[1..1 + digits].parse() {
                Ok(id) => Incoming::Ack(id, &text[1 + digits..]),
                Err(_) => Incoming::Other,
            }
        }
        _ => Incoming::Other,
    }
}

/// Builds event messages `42<id>[<args>]` from a template encoded once by the shared codec.
#[derive(Debug, Clone)]
pub(crate) struct EventTemplate {
    /// `["name",args…]`, compact JSON.
    args: String,
}

impl EventTemplate {
    /// The template for `name` with `args`.
    pub(crate) fn new(name: &str, args: Vec<serde_json::Value>) -> Self {
        let data = ferrio_socketio_proto::PacketData::event(name, args);
        let mut text = String::new();
        encode_text_into(&SioPacket::event("/", data, None), &mut text);
        // "2[...]": drop the Socket.IO type, the id goes between it and the JSON.
        Self {
            args: text[1..].to_owned(),
        }
    }

    /// The Engine.IO message for this event with ack id `id`: one allocation.
    pub(crate) fn message(&self, id: u64) -> Message {
        Message::Text(Utf8Bytes::from(self.text(id)))
    }

    /// The Engine.IO packet text `42<id>[...]`.
    pub(crate) fn text(&self, id: u64) -> String {
        let mut out = String::with_capacity(self.args.len() + 24);
        out.push_str("42");
        out.push_str(itoa::Buffer::new().format(id));
        out.push_str(&self.args);
        out
    }
}

/// Errors seen by every task of a run: how many, and the first one in words.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Errors {
    /// Counts one error, keeping its text if it is the first.
    pub(crate) fn record(&self, error: impl Into<String>) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(error.into());
        }
    }

    /// Errors so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The first error, if any.
    pub(crate) fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Opens a WebSocket to `127.0.0.1:port`, reads the Engine.IO open packet and completes the
/// Socket.IO connect to `/`, answering pings meanwhile. Fails after `timeout`.
/// Returns the socket and how long the whole handshake took.
pub(crate) async fn connect(port: u16, timeout: Duration) -> Result<(Ws, Duration), String> {
    let start = Instant::now();
    match tokio::time::timeout(timeout, handshake(port)).await {
        Ok(Ok(ws)) => Ok((ws, start.elapsed())),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(format!("handshake not complete after {timeout:?}")),
    }
}

/// Opens the WebSocket only: the next message is the server's Engine.IO open packet.
pub(crate) async fn open_websocket(port: u16) -> Result<Ws, String> {
    let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| format!("tcp connect to 127.0.0.1:{port}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (ws, _) = client_async_with_config(url, tcp, Some(ws_config()))
        .await
        .map_err(|e| format!("websocket upgrade: {e}"))?;
    Ok(ws)
}

async fn handshake(port: u16) -> Result<Ws, String> {
    let mut ws = open_websocket(port).await?;

    let open = next_text(&mut ws).await?;
    match eio_ws::decode(eio_ws::Frame::Text(open.into()), ProtocolVersion::V4) {
        Ok(EioPacket::Open(json)) => {
            OpenData::parse(&json).map_err(|e| format!("bad open packet: {e}"))?;
        }
        other => return Err(format!("expected the Engine.IO open packet, got {other:?}")),
    }

    let mut connect = String::from("4");
    encode_text_into(&SioPacket::connect("/", None), &mut connect);
    send(&mut ws, Message::text(connect)).await?;
    let mut decoder = Decoder::default();
    loop {
        let text = next_text(&mut ws).await?;
        match text.as_bytes().first() {
            Some(b'2') => send(&mut ws, Message::Text(PONG)).await?,
            Some(b'4') => match decoder.handle_text(&text[1..]) {
                Ok(Some(packet)) => match packet.kind {
                    PacketKind::Connect { .. } => return Ok(ws),
                    PacketKind::ConnectError(data) => {
                        return Err(format!("connect refused: {data:?}"))
                    }
                    _ => {}
                },
                Ok(None) => {}
                Err(e) => return Err(format!("undecodable Socket.IO packet {text:?}: {e}")),
            },
            _ => return Err(format!("unexpected message during the connect: {text:?}")),
        }
    }
}

pub(crate) async fn send(ws: &mut Ws, message: Message) -> Result<(), String> {
    ws.send(message).await.map_err(|e| format!("send: {e}"))
}

pub(crate) async fn next_text(ws: &mut Ws) -> Result<Utf8Bytes, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => {
                return Err(format!("closed by the server: {frame:?}"))
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("connection closed by the server".to_owned()),
        }
    }
}

/// Sends `42<id>["join",room]` and waits for its ack (answering pings), within `timeout`.
pub(crate) async fn join(
    ws: &mut Ws,
    room: &str,
    id: u64,
    timeout: Duration,
) -> Result<(), String> {
    let template = EventTemplate::new("join", vec![room.into()]);
    let work = async {
        send(ws, template.message(id)).await?;
        loop {
            let message = match ws.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(format!("read: {e}")),
                None => return Err("connection closed during join".to_owned()),
            };
            match classify(&message) {
                Incoming::Ping => send(ws, Message::Text(PONG)).await?,
                Incoming::Ack(got, _) if got == id => return Ok(()),
                Incoming::Closed => return Err("connection closed during join".to_owned()),
                _ => {}
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("join not acknowledged after {timeout:?}"))?
}

/// Closes politely: Socket.IO disconnect, WebSocket close, then waits (≤ `timeout`) for the
/// server to close the TCP connection first, so TIME_WAIT stays on its side.
pub(crate) async fn close(mut ws: Ws, timeout: Duration) {
    let work = async {
        let _ = ws.send(Message::Text(Utf8Bytes::from_static("41"))).await;
        let _ = ws.close(None).await;
        while let Some(Ok(_)) = ws.next().await {}
    };
    let _ = tokio::time::timeout(timeout, work).await;
}

/// Runs `work` until `deadline` at the latest: a write the server never drains cannot hold a task
/// past the run's end.
pub(crate) async fn bounded<T>(
    deadline: Instant,
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(result) => result,
        Err(_) => Err(
            "still blocked at the run's hard deadline (a write the server did not drain?)"
                .to_owned(),
        ),
    }
}

/// Opens `n` connections with at most `concurrency` handshakes in flight, each joining
/// `join_room` when given, and returns those that succeeded with their handshake latencies (µs).
/// Failures are counted in `errors`; `done` counts completed connections for progress lines.
pub(crate) async fn open_many(
    port: u16,
    n: usize,
    concurrency: usize,
    timeout: Duration,
    join_room: Option<&'static str>,
    errors: &std::sync::Arc<Errors>,
    done: &std::sync::Arc<AtomicU64>,
) -> (Vec<Ws>, crate::Histogram) {
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let (mut ws, took) = connect(port, timeout).await?;
            if let Some(room) = join_room {
                join(&mut ws, room, 0, timeout).await?;
            }
            done.fetch_add(1, Ordering::Relaxed);
            Ok::<_, String>((ws, took))
        }));
    }
    let mut sockets = Vec::with_capacity(n);
    let mut latencies = crate::Histogram::new();
    for task in tasks {
        match task.await {
            Ok(Ok((ws, took))) => {
                latencies.record(took.as_micros() as u64);
                sockets.push(ws);
            }
            Ok(Err(error)) => errors.record(error),
            Err(error) => errors.record(format!("connection task: {error}")),
        }
    }
    (sockets, latencies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_the_scenarios_read() {
        let text = |s: &'static str| Message::Text(Utf8Bytes::from_static(s));
        assert_eq!(classify(&text("2")), Incoming::Ping);
        assert_eq!(classify(&text("4317[\"x\"]")), Incoming::Ack(17, "[\"x\"]"));
        assert_eq!(classify(&text("430[]")), Incoming::Ack(0, "[]"));
        assert_eq!(
            classify(&text("42[\"bcast\",\"T1:2:x\"]")),
            Incoming::Event("[\"bcast\",\"T1:2:x\"]")
        );
        assert_eq!(classify(&text("41")), Incoming::Closed);
        assert_eq!(classify(&text("1")), Incoming::Closed);
        assert_eq!(classify(&text("40{\"sid\":\"a\"}")), Incoming::Other);
        assert_eq!(classify(&text("43x")), Incoming::Other);
        assert_eq!(classify(&Message::Close(None)), Incoming::Closed);
    }

    #[test]
    fn templates_put_the_id_between_type_and_json() {
        let template = EventTemplate::new("echo", vec!["abc".into()]);
        assert_eq!(
            template.message(42),
            Message::text("4242[\"echo\",\"abc\"]")
        );
        assert_eq!(template.message(0), Message::text("420[\"echo\",\"abc\"]"));
    }
}
