//! Shared helpers of the end-to-end tests: a server on an ephemeral port of 127.0.0.1, channels
//! that handlers report through, a raw Engine.IO WebSocket client and a minimal HTTP/1.1
//! long-polling client over `TcpStream`.
//!
//! The clients speak the wire format by hand (`40`, `42[...]`, binary frames), so tests assert
//! the exact packets a real client would see. Every wait is bounded by [`WAIT`]: a test that
//! would hang fails instead.

#![allow(dead_code)]

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrio_socketio::{DisconnectReason, Payload, Socket, SocketId, SocketIo, SocketIoConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single step of a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The server's path.
pub(crate) const PATH: &str = "/socket.io/";

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A Socket.IO server served by [`ferrio_socketio::serve`] on 127.0.0.1.
pub(crate) struct TestServer {
    pub(crate) io: SocketIo,
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server with the default configuration.
    pub(crate) async fn start() -> Self {
        Self::start_with(SocketIoConfig::default()).await
    }

    /// A server with this configuration.
    pub(crate) async fn start_with(config: SocketIoConfig) -> Self {
        let (service, io) = SocketIo::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = ferrio_socketio::serve(listener, service).await;
        });
        Self { io, addr, task }
    }

    /// A WebSocket client (Engine.IO v4), opened.
    pub(crate) async fn ws(&self) -> WsClient {
        WsClient::connect(self.addr, 4, "").await
    }
}

// ---------------------------------------------------------------------------------------------
// Reports from handlers
// ---------------------------------------------------------------------------------------------

/// The receiving end of what handlers report; every wait is bounded.
pub(crate) struct Inbox<T> {
    rx: mpsc::UnboundedReceiver<T>,
}

/// A channel for handlers to report through.
pub(crate) fn inbox<T>() -> (mpsc::UnboundedSender<T>, Inbox<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Inbox { rx })
}

impl<T: Debug> Inbox<T> {
    /// The next report.
    pub(crate) async fn next(&mut self) -> T {
        timeout(WAIT, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no report within {WAIT:?}"))
            .expect("a reporter is alive")
    }

    /// Asserts nothing was reported (yet).
    pub(crate) fn assert_empty(&mut self) {
        if let Ok(report) = self.rx.try_recv() {
            panic!("unexpected report: {report:?}");
        }
    }
}

/// An event a recorded socket heard.
#[derive(Debug)]
pub(crate) struct Heard {
    pub(crate) socket: SocketId,
    pub(crate) nsp: String,
    pub(crate) name: String,
    pub(crate) payload: Payload,
}

/// What the handlers installed by [`recorder`] report.
pub(crate) struct Recorded {
    /// Every socket that connected, when its connect handler ran.
    pub(crate) sockets: Inbox<Arc<Socket>>,
    /// Every event, in arrival order.
    pub(crate) events: Inbox<Heard>,
    /// Every disconnection and its reason.
    pub(crate) disconnects: Inbox<(SocketId, DisconnectReason)>,
}

/// A connect handler that reports each socket, its events (answering acknowledgement requests
/// with the event's own arguments, before reporting) and its disconnection.
pub(crate) fn recorder() -> (impl Fn(&Arc<Socket>) + Send + Sync + 'static, Recorded) {
    let (sockets_tx, sockets) = inbox();
    let (events_tx, events) = inbox();
    let (disconnects_tx, disconnects) = inbox();
    let handler = move |socket: &Arc<Socket>| {
        let events_tx = events_tx.clone();
        socket.on_any(move |socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload.clone());
            }
            let _ = events_tx.send(Heard {
                socket: socket.id().clone(),
                nsp: socket.nsp().to_owned(),
                name: event.name,
                payload: event.payload,
            });
        });
        let disconnects_tx = disconnects_tx.clone();
        socket.on_disconnect(move |socket, reason| {
            let _ = disconnects_tx.send((socket.id().clone(), reason));
        });
        let _ = sockets_tx.send(socket.clone());
    };
    (
        handler,
        Recorded {
            sockets,
            events,
            disconnects,
        },
    )
}

/// A server with a [`recorder`] on `/`.
pub(crate) async fn recorded_server() -> (TestServer, Recorded) {
    recorded_server_with(SocketIoConfig::default()).await
}

/// A server with this configuration and a [`recorder`] on `/`.
pub(crate) async fn recorded_server_with(config: SocketIoConfig) -> (TestServer, Recorded) {
    let server = TestServer::start_with(config).await;
    let (root, seen) = recorder();
    server.io.ns("/", root);
    (server, seen)
}

/// A WebSocket client joined to `/`, and its socket as the recorder reported it.
pub(crate) async fn join_root(server: &TestServer, seen: &mut Recorded) -> (WsClient, Arc<Socket>) {
    let mut client = server.ws().await;
    client.join("/", None).await;
    let socket = seen.sockets.next().await;
    (client, socket)
}

/// A server with recorders on `/` and `/admin`, and one WebSocket client joined to both.
pub(crate) struct TwoNamespaces {
    pub(crate) server: TestServer,
    pub(crate) client: WsClient,
    pub(crate) root_seen: Recorded,
    pub(crate) root_socket: Arc<Socket>,
    pub(crate) admin_seen: Recorded,
    pub(crate) admin_socket: Arc<Socket>,
}

impl TwoNamespaces {
    /// Starts the server and joins `/`, then `/admin`.
    pub(crate) async fn start() -> Self {
        let (server, mut root_seen) = recorded_server().await;
        let (admin, mut admin_seen) = recorder();
        server.io.ns("/admin", admin);
        let (mut client, root_socket) = join_root(&server, &mut root_seen).await;
        client.join("/admin", None).await;
        let admin_socket = admin_seen.sockets.next().await;
        Self {
            server,
            client,
            root_seen,
            root_socket,
            admin_seen,
            admin_socket,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------------

/// One WebSocket frame as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A text frame: one Engine.IO packet (`4...` is a message).
    Text(String),
    /// A binary frame (without the v3 `0x04` type byte).
    Binary(Vec<u8>),
    /// The connection ended (close frame, end of stream or reset).
    Closed,
}

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw Engine.IO client over WebSocket.
pub(crate) struct WsClient {
    ws: WsStream,
    eio: u8,
    /// The Engine.IO session id from the open packet.
    pub(crate) sid: String,
    /// The open packet.
    pub(crate) open: Value,
}

impl WsClient {
    /// Opens `ws://addr/socket.io/?EIO=<eio>&transport=websocket<query>` and reads the open
    /// packet.
    pub(crate) async fn connect(addr: SocketAddr, eio: u8, query: &str) -> Self {
        let url = format!("ws://{addr}{PATH}?EIO={eio}&transport=websocket{query}");
        let (ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket opened in time")
            .expect("websocket opened");
        let mut client = Self {
            ws,
            eio,
            sid: String::new(),
            open: Value::Null,
        };
        let Frame::Text(open) = client.frame().await else {
            panic!("no open packet");
        };
        let open: Value =
            serde_json::from_str(open.strip_prefix('0').expect("an open packet")).expect("JSON");
        client.sid = open["sid"].as_str().expect("a sid").to_owned();
        client.open = open;
        client
    }

    /// The next frame, whatever it is.
    pub(crate) async fn frame(&mut self) -> Frame {
        loop {
            let next = timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within {WAIT:?}"));
            return match next {
                Some(Ok(WsMessage::Text(text))) => Frame::Text(text.as_str().to_owned()),
                Some(Ok(WsMessage::Binary(data))) => {
                    let data = data.to_vec();
                    if self.eio == 3 {
                        assert_eq!(data.first(), Some(&4), "v3 binary message type");
                        Frame::Binary(data[1..].to_vec())
                    } else {
                        Frame::Binary(data)
                    }
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => Frame::Closed,
            };
        }
    }

    /// The next text message, as sent (an Engine.IO packet: `42[...]` is a Socket.IO EVENT).
    /// Server pings are answered and skipped; anything but text fails the test.
    pub(crate) async fn recv(&mut self) -> String {
        loop {
            match self.frame().await {
                Frame::Text(text) if text == "2" && self.eio == 4 => {
                    self.send("3").await;
                }
                Frame::Text(text) => return text,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next binary message (an attachment).
    pub(crate) async fn recv_binary(&mut self) -> Vec<u8> {
        match self.frame().await {
            Frame::Binary(data) => data,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }

    /// Asserts the next text message is exactly `expected` (e.g. `42["a",1]`).
    pub(crate) async fn expect(&mut self, expected: &str) {
        assert_eq!(self.recv().await, expected);
    }

    /// Asserts the next text message is `prefix` followed by JSON equal to `json` (for objects
    /// of several keys, whose order JSON leaves open).
    pub(crate) async fn expect_json(&mut self, prefix: &str, json: Value) {
        let text = self.recv().await;
        let rest = text
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix}..., got {text:?}"));
        let value: Value = serde_json::from_str(rest)
            .unwrap_or_else(|_| panic!("not JSON after {prefix}: {text:?}"));
        assert_eq!(value, json, "in {text:?}");
    }

    /// Sends a text message as is (an Engine.IO packet, e.g. `40` or `42["a"]`).
    pub(crate) async fn send(&mut self, text: &str) {
        timeout(WAIT, self.ws.send(WsMessage::text(text.to_owned())))
            .await
            .expect("sent in time")
            .expect("sent");
    }

    /// Sends several text messages in one write, so that the server reads them together.
    pub(crate) async fn send_together(&mut self, texts: &[&str]) {
        for text in texts {
            timeout(WAIT, self.ws.feed(WsMessage::text((*text).to_owned())))
                .await
                .expect("queued in time")
                .expect("queued");
        }
        timeout(WAIT, self.ws.flush())
            .await
            .expect("sent in time")
            .expect("sent");
    }

    /// Sends a binary message (an attachment).
    pub(crate) async fn send_binary(&mut self, data: &[u8]) {
        let mut frame = Vec::with_capacity(data.len() + 1);
        if self.eio == 3 {
            frame.push(4);
        }
        frame.extend_from_slice(data);
        timeout(WAIT, self.ws.send(WsMessage::binary(frame)))
            .await
            .expect("sent in time")
            .expect("sent");
    }

    /// Connects to namespace `nsp` with an optional auth payload (JSON text) and returns the
    /// CONNECT reply's data (`40<nsp,>{...}`), after checking the reply's framing.
    pub(crate) async fn connect_nsp(&mut self, nsp: &str, auth: Option<&str>) -> Value {
        let prefix = if nsp == "/" {
            String::new()
        } else {
            format!("{nsp},")
        };
        self.send(&format!("40{prefix}{}", auth.unwrap_or("")))
            .await;
        let reply = self.recv().await;
        let data = reply
            .strip_prefix(&format!("40{prefix}"))
            .unwrap_or_else(|| panic!("not a CONNECT reply for {nsp}: {reply:?}"));
        serde_json::from_str(data).unwrap_or_else(|_| panic!("reply data: {reply:?}"))
    }

    /// Connects to namespace `nsp` and returns the socket id, checking the reply is exactly
    /// `40<nsp,>{"sid":"..."}`.
    pub(crate) async fn join(&mut self, nsp: &str, auth: Option<&str>) -> String {
        let data = self.connect_nsp(nsp, auth).await;
        let sid = data["sid"].as_str().expect("a sid").to_owned();
        assert_eq!(data, serde_json::json!({ "sid": sid }));
        sid
    }

    /// Reads until the connection ends and returns every text frame seen on the way (raw
    /// Engine.IO packets, e.g. `"441"` then `"1"`).
    pub(crate) async fn until_closed(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.frame().await {
                Frame::Text(text) => seen.push(text),
                Frame::Binary(data) => seen.push(format!("<binary {data:?}>")),
                Frame::Closed => return seen,
            }
        }
    }

    /// Sends a WebSocket close frame.
    pub(crate) async fn close(&mut self) {
        let _ = timeout(WAIT, self.ws.close(None)).await;
    }
}

/// A text argument's value in a placeholder: `{"_placeholder":true,"num":n}`.
pub(crate) fn placeholder(num: usize) -> String {
    format!(r#"{{"_placeholder":true,"num":{num}}}"#)
}

// ---------------------------------------------------------------------------------------------
// HTTP long-polling client
// ---------------------------------------------------------------------------------------------

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of this name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> HttpResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read answer");
        raw
    };
    let raw = timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} {target} within {WAIT:?}"));
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("an incomplete answer: {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut body = Vec::new();
        let mut rest = rest;
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("a chunk size");
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..line_end]).expect("hex").trim(),
                16,
            )
            .expect("a chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break body;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        rest.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// A raw Engine.IO long-polling client (text payloads only).
pub(crate) struct PollingClient {
    addr: SocketAddr,
    eio: u8,
    /// The Engine.IO session id.
    pub(crate) sid: String,
    /// The open packet.
    pub(crate) open: Value,
}

impl PollingClient {
    /// Runs the polling handshake; returns the client and any packets that followed the open
    /// packet in the same answer.
    pub(crate) async fn handshake(addr: SocketAddr, eio: u8, query: &str) -> (Self, Vec<String>) {
        let target = format!("{PATH}?EIO={eio}&transport=polling{query}");
        let response = http(addr, "GET", &target, b"").await;
        assert_eq!(response.status, 200, "handshake: {response:?}");
        let mut packets = decode_payload(eio, &response.text()).into_iter();
        let open = packets.next().expect("an open packet");
        let open: Value =
            serde_json::from_str(open.strip_prefix('0').expect("an open packet")).expect("JSON");
        let client = Self {
            addr,
            eio,
            sid: open["sid"].as_str().expect("a sid").to_owned(),
            open,
        };
        (client, packets.collect())
    }

    fn target(&self) -> String {
        format!("{PATH}?EIO={}&transport=polling&sid={}", self.eio, self.sid)
    }

    /// One long-poll, whatever its answer.
    pub(crate) async fn get_raw(&self) -> HttpResponse {
        http(self.addr, "GET", &self.target(), b"").await
    }

    /// One long-poll: the Engine.IO packets it returned (raw, e.g. `"42[\"a\"]"`).
    pub(crate) async fn get(&self) -> Vec<String> {
        let response = self.get_raw().await;
        assert_eq!(response.status, 200, "poll: {response:?}");
        decode_payload(self.eio, &response.text())
    }

    /// Posts raw Engine.IO packets.
    pub(crate) async fn post(&self, packets: &[&str]) {
        let body = encode_payload(self.eio, packets);
        let response = http(self.addr, "POST", &self.target(), body.as_bytes()).await;
        assert_eq!(response.status, 200, "post: {response:?}");
        assert_eq!(response.text(), "ok");
    }
}

/// Splits a text polling payload into its packets.
pub(crate) fn decode_payload(eio: u8, body: &str) -> Vec<String> {
    if eio == 4 {
        return body.split('\u{1e}').map(str::to_owned).collect();
    }
    // v3: `<length>:<packet>`, the length counted in UTF-16 code units.
    let mut packets = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (length, after) = rest.split_once(':').expect("a length prefix");
        let length: usize = length.parse().expect("a decimal length");
        let mut units = 0;
        let end = after
            .char_indices()
            .find(|(_, c)| {
                let done = units == length;
                units += c.len_utf16();
                done
            })
            .map_or(after.len(), |(index, _)| index);
        packets.push(after[..end].to_owned());
        rest = &after[end..];
    }
    packets
}

/// Joins packets into a text polling payload.
pub(crate) fn encode_payload(eio: u8, packets: &[&str]) -> String {
    if eio == 4 {
        return packets.join("\u{1e}");
    }
    packets
        .iter()
        .map(|p| format!("{}:{p}", p.encode_utf16().count()))
        .collect()
}

/// Proves `client` was sent nothing more so far: the server emits a marker straight to
/// `socket` (a socket of that client), and it must be the client's next message. Packets go out
/// in the order they were queued, so anything queued before would arrive first.
pub(crate) async fn assert_nothing_more(client: &mut WsClient, socket: &Socket) {
    static MARKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mark = MARKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    socket.emit("marker", mark).expect("the marker is sent");
    let prefix = if socket.nsp() == "/" {
        String::new()
    } else {
        format!("{},", socket.nsp())
    };
    client
        .expect(&format!(r#"42{prefix}["marker",{mark}]"#))
        .await;
}
