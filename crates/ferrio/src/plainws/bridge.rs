//! A plain WebSocket client's own Socket.IO socket on this server.
//!
//! The bridge opens a Socket.IO connection to the server's own service in memory: an HTTP/1.1
//! connection over a [`tokio::io::duplex`] pipe, upgraded to WebSocket, carrying Engine.IO v4
//! and Socket.IO v5 (through the shared codecs). The request carries the client's headers
//! (`Authorization`, cookies, `Origin`) and address, and the CONNECT carries its `?token=`, so
//! the socket passes the same connection limits, origin check, JWT auth, connect webhook and
//! room policy as any Socket.IO client, and every room emit (a Socket.IO client's `publish`,
//! the HTTP API, the adapter of other nodes) reaches it unchanged.

use std::net::SocketAddr;
use std::time::Duration;

use ferrio_socketio::{Payload, SocketIoService};
use ferrio_socketio_proto::{
    encode_text_into, Decoder, DecoderConfig, Packet, PacketData, PacketKind,
};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::DuplexStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::webhook::body::inline_binary;

/// The in-memory pipe's buffer in each direction.
const PIPE_BUFFER: usize = 64 * 1024;

/// Headers of the client's upgrade request that belong to its own WebSocket, not the bridge's.
const OWN_HEADERS: [&str; 9] = [
    "host",
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "content-length",
    "transfer-encoding",
];

/// Who the client is, as its upgrade request showed.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The request's headers.
    pub(crate) headers: HeaderMap,
    /// The peer address of its TCP connection.
    pub(crate) peer: Option<SocketAddr>,
}

/// The server refused the socket: its CONNECT_ERROR, or the handshake's refusal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refused {
    pub(crate) message: String,
    /// The `data` of the CONNECT_ERROR (`{"reason": ...}`), if any.
    pub(crate) data: Option<Value>,
}

impl Refused {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }
}

/// Something the socket received.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound {
    /// An event, its binary arguments as `{"base64": ...}`.
    Event { name: String, args: Vec<Value> },
    /// The answer to an event the bridge sent with ack id `id`.
    Ack { id: u64, args: Vec<Value> },
    /// The server ended the socket (DISCONNECT, or the connection closed): the reason.
    Closed(String),
}

/// The open socket.
pub(crate) struct Bridge {
    ws: WebSocketStream<DuplexStream>,
    decoder: Decoder,
    nsp: String,
    /// The socket's id.
    pub(crate) sid: String,
}

/// Encodes a Socket.IO packet as the Engine.IO text message carrying it.
fn engine_text(packet: &Packet) -> String {
    let mut text = String::from("4");
    encode_text_into(packet, &mut text);
    text
}

impl Bridge {
    /// Opens the socket on namespace `nsp` with CONNECT payload `auth`, within `timeout`.
    /// Cancel-safe: dropping the future drops the connection.
    pub(crate) async fn open(
        service: SocketIoService,
        engine_path: &str,
        origin: Origin,
        nsp: &str,
        auth: Value,
        max_message: usize,
        timeout: Duration,
    ) -> Result<Self, Refused> {
        match tokio::time::timeout(
            timeout,
            Self::open_now(service, engine_path, origin, nsp, auth, max_message),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(Refused::new(format!(
                "the server did not accept the connection within {}",
                crate::config::duration::format(timeout)
            ))),
        }
    }

    async fn open_now(
        service: SocketIoService,
        engine_path: &str,
        origin: Origin,
        nsp: &str,
        auth: Value,
        max_message: usize,
    ) -> Result<Self, Refused> {
        let (client_end, server_end) = tokio::io::duplex(PIPE_BUFFER);
        let peer = origin.peer;
        let serve = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            if let Some(peer) = peer {
                request.extensions_mut().insert::<SocketAddr>(peer);
            }
            let mut service = service.clone();
            tower_service::Service::call(&mut service, request)
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server_end), serve)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::trace!(%error, "plain WebSocket bridge connection ended");
            }
        });

        let mut request = format!("ws://ferrio.internal{engine_path}?EIO=4&transport=websocket")
            .into_client_request()
            .map_err(|e| Refused::new(format!("internal error: {e}")))?;
        for (name, value) in &origin.headers {
            if !OWN_HEADERS.contains(&name.as_str()) {
                request.headers_mut().append(name.clone(), value.clone());
            }
        }
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(max_message.max(1024) * 2);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, client_end, Some(config))
                .await
                .map_err(|error| match error {
                    tokio_tungstenite::tungstenite::Error::Http(response) => {
                        handshake_refusal(response.status(), response.body().as_deref())
                    }
                    other => Refused::new(format!("cannot open the connection: {other}")),
                })?;
        let mut bridge = Self {
            ws,
            decoder: Decoder::new(DecoderConfig::default()),
            nsp: nsp.to_owned(),
            sid: String::new(),
        };
        let connect = engine_text(&Packet::connect(nsp, Some(auth)));
        let mut sent_connect = false;
        loop {
            let Some(frame) = bridge.ws.next().await else {
                return Err(Refused::new("the server closed the connection"));
            };
            let frame = frame.map_err(|e| Refused::new(format!("connection failed: {e}")))?;
            match frame {
                Message::Text(text) if text.starts_with('0') && !sent_connect => {
                    sent_connect = true;
                    bridge.send_text(connect.clone()).await?;
                }
                Message::Text(text) if text.as_str() == "2" => {
                    bridge.send_text("3".to_owned()).await?;
                }
                Message::Text(text) if text.starts_with('4') => {
                    match bridge.decoder.handle_text(&text[1..]) {
                        Ok(Some(Packet {
                            kind: PacketKind::Connect { data, .. },
                            ..
                        })) => {
                            bridge.sid = data
                                .as_ref()
                                .and_then(|d| d.get("sid"))
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned();
                            return Ok(bridge);
                        }
                        Ok(Some(Packet {
                            kind: PacketKind::ConnectError(value),
                            ..
                        })) => return Err(connect_refusal(value)),
                        // Events cannot come before the CONNECT reply; anything else is ignored.
                        _ => {}
                    }
                }
                Message::Close(_) => return Err(Refused::new("the server closed the connection")),
                _ => {}
            }
        }
    }

    async fn send_text(&mut self, text: String) -> Result<(), Refused> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| Refused::new(format!("connection failed: {e}")))
    }

    /// Sends event `name` with these arguments, asking for ack `ack` when given.
    pub(crate) async fn emit(
        &mut self,
        name: &str,
        args: Vec<Value>,
        ack: Option<u64>,
    ) -> Result<(), String> {
        let packet = Packet::event(self.nsp.as_str(), PacketData::event(name, args), ack);
        self.ws
            .send(Message::text(engine_text(&packet)))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next thing the socket receives; answers the heartbeat by itself. Cancel-safe.
    pub(crate) async fn next(&mut self) -> Inbound {
        loop {
            let frame = match self.ws.next().await {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return Inbound::Closed(format!("transport error: {error}")),
                None => return Inbound::Closed("transport close".to_owned()),
            };
            let decoded = match frame {
                Message::Text(text) if text.as_str() == "2" => {
                    if self.ws.send(Message::text("3")).await.is_err() {
                        return Inbound::Closed("transport close".to_owned());
                    }
                    continue;
                }
                Message::Text(text) if text.starts_with('1') => {
                    return Inbound::Closed("server closed the connection".to_owned())
                }
                Message::Text(text) if text.starts_with('4') => {
                    self.decoder.handle_text(&text[1..])
                }
                Message::Binary(data) => self.decoder.handle_binary(data),
                Message::Close(_) => return Inbound::Closed("transport close".to_owned()),
                _ => continue,
            };
            let packet = match decoded {
                Ok(Some(packet)) => packet,
                Ok(None) => continue,
                Err(error) => return Inbound::Closed(format!("parse error: {error}")),
            };
            match packet.kind {
                PacketKind::Event { data, .. } => {
                    let mut payload = Payload::from(data);
                    if payload.args.is_empty() {
                        continue;
                    }
                    let name = match payload.args.remove(0) {
                        Value::String(name) => name,
                        other => other.to_string(),
                    };
                    return Inbound::Event {
                        name,
                        args: inline_binary(&payload),
                    };
                }
                PacketKind::Ack { data, id } => {
                    return Inbound::Ack {
                        id,
                        args: inline_binary(&Payload::from(data)),
                    }
                }
                PacketKind::Disconnect => {
                    return Inbound::Closed("server namespace disconnect".to_owned())
                }
                _ => continue,
            }
        }
    }

    /// Leaves: closes the connection, so the server sees the client go.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
    }
}

/// A CONNECT_ERROR payload: `{message, data}`, or a string.
fn connect_refusal(value: Value) -> Refused {
    match value {
        Value::Object(mut map) => Refused {
            message: match map.remove("message") {
                Some(Value::String(m)) => m,
                Some(other) => other.to_string(),
                None => "connection refused".to_owned(),
            },
            data: map.remove("data"),
        },
        Value::String(message) => Refused::new(message),
        other => Refused::new(other.to_string()),
    }
}

/// A refused handshake (403 origin, 429 rate limit, 503 full): the engine's JSON message.
fn handshake_refusal(status: http::StatusCode, body: Option<&[u8]>) -> Refused {
    let message = body
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned));
    Refused {
        message: match message {
            Some(message) => format!("connection refused: {message}"),
            None => format!("connection refused ({status})"),
        },
        data: Some(serde_json::json!({ "status": status.as_u16() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals() {
        assert_eq!(
            connect_refusal(
                json!({"message": "token expired", "data": {"reason": "expired_token"}})
            ),
            Refused {
                message: "token expired".into(),
                data: Some(json!({"reason": "expired_token"}))
            }
        );
        assert_eq!(
            handshake_refusal(
                http::StatusCode::FORBIDDEN,
                Some(br#"{"code":4,"message":"Origin not allowed"}"#)
            )
            .message,
            "connection refused: Origin not allowed"
        );
    }

    #[test]
    fn packets_become_engine_messages() {
        let packet = Packet::event(
            "/",
            PacketData::event("join", [json!({"room": "a"})]),
            Some(7),
        );
        assert_eq!(engine_text(&packet), r#"427["join",{"room":"a"}]"#);
    }
}
