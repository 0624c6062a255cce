//! The WebSocket transport: direct sessions, the upgrade from polling, and the frame loop.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrio_engineio_proto::wsframe::{
    encode_frame, encode_header, header_len, CloseCode, Event, FrameError, OpCode,
};
use ferrio_engineio_proto::{ws, OpenPacket, Packet, ProtocolVersion};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::body::ResponseBody;
use crate::errors::ErrorCode;
use crate::refusal::count_refusal;
use crate::socket::{Farewell, TransportKind};
use crate::telemetry::{count_upgrade, Flow};
use crate::wsconn::{Connection, ReadError};
use crate::{DisconnectReason, Engine, EngineHandler, Socket};

/// Checks the RFC 6455 opening handshake and prepares the 101 answer.
pub(crate) fn accept<B>(
    request: &mut Request<B>,
) -> Result<(Response<ResponseBody>, OnUpgrade), ErrorCode> {
    let headers = request.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let valid = has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(key)) = (valid, key) else {
        return Err(ErrorCode::BadRequest);
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        // The HTTP server was not set up to hand over upgraded connections.
        return Err(ErrorCode::BadRequest);
    };
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let out = response.headers_mut();
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        out.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok((response, on_upgrade))
}

/// How many bytes of frames a batch gathers before writing them out early. A payload this large
/// or larger is written from its own buffer rather than copied into the batch.
const WRITE_BUFFER_SIZE: usize = 16 * 1024;

async fn into_connection<H: EngineHandler>(
    engine: &Engine<H>,
    on_upgrade: OnUpgrade,
) -> Option<Connection> {
    match on_upgrade.await {
        Ok(upgraded) => {
            let config = engine.config();
            Some(Connection::new(
                upgraded,
                config.max_payload,
                config.ws_read_buffer_size,
            ))
        }
        Err(error) => {
            tracing::debug!(%error, "websocket upgrade failed");
            None
        }
    }
}

/// A WebSocket session opened without polling first.
pub(crate) fn spawn_direct<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    socket: Arc<Socket<H::Data>>,
    on_upgrade: OnUpgrade,
) {
    tokio::spawn(async move {
        let Some(mut conn) = into_connection(&engine, on_upgrade).await else {
            socket.close_with(DisconnectReason::TransportError, Farewell::None);
            return;
        };
        if greet(&engine, &socket, &mut conn).await.is_err() {
            socket.close_with(DisconnectReason::TransportError, Farewell::None);
            return;
        }
        engine.announce(&socket);
        run(&engine, &socket, &mut conn).await;
    });
}

/// Sends the open packet of a direct WebSocket session.
///
/// A function of its own on purpose: a local of the session's future lives till the end of its
/// scope, so a frame built there would keep its room in the task for the connection's whole life.
async fn greet<H: EngineHandler>(
    engine: &Engine<H>,
    socket: &Socket<H::Data>,
    conn: &mut Connection,
) -> std::io::Result<()> {
    let config = engine.config();
    let open = OpenPacket {
        sid: socket.id(),
        upgrades: Vec::new(),
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: config.max_payload,
    };
    let mut batch = VecDeque::from([open.to_packet()]);
    write_batch(
        conn,
        &mut batch,
        socket.protocol(),
        &engine.traffic().websocket_out,
    )
    .await
}

/// A WebSocket that cannot join its session: opened, then closed at once.
pub(crate) fn spawn_refusal(on_upgrade: OnUpgrade) {
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut conn = Connection::new(upgraded, 0, 1);
            conn.close(Some((CloseCode::NO_STATUS, ""))).await;
        }
    });
}

/// A polling session probing a WebSocket, and switching to it on the upgrade packet.
pub(crate) fn spawn_upgrade<H: EngineHandler>(
    engine: Arc<Engine<H>>,
    socket: Arc<Socket<H::Data>>,
    on_upgrade: OnUpgrade,
) {
    tokio::spawn(async move {
        let upgraded = async {
            let mut conn = into_connection(&engine, on_upgrade).await?;
            let probed =
                tokio::time::timeout(engine.config().upgrade_timeout, probe(&socket, &mut conn));
            tokio::select! {
                result = probed => match result {
                    Ok(true) => Some(conn),
                    _ => None,
                },
                () = socket.closing() => None,
            }
        }
        .await;
        match upgraded {
            Some(conn) => {
                count_upgrade();
                socket.set_transport(TransportKind::WebSocket);
                socket.upgrading.store(false, Ordering::Release);
                socket.upgraded.notify_waiters();
                tracing::debug!(sid = %socket.id(), "upgraded to websocket");
                let mut conn = conn;
                run(&engine, &socket, &mut conn).await;
            }
            None => {
                // The session goes on over polling; the client may try again.
                socket.upgrading.store(false, Ordering::Release);
            }
        }
    });
}

/// Runs the probe: `2probe` is answered with `3probe`, then `5` completes the upgrade. Returns
/// whether it completed.
///
/// The client sends `5` only once its pending poll has returned, so while waiting for it a noop
/// releases any poll in progress. As in the reference server, that check runs every 100 ms
/// rather than at once: a client that sends `2probe` and `5` together then has its upgrade done
/// before a poll sent right after is looked at.
async fn probe<D>(socket: &Socket<D>, conn: &mut Connection) -> bool {
    match next_packet(socket, conn).await {
        Some(packet @ Packet::Ping(_)) if packet.is_probe() => {}
        _ => return false,
    }
    let mut pong = Vec::new();
    let frame = ws::encode(&Packet::pong_probe(), socket.protocol());
    encode_frame(&mut pong, frame_opcode(&frame), frame_payload(&frame));
    if conn.write(&pong).await.is_err() {
        return false;
    }
    let mut release_poll = tokio::time::interval(std::time::Duration::from_millis(100));
    release_poll.tick().await;
    loop {
        tokio::select! {
            packet = next_packet(socket, conn) => return packet == Some(Packet::Upgrade),
            _ = release_poll.tick() => {
                if socket.writer.try_lock().is_err() {
                    let _ = socket.send_packet(Packet::Noop);
                }
            }
        }
    }
}

/// The next packet from the connection, answering pings on the way; `None` when it ends, fails
/// or carries something that does not decode.
///
/// Cancel-safe while it waits for bytes; a pong being written when it is dropped may be cut,
/// which ends the probe anyway.
async fn next_packet<D>(socket: &Socket<D>, conn: &mut Connection) -> Option<Packet> {
    loop {
        match conn.next_event().await.ok()? {
            Event::Text(text) => return ws::decode(ws::Frame::Text(text), socket.protocol()).ok(),
            Event::Binary(data) => {
                return ws::decode(ws::Frame::Binary(data), socket.protocol()).ok()
            }
            Event::Ping(payload) => conn.write(&pong(&payload)).await.ok()?,
            Event::Pong => {}
            Event::Close(_) => return None,
        }
    }
}

/// A pong frame answering a ping with this payload.
fn pong(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(header_len(payload.len()) + payload.len());
    encode_frame(&mut frame, OpCode::Pong, payload);
    frame
}

/// What a read from the client comes to, for the frame loop.
enum Incoming {
    /// A data frame's packet (or why it did not decode), and the frame's payload length.
    Packet(Result<Packet, ferrio_engineio_proto::DecodeError>, usize),
    /// A ping, to answer with this pong frame.
    Pong(Vec<u8>),
    /// Nothing to do (a pong).
    Nothing,
    /// The connection ends: the reason, and the close frame to send first, if any.
    End(DisconnectReason, Option<(CloseCode, String)>),
}

/// Turns one read result into what the frame loop does with it. Kept out of the loop's future:
/// its locals (the close reason, the error) would otherwise take room in the session's task.
fn incoming<D>(event: Result<Event, ReadError>, socket: &Socket<D>, max_payload: u64) -> Incoming {
    match event {
        Ok(Event::Text(text)) => {
            let len = text.len();
            Incoming::Packet(ws::decode(ws::Frame::Text(text), socket.protocol()), len)
        }
        Ok(Event::Binary(data)) => {
            let len = data.len();
            Incoming::Packet(ws::decode(ws::Frame::Binary(data), socket.protocol()), len)
        }
        Ok(Event::Ping(payload)) => Incoming::Pong(pong(&payload)),
        Ok(Event::Pong) => Incoming::Nothing,
        // The close frame is echoed, with its code (none if it had none).
        Ok(Event::Close(code)) => Incoming::End(
            DisconnectReason::TransportClose,
            Some((code, String::new())),
        ),
        // The client closed the TCP connection without a close frame (a process that exited, a
        // tab that was killed): it closed the connection, as the reference server reports it.
        Err(ReadError::Eof) => Incoming::End(DisconnectReason::TransportClose, None),
        Err(ReadError::Frame(FrameError::MessageTooLong { size, max })) => {
            // A frame or message over `max_payload`: refused as soon as its header says so,
            // before it is buffered. The client gets close code 1009.
            tracing::info!(
                reason = "payload_too_large",
                sid = %socket.id(),
                "refused: message of {size} bytes (max {max_payload} bytes)"
            );
            count_refusal("payload_too_large");
            Incoming::End(
                DisconnectReason::TransportError,
                Some((
                    CloseCode::TOO_BIG,
                    format!("Message too big (max {max} bytes)"),
                )),
            )
        }
        Err(ReadError::Frame(error)) => {
            tracing::debug!(sid = %socket.id(), %error, "websocket protocol error");
            Incoming::End(
                DisconnectReason::TransportError,
                Some((error.close_code(), String::new())),
            )
        }
        Err(ReadError::Io(error)) => {
            tracing::debug!(sid = %socket.id(), %error, "websocket read failed");
            Incoming::End(DisconnectReason::TransportError, None)
        }
    }
}

/// The frame loop of an established WebSocket session: reads client packets and writes queued
/// ones until either side closes.
async fn run<H: EngineHandler>(
    engine: &Engine<H>,
    socket: &Arc<Socket<H::Data>>,
    // Borrowed, not moved: a connection moved into this future would be stored twice in the
    // session's task, once in the caller's state and once in this one.
    conn: &mut Connection,
) {
    // After an upgrade a last poll may still be writing; its answer goes first.
    let _writer = socket.writer.lock().await;
    loop {
        tokio::select! {
            biased;
            event = conn.next_event() => {
                let (reason, close) = match incoming(event, socket, engine.config().max_payload) {
                    Incoming::Packet(decoded, len) => {
                        engine.traffic().websocket_in.count(1, len);
                        match decoded {
                            Ok(packet) => {
                                engine.handle_packet(socket, packet);
                                continue;
                            }
                            Err(error) => {
                                tracing::debug!(sid = %socket.id(), %error, "undecodable websocket frame");
                                (DisconnectReason::ParseError, Some((CloseCode::NO_STATUS, String::new())))
                            }
                        }
                    }
                    Incoming::Nothing => continue,
                    Incoming::End(reason, close) => (reason, close),
                    Incoming::Pong(pong) => {
                        if conn.write(&pong).await.is_ok() {
                            continue;
                        }
                        (DisconnectReason::TransportError, None)
                    }
                };
                socket.close_with(reason, Farewell::None);
                // If the session was already closing (the client sent a close packet, then its
                // close frame), nobody else will complete the close: this transport is gone.
                socket.finish_close();
                conn.close(close.as_ref().map(|(code, reason)| (*code, reason.as_str()))).await;
                return;
            }
            () = socket.outbox.ready() => {
                let farewell = socket.farewell();
                // The whole queue is taken, so an idle session keeps no queue allocation.
                let mut batch = socket.outbox.take_all();
                if farewell == Some(Farewell::Abort) {
                    // Dropping the connection cuts it without a close frame.
                    socket.finish_close();
                    return;
                }
                let written = write_batch(
                    conn,
                    &mut batch,
                    socket.protocol(),
                    &engine.traffic().websocket_out,
                )
                .await;
                if farewell.is_some() || written.is_err() {
                    if written.is_ok() {
                        conn.close(Some((CloseCode::NO_STATUS, ""))).await;
                    } else {
                        socket.close_with(DisconnectReason::TransportError, Farewell::None);
                    }
                    socket.finish_close();
                    return;
                }
            }
        }
    }
}

/// Writes every packet of the batch as frames gathered in one buffer, so that a batch leaves in
/// one write (a batch over [`WRITE_BUFFER_SIZE`] in several). The buffer is the batch's own and
/// freed after it: an idle session keeps none. The batch is counted in `sent` once written.
///
/// The frames are built by [`gather`], a plain function, so that this future (part of every
/// session's task) holds only the buffer and the write in progress.
async fn write_batch(
    conn: &mut Connection,
    batch: &mut VecDeque<Packet>,
    protocol: ProtocolVersion,
    sent: &Flow,
) -> std::io::Result<()> {
    let packets = batch.len();
    let mut bytes = 0;
    let mut out = Vec::new();
    while !batch.is_empty() {
        let large = gather(&mut out, batch, protocol, &mut bytes);
        conn.write(&out).await?;
        out.clear();
        if let Some(payload) = large {
            conn.write(&payload).await?;
        }
    }
    sent.count(packets, bytes);
    Ok(())
}

/// Moves packets from the front of the batch into `out`, as frames, until the next one would
/// take it past [`WRITE_BUFFER_SIZE`]. A payload that large on its own ends the gathering: its
/// header is appended and the payload returned, to be written from its own buffer (no copy).
/// Adds the payload bytes taken to `bytes`.
fn gather(
    out: &mut Vec<u8>,
    batch: &mut VecDeque<Packet>,
    protocol: ProtocolVersion,
    bytes: &mut usize,
) -> Option<bytes::Bytes> {
    while let Some(packet) = batch.front() {
        let frame = ws::encode(packet, protocol);
        let payload = frame_payload(&frame);
        let len = payload.len();
        if len >= WRITE_BUFFER_SIZE {
            batch.pop_front();
            *bytes += len;
            encode_header(out, frame_opcode(&frame), len);
            return Some(match frame {
                ws::Frame::Text(payload) | ws::Frame::Binary(payload) => payload,
            });
        }
        if !out.is_empty() && out.len() + header_len(len) + len > WRITE_BUFFER_SIZE {
            return None;
        }
        batch.pop_front();
        *bytes += len;
        encode_frame(out, frame_opcode(&frame), payload);
    }
    None
}

/// The opcode of the frame carrying this payload.
fn frame_opcode(frame: &ws::Frame) -> OpCode {
    match frame {
        ws::Frame::Text(_) => OpCode::Text,
        ws::Frame::Binary(_) => OpCode::Binary,
    }
}

/// The payload of a frame.
fn frame_payload(frame: &ws::Frame) -> &[u8] {
    match frame {
        ws::Frame::Text(bytes) | ws::Frame::Binary(bytes) => bytes,
    }
}
