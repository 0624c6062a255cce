//! What a client can observe: the connection's state, why it was lost, a namespace socket's
//! state, and the heartbeat.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use ferrio_engineio_proto::TransportKind;

/// The state of a [`Manager`](crate::Manager)'s connection to the server, published through a
/// `tokio::sync::watch` channel ([`Manager::state`](crate::Manager::state)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the Engine.IO connection (the first time, or a reconnection attempt).
    Connecting,
    /// The connection is open over `transport` (it changes from polling to WebSocket when the
    /// connection upgrades).
    Connected {
        /// The transport carrying the connection now.
        transport: TransportKind,
    },
    /// Not connected, and no reconnection is scheduled: before the first connection (with
    /// [`DisconnectReason::ClientDisconnect`]: nothing asked to connect yet), after
    /// [`Manager::disconnect`](crate::Manager::disconnect), after the last namespace socket
    /// left, or after a failure when reconnection is off.
    Disconnected {
        /// Why the connection ended.
        reason: DisconnectReason,
    },
    /// The connection was lost or could not be opened; attempt `attempt` (from 1) starts after
    /// `delay`.
    ReconnectScheduled {
        /// The number of the coming attempt, from 1; reset when a connection opens.
        attempt: u32,
        /// How long until the attempt.
        delay: Duration,
    },
    /// Every allowed reconnection attempt failed. Terminal until
    /// [`Manager::reconnect`](crate::Manager::reconnect) or a socket's `connect`.
    ReconnectFailed,
}

/// Why a connection or a namespace socket was disconnected. The names of the JS client are
/// given for each; [`DisconnectReason::as_str`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// `io server disconnect`: the server disconnected the socket from its namespace.
    /// Terminal: the socket does not reconnect (as the JS client), and the connection closes
    /// when no other socket uses it.
    ServerDisconnect,
    /// `io client disconnect` / `forced close`: this client disconnected. Terminal.
    ClientDisconnect,
    /// `ping timeout`: the server's pings stopped coming. The client reconnects.
    PingTimeout,
    /// `transport close`: the server closed the connection, or it ended. The client reconnects.
    TransportClose,
    /// `transport error`: the connection failed, or could not be opened; the text says what
    /// failed. The client reconnects.
    TransportError(String),
    /// `parse error`: the server sent something that is not Engine.IO or Socket.IO; the text
    /// says what. The client reconnects.
    ParseError(String),
}

impl DisconnectReason {
    /// The reason as the JS client names it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ServerDisconnect => "io server disconnect",
            Self::ClientDisconnect => "io client disconnect",
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError(_) => "transport error",
            Self::ParseError(_) => "parse error",
        }
    }

    /// Whether the client reconnects after this (when reconnection is on): every reason but
    /// [`ServerDisconnect`](Self::ServerDisconnect) and
    /// [`ClientDisconnect`](Self::ClientDisconnect).
    pub fn is_recoverable(&self) -> bool {
        !matches!(self, Self::ServerDisconnect | Self::ClientDisconnect)
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TransportError(detail) | Self::ParseError(detail) => {
                write!(f, "{}: {detail}", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// The server's refusal of a namespace connection: its CONNECT_ERROR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRefused {
    /// The error message (`err.message` on the server).
    pub message: String,
    /// The error's data (`err.data` on the server), when it has any.
    pub data: Option<Value>,
}

impl ConnectRefused {
    /// Reads a CONNECT_ERROR payload: `{"message": ..., "data": ...}` (protocol v5) or a plain
    /// string (older servers). Any other JSON becomes the message as written.
    pub(crate) fn from_payload(payload: Value) -> Self {
        match payload {
            Value::String(message) => Self {
                message,
                data: None,
            },
            Value::Object(mut map) => {
                let data = map.remove("data");
                let message = match map.remove("message") {
                    Some(Value::String(message)) => message,
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                Self { message, data }
            }
            other => Self {
                message: other.to_string(),
                data: None,
            },
        }
    }
}

impl fmt::Display for ConnectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The state of one namespace socket, published through a `tokio::sync::watch` channel
/// ([`Socket::state`](crate::Socket::state)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketState {
    /// Never asked to connect.
    Idle,
    /// Waiting for the connection to open, or for the server's answer to CONNECT.
    Connecting,
    /// Connected to the namespace.
    Connected {
        /// The socket id the server gave.
        id: String,
        /// Whether the server restored the previous session (connection state recovery).
        recovered: bool,
    },
    /// Disconnected. When [`DisconnectReason::is_recoverable`] the socket is still active and
    /// connects again with the next connection.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
    /// The server refused the connection (CONNECT_ERROR). The socket is inactive until
    /// [`Socket::connect`](crate::Socket::connect) is called again.
    Refused(ConnectRefused),
}

/// What the client measured of the server's heartbeat.
///
/// Engine.IO v4 gives a client no round trip of its own: the server pings, the client answers.
/// But the reference server (and Ferrio) schedules each ping `ping_interval` after the previous
/// pong *arrived*, so the time between two pings, minus `ping_interval`, is one round trip
/// (pong out, ping back) plus the server's timer slack. That is
/// [`round_trip_estimate`](Self::round_trip_estimate). Against a server that schedules pings
/// on a fixed clock instead, it only measures how irregular the pings are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatStats {
    /// The ping interval the server announced.
    pub ping_interval: Duration,
    /// The ping timeout the server announced.
    pub ping_timeout: Duration,
    /// Pings received on this connection.
    pub pings: u64,
    /// When the last ping arrived.
    pub last_ping: Option<Instant>,
    /// Time between the last two pings; `None` before the second ping.
    pub last_ping_gap: Option<Duration>,
    /// `last_ping_gap - ping_interval`, saturating: a round trip estimate (see above).
    pub round_trip_estimate: Option<Duration>,
    /// When the client gives up on the server if no ping comes: the last ping (or the opening)
    /// plus `ping_interval + ping_timeout`.
    pub deadline: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_of_every_shape() {
        assert_eq!(
            ConnectRefused::from_payload(json!({"message": "no", "data": {"code": 7}})),
            ConnectRefused {
                message: "no".into(),
                data: Some(json!({"code": 7}))
            }
        );
        assert_eq!(
            ConnectRefused::from_payload(json!("Not authorized")).message,
            "Not authorized"
        );
        assert_eq!(ConnectRefused::from_payload(json!(3)).message, "3");
        assert_eq!(
            ConnectRefused::from_payload(json!({"message": 1})).message,
            "1"
        );
    }

    #[test]
    fn reasons_name_themselves_like_the_js_client() {
        assert_eq!(
            DisconnectReason::ServerDisconnect.as_str(),
            "io server disconnect"
        );
        assert!(!DisconnectReason::ClientDisconnect.is_recoverable());
        assert!(DisconnectReason::PingTimeout.is_recoverable());
        assert_eq!(
            DisconnectReason::TransportError("reset".into()).to_string(),
            "transport error: reset"
        );
    }
}
