//! One Engine.IO session, shared between its transports and the application.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime};

use ferrio_engineio_proto::{Heartbeat, Message, Packet, ProtocolVersion, Sid};
use http::{header, HeaderMap, HeaderName, HeaderValue, Uri};
use tokio::sync::Notify;

use crate::errors::SendError;
use crate::outbox::{Full, Outbox};
use crate::DisconnectReason;

pub use ferrio_engineio_proto::TransportKind;

/// The transport as stored in an atomic.
fn transport_to_u8(transport: TransportKind) -> u8 {
    match transport {
        TransportKind::Polling => 0,
        TransportKind::WebSocket => 1,
    }
}

fn transport_from_u8(value: u8) -> TransportKind {
    if value == 1 {
        TransportKind::WebSocket
    } else {
        TransportKind::Polling
    }
}

/// What the server saw of the request that opened a session.
///
/// The request URI and headers are kept as one compact buffer and turned back into a [`Uri`]
/// and a [`HeaderMap`] only when asked for ([`Handshake::uri`], [`Handshake::headers`]): a
/// `HeaderMap` held for the session's whole life cost some 0.6 KiB per connection, most of it
/// index and bucket space, and a `Uri` 88 bytes plus an allocation of its own, while few
/// applications read either after the connection is established.
#[derive(Clone)]
pub struct Handshake {
    /// The request URI, then each header as `name \n value \n`, all after `uri \n` (neither a
    /// URI, nor a header name, nor a valid value can hold a line feed).
    raw: Box<[u8]>,
    /// The peer's address, when the server put a [`SocketAddr`] in the request's extensions
    /// (as [`crate::serve`] does).
    pub remote_addr: Option<SocketAddr>,
    /// When the session was opened.
    pub issued_at: SystemTime,
}

impl Handshake {
    /// A handshake record holding a copy of `uri` and `headers`.
    pub fn new(
        uri: Uri,
        headers: &HeaderMap,
        remote_addr: Option<SocketAddr>,
        issued_at: SystemTime,
    ) -> Self {
        let uri = uri.to_string();
        let size = uri.len()
            + 1
            + headers
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 2)
                .sum::<usize>();
        let mut raw = Vec::with_capacity(size);
        raw.extend_from_slice(uri.as_bytes());
        raw.push(b'\n');
        for (name, value) in headers {
            raw.extend_from_slice(name.as_str().as_bytes());
            raw.push(b'\n');
            raw.extend_from_slice(value.as_bytes());
            raw.push(b'\n');
        }
        Self {
            raw: raw.into_boxed_slice(),
            remote_addr,
            issued_at,
        }
    }

    /// The request URI as received, and the headers' part of the buffer.
    fn split(&self) -> (&[u8], &[u8]) {
        match self.raw.iter().position(|&byte| byte == b'\n') {
            Some(end) => (&self.raw[..end], &self.raw[end + 1..]),
            None => (&self.raw[..], &[]),
        }
    }

    /// The request URI, with its query string. Built anew at each call.
    pub fn uri(&self) -> Uri {
        // It was a valid URI when copied in; one that fails to parse cannot occur, and is
        // replaced by `/` rather than trusted.
        Uri::try_from(self.split().0).unwrap_or_default()
    }

    /// The request headers, in the order received. Built anew at each call: keep the map if
    /// you read it several times.
    ///
    /// Credentials (`authorization`, `proxy-authorization`, `cookie`) are marked sensitive, so
    /// that debug output does not show them.
    pub fn headers(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        let mut parts = self.split().1.split(|&byte| byte == b'\n');
        while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
            // Both were valid when copied in; a pair that fails to parse cannot occur, and is
            // skipped rather than trusted.
            let (Ok(name), Ok(mut value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            else {
                continue;
            };
            if name == header::AUTHORIZATION
                || name == header::PROXY_AUTHORIZATION
                || name == header::COOKIE
            {
                value.set_sensitive(true);
            }
            map.append(name, value);
        }
        map
    }

    /// The value of a query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let uri = std::str::from_utf8(self.split().0).ok()?;
        let query = uri.split_once('?').map_or("", |(_, query)| query);
        // A fragment never reaches a server, but is not part of the query if it did.
        let query = query.split_once('#').map_or(query, |(query, _)| query);
        crate::query::find_param(query, name)
    }
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("uri", &self.uri())
            .field("headers", &self.headers())
            .field("remote_addr", &self.remote_addr)
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// How a session is being taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Farewell {
    /// Nothing more is sent; the session ends at once.
    None,
    /// This packet is the last one written, then the transport closes.
    Packet(FarewellPacket),
    /// The transport is cut without any packet, as if the network failed: the pending poll is
    /// reset, the WebSocket dropped without a close frame.
    Abort,
}

/// The packets a session may end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FarewellPacket {
    /// `1`: the server closes.
    Close,
    /// `6`: releases a pending poll after the client closed.
    Noop,
}

const OPEN: u8 = 0;
const CLOSING: u8 = 1;
const CLOSED: u8 = 2;

/// Called when a session has finished closing; implemented by the engine.
pub(crate) trait SessionOwner<D>: Send + Sync {
    /// The session started closing with a farewell packet: its transport has a grace period
    /// to write it, then the close completes anyway.
    fn session_closing(&self, socket: &Arc<Socket<D>>);
    fn session_closed(&self, socket: &Arc<Socket<D>>, reason: DisconnectReason);
}

/// One Engine.IO session: its id, transport, queue of outgoing packets and heartbeat, plus the
/// application's own per-session `data`.
///
/// Sending never waits: packets are queued (bounded by
/// [`crate::EngineConfig::max_buffered_packets`]) and written by the session's transport.
pub struct Socket<D> {
    id: Sid,
    protocol: ProtocolVersion,
    supports_binary: bool,
    transport: AtomicU8,
    state: AtomicU8,
    reason: Mutex<Option<(DisconnectReason, Farewell)>>,
    pub(crate) upgrading: AtomicBool,
    pub(crate) posting: AtomicBool,
    pub(crate) outbox: Outbox,
    /// Held by whichever transport currently writes the outbox (the pending poll, or the
    /// WebSocket after an upgrade): two polls at once are a protocol violation.
    pub(crate) writer: tokio::sync::Mutex<()>,
    pub(crate) heartbeat: Mutex<Heartbeat>,
    /// Woken when the session starts or finishes closing, and when an upgrade completes (so
    /// that a poll still waiting learns it is obsolete). One wait list for both: waiters check
    /// what they wait for when woken, and each `Notify` is 32 bytes in every session.
    pub(crate) changed: Notify,
    handshake: Handshake,
    /// The client address this session counts against, when a per-address limit is set.
    counted_ip: Option<IpAddr>,
    owner: Weak<dyn SessionOwner<D>>,
    /// The application's data for this session.
    pub data: D,
}

impl<D> std::fmt::Debug for Socket<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .field("transport", &self.transport())
            .finish_non_exhaustive()
    }
}

/// Arguments to [`Socket::new`], grouped.
pub(crate) struct SocketParts<D> {
    pub(crate) id: Sid,
    pub(crate) protocol: ProtocolVersion,
    pub(crate) supports_binary: bool,
    pub(crate) transport: TransportKind,
    pub(crate) max_buffered_packets: usize,
    pub(crate) heartbeat: Heartbeat,
    pub(crate) handshake: Handshake,
    pub(crate) counted_ip: Option<IpAddr>,
    pub(crate) owner: Weak<dyn SessionOwner<D>>,
    pub(crate) data: D,
}

impl<D> Socket<D> {
    pub(crate) fn new(parts: SocketParts<D>) -> Self {
        Self {
            id: parts.id,
            protocol: parts.protocol,
            supports_binary: parts.supports_binary,
            transport: AtomicU8::new(transport_to_u8(parts.transport)),
            state: AtomicU8::new(OPEN),
            reason: Mutex::new(None),
            upgrading: AtomicBool::new(false),
            posting: AtomicBool::new(false),
            outbox: Outbox::new(parts.max_buffered_packets),
            writer: tokio::sync::Mutex::new(()),
            heartbeat: Mutex::new(parts.heartbeat),
            changed: Notify::new(),
            handshake: parts.handshake,
            counted_ip: parts.counted_ip,
            owner: parts.owner,
            data: parts.data,
        }
    }

    /// The session id.
    pub fn id(&self) -> Sid {
        self.id
    }

    /// The Engine.IO revision the client speaks.
    pub fn protocol(&self) -> ProtocolVersion {
        self.protocol
    }

    /// Whether the client takes binary polling payloads (false when it asked for `b64=1`).
    pub fn supports_binary(&self) -> bool {
        self.supports_binary
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportKind {
        transport_from_u8(self.transport.load(Ordering::Acquire))
    }

    pub(crate) fn set_transport(&self, transport: TransportKind) {
        self.transport
            .store(transport_to_u8(transport), Ordering::Release);
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The client address this session counts against, when a per-address limit is set.
    pub(crate) fn counted_ip(&self) -> Option<IpAddr> {
        self.counted_ip
    }

    /// Reads what queuing a packet reads first (the state, the queue), so that a broadcast can
    /// fetch the memory of many sessions at once before queuing on each.
    pub fn warm(&self) {
        std::hint::black_box(self.state.load(Ordering::Relaxed));
        self.outbox.warm();
    }

    /// Whether the session is still open (not closing or closed).
    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }

    /// Queues a message for the client.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_packet(Packet::Message(message))
    }

    /// Queues several messages that must arrive together (a packet and its binary attachments):
    /// all are queued, or none.
    pub fn send_many(&self, messages: Vec<Message>) -> Result<(), SendError> {
        if !self.is_open() {
            return Err(SendError::Closed);
        }
        self.outbox
            .push_all(messages.into_iter().map(Packet::Message))
            .map_err(|Full| SendError::Full {
                max: self.outbox.capacity(),
            })
    }

    pub(crate) fn send_packet(&self, packet: Packet) -> Result<(), SendError> {
        if !self.is_open() {
            return Err(SendError::Closed);
        }
        self.outbox.push(packet).map_err(|Full| SendError::Full {
            max: self.outbox.capacity(),
        })
    }

    /// Closes the session from the server side: the client gets a close packet, then the
    /// transport closes. The reason reported is "forced close".
    pub fn close(self: &Arc<Self>) {
        self.close_with(
            DisconnectReason::ForcedClose,
            Farewell::Packet(FarewellPacket::Close),
        );
    }

    /// Closes the session with a given reason, the client getting a close packet first.
    pub fn close_with_reason(self: &Arc<Self>, reason: DisconnectReason) {
        self.close_with(reason, Farewell::Packet(FarewellPacket::Close));
    }

    /// Cuts the session's transport as a network failure would: no close packet, the pending
    /// poll reset, the WebSocket dropped. The session ends with "transport close", and the client
    /// sees a failed transport and reconnects.
    pub fn abort(self: &Arc<Self>) {
        self.close_with(DisconnectReason::TransportClose, Farewell::Abort);
    }

    /// Starts closing. The first call wins; later calls do nothing.
    pub(crate) fn close_with(self: &Arc<Self>, reason: DisconnectReason, farewell: Farewell) {
        if self
            .state
            .compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        {
            // The farewell is queued under the same lock that publishes it, so a writer that sees
            // the farewell also finds its packet in the queue.
            let mut stored = self.lock_reason();
            *stored = Some((reason, farewell));
            match farewell {
                Farewell::Packet(FarewellPacket::Close) => self.outbox.force_push(Packet::Close),
                Farewell::Packet(FarewellPacket::Noop) => self.outbox.force_push(Packet::Noop),
                Farewell::None | Farewell::Abort => self.outbox.wake(),
            }
        }
        self.changed.notify_waiters();
        if matches!(farewell, Farewell::None | Farewell::Abort) {
            // Nothing to flush: the session is gone now, and a later request with its id gets
            // 400. An abort's pending poll or WebSocket still sees the farewell and cuts itself.
            self.finish_close();
        } else if let Some(owner) = self.owner.upgrade() {
            owner.session_closing(self);
        }
    }

    fn lock_reason(&self) -> std::sync::MutexGuard<'_, Option<(DisconnectReason, Farewell)>> {
        self.reason
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How the session is closing, once it is.
    pub(crate) fn farewell(&self) -> Option<Farewell> {
        self.lock_reason().map(|(_, farewell)| farewell)
    }

    /// Completes the close once the farewell is written (or given up on): the session leaves
    /// the engine and the application hears of it, exactly once.
    pub(crate) fn finish_close(self: &Arc<Self>) {
        if self
            .state
            .compare_exchange(CLOSING, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        self.changed.notify_waiters();
        self.outbox.wake();
        let reason = self
            .lock_reason()
            .map_or(DisconnectReason::ForcedClose, |(reason, _)| reason);
        if let Some(owner) = self.owner.upgrade() {
            owner.session_closed(self, reason);
        }
    }

    /// Whether the session finished closing.
    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }

    /// Waits until the session starts closing. Cancel-safe.
    pub(crate) async fn closing(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_open() {
                return;
            }
            notified.await;
        }
    }

    /// Feeds a pong to the heartbeat.
    pub(crate) fn on_pong(&self) {
        self.lock_heartbeat().handle_pong(Instant::now());
    }

    /// Feeds a ping to the heartbeat (v3 clients ping).
    pub(crate) fn on_ping(&self) {
        self.lock_heartbeat().handle_ping(Instant::now());
    }

    /// Closes the session if the client's heartbeat deadline has passed; returns whether it did.
    ///
    /// The heartbeat task closes overdue sessions too, but a request may arrive before its timer
    /// fires; such a request must find the session gone, as the client was promised.
    pub(crate) fn expire_if_overdue(self: &Arc<Self>) -> bool {
        let overdue = self.lock_heartbeat().is_overdue(Instant::now());
        if overdue {
            self.close_with(DisconnectReason::PingTimeout, Farewell::None);
        }
        overdue
    }

    pub(crate) fn lock_heartbeat(&self) -> std::sync::MutexGuard<'_, Heartbeat> {
        self.heartbeat
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_headers_come_back_as_received() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("example.com"));
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        headers.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.insert("x-empty", HeaderValue::from_static(""));
        // obs-text: bytes above 0x7f are valid in a value.
        headers.insert("x-latin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let handshake = Handshake::new(
            Uri::from_static("/?EIO=4"),
            &headers,
            None,
            SystemTime::now(),
        );
        let back = handshake.headers();
        assert_eq!(back, headers);
        assert_eq!(handshake.uri(), "/?EIO=4");
        let forwarded: Vec<_> = back.get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
        assert!(back[header::COOKIE].is_sensitive());
        assert!(!back[header::HOST].is_sensitive());
        assert!(!format!("{handshake:?}").contains("a=1"));
    }

    #[test]
    fn a_handshake_without_headers_has_none() {
        let handshake = Handshake::new(
            Uri::from_static("/"),
            &HeaderMap::new(),
            None,
            SystemTime::now(),
        );
        assert!(handshake.headers().is_empty());
        assert_eq!(handshake.uri(), "/");
    }

    #[test]
    fn the_uri_and_its_query_come_back() {
        let handshake = Handshake::new(
            Uri::from_static("/socket.io/?EIO=4&transport=websocket&token=a%20b"),
            &HeaderMap::new(),
            None,
            SystemTime::now(),
        );
        assert_eq!(handshake.uri().path(), "/socket.io/");
        assert_eq!(handshake.query_param("token").as_deref(), Some("a b"));
        assert_eq!(handshake.query_param("EIO").as_deref(), Some("4"));
        assert_eq!(handshake.query_param("sid"), None);
        assert!(format!("{handshake:?}").contains("transport=websocket"));
    }
}
