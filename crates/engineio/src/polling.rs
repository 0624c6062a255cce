//! HTTP long-polling: the handshake, the long-poll `GET` and the `POST` of client packets.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use ferrio_engineio_proto::{payload, OpenPacket, Packet, ProtocolVersion};
use http::{header, HeaderValue, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use crate::body::ResponseBody;
use crate::errors::{error_response, ErrorCode};
use crate::refusal::Refusal;
use crate::socket::{Farewell, FarewellPacket, TransportKind};
use crate::telemetry::Flow;
use crate::{DisconnectReason, Engine, EngineHandler, Socket};

/// Answers a polling handshake: opens a session and returns its open packet.
pub(crate) fn handshake<H: EngineHandler>(
    engine: &Engine<H>,
    parts: &http::request::Parts,
    ip: Option<IpAddr>,
    protocol: ProtocolVersion,
    supports_binary: bool,
) -> Response<ResponseBody> {
    let socket =
        match engine.open_session(parts, ip, protocol, TransportKind::Polling, supports_binary) {
            Ok(socket) => socket,
            Err(refusal) => return refusal.answer(ip, None),
        };
    let config = engine.config();
    let upgrades = if config.allow_upgrades && config.transports.websocket {
        vec!["websocket"]
    } else {
        Vec::new()
    };
    let open = OpenPacket {
        sid: socket.id(),
        upgrades,
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        max_payload: config.max_payload,
    };
    let mut response =
        payload_response(&[open.to_packet()], &socket, &engine.traffic().polling_out);
    engine.set_cookie(response.headers_mut(), socket.id());
    engine.announce(&socket);
    response
}

/// Answers a long-poll: waits for packets, then returns all that are queued.
///
/// A poll dropped before it is answered (the client's connection closed under it) ends the
/// session with "transport error" at once, as the reference server does, rather than leaving it
/// to the heartbeat.
pub(crate) async fn poll<D>(socket: Arc<Socket<D>>, sent: &Flow) -> Response<ResponseBody> {
    let mut abandoned = Abandoned(Some(socket.clone()));
    let response = wait_and_answer(socket, sent).await;
    // Answered: the guard lets go of the session without closing it.
    abandoned.0 = None;
    response
}

/// Closes its session when dropped: see [`poll`].
struct Abandoned<D>(Option<Arc<Socket<D>>>);

impl<D> Drop for Abandoned<D> {
    fn drop(&mut self) {
        if let Some(socket) = self.0.take() {
            socket.close_with(DisconnectReason::TransportError, Farewell::None);
        }
    }
}

async fn wait_and_answer<D>(socket: Arc<Socket<D>>, sent: &Flow) -> Response<ResponseBody> {
    if socket.transport() != TransportKind::Polling {
        return error_response(ErrorCode::BadRequest, None);
    }
    let Ok(_writer) = socket.writer.try_lock() else {
        // Two polls at once break packet ordering: the spec closes the session.
        socket.close_with(
            DisconnectReason::TransportError,
            Farewell::Packet(FarewellPacket::Close),
        );
        return error_response(ErrorCode::BadRequest, None);
    };
    let mut packets = Vec::new();
    loop {
        // Read the farewell before draining: if it is set, its packet is already queued.
        let farewell = socket.farewell();
        socket.outbox.drain_into(&mut packets);
        match farewell {
            Some(Farewell::Abort) => {
                socket.finish_close();
                return Response::new(ResponseBody::abort());
            }
            Some(Farewell::Packet(_)) if packets.len() > 1 => {
                // Packets queued before the close go out on their own, and the farewell with the
                // next poll, as the reference server does: clients act on a close packet at
                // once but on messages a tick later, so sharing a response would let the close
                // overtake, say, a Socket.IO DISCONNECT before it.
                if let Some(last) = packets.pop() {
                    socket.outbox.force_push(last);
                }
                break;
            }
            Some(_) => {
                socket.finish_close();
                if packets.is_empty() {
                    packets.push(Packet::Close);
                }
                break;
            }
            None if !packets.is_empty() => break,
            None => {
                let changed = socket.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                // Checked after subscribing, so an upgrade completing now is not missed: the
                // client completed an upgrade while this poll waited, which is now obsolete.
                if socket.transport() != TransportKind::Polling {
                    return error_response(ErrorCode::BadRequest, None);
                }
                // Either way the loop looks again: woken by an upgrade, the check above answers;
                // by a close, the farewell does.
                tokio::select! {
                    () = socket.outbox.ready() => {}
                    () = changed => {}
                }
            }
        }
    }
    payload_response(&packets, &socket, sent)
}

/// Takes a `POST` of client packets.
pub(crate) async fn post<H, B>(
    engine: &Engine<H>,
    socket: Arc<Socket<H::Data>>,
    request: Request<B>,
) -> Response<ResponseBody>
where
    H: EngineHandler,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if socket.transport() != TransportKind::Polling {
        return error_response(ErrorCode::BadRequest, None);
    }
    if socket.posting.swap(true, Ordering::AcqRel) {
        socket.close_with(
            DisconnectReason::TransportError,
            Farewell::Packet(FarewellPacket::Close),
        );
        return error_response(ErrorCode::BadRequest, None);
    }
    let config = engine.config();
    let peer = request.extensions().get::<SocketAddr>().map(SocketAddr::ip);
    let read = read_body(config.max_payload, request);
    // Bounds how long a client may hold the request (and this task) open while trickling its
    // body; the header read timeout of `serve` covers the part before.
    let result = match tokio::time::timeout(config.polling_body_timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(BodyProblem::TimedOut),
    };
    socket.posting.store(false, Ordering::Release);
    let (body, binary) = match result {
        Ok(read) => read,
        Err(BodyProblem::TooLarge) => {
            socket.close_with(
                DisconnectReason::TransportError,
                Farewell::Packet(FarewellPacket::Close),
            );
            return Refusal::PayloadTooLarge {
                max: config.max_payload,
            }
            .answer(peer, Some(socket.id()));
        }
        Err(BodyProblem::TimedOut) => {
            socket.close_with(
                DisconnectReason::TransportError,
                Farewell::Packet(FarewellPacket::Close),
            );
            return Refusal::BodyTimeout {
                timeout: config.polling_body_timeout,
            }
            .answer(peer, Some(socket.id()));
        }
        Err(BodyProblem::Failed) => {
            socket.close_with(DisconnectReason::TransportError, Farewell::None);
            return error_response(ErrorCode::BadRequest, None);
        }
    };
    let body_len = body.len();
    let packets = match payload::decode(body, socket.protocol(), binary) {
        Ok(packets) => packets,
        Err(error) => {
            tracing::debug!(sid = %socket.id(), %error, "undecodable polling body");
            socket.close_with(DisconnectReason::ParseError, Farewell::None);
            return error_response(ErrorCode::BadRequest, None);
        }
    };
    engine.traffic().polling_in.count(packets.len(), body_len);
    for packet in packets {
        let close = matches!(packet, Packet::Close);
        engine.handle_packet(&socket, packet);
        if close {
            // The client is leaving and will not poll again: end the session now, as the
            // reference server does, rather than holding it (counted, its sockets connected)
            // until a next poll or the heartbeat gives up. A pending poll still finds the
            // farewell noop queued and is answered with it. What follows the close packet in
            // the body is ignored: the session takes no more packets.
            socket.finish_close();
            break;
        }
    }
    let mut response = Response::new(ResponseBody::full(Bytes::from_static(b"ok")));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
}

enum BodyProblem {
    TooLarge,
    TimedOut,
    Failed,
}

/// Reads a request body, refusing it as soon as it passes `max` bytes.
async fn read_body<B>(max: u64, request: Request<B>) -> Result<(Bytes, bool), BodyProblem>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let binary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max) {
        return Err(BodyProblem::TooLarge);
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok((collected.to_bytes(), binary)),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(BodyProblem::TooLarge),
        Err(_) => Err(BodyProblem::Failed),
    }
}

/// The response carrying `packets`, counted in `sent`.
fn payload_response<D>(
    packets: &[Packet],
    socket: &Socket<D>,
    sent: &Flow,
) -> Response<ResponseBody> {
    let encoded = payload::encode(packets, socket.protocol(), socket.supports_binary());
    sent.count(packets.len(), encoded.body.len());
    let mut response = Response::new(ResponseBody::full(encoded.body));
    let content_type = if encoded.binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=UTF-8"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
