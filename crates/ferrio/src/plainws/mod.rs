//! The plain WebSocket endpoint (`ws.path`, `/ws` by default) for clients without a Socket.IO
//! library: JSON text frames to join, leave, publish and emit, events back as JSON, and a
//! heartbeat of WebSocket pings. `docs/plain-websocket.md` documents the frames.
//!
//! Each client gets a real Socket.IO socket of this server through [`bridge`], so auth, the
//! connect webhook, the room policy, rate limits and every room emit apply to it exactly as to
//! a Socket.IO client. [`frames`] and [`heartbeat`] hold the protocol without I/O; [`session`]
//! drives one client.

pub(crate) mod bridge;
pub(crate) mod frames;
pub(crate) mod heartbeat;
pub(crate) mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use ferrio_socketio::SocketIoService;
use http::{header, HeaderMap, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::config::build::mount_path;
use crate::config::model::Config;
use crate::drain::Draining;

/// Everything a session needs, built once.
pub(crate) struct Settings {
    /// The server's own Socket.IO service, which the bridge connects to.
    service: SocketIoService,
    /// Where that service is mounted (`/socket.io/`).
    engine_path: String,
    ping_interval: Duration,
    ping_timeout: Duration,
    /// The largest frame accepted, `limits.max_payload`.
    max_message: usize,
    /// How long the socket's connection (auth, connect webhook) may take.
    connect_timeout: Duration,
    /// How long a request waits for its answer: an `emit` may wait for the whole webhook.
    answer_timeout: Duration,
    /// On during a shutdown: new clients are refused, so they go to another node.
    draining: Draining,
}

/// The route serving the endpoint.
pub(crate) fn route(service: SocketIoService, config: &Config, draining: Draining) -> MethodRouter {
    let settings = Arc::new(Settings {
        service,
        engine_path: mount_path(&config.server.path),
        ping_interval: config.ws.ping_interval,
        ping_timeout: config.ws.ping_timeout,
        max_message: usize::try_from(config.limits.max_payload).unwrap_or(usize::MAX),
        // The connect webhook may take its whole timeout; auth may fetch a key set (5 s).
        connect_timeout: config.webhooks.timeout + Duration::from_secs(10),
        answer_timeout: config.webhooks.timeout + Duration::from_secs(2),
        draining,
    });
    get(move |request: Request| {
        let settings = settings.clone();
        async move { accept(settings, request) }
    })
}

/// Whether a comma-separated header holds `token` (any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case(token))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "error": message }).to_string()))
        .unwrap_or_default()
}

/// The `token` and `namespace` query parameters.
fn query_params(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut namespace = "/".to_owned();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = ferrio_engineio::percent_decode(&value.replace('+', " "));
        match key {
            "token" if !value.is_empty() => token = Some(value),
            "namespace" if !value.is_empty() => {
                namespace = if value.starts_with('/') {
                    value
                } else {
                    format!("/{value}")
                }
            }
            _ => {}
        }
    }
    (token, namespace)
}

/// Answers the upgrade and starts the session once the connection is switched.
fn accept(settings: Arc<Settings>, mut request: Request) -> Response {
    if settings.draining.is_on() {
        // As the Socket.IO handshakes: the client retries, and reaches a node still serving.
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "server shutting down: connect again (to another node)",
        );
    }
    let headers = request.headers();
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a WebSocket upgrade (GET with Connection: Upgrade and Upgrade: websocket)",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "unsupported Sec-WebSocket-Version: only 13 is supported",
        );
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let accept_key = derive_accept_key(key.as_bytes());
    let (token, nsp) = query_params(request.uri().query().unwrap_or(""));
    let auth = match token {
        Some(token) => json!({ "token": token }),
        None => Value::Object(Default::default()),
    };
    let origin = bridge::Origin {
        headers: headers.clone(),
        peer: request.extensions().get::<SocketAddr>().copied(),
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(settings.max_message);
    config.max_frame_size = Some(settings.max_message);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                session::run(ws, settings, origin, nsp, auth).await;
            }
            Err(error) => tracing::debug!(%error, "plain WebSocket upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept_key)
        .body(Body::empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        assert_eq!(query_params(""), (None, "/".to_owned()));
        assert_eq!(
            query_params("token=a%2Eb&namespace=chat"),
            (Some("a.b".to_owned()), "/chat".to_owned())
        );
    }
}
