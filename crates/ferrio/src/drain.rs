//! The graceful shutdown of `ferrio serve`: on SIGTERM or SIGINT, `/ready` answers 503, new
//! Socket.IO handshakes are refused with 503, every connected client is told to go, and the
//! process waits until they are gone or `server.shutdown_timeout` has passed.
//!
//! Clients are sent the Engine.IO close packet ("server shutting down"), not a Socket.IO
//! DISCONNECT: an official client treats a DISCONNECT as "io server disconnect" and stays
//! disconnected, while a closed transport ("transport close") makes it reconnect, and the load
//! balancer sends it to a node that is still ready.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrio_socketio::SocketIo;

use crate::webhook::Webhooks;

/// How often the drain looks whether every connection is gone.
const POLL: Duration = Duration::from_millis(20);

/// Whether the server is shutting down; shared by `/ready`, the handshake guard and the drain.
#[derive(Debug, Clone, Default)]
pub(crate) struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Whether a shutdown began.
    pub(crate) fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Refuses new Engine.IO handshakes (a request to `path` without a `sid`) with 503 once a
/// shutdown began, so that clients retry, and reach another node; requests of open sessions
/// go through, since they carry the close packet to their clients.
pub(crate) fn guard(app: Router, path: &str, draining: Draining) -> Router {
    let path = path.trim_end_matches('/').to_owned();
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let refuse = draining.is_on() && is_handshake(&request, &path);
            async move {
                if refuse {
                    refusal()
                } else {
                    next.run(request).await
                }
            }
        },
    ))
}

/// Whether `request` opens a new Engine.IO session at `path` (given without its trailing `/`).
fn is_handshake(request: &Request, path: &str) -> bool {
    let at_path = request.uri().path().trim_end_matches('/') == path;
    let has_sid = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair.starts_with("sid="));
    at_path && !has_sid
}

/// The answer to a handshake during a shutdown, in the shape of Engine.IO's errors.
fn refusal() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        axum::Json(serde_json::json!({
            "code": 503,
            "message": "server shutting down",
        })),
    )
        .into_response()
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every connection closed before the deadline.
    Drained,
    /// The deadline passed with this many connections still open.
    TimedOut(usize),
}

/// Starts the shutdown and waits, within `timeout` in all, until every connection is gone,
/// then until `webhooks` (when set) have no call under way (the disconnect notices the
/// shutdown itself causes reach the backend before the process exits), then, when
/// `hands_over_sessions` (a cluster with connection state recovery), until other nodes have
/// claimed every recovery session the shutdown left (the clients come back through them).
/// Cancel-safe: dropping the future only stops the waiting.
pub(crate) async fn drain(
    io: &SocketIo,
    draining: &Draining,
    timeout: Duration,
    webhooks: Option<&Webhooks>,
    hands_over_sessions: bool,
) -> Outcome {
    // Readiness probes see it before the clients are told to go.
    draining.start();
    let open = io.connection_count();
    tracing::info!(
        connections = open,
        "shutting down: refusing new connections, disconnecting clients (at most {}ms)",
        timeout.as_millis()
    );
    io.close();
    let deadline = tokio::time::Instant::now() + timeout;
    let gone = async {
        // Sockets too: a socket leaves its namespace only after its disconnect handlers ran,
        // so once none is left every disconnect webhook call has been counted.
        while io.connection_count() > 0 || socket_count(io) > 0 {
            tokio::time::sleep(POLL).await;
        }
    };
    if tokio::time::timeout_at(deadline, gone).await.is_err() {
        let left = io.connection_count();
        tracing::warn!(
            connections = left,
            "server.shutdown_timeout passed with connections still open: exiting anyway"
        );
        return Outcome::TimedOut(left);
    }
    tracing::info!("every connection closed");
    if let Some(webhooks) = webhooks {
        if tokio::time::timeout_at(deadline, webhooks.settled())
            .await
            .is_err()
        {
            tracing::warn!(
                calls = webhooks.calls_under_way(),
                "server.shutdown_timeout passed with webhook calls under way: exiting anyway"
            );
        }
    }
    if hands_over_sessions {
        // The clients sent away reconnect through other nodes, which ask this one for their
        // sessions: it stays to hand them over.
        let claimed = async {
            while io.recovery_sessions_held() > 0 {
                tokio::time::sleep(POLL).await;
            }
        };
        let held = io.recovery_sessions_held();
        if held > 0 {
            tracing::info!(
                sessions = held,
                "waiting for other nodes to claim the sessions"
            );
        }
        if tokio::time::timeout_at(deadline, claimed).await.is_err() {
            tracing::warn!(
                sessions = io.recovery_sessions_held(),
                "server.shutdown_timeout passed with recovery sessions no node claimed:                  their clients start new sessions"
            );
        } else if held > 0 {
            tracing::info!("every session claimed");
        }
    }
    Outcome::Drained
}

/// Sockets in every namespace of this node.
fn socket_count(io: &SocketIo) -> usize {
    io.namespaces().iter().map(|n| n.socket_count()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn handshakes_are_requests_without_a_session() {
        let path = "/socket.io";
        assert!(is_handshake(
            &request("/socket.io/?EIO=4&transport=polling"),
            path
        ));
        assert!(is_handshake(
            &request("/socket.io?EIO=4&transport=websocket"),
            path
        ));
        assert!(!is_handshake(
            &request("/socket.io/?EIO=4&transport=polling&sid=abc"),
            path
        ));
        assert!(!is_handshake(&request("/ready"), path));
    }
}
