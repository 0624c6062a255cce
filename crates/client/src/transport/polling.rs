//! HTTP long-polling: the handshake `GET`, then a loop of long-poll `GET`s that receive and a
//! writer that `POST`s queued packets, batched into v4 payloads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ferrio_engineio_proto::{payload, Message, OpenData, Packet, ProtocolVersion};
use http::{header, HeaderMap, HeaderValue, Method, Request};
use http_body_util::Full;
use tokio::sync::mpsc;

use super::http::{expect_ok, HttpConnection};
use super::{Incoming, Limits, Transport, TransportError};
use crate::url::EngineUrl;
use crate::TransportKind;

/// Makes every request URI unique (the `t` parameter), so no cache between client and server
/// answers a poll.
static CACHE_BUSTER: AtomicU64 = AtomicU64::new(0);

/// What every request of one polling session needs.
#[derive(Debug)]
struct Session {
    url: Arc<EngineUrl>,
    headers: Arc<HeaderMap>,
    limits: Limits,
    sid: Option<String>,
}

impl Session {
    fn request(&self, method: Method, body: Bytes) -> Result<Request<Full<Bytes>>, TransportError> {
        let uri = self.url.path_and_query(
            TransportKind::Polling,
            self.sid.as_deref(),
            Some(CACHE_BUSTER.fetch_add(1, Ordering::Relaxed)),
        );
        let mut request = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(Full::new(body))
            .map_err(|e| TransportError::Handshake(format!("invalid request: {e}")))?;
        let headers = request.headers_mut();
        for (name, value) in self.headers.iter() {
            headers.append(name, value.clone());
        }
        let host = HeaderValue::from_str(&self.url.authority)
            .map_err(|e| TransportError::Handshake(format!("invalid host: {e}")))?;
        headers.insert(header::HOST, host);
        if method == Method::POST {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain;charset=UTF-8"),
            );
        }
        Ok(request)
    }
}

/// Opens a session with a polling handshake. Returns the server's open data and the running
/// transport; packets that came with the open packet are the first it receives.
pub(crate) async fn open(
    url: Arc<EngineUrl>,
    headers: Arc<HeaderMap>,
    limits: Limits,
) -> Result<(OpenData, Transport), TransportError> {
    let mut session = Session {
        url,
        headers,
        limits,
        sid: None,
    };
    let mut conn = HttpConnection::new(session.url.clone());
    let (status, body) = conn
        .send(
            session.request(Method::GET, Bytes::new())?,
            limits.max_message_size,
        )
        .await?;
    let body = expect_ok(status, body)?;
    let mut packets = payload::decode(body, ProtocolVersion::V4, false)?.into_iter();
    let open = match packets.next() {
        Some(Packet::Open(json)) => {
            OpenData::parse(&json).map_err(|e| TransportError::Handshake(e.to_string()))?
        }
        Some(other) => {
            return Err(TransportError::Handshake(format!(
                "expected an open packet, got {:?}",
                other.packet_type()
            )))
        }
        None => return Err(TransportError::Handshake("empty response".to_owned())),
    };
    let leftover: Vec<Packet> = packets.collect();

    session.sid = Some(open.sid.clone());
    if let Some(max) = open.max_payload {
        session.limits.max_payload = usize::try_from(max).unwrap_or(usize::MAX);
    }
    let session = Arc::new(session);
    let pause = Arc::new(AtomicBool::new(false));
    let transport = Transport::start(TransportKind::Polling, Some(pause.clone()), |channels| {
        let writer_conn = HttpConnection::new(session.url.clone());
        let reader = tokio::spawn(poll_loop(
            session.clone(),
            conn,
            leftover,
            channels.incoming.clone(),
            pause,
        ));
        let writer = tokio::spawn(write_loop(
            session,
            writer_conn,
            channels.outgoing,
            channels.incoming,
        ));
        (reader, writer)
    });
    Ok((open, transport))
}

/// Receives: one long-poll `GET` after another, until paused, closed or failed.
async fn poll_loop(
    session: Arc<Session>,
    mut conn: HttpConnection,
    leftover: Vec<Packet>,
    incoming: mpsc::Sender<Incoming>,
    pause: Arc<AtomicBool>,
) {
    if !forward(&incoming, leftover).await {
        return;
    }
    loop {
        if pause.load(Ordering::Acquire) {
            return;
        }
        let received = async {
            let request = session.request(Method::GET, Bytes::new())?;
            let (status, body) = conn.send(request, session.limits.max_message_size).await?;
            let body = expect_ok(status, body)?;
            Ok(payload::decode(body, ProtocolVersion::V4, false)?)
        }
        .await;
        match received {
            Ok(packets) => {
                if !forward(&incoming, packets).await {
                    return;
                }
            }
            Err(error) => {
                let _ = incoming.send(Err(error)).await;
                return;
            }
        }
    }
}

/// Passes packets on; false when the transport is done (a close packet, or nobody listening).
async fn forward(incoming: &mpsc::Sender<Incoming>, packets: Vec<Packet>) -> bool {
    for packet in packets {
        let close = matches!(packet, Packet::Close);
        if incoming.send(Ok(packet)).await.is_err() || close {
            return false;
        }
    }
    true
}

/// Sends: every packet queued at the time goes in one `POST`, up to the server's `maxPayload`.
/// Ends when the queue closes and is empty, after a close packet, or on a failure (reported
/// through `incoming`).
async fn write_loop(
    session: Arc<Session>,
    mut conn: HttpConnection,
    mut outgoing: mpsc::UnboundedReceiver<Packet>,
    incoming: mpsc::Sender<Incoming>,
) {
    let mut held_over = None;
    loop {
        let first = match held_over.take() {
            Some(packet) => packet,
            None => match outgoing.recv().await {
                Some(packet) => packet,
                None => return,
            },
        };
        let mut size = encoded_len(&first);
        let mut batch = vec![first];
        while let Ok(packet) = outgoing.try_recv() {
            let len = encoded_len(&packet) + 1;
            if size + len > session.limits.max_payload {
                held_over = Some(packet);
                break;
            }
            size += len;
            batch.push(packet);
        }
        let closing = batch.iter().any(|packet| matches!(packet, Packet::Close));
        let body = payload::encode(&batch, ProtocolVersion::V4, true).body;
        let sent = async {
            let request = session.request(Method::POST, body)?;
            let (status, body) = conn.send(request, session.limits.max_message_size).await?;
            expect_ok(status, body).map(drop)
        };
        let result = match tokio::time::timeout(session.limits.request_timeout, sent).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout("POST")),
        };
        if let Err(error) = result {
            let _ = incoming.send(Err(error)).await;
            return;
        }
        if closing {
            return;
        }
    }
}

/// The size of a packet in a v4 payload.
fn encoded_len(packet: &Packet) -> usize {
    match packet {
        Packet::Message(Message::Binary(data)) => 1 + data.len().div_ceil(3) * 4,
        Packet::Message(Message::Text(text)) => 1 + text.len(),
        Packet::Open(data) | Packet::Ping(data) | Packet::Pong(data) => 1 + data.len(),
        Packet::Close | Packet::Upgrade | Packet::Noop => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_encoding() {
        let packets = [
            Packet::Message(Message::from("héllo")),
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
            Packet::Pong(Bytes::from_static(b"probe")),
            Packet::Close,
        ];
        for packet in &packets {
            let encoded = payload::encode(std::slice::from_ref(packet), ProtocolVersion::V4, true);
            assert_eq!(encoded_len(packet), encoded.body.len(), "{packet:?}");
        }
    }
}
