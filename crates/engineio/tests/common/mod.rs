//! Shared helpers of the end-to-end tests: a handler that records what it hears, a server on an
//! ephemeral port of 127.0.0.1, a minimal HTTP/1.1 client over `TcpStream` and WebSocket helpers.
//!
//! Every wait is bounded by [`WAIT`]; a test that would hang fails instead.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ferrio_engineio::{
    DisconnectReason, Engine, EngineConfig, EngineHandler, EngineService, Message, ResponseBody,
    ServeConfig, Sid, Socket,
};
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single step of a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The engine's path in every test.
pub(crate) const PATH: &str = "/engine.io/";

/// A configuration whose heartbeat stays out of the way (no ping within a test's lifetime), so
/// polling bodies hold exactly what a test queued. Heartbeat tests shorten the timings.
pub(crate) fn config() -> EngineConfig {
    EngineConfig {
        path: PATH.to_owned(),
        ping_interval: Duration::from_secs(30),
        ping_timeout: Duration::from_secs(20),
        upgrade_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The recording handler
// ---------------------------------------------------------------------------------------------

/// What the handler heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// `on_connect`.
    Connect(Sid),
    /// `on_message`.
    Message(Sid, Message),
    /// `on_disconnect`.
    Disconnect(Sid, DisconnectReason),
}

/// Every callback per session, kept for the exactly-once checks.
#[derive(Debug, Default)]
struct Tally {
    connects: HashMap<Sid, usize>,
    disconnects: HashMap<Sid, Vec<DisconnectReason>>,
    /// Messages handed over for a session that was no longer open (closing or closed).
    late: Vec<Event>,
}

/// A handler that records every callback and, when `echo` is set, sends every message back.
pub(crate) struct Recorder {
    events: mpsc::UnboundedSender<Event>,
    tally: Arc<Mutex<Tally>>,
    echo: bool,
}

impl Recorder {
    fn record(&self, event: Event) {
        {
            let mut tally = self.tally.lock().expect("tally lock");
            match &event {
                Event::Connect(sid) => *tally.connects.entry(*sid).or_default() += 1,
                Event::Message(..) => {}
                Event::Disconnect(sid, reason) => {
                    tally.disconnects.entry(*sid).or_default().push(*reason);
                }
            }
        }
        // The receiver lives as long as the test; a send fails only while it is torn down.
        let _ = self.events.send(event);
    }
}

impl EngineHandler for Recorder {
    type Data = ();

    fn on_connect(&self, socket: &Arc<Socket<()>>) {
        self.record(Event::Connect(socket.id()));
    }

    fn on_message(&self, socket: &Arc<Socket<()>>, message: Message) {
        if self.echo {
            let _ = socket.send(message.clone());
        }
        let event = Event::Message(socket.id(), message);
        if !socket.is_open() {
            self.tally
                .lock()
                .expect("tally lock")
                .late
                .push(event.clone());
        }
        self.record(event);
    }

    fn on_disconnect(&self, socket: &Arc<Socket<()>>, reason: DisconnectReason) {
        assert!(!socket.is_open(), "on_disconnect on an open session");
        self.record(Event::Disconnect(socket.id(), reason));
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A request the engine did not answer at once: its method and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parked {
    pub(crate) method: String,
    pub(crate) target: String,
}

/// The engine's service, wrapped to report each request whose answer is not ready on its first
/// poll. For a long-poll `GET` that means the engine has taken the session's writer and waits
/// for packets (the first poll runs synchronously up to that wait); for a `POST`, that it is
/// reading the body. Tests await this instead of guessing when a request is pending.
#[derive(Clone)]
struct Observed {
    inner: EngineService<Recorder>,
    parked: mpsc::UnboundedSender<Parked>,
}

impl tower_service::Service<Request<Incoming>> for Observed {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower_service::Service::<Request<Incoming>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let parked = Parked {
            method: request.method().to_string(),
            target: request
                .uri()
                .path_and_query()
                .map_or_else(String::new, ToString::to_string),
        };
        let mut answer = self.inner.call(request);
        let sender = self.parked.clone();
        let mut report = Some(parked);
        Box::pin(std::future::poll_fn(move |cx| {
            let poll = answer.as_mut().poll(cx);
            if let Some(parked) = report.take() {
                if poll.is_pending() {
                    let _ = sender.send(parked);
                }
            }
            poll
        }))
    }
}

/// An engine served on 127.0.0.1 by [`ferrio_engineio::serve`], and the events its handler heard.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) engine: Arc<Engine<Recorder>>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Events received while looking for another one, in arrival order.
    backlog: Vec<Event>,
    parked: mpsc::UnboundedReceiver<Parked>,
    parked_backlog: Vec<Parked>,
    tally: Arc<Mutex<Tally>>,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        // Every test checks the exactly-once rule on the way out, unless it failed already.
        if !std::thread::panicking() {
            self.assert_callbacks_once();
        }
    }
}

impl TestServer {
    /// A server whose handler echoes every message.
    pub(crate) async fn start(config: EngineConfig) -> Self {
        Self::start_with(config, true, ServeConfig::default()).await
    }

    /// A server whose handler only records.
    pub(crate) async fn start_silent(config: EngineConfig) -> Self {
        Self::start_with(config, false, ServeConfig::default()).await
    }

    /// An echoing server run by [`ferrio_engineio::serve_with`] with these settings.
    pub(crate) async fn start_serving(config: EngineConfig, serve: ServeConfig) -> Self {
        Self::start_with(config, true, serve).await
    }

    async fn start_with(config: EngineConfig, echo: bool, serve: ServeConfig) -> Self {
        let (sender, events) = mpsc::unbounded_channel();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let engine = Engine::new(
            config,
            Recorder {
                events: sender,
                tally: tally.clone(),
                echo,
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("local address");
        let (parked_sender, parked) = mpsc::unbounded_channel();
        let service = Observed {
            inner: EngineService::new(engine.clone()),
            parked: parked_sender,
        };
        let task = tokio::spawn(async move {
            let _ = ferrio_engineio::serve_with(listener, service, serve).await;
        });
        Self {
            addr,
            engine,
            events,
            backlog: Vec::new(),
            parked,
            parked_backlog: Vec::new(),
            tally,
            task,
        }
    }

    /// The live session `sid`.
    pub(crate) fn socket(&self, sid: Sid) -> Arc<Socket<()>> {
        self.engine.session(sid).expect("the session is open")
    }

    /// Waits for the first event (buffered or new) that `pick` accepts, and takes it out.
    pub(crate) async fn event(&mut self, what: &str, pick: impl Fn(&Event) -> bool) -> Event {
        if let Some(index) = self.backlog.iter().position(&pick) {
            return self.backlog.remove(index);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}; heard {:?}", self.backlog))
                .expect("the handler lives as long as the engine");
            if pick(&event) {
                return event;
            }
            self.backlog.push(event);
        }
    }

    /// Waits for `on_connect` of `sid`.
    pub(crate) async fn connected(&mut self, sid: Sid) {
        self.event("connect", |e| *e == Event::Connect(sid)).await;
    }

    /// Waits for the next message of `sid`.
    pub(crate) async fn message(&mut self, sid: Sid) -> Message {
        match self
            .event(
                "message",
                |e| matches!(e, Event::Message(s, _) if *s == sid),
            )
            .await
        {
            Event::Message(_, message) => message,
            other => unreachable!("picked {other:?}"),
        }
    }

    /// Waits for `on_disconnect` of `sid` and returns its reason.
    pub(crate) async fn disconnected(&mut self, sid: Sid) -> DisconnectReason {
        match self
            .event(
                "disconnect",
                |e| matches!(e, Event::Disconnect(s, _) if *s == sid),
            )
            .await
        {
            Event::Disconnect(_, reason) => reason,
            other => unreachable!("picked {other:?}"),
        }
    }

    /// Asserts `on_disconnect` of `sid` ran for `reason` and the session is gone: its next poll
    /// is refused as an unknown session.
    pub(crate) async fn assert_gone(&mut self, eio: u8, sid: Sid, reason: DisconnectReason) {
        assert_eq!(self.disconnected(sid).await, reason);
        self.poll(eio, sid)
            .await
            .assert_error(400, 1, "Session ID unknown");
    }

    /// Listens for `period` and fails on any `on_disconnect` heard meanwhile: nothing is left
    /// to close (a negative check, so it can only be a bounded wait). Other events are kept.
    pub(crate) async fn assert_no_disconnect_for(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            let event = event.expect("the handler lives as long as the engine");
            assert!(
                !matches!(event, Event::Disconnect(..)),
                "unexpected {event:?}"
            );
            self.backlog.push(event);
        }
        assert!(
            !self
                .backlog
                .iter()
                .any(|e| matches!(e, Event::Disconnect(..))),
            "unexpected disconnects: {:?}",
            self.backlog
        );
    }

    /// Whether `on_disconnect` of `sid` was heard already (without waiting).
    pub(crate) fn has_disconnected(&self, sid: Sid) -> bool {
        self.tally
            .lock()
            .expect("tally lock")
            .disconnects
            .contains_key(&sid)
    }

    /// Checks the exactly-once rule for every session this server saw (see
    /// [`TestServer::assert_callbacks_once`]); the sessions in `closed` must have had their
    /// `on_disconnect` and left the engine, the others must not have.
    pub(crate) fn assert_exactly_once(&self, closed: &[Sid]) {
        self.assert_callbacks_once();
        let tally = self.tally.lock().expect("tally lock");
        for sid in closed {
            assert!(tally.disconnects.contains_key(sid), "{sid} never closed");
            assert!(
                self.engine.session(*sid).is_none(),
                "{sid} still registered"
            );
        }
        for sid in tally.connects.keys().filter(|sid| !closed.contains(sid)) {
            assert!(
                !tally.disconnects.contains_key(sid),
                "{sid} closed unexpectedly: {:?}",
                tally.disconnects[sid]
            );
        }
    }

    /// At most one `on_connect` and one `on_disconnect` per session, no disconnect without a
    /// connect, and no message once a session is closing. Checked again when the server drops.
    pub(crate) fn assert_callbacks_once(&self) {
        let tally = self.tally.lock().expect("tally lock");
        for (sid, count) in &tally.connects {
            assert_eq!(*count, 1, "on_connect of {sid} heard {count} times");
        }
        for (sid, reasons) in &tally.disconnects {
            assert_eq!(reasons.len(), 1, "on_disconnect of {sid}: {reasons:?}");
            assert!(
                tally.connects.contains_key(sid),
                "{sid} disconnected without connecting"
            );
        }
        assert!(
            tally.late.is_empty(),
            "messages of sessions no longer open: {:?}",
            tally.late
        );
    }

    /// A request target on the engine's path.
    pub(crate) fn target(query: &str) -> String {
        format!("{PATH}?{query}")
    }

    /// `GET` a query on the engine's path.
    pub(crate) async fn get(&self, query: &str) -> HttpResponse {
        request(self.addr, "GET", &Self::target(query), &[], b"").await
    }

    /// A v4 polling handshake: the session id and the open packet's JSON.
    pub(crate) async fn handshake_v4(&mut self) -> (Sid, serde_json::Value) {
        let response = self.get("EIO=4&transport=polling").await;
        assert_eq!(response.status, 200, "handshake: {response:?}");
        let body = response.text();
        let json = body.strip_prefix('0').expect("an open packet");
        let open: serde_json::Value = serde_json::from_str(json).expect("open packet JSON");
        let sid = sid_of(&open);
        self.connected(sid).await;
        (sid, open)
    }

    /// A v3 polling handshake (`b64` as given): the session id and the open packet's JSON.
    pub(crate) async fn handshake_v3(&mut self, base64: bool) -> (Sid, serde_json::Value) {
        let query = if base64 {
            "EIO=3&transport=polling&b64=1"
        } else {
            "EIO=3&transport=polling"
        };
        let response = self.get(query).await;
        assert_eq!(response.status, 200, "handshake: {response:?}");
        let packets = v3_text_packets(&response.text());
        assert_eq!(packets.len(), 1, "{packets:?}");
        let json = packets[0].strip_prefix('0').expect("an open packet");
        let open: serde_json::Value = serde_json::from_str(json).expect("open packet JSON");
        let sid = sid_of(&open);
        self.connected(sid).await;
        (sid, open)
    }

    /// The long-poll `GET` of a session.
    pub(crate) async fn poll(&self, eio: u8, sid: Sid) -> HttpResponse {
        self.get(&format!("EIO={eio}&transport=polling&sid={sid}"))
            .await
    }

    /// A long-poll `GET` that is pending at the server when this returns; await the handle for
    /// its answer.
    pub(crate) async fn spawn_poll(
        &mut self,
        eio: u8,
        sid: Sid,
    ) -> JoinHandle<Result<HttpResponse, Vec<u8>>> {
        let addr = self.addr;
        let target = Self::target(&format!("EIO={eio}&transport=polling&sid={sid}"));
        let handle = {
            let target = target.clone();
            tokio::spawn(async move {
                let mut stream = send_request(addr, "GET", &target, &[], b"").await;
                read_response(&mut stream).await
            })
        };
        self.wait_parked("GET", &target).await;
        handle
    }

    /// Waits until a request for `method` and `target` is pending at the engine.
    pub(crate) async fn wait_parked(&mut self, method: &str, target: &str) {
        let wanted = |p: &Parked| p.method == method && p.target == target;
        if let Some(index) = self.parked_backlog.iter().position(wanted) {
            self.parked_backlog.remove(index);
            return;
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let parked = tokio::time::timeout_at(deadline, self.parked.recv())
                .await
                .unwrap_or_else(|_| panic!("{method} {target} never pending"))
                .expect("the server lives as long as the test");
            if wanted(&parked) {
                return;
            }
            self.parked_backlog.push(parked);
        }
    }

    /// A text `POST` of packets to a session.
    pub(crate) async fn post(&self, eio: u8, sid: Sid, body: &[u8]) -> HttpResponse {
        self.post_with(
            eio,
            sid,
            &[("Content-Type", "text/plain;charset=UTF-8")],
            body,
        )
        .await
    }

    /// A `POST` with the given headers.
    pub(crate) async fn post_with(
        &self,
        eio: u8,
        sid: Sid,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let target = Self::target(&format!("EIO={eio}&transport=polling&sid={sid}"));
        request(self.addr, "POST", &target, headers, body).await
    }

    /// The URL of a WebSocket on the engine's path.
    pub(crate) fn ws_url(&self, query: &str) -> String {
        format!("ws://{}{PATH}?{query}", self.addr)
    }

    /// Opens a WebSocket, which must be accepted.
    pub(crate) async fn ws(&self, query: &str) -> (Ws, http::Response<Option<Vec<u8>>>) {
        ws_connect(&self.ws_url(query), &[])
            .await
            .expect("WebSocket accepted")
    }

    /// A direct v4 WebSocket session: the socket, its id and the open packet's JSON.
    pub(crate) async fn ws_session(&mut self, eio: u8) -> (Ws, Sid, serde_json::Value) {
        let (mut ws, _) = self.ws(&format!("EIO={eio}&transport=websocket")).await;
        let open = ws_text(&mut ws).await;
        let json = open.strip_prefix('0').expect("an open packet");
        let open: serde_json::Value = serde_json::from_str(json).expect("open packet JSON");
        let sid = sid_of(&open);
        self.connected(sid).await;
        (ws, sid, open)
    }

    /// Sends a text message through a polling session and checks that the echo comes back:
    /// the session works.
    pub(crate) async fn assert_polling_works(&mut self, eio: u8, sid: Sid) {
        let (body, echoed) = match eio {
            3 => (&b"6:4alive"[..], "6:4alive"),
            _ => (&b"4alive"[..], "4alive"),
        };
        let response = self.post(eio, sid, body).await;
        assert_eq!((response.status, response.text()), (200, "ok".to_owned()));
        assert_eq!(self.message(sid).await, Message::from("alive"));
        let response = self.poll(eio, sid).await;
        assert_eq!((response.status, response.text()), (200, echoed.to_owned()));
    }
}

/// The `sid` of an open packet.
/// The answer of a poll started by [`TestServer::spawn_poll`], within [`WAIT`].
pub(crate) async fn answer(poll: JoinHandle<Result<HttpResponse, Vec<u8>>>) -> HttpResponse {
    tokio::time::timeout(WAIT, poll)
        .await
        .expect("answered")
        .expect("task")
        .expect("complete")
}

pub(crate) fn sid_of(open: &serde_json::Value) -> Sid {
    let text = open["sid"].as_str().expect("sid is a string");
    Sid::parse(text).expect("a valid sid")
}

/// The packets of a v3 text payload (`<len>:<packet>...`, lengths in UTF-16 units).
pub(crate) fn v3_text_packets(body: &str) -> Vec<String> {
    let mut packets = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (length, after) = rest.split_once(':').expect("a length prefix");
        let units: usize = length.parse().expect("a decimal length");
        let mut taken = 0;
        let mut end = 0;
        for ch in after.chars() {
            if taken == units {
                break;
            }
            taken += ch.len_utf16();
            end += ch.len_utf8();
        }
        assert_eq!(taken, units, "length {units} in {body:?}");
        packets.push(after[..end].to_owned());
        rest = &after[end..];
    }
    packets
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// A complete HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    /// Header names in lower case, in the order received.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub(crate) fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as UTF-8.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }

    /// Asserts an Engine.IO error answer: status and exact JSON body.
    pub(crate) fn assert_error(&self, status: u16, code: u8, message: &str) {
        let expected = serde_json::json!({ "code": code, "message": message }).to_string();
        assert_eq!(
            (self.status, self.text()),
            (status, expected),
            "error answer {self:?}"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
    }
}

/// Sends one request (`Connection: close`; `Content-Length` when there is a body or the
/// method carries one) and returns the stream to read the answer from.
pub(crate) async fn send_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    send_request_from(None, addr, method, target, headers, body).await
}

/// [`send_request`] from a given local address (see [`connect_from`]).
pub(crate) async fn send_request_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let has_length = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    if !has_length && (!body.is_empty() || method == "POST" || method == "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    send_raw_from(from, addr, &bytes).await
}

/// Connects and writes `bytes` as they are.
pub(crate) async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    send_raw_from(None, addr, bytes).await
}

/// Connects from a local address of the loopback range (127.0.0.2, ...), so the server sees
/// another client address; `None` lets the system choose (127.0.0.1).
pub(crate) async fn connect_from(from: Option<IpAddr>, addr: SocketAddr) -> TcpStream {
    let connect = async {
        match from {
            None => TcpStream::connect(addr).await,
            Some(ip) => {
                let socket = TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(addr).await
            }
        }
    };
    timeout(WAIT, connect)
        .await
        .expect("connect in time")
        .expect("connect")
}

/// [`send_raw`] from a given local address.
pub(crate) async fn send_raw_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    bytes: &[u8],
) -> TcpStream {
    let mut stream = connect_from(from, addr).await;
    timeout(WAIT, stream.write_all(bytes))
        .await
        .expect("write in time")
        .expect("write the request");
    stream
}

/// Reads one answer. `Err` holds what was received when the connection ended (or failed)
/// before a complete answer.
pub(crate) async fn read_response(stream: &mut TcpStream) -> Result<HttpResponse, Vec<u8>> {
    let mut buf = Vec::new();
    loop {
        if let Some(response) = parse_response(&buf, false) {
            return Ok(response);
        }
        let read = timeout(WAIT, stream.read_buf(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no complete answer within {WAIT:?}; got {:?}",
                    String::from_utf8_lossy(&buf)
                )
            });
        match read {
            Ok(0) | Err(_) => return parse_response(&buf, true).ok_or(buf),
            Ok(_) => {}
        }
    }
}

/// One request, whose answer must be complete.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    request_from(None, addr, method, target, headers, body).await
}

/// [`request`] from a given local address (see [`connect_from`]).
pub(crate) async fn request_from(
    from: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = send_request_from(from, addr, method, target, headers, body).await;
    read_response(&mut stream).await.unwrap_or_else(|partial| {
        panic!(
            "{method} {target}: connection ended after {:?}",
            String::from_utf8_lossy(&partial)
        )
    })
}

/// Parses a complete answer from `buf`; `eof` says the connection ended (which completes a body
/// delimited by the close).
fn parse_response(buf: &[u8], eof: bool) -> Option<HttpResponse> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &buf[head_end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = find("content-length") {
        let length: usize = length.parse().ok()?;
        rest.get(..length)?.to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return None;
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Decodes a complete chunked body, or `None` while it is incomplete.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // No trailers are expected: the final CRLF ends the body.
            return rest.starts_with(b"\r\n").then_some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------------

/// A client WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket with extra request headers; `Err` is the tungstenite error (for a refused
/// handshake, `Error::Http` with the answer).
pub(crate) async fn ws_connect(
    url: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Ws, http::Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request().expect("a WebSocket URL");
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().expect("a header value"));
    }
    timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("WebSocket handshake in time")
}

/// [`ws_connect`] from a given local address (see [`connect_from`]), to `addr`.
pub(crate) async fn ws_connect_from(
    from: IpAddr,
    addr: SocketAddr,
    url: &str,
) -> Result<(Ws, http::Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    let request = url.into_client_request().expect("a WebSocket URL");
    let stream = connect_from(Some(from), addr).await;
    timeout(
        WAIT,
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)),
    )
    .await
    .expect("WebSocket handshake in time")
}

/// What a client WebSocket reads next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WsNext {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame: the server closed cleanly.
    Closed,
    /// The connection ended without a close frame.
    Cut,
}

/// The next data or close frame (control pings are answered by tungstenite and skipped).
pub(crate) async fn ws_next(ws: &mut Ws) -> WsNext {
    loop {
        let next = timeout(WAIT, ws.next())
            .await
            .expect("a WebSocket frame in time");
        return match next {
            Some(Ok(WsMessage::Text(text))) => WsNext::Text(text.as_str().to_owned()),
            Some(Ok(WsMessage::Binary(data))) => WsNext::Binary(data.to_vec()),
            Some(Ok(WsMessage::Close(_))) => WsNext::Closed,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
            Some(Err(_)) | None => WsNext::Cut,
        };
    }
}

/// The next frame, which must be text.
pub(crate) async fn ws_text(ws: &mut Ws) -> String {
    match ws_next(ws).await {
        WsNext::Text(text) => text,
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Sends a text frame.
pub(crate) async fn ws_send(ws: &mut Ws, text: &str) {
    timeout(WAIT, ws.send(WsMessage::text(text)))
        .await
        .expect("send in time")
        .expect("send a text frame");
}

/// Sends a binary frame.
pub(crate) async fn ws_send_binary(ws: &mut Ws, data: &[u8]) {
    timeout(WAIT, ws.send(WsMessage::binary(data.to_vec())))
        .await
        .expect("send in time")
        .expect("send a binary frame");
}

/// Reads until the server ends the connection, which must carry no more data frames; returns
/// how it ended ([`WsNext::Closed`] or [`WsNext::Cut`]).
pub(crate) async fn ws_end(ws: &mut Ws) -> WsNext {
    match ws_next(ws).await {
        WsNext::Closed => {
            // The close frame is followed by the end of the stream.
            match ws_next(ws).await {
                WsNext::Cut => WsNext::Closed,
                other => panic!("data after the close frame: {other:?}"),
            }
        }
        WsNext::Cut => WsNext::Cut,
        other => panic!("expected the end of the WebSocket, got {other:?}"),
    }
}
