//! Refusals: every request or session the server turns away because a limit was hit, with the
//! answer the client gets, the log line and the metric.
//!
//! Each refusal is counted in the `metrics` facade as [`REFUSALS_TOTAL`] with a `reason` label
//! (the application installs an exporter; without one, counting costs nothing). The Socket.IO
//! layer counts its own refusals through [`count_refusal`] under the same name.

use std::net::IpAddr;
use std::time::Duration;

use ferrio_engineio_proto::Sid;
use http::{Response, StatusCode};

use crate::body::ResponseBody;
use crate::errors::{error_response, status_response, ErrorCode};
use crate::rate::RateLimit;

/// The counter of refusals: `ferrio_refusals_total{reason="..."}`.
///
/// Reasons counted by this crate: `max_connections`, `max_connections_per_ip`,
/// `handshake_rate`, `origin`, `not_allowed` (the `allow_request` check), `payload_too_large`,
/// `body_timeout` and `header_timeout`.
pub const REFUSALS_TOTAL: &str = "ferrio_refusals_total";

/// Counts one refusal under `reason` in [`REFUSALS_TOTAL`].
pub fn count_refusal(reason: &'static str) {
    metrics::counter!(REFUSALS_TOTAL, "reason" => reason).increment(1);
}

/// Why the engine turned a request away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server holds `max` sessions already.
    MaxConnections { max: usize },
    /// The client's address holds `max` sessions already.
    MaxConnectionsPerIp { max: usize },
    /// The client's address handshook too often.
    HandshakeRate { limit: RateLimit },
    /// The request's `Origin` is not in the allow-list.
    Origin { origin: String },
    /// The `allow_request` check said no, with this message.
    NotAllowed { message: Option<String> },
    /// A polling body longer than `max` bytes.
    PayloadTooLarge { max: u64 },
    /// A polling body that did not arrive within `timeout`.
    BodyTimeout { timeout: Duration },
}

impl Refusal {
    /// The metric label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::MaxConnections { .. } => "max_connections",
            Self::MaxConnectionsPerIp { .. } => "max_connections_per_ip",
            Self::HandshakeRate { .. } => "handshake_rate",
            Self::Origin { .. } => "origin",
            Self::NotAllowed { .. } => "not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyTimeout { .. } => "body_timeout",
        }
    }

    /// What the client is told: the limit by name and value.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::MaxConnections { max } => format!("Too many connections (max {max})"),
            Self::MaxConnectionsPerIp { max } => {
                format!("Too many connections from this address (max {max})")
            }
            Self::HandshakeRate { limit } => format!("Too many handshakes (max {limit})"),
            Self::Origin { .. } => "Origin not allowed".to_owned(),
            Self::NotAllowed { message } => message
                .clone()
                .unwrap_or_else(|| ErrorCode::Forbidden.message().to_owned()),
            Self::PayloadTooLarge { max } => format!("Payload Too Large (max {max} bytes)"),
            Self::BodyTimeout { timeout } => {
                format!("Request body not received in time (max {timeout:?})")
            }
        }
    }

    /// Logs the refusal, counts it and builds the answer. `ip` and `sid` say who was refused,
    /// when known.
    pub(crate) fn answer(self, ip: Option<IpAddr>, sid: Option<Sid>) -> Response<ResponseBody> {
        let reason = self.reason();
        let message = self.message();
        // A handshake flood from one address produces one of these per request: keep it below
        // the default level, the counter shows the volume.
        let ip = ip.map(tracing::field::display);
        let sid = sid.map(tracing::field::display);
        if matches!(self, Self::HandshakeRate { .. }) {
            tracing::debug!(reason, ip, sid, refusal = ?self, "refused: {message}");
        } else {
            tracing::info!(reason, ip, sid, refusal = ?self, "refused: {message}");
        }
        count_refusal(reason);
        let code = match &self {
            Self::MaxConnections { .. } => ErrorCode::TooManyConnections,
            Self::MaxConnectionsPerIp { .. } | Self::HandshakeRate { .. } => {
                ErrorCode::TooManyRequests
            }
            Self::Origin { .. } | Self::NotAllowed { .. } => ErrorCode::Forbidden,
            Self::BodyTimeout { .. } => ErrorCode::RequestTimeout,
            Self::PayloadTooLarge { .. } => {
                // The reference server answers 413 with no Engine.IO error object.
                return status_response(StatusCode::PAYLOAD_TOO_LARGE, message);
            }
        };
        error_response(code, Some(&message))
    }
}
