//! The WebSocket transport: direct sessions, the upgrade from polling, and the frame loop.

// The futures that live in every session's task are `async` blocks returned by plain functions,
// not `async fn`s: an `async fn` copies its arguments into locals, so each was stored twice in
// the task (measured with `-Zprint-type-sizes`).
#![allow(clippy::manual_async_fn)]

use std::future::{poll_fn, Future};
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use ferrio_engineio_proto::wsframe::{
    encode_frame, header_len, CloseCode, Event, FrameError, OpCode,
};
use ferrio_engineio_proto::{ws, OpenPacket, Packet};
use futures_util::future::Either;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::body::ResponseBody;
use crate::errors::ErrorCode;
use crate::pacing;
use crate::refusal::count_refusal;
use crate::socket::{Farewell, TransportKind};
use crate::telemetry::count_upgrade;
use crate::wsconn::{close_frame, Connection, ReadError, CLOSE_WITHOUT_CODE};
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

/// How many bytes of frames one write gathers: a batch stops taking packets once it holds
/// this much, and the rest waits for the next turn of the frame loop.
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
///
/// Two tasks: a short one waits for the upgrade, then spawns the session's own task with the
/// connection moved in, so that the long-lived task keeps no room for the upgrade's state.
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
        tokio::spawn(async move {
            if greet(&engine, &socket, &mut conn).await.is_err() {
                socket.close_with(DisconnectReason::TransportError, Farewell::None);
                return;
            }
            // Nobody else writes a direct WebSocket session (a poll for it is refused before
            // it takes the lock). Awaited here rather than in the frame loop, whose future
            // would otherwise keep room for the wait.
            let _writer = socket.writer.lock().await;
            engine.announce(&socket);
            run(&engine, &socket, &mut conn).await;
        });
    });
}

/// Sends the open packet of a direct WebSocket session.
///
/// The frame is built before the future is made, so the future holds only the write: the
/// session's task is as large as its largest state, and this one comes first.
fn greet<'a, H: EngineHandler>(
    engine: &'a Engine<H>,
    socket: &'a Socket<H::Data>,
    conn: &'a mut Connection,
) -> impl Future<Output = std::io::Result<()>> + 'a {
    let config = engine.config();
    let open = OpenPacket {
        sid: socket.id(),
        upgrades: Vec::new(),
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: config.max_payload,
    };
    let frame = ws::encode(&open.to_packet(), socket.protocol());
    let payload = frame_payload(&frame);
    engine.traffic().websocket_out.count(1, payload.len());
    let mut out = Vec::with_capacity(header_len(payload.len()) + payload.len());
    encode_frame(&mut out, frame_opcode(&frame), payload);
    async move { conn.write(&out).await }
}

/// A WebSocket that cannot join its session: opened, then closed at once.
pub(crate) fn spawn_refusal(on_upgrade: OnUpgrade) {
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let mut conn = Connection::new(upgraded, 0, 1);
            conn.close(CLOSE_WITHOUT_CODE).await;
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
                socket.changed.notify_waiters();
                tracing::debug!(sid = %socket.id(), "upgraded to websocket");
                let mut conn = conn;
                // A last poll may still be writing; its answer goes first.
                let _writer = socket.writer.lock().await;
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
    // One wait for the next packet across the ticks: dropped by a tick, it could cut a pong
    // being written.
    let next = next_packet(socket, conn);
    tokio::pin!(next);
    loop {
        tokio::select! {
            packet = &mut next => return packet == Some(Packet::Upgrade),
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
/// Cancel-safe while it waits for bytes, not while it writes a pong (which may then be cut).
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

/// What is left to do after a read from the client, once its packet (if any) is handled.
enum Action {
    /// Nothing: read on.
    Continue,
    /// The packet fanned out to other sessions: read on once the sessions woken in this
    /// earlier round took their packets (see [`crate::pacing`]).
    Pace(u32),
    /// Answer a ping with this pong frame.
    Pong(Vec<u8>),
    /// The connection ends, for this reason, with this close frame first.
    End(DisconnectReason, Close),
}

/// The close frame a connection ends with.
#[derive(Clone, Copy)]
enum Close {
    /// None: the connection is cut (the client is gone, or the read failed).
    None,
    /// A close frame with this code and no reason ([`CloseCode::NO_STATUS`]: no code either).
    Code(CloseCode),
    /// 1009, naming the largest message accepted.
    TooBig(u64),
}

/// Handles one read from the client: a packet goes to the engine at once; what needs a write
/// is returned. A plain function, so that the event and its handling take no room in the
/// session's task.
fn react<H: EngineHandler>(
    engine: &Engine<H>,
    socket: &Arc<Socket<H::Data>>,
    event: Result<Event, ReadError>,
) -> Action {
    let frame = match event {
        Ok(Event::Text(text)) => ws::Frame::Text(text),
        Ok(Event::Binary(data)) => ws::Frame::Binary(data),
        Ok(Event::Ping(payload)) => return Action::Pong(pong(&payload)),
        Ok(Event::Pong) => return Action::Continue,
        // The close frame is echoed, with its code (none if it had none).
        Ok(Event::Close(code)) => {
            return Action::End(DisconnectReason::TransportClose, Close::Code(code))
        }
        // The client closed the TCP connection without a close frame (a process that exited, a
        // tab that was killed): it closed the connection, as the reference server reports it.
        Err(ReadError::Eof) => return Action::End(DisconnectReason::TransportClose, Close::None),
        Err(ReadError::Frame(FrameError::MessageTooLong { size, max })) => {
            // A frame or message over `max_payload`: refused as soon as its header says so,
            // before it is buffered. The client gets close code 1009.
            tracing::info!(
                reason = "payload_too_large",
                sid = %socket.id(),
                "refused: message of {size} bytes (max {max} bytes)"
            );
            count_refusal("payload_too_large");
            return Action::End(DisconnectReason::TransportError, Close::TooBig(max));
        }
        Err(ReadError::Frame(error)) => {
            tracing::debug!(sid = %socket.id(), %error, "websocket protocol error");
            return Action::End(
                DisconnectReason::TransportError,
                Close::Code(error.close_code()),
            );
        }
        Err(ReadError::Io(error)) => {
            tracing::debug!(sid = %socket.id(), %error, "websocket read failed");
            return Action::End(DisconnectReason::TransportError, Close::None);
        }
    };
    engine
        .traffic()
        .websocket_in
        .count(1, frame_payload(&frame).len());
    match ws::decode(frame, socket.protocol()) {
        Ok(packet) => {
            pacing::begin(&socket.outbox.pacing);
            engine.handle_packet(socket, packet);
            let window = engine.fanout_window();
            let back = pacing::end()
                .filter(|_| window > 0)
                .and_then(|round| pacing::rounds_back(round, window));
            if let Some(back) = back {
                Action::Pace(back)
            } else {
                Action::Continue
            }
        }
        Err(error) => {
            tracing::debug!(sid = %socket.id(), %error, "undecodable websocket frame");
            Action::End(
                DisconnectReason::ParseError,
                Close::Code(CloseCode::NO_STATUS),
            )
        }
    }
}

/// The frame loop of an established WebSocket session: reads client packets and writes queued
/// ones until either side closes. The caller holds the session's writer lock.
///
/// Each step is a future of its own ([`on_event`], [`on_ready`]): their states then share one
/// place in the session's task, where locals of one loop body kept apart for each await.
fn run<'a, H: EngineHandler>(
    engine: &'a Engine<H>,
    socket: &'a Arc<Socket<H::Data>>,
    // Borrowed, not moved: a connection moved into this future would be stored twice in the
    // session's task, once in the caller's state and once in this one.
    conn: &'a mut Connection,
) -> impl Future<Output = ()> + 'a {
    async move {
        socket.outbox.pacing.websocket();
        loop {
            // The step's result moves straight into `dispatch`: kept in a local, it would take
            // room in the task beside the step's future.
            match dispatch(next_step(socket, conn).await, engine, socket, conn).await {
                ControlFlow::Break(()) => break,
                ControlFlow::Continue(Paced::After(round)) => pacing::wait_for(round).await,
                ControlFlow::Continue(Paced::No) => {}
            }
        }
        socket.outbox.pacing.released();
    }
}

/// Waits for the client's next event (`Some`) or for the outbox to be ready (`None`), the
/// client's side first. Cancel-safe.
///
/// A hand-written select, in a future of its own: `tokio::select!` keeps two copies of its
/// futures in the task (~0.2 KiB here), and a wait kept in the loop's body would sit beside the
/// steps' futures instead of sharing their place.
fn next_step<'a, D>(
    socket: &'a Socket<D>,
    conn: &'a mut Connection,
) -> impl Future<Output = Option<Result<Event, ReadError>>> + 'a {
    async move {
        let mut ready = std::pin::pin!(socket.outbox.ready());
        poll_fn(|cx| {
            if let Poll::Ready(event) = conn.poll_event(cx) {
                return Poll::Ready(Some(event));
            }
            ready.as_mut().poll(cx).map(|()| None)
        })
        .await
    }
}

/// Whether the frame loop waits before its next step, until the sessions woken in this round
/// took their packets (see [`crate::pacing`]).
enum Paced {
    After(u32),
    No,
}

/// The step for what [`next_step`] found: the client's event, or (`None`) the outbox ready.
fn dispatch<'a, H: EngineHandler>(
    next: Option<Result<Event, ReadError>>,
    engine: &'a Engine<H>,
    socket: &'a Arc<Socket<H::Data>>,
    conn: &'a mut Connection,
) -> impl Future<Output = ControlFlow<(), Paced>> + 'a {
    match next {
        Some(event) => Either::Left(on_event(engine, socket, conn, event)),
        None => Either::Right(on_ready(engine, socket, conn)),
    }
}

/// Handles what the client sent: a packet goes to the engine, a ping gets its pong, anything
/// else ends the session (with a close frame when one is due).
fn on_event<'a, H: EngineHandler>(
    engine: &'a Engine<H>,
    socket: &'a Arc<Socket<H::Data>>,
    conn: &'a mut Connection,
    event: Result<Event, ReadError>,
) -> impl Future<Output = ControlFlow<(), Paced>> + 'a {
    // Handled before the future is made: the future keeps only the frame it has to write.
    let mut paced = Paced::No;
    let (frame, last) = match react(engine, socket, event) {
        Action::Continue => (Vec::new(), false),
        Action::Pace(round) => {
            paced = Paced::After(round);
            (Vec::new(), false)
        }
        Action::Pong(pong) => (pong, false),
        Action::End(reason, close) => {
            socket.close_with(reason, Farewell::None);
            // If the session was already closing (the client sent a close packet, then its
            // close frame), nobody else will complete the close: this transport is gone.
            socket.finish_close();
            let frame = match close {
                Close::None => Vec::new(),
                Close::Code(code) => close_frame(code, ""),
                Close::TooBig(max) => close_frame(
                    CloseCode::TOO_BIG,
                    &format!("Message too big (max {max} bytes)"),
                ),
            };
            (frame, true)
        }
    };
    async move {
        if last {
            conn.close(&frame).await;
            return ControlFlow::Break(());
        }
        if frame.is_empty() || conn.write(&frame).await.is_ok() {
            return ControlFlow::Continue(paced);
        }
        socket.close_with(DisconnectReason::TransportError, Farewell::None);
        socket.finish_close();
        conn.close(&[]).await;
        ControlFlow::Break(())
    }
}

/// Writes what the outbox holds, and ends the session once it has written its farewell.
///
/// The frames are gathered before the future is made, straight from the outbox, up to
/// [`WRITE_BUFFER_SIZE`] (past it by one packet at most): the future holds only that buffer
/// and the write. What is left stays queued, and the outbox's wake-up is stored again, so that
/// the loop comes back for it after looking at the client's side.
fn on_ready<'a, H: EngineHandler>(
    engine: &'a Engine<H>,
    socket: &'a Arc<Socket<H::Data>>,
    conn: &'a mut Connection,
) -> impl Future<Output = ControlFlow<(), Paced>> + 'a {
    // Read before taking packets: if it is set, its packet is already queued.
    let farewell = socket.farewell();
    let abort = farewell == Some(Farewell::Abort);
    let mut out = Vec::new();
    let mut more = false;
    if abort {
        // Dropping the connection cuts it without a close frame.
        socket.finish_close();
    } else {
        socket.outbox.pacing.taking();
        let protocol = socket.protocol();
        let (mut packets, mut bytes) = (0, 0);
        more = socket.outbox.take_while(|packet| {
            if out.len() >= WRITE_BUFFER_SIZE {
                return false;
            }
            let frame = ws::encode(packet, protocol);
            let payload = frame_payload(&frame);
            packets += 1;
            bytes += payload.len();
            out.reserve(header_len(payload.len()) + payload.len());
            encode_frame(&mut out, frame_opcode(&frame), payload);
            true
        });
        if more {
            socket.outbox.wake();
        }
        // Counted as handed to the connection: a write that fails ends the session.
        engine.traffic().websocket_out.count(packets, bytes);
    }
    let last = farewell.is_some() && !more;
    async move {
        if abort {
            return ControlFlow::Break(());
        }
        let written = out.is_empty() || conn.write(&out).await.is_ok();
        if written && !last {
            socket.outbox.pacing.written();
            return ControlFlow::Continue(Paced::No);
        }
        if written {
            conn.close(CLOSE_WITHOUT_CODE).await;
        } else {
            socket.close_with(DisconnectReason::TransportError, Farewell::None);
        }
        socket.finish_close();
        ControlFlow::Break(())
    }
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
