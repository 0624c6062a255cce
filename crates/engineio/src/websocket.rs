//! The WebSocket transport: direct sessions, the upgrade from polling, and the frame loop.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use ferrio_engineio_proto::{ws, OpenPacket, Packet, ProtocolVersion};
use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use crate::body::ResponseBody;
use crate::errors::ErrorCode;
use crate::refusal::count_refusal;
use crate::socket::{Farewell, TransportKind};
use crate::telemetry::{count_upgrade, Flow};
use crate::{DisconnectReason, Engine, EngineHandler, Socket};

type Stream = WebSocketStream<TokioIo<Upgraded>>;

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

/// How many bytes of frames a batch gathers before writing them out early.
const WRITE_BUFFER_SIZE: usize = 16 * 1024;

fn ws_config<H: EngineHandler>(engine: &Engine<H>) -> WebSocketConfig {
    let config = engine.config();
    let max = usize::try_from(config.max_payload).unwrap_or(usize::MAX);
    WebSocketConfig::default()
        .read_buffer_size(config.ws_read_buffer_size)
        // Frames written in one batch go to the socket in one write at the flush (a write per
        // frame cost a syscall per packet under fan-out); a batch larger than this is written
        // as it goes. The buffer keeps the capacity of the largest batch.
        .write_buffer_size(WRITE_BUFFER_SIZE)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

async fn into_stream<H: EngineHandler>(
    engine: &Engine<H>,
    on_upgrade: OnUpgrade,
) -> Option<Stream> {
    match on_upgrade.await {
        Ok(upgraded) => Some(
            WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(ws_config(engine)),
            )
            .await,
        ),
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
        let Some(mut stream) = into_stream(&engine, on_upgrade).await else {
            socket.close_with(DisconnectReason::TransportError, Farewell::None);
            return;
        };
        let open = open_message(&engine, &socket);
        engine.traffic().websocket_out.count(1, payload_len(&open));
        if stream.send(open).await.is_err() {
            socket.close_with(DisconnectReason::TransportError, Farewell::None);
            return;
        }
        engine.announce(&socket);
        run(&engine, &socket, &mut stream).await;
    });
}

/// The open packet of a direct WebSocket session, as a frame.
///
/// Built outside the session's future on purpose: a local of that future lives till the end of
/// its scope, so the packet built there kept its room in the task for the connection's whole
/// life (the future was 992 B with it, 904 B without).
fn open_message<H: EngineHandler>(engine: &Engine<H>, socket: &Socket<H::Data>) -> WsMessage {
    let config = engine.config();
    let open = OpenPacket {
        sid: socket.id(),
        upgrades: Vec::new(),
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: config.max_payload,
    };
    to_ws(&open.to_packet(), socket.protocol())
}

/// A WebSocket that cannot join its session: opened, then closed at once.
pub(crate) fn spawn_refusal(on_upgrade: OnUpgrade) {
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut stream =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            let _ = stream.close(None).await;
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
            let mut stream = into_stream(&engine, on_upgrade).await?;
            let probed =
                tokio::time::timeout(engine.config().upgrade_timeout, probe(&socket, &mut stream));
            tokio::select! {
                result = probed => match result {
                    Ok(true) => Some(stream),
                    _ => None,
                },
                () = socket.closing() => None,
            }
        }
        .await;
        match upgraded {
            Some(stream) => {
                count_upgrade();
                socket.set_transport(TransportKind::WebSocket);
                socket.upgrading.store(false, Ordering::Release);
                socket.upgraded.notify_waiters();
                tracing::debug!(sid = %socket.id(), "upgraded to websocket");
                let mut stream = stream;
                run(&engine, &socket, &mut stream).await;
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
async fn probe<D>(socket: &Socket<D>, stream: &mut Stream) -> bool {
    match next_packet(socket, stream).await {
        Some(packet @ Packet::Ping(_)) if packet.is_probe() => {}
        _ => return false,
    }
    if stream
        .send(to_ws(&Packet::pong_probe(), socket.protocol()))
        .await
        .is_err()
    {
        return false;
    }
    let mut release_poll = tokio::time::interval(std::time::Duration::from_millis(100));
    release_poll.tick().await;
    loop {
        tokio::select! {
            packet = next_packet(socket, stream) => return packet == Some(Packet::Upgrade),
            _ = release_poll.tick() => {
                if socket.writer.try_lock().is_err() {
                    let _ = socket.send_packet(Packet::Noop);
                }
            }
        }
    }
}

/// The next packet from the stream, skipping control frames; `None` when it ends or fails to
/// decode.
async fn next_packet<D>(socket: &Socket<D>, stream: &mut Stream) -> Option<Packet> {
    loop {
        let message = stream.next().await?.ok()?;
        if let Some(frame) = from_ws(message) {
            return ws::decode(frame, socket.protocol()).ok();
        }
    }
}

/// The frame loop of an established WebSocket session: reads client packets and writes queued
/// ones until either side closes.
async fn run<H: EngineHandler>(
    engine: &Engine<H>,
    socket: &Arc<Socket<H::Data>>,
    // Borrowed, not moved: a stream moved into this future would be stored twice in the
    // session's task, once in the caller's state and once in this one (~0.5 KiB per connection).
    stream: &mut Stream,
) {
    // After an upgrade a last poll may still be writing; its answer goes first.
    let _writer = socket.writer.lock().await;
    loop {
        tokio::select! {
            biased;
            incoming = stream.next() => {
                let mut close_frame = None;
                let reason = match incoming {
                    Some(Ok(WsMessage::Close(_))) | None => DisconnectReason::TransportClose,
                    // The client closed the TCP connection without a close frame (a process that
                    // exited, a tab that was killed): it closed the connection, as the reference
                    // server reports it.
                    Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                        DisconnectReason::TransportClose
                    }
                    Some(Err(WsError::Capacity(error))) => {
                        // A frame or message over `max_payload`: refused as soon as its header
                        // says so, before it is buffered. The client gets close code 1009.
                        let max = engine.config().max_payload;
                        tracing::info!(
                            reason = "payload_too_large",
                            sid = %socket.id(),
                            "refused: {error} (max {max} bytes)"
                        );
                        count_refusal("payload_too_large");
                        close_frame = Some(CloseFrame {
                            code: CloseCode::Size,
                            reason: format!("Message too big (max {max} bytes)").into(),
                        });
                        DisconnectReason::TransportError
                    }
                    Some(Err(error)) => {
                        tracing::debug!(sid = %socket.id(), %error, "websocket read failed");
                        DisconnectReason::TransportError
                    }
                    Some(Ok(message)) => {
                        let Some(frame) = from_ws(message) else { continue };
                        engine.traffic().websocket_in.count(1, frame_len(&frame));
                        match ws::decode(frame, socket.protocol()) {
                            Ok(packet) => {
                                engine.handle_packet(socket, packet);
                                continue;
                            }
                            Err(error) => {
                                tracing::debug!(sid = %socket.id(), %error, "undecodable websocket frame");
                                DisconnectReason::ParseError
                            }
                        }
                    }
                };
                socket.close_with(reason, Farewell::None);
                // If the session was already closing (the client sent a close packet, then its
                // close frame), nobody else will complete the close: this transport is gone.
                socket.finish_close();
                let _ = stream.close(close_frame).await;
                return;
            }
            () = socket.outbox.ready() => {
                let farewell = socket.farewell();
                // The whole queue is taken, so an idle session keeps no queue allocation.
                let mut batch = socket.outbox.take_all();
                if farewell == Some(Farewell::Abort) {
                    // Dropping the stream cuts the TCP connection without a close frame.
                    socket.finish_close();
                    return;
                }
                let written = write_batch(
                    stream,
                    &mut batch,
                    socket.protocol(),
                    &engine.traffic().websocket_out,
                )
                .await;
                if farewell.is_some() || written.is_err() {
                    if written.is_ok() {
                        let _ = stream.close(None).await;
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

/// Writes every packet of the batch, then flushes once. The batch is counted in `sent` once,
/// when the stream has taken it all.
async fn write_batch(
    stream: &mut Stream,
    batch: &mut VecDeque<Packet>,
    protocol: ProtocolVersion,
    sent: &Flow,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let packets = batch.len();
    let mut bytes = 0;
    for packet in batch.drain(..) {
        let message = to_ws(&packet, protocol);
        bytes += payload_len(&message);
        stream.feed(message).await?;
    }
    sent.count(packets, bytes);
    stream.flush().await
}

/// The payload length of an outgoing message, frame header excluded.
fn payload_len(message: &WsMessage) -> usize {
    match message {
        WsMessage::Frame(frame) => frame.payload().len(),
        other => other.len(),
    }
}

/// The payload length of a frame.
fn frame_len(frame: &ws::Frame) -> usize {
    match frame {
        ws::Frame::Text(bytes) | ws::Frame::Binary(bytes) => bytes.len(),
    }
}

fn to_ws(packet: &Packet, protocol: ProtocolVersion) -> WsMessage {
    match ws::encode(packet, protocol) {
        // Text packets are UTF-8 by construction (`Text` checked it once, when the packet was
        // made): a raw text frame skips the check `Message::Text` would run again for every
        // recipient of a broadcast.
        ws::Frame::Text(bytes) => {
            WsMessage::Frame(Frame::message(bytes, OpCode::Data(OpData::Text), true))
        }
        ws::Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}

fn from_ws(message: WsMessage) -> Option<ws::Frame> {
    match message {
        WsMessage::Text(text) => Some(ws::Frame::Text(Bytes::from(text))),
        WsMessage::Binary(data) => Some(ws::Frame::Binary(data)),
        // Control frames are answered by the WebSocket layer itself.
        WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Close(_) | WsMessage::Frame(_) => None,
    }
}
