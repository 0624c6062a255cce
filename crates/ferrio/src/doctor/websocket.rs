//! `upgrade`: the WebSocket upgrade from a polling session, as every default client does it
//! (the WebSocket request with the session id, the `2probe`/`3probe` exchange, the `5`), through
//! whatever proxy is in front. `websocket`: a WebSocket opened directly (clients configured with
//! `transports: ["websocket"]`), kept open for the `heartbeat` step.

use std::time::{Duration, Instant};

use ferrio_engineio_proto::{OpenData, ProtocolVersion};
use futures_util::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::probe::{self, WsStream};
use super::report::Outcome;
use super::target::Target;
use super::{handshake, human};

/// A WebSocket session the `websocket` step opened, for the heartbeat watch.
pub(crate) struct Opened {
    pub(crate) stream: WsStream,
    pub(crate) open: OpenData,
    /// When the open packet arrived.
    pub(crate) at: Instant,
}

/// The upgrade of a polling session to WebSocket.
pub(crate) async fn upgrade(target: &Target, timeout: Duration) -> Outcome {
    let query = target.query(4, "polling", None);
    let open = match probe::http(target, Method::GET, &query, &[], "").await {
        Ok(response) if response.status == StatusCode::OK => {
            match handshake::read_open(&response.body, ProtocolVersion::V4) {
                Ok(open) => open,
                Err(outcome) => return outcome,
            }
        }
        Ok(response) => {
            return Outcome::fail(
                format!("a second handshake answered {}", response.status),
                "the handshake is not stable: check the server's limits and the proxy",
            )
        }
        Err(error) => {
            return Outcome::fail(
                format!("a second handshake failed: {error}"),
                "check the server",
            )
        }
    };
    if !open.upgrades.iter().any(|u| u == "websocket") {
        handshake::close(target, 4, &open.sid, timeout);
        return Outcome::warn(
            "the server does not offer the upgrade to WebSocket (upgrades is empty): clients \
             stay on long-polling",
            "enable the websocket transport and upgrades on the server",
        );
    }
    let started = Instant::now();
    let mut stream = match probe::websocket(target, &target.websocket_uri(Some(&open.sid))).await {
        Ok(stream) => stream,
        Err(error) => {
            handshake::close(target, 4, &open.sid, timeout);
            let (why, fix) = probe::diagnose_ws(&error);
            return Outcome::fail(
                format!("the upgrade from polling failed: {why}"),
                format!(
                    "{fix}\nclients then stay on long-polling, or fail if they only use WebSocket"
                ),
            )
            .code(probe::ws_code(&error));
        }
    };
    let switched = started.elapsed();
    if let Err(error) = stream.send(WsMessage::text("2probe")).await {
        return Outcome::fail(
            format!("cannot send the upgrade probe: {error}"),
            probe::NGINX_UPGRADE_FIX,
        );
    }
    let outcome = loop {
        match stream.next().await {
            Some(Ok(WsMessage::Text(text))) if text.as_str() == "3probe" => {
                let _ = stream.send(WsMessage::text("5")).await;
                break Outcome::pass(format!(
                    "101 Switching Protocols in {}, probe answered in {}, upgraded",
                    human(switched),
                    human(started.elapsed())
                ));
            }
            Some(Ok(WsMessage::Text(_) | WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(WsMessage::Binary(_) | WsMessage::Frame(_))) => {}
            Some(Ok(WsMessage::Close(frame))) => {
                break Outcome::fail(
                    format!("the WebSocket was closed instead of answering the probe ({frame:?})"),
                    "the server refused the upgrade of this session: with several nodes, the \
                     WebSocket must reach the node of the handshake (sticky sessions: nginx \
                     `ip_hash;` in the upstream)",
                )
            }
            Some(Err(error)) => {
                break Outcome::fail(
                    format!("the WebSocket failed before the probe was answered: {error}"),
                    probe::NGINX_UPGRADE_FIX,
                )
            }
            None => {
                break Outcome::fail(
                    "the WebSocket ended before the probe was answered",
                    probe::NGINX_UPGRADE_FIX,
                )
            }
        }
    };
    let _ = stream.close(None).await;
    outcome
}

/// A WebSocket opened directly; its first frame must be the open packet.
pub(crate) async fn direct(target: &Target, _timeout: Duration) -> (Outcome, Option<Opened>) {
    let mut stream = match probe::websocket(target, &target.websocket_uri(None)).await {
        Ok(stream) => stream,
        Err(error) => {
            let (why, fix) = probe::diagnose_ws(&error);
            return (
                Outcome::fail(
                    format!("a direct WebSocket failed: {why}"),
                    format!("{fix}\nclients with transports: [\"websocket\"] cannot connect"),
                )
                .code(probe::ws_code(&error)),
                None,
            );
        }
    };
    let at = Instant::now();
    loop {
        match stream.next().await {
            Some(Ok(WsMessage::Text(text))) => {
                let open = text
                    .as_str()
                    .strip_prefix('0')
                    .and_then(|json| OpenData::parse(json.as_bytes()).ok());
                return match open {
                    Some(open) => (
                        Outcome::pass(format!(
                            "opened, sid {:?}, pingInterval {} ms",
                            open.sid,
                            open.ping_interval.as_millis()
                        )),
                        Some(Opened { stream, open, at }),
                    ),
                    None => (
                        Outcome::fail(
                            format!(
                                "the first frame is not an Engine.IO open packet: {:?}",
                                probe::snippet(text.as_bytes())
                            ),
                            "this WebSocket endpoint is not a Socket.IO server: check the \
                             port and --path",
                        ),
                        None,
                    ),
                };
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
            Some(Ok(other)) => {
                return (
                    Outcome::fail(
                        format!("the first frame is not an Engine.IO open packet: {other:?}"),
                        "this WebSocket endpoint is not a Socket.IO server: check the port \
                         and --path",
                    ),
                    None,
                )
            }
            Some(Err(error)) => {
                return (
                    Outcome::fail(
                        format!("the WebSocket failed before the open packet: {error}"),
                        probe::NGINX_UPGRADE_FIX,
                    ),
                    None,
                )
            }
            None => {
                return (
                    Outcome::fail(
                        "the WebSocket ended before the open packet",
                        probe::NGINX_UPGRADE_FIX,
                    ),
                    None,
                )
            }
        }
    }
}
