//! The WebSocket transport: a direct handshake, the upgrade probe, and the frame loops.

use std::sync::Arc;

use bytes::Bytes;
use ferrio_engineio_proto::ws::{self, Frame};
use ferrio_engineio_proto::{OpenData, Packet, ProtocolVersion};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderMap};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use super::stream::{self, Stream};
use super::{Incoming, Limits, Transport, TransportError};
use crate::url::EngineUrl;
use crate::TransportKind;

/// A client WebSocket, over TCP or TLS.
pub(crate) type WsStream = WebSocketStream<Stream>;

/// Read buffer of a WebSocket, in bytes: Engine.IO messages are mostly small, and the
/// default 128 KiB per connection is a lot for a load-test client holding thousands.
const READ_BUFFER: usize = 8 * 1024;

/// Opens a WebSocket to the Engine.IO endpoint, joining session `sid` when given.
pub(crate) async fn connect(
    url: &EngineUrl,
    headers: &HeaderMap,
    sid: Option<&str>,
    limits: Limits,
) -> Result<WsStream, TransportError> {
    let mut request = url.websocket_uri(sid).into_client_request()?;
    for (name, value) in headers {
        if name != header::HOST {
            request.headers_mut().append(name, value.clone());
        }
    }
    let stream = stream::connect(url).await?;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(limits.max_message_size))
        .max_frame_size(Some(limits.max_message_size));
    let (stream, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(stream)
}

/// Opens a session straight over WebSocket: the server's first frame is the open packet.
pub(crate) async fn open(
    url: Arc<EngineUrl>,
    headers: Arc<HeaderMap>,
    limits: Limits,
) -> Result<(OpenData, Transport), TransportError> {
    let mut stream = connect(&url, &headers, None, limits).await?;
    let open = match next_packet(&mut stream).await? {
        Packet::Open(json) => {
            OpenData::parse(&json).map_err(|e| TransportError::Handshake(e.to_string()))?
        }
        other => {
            return Err(TransportError::Handshake(format!(
                "expected an open packet, got {:?}",
                other.packet_type()
            )))
        }
    };
    Ok((open, start(stream, Vec::new())))
}

/// Probes an upgrade of session `sid`: opens a WebSocket, sends `2probe`, waits for `3probe`.
/// Returns the WebSocket, ready for the upgrade packet.
pub(crate) async fn probe(
    url: Arc<EngineUrl>,
    headers: Arc<HeaderMap>,
    sid: String,
    limits: Limits,
) -> Result<WsStream, TransportError> {
    let mut stream = connect(&url, &headers, Some(&sid), limits).await?;
    send_packet(&mut stream, &Packet::ping_probe()).await?;
    match next_packet(&mut stream).await? {
        packet @ Packet::Pong(_) if packet.is_probe() => Ok(stream),
        other => Err(TransportError::Handshake(format!(
            "expected the probe's pong, got {:?}",
            other.packet_type()
        ))),
    }
}

/// Starts the frame loops over an open WebSocket; `first` are sent before anything queued
/// later (the upgrade packet and what waited for it).
pub(crate) fn start(stream: WsStream, first: Vec<Packet>) -> Transport {
    let transport = Transport::start(TransportKind::WebSocket, None, |channels| {
        let (sink, source) = stream.split();
        let reader = tokio::spawn(read_loop(source, channels.incoming.clone()));
        let writer = tokio::spawn(write_loop(sink, channels.outgoing, channels.incoming));
        (reader, writer)
    });
    for packet in first {
        transport.send(packet);
    }
    transport
}

async fn send_packet(stream: &mut WsStream, packet: &Packet) -> Result<(), TransportError> {
    stream.send(to_ws(packet)?).await?;
    Ok(())
}

/// The next Engine.IO packet, skipping WebSocket control frames.
async fn next_packet(stream: &mut WsStream) -> Result<Packet, TransportError> {
    loop {
        let message = stream.next().await.ok_or(TransportError::Closed)??;
        if let Some(packet) = from_ws(message)? {
            return Ok(packet);
        }
    }
}

/// The packet a data frame carries; `None` for control frames; a close frame is the end.
fn from_ws(message: WsMessage) -> Result<Option<Packet>, TransportError> {
    let frame = match message {
        WsMessage::Text(text) => Frame::Text(Bytes::from(text)),
        WsMessage::Binary(data) => Frame::Binary(data),
        WsMessage::Close(_) => return Err(TransportError::Closed),
        WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => return Ok(None),
    };
    Ok(Some(ws::decode(frame, ProtocolVersion::V4)?))
}

fn to_ws(packet: &Packet) -> Result<WsMessage, TransportError> {
    Ok(match ws::encode(packet, ProtocolVersion::V4) {
        Frame::Text(text) => WsMessage::Text(
            Utf8Bytes::try_from(text)
                .map_err(|_| TransportError::Handshake("text packet is not UTF-8".to_owned()))?,
        ),
        Frame::Binary(data) => WsMessage::Binary(data),
    })
}

async fn read_loop(mut source: SplitStream<WsStream>, incoming: mpsc::Sender<Incoming>) {
    loop {
        let item = match source.next().await {
            None => Err(TransportError::Closed),
            Some(Err(error)) => Err(TransportError::from(error)),
            Some(Ok(message)) => match from_ws(message) {
                Ok(None) => continue,
                Ok(Some(packet)) => Ok(packet),
                Err(error) => Err(error),
            },
        };
        let last = item.is_err();
        if incoming.send(item).await.is_err() || last {
            return;
        }
    }
}

/// Writes queued packets, flushing once the queue is empty. Closes the WebSocket when the queue
/// closes or after a close packet.
async fn write_loop(
    mut sink: SplitSink<WsStream, WsMessage>,
    mut outgoing: mpsc::UnboundedReceiver<Packet>,
    incoming: mpsc::Sender<Incoming>,
) {
    while let Some(packet) = outgoing.recv().await {
        let closing = matches!(packet, Packet::Close);
        let written = async {
            sink.feed(to_ws(&packet)?).await?;
            if closing || outgoing.is_empty() {
                sink.flush().await?;
            }
            Ok::<_, TransportError>(())
        }
        .await;
        if let Err(error) = written {
            let _ = incoming.send(Err(error)).await;
            return;
        }
        if closing {
            break;
        }
    }
    let _ = sink.close().await;
}
