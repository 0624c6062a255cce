//! The errors of the client's operations, one enum per operation.

use std::time::Duration;

use crate::{CertificateError, ConnectRefused, DisconnectReason, TlsConfigError};

/// Why a [`Manager`](crate::Manager) could not be created from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL could not be parsed, or has no scheme or host.
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// The URL's scheme is not `http`, `https`, `ws` or `wss`.
    #[error(
        "unsupported URL scheme {0:?}: use http:// or https:// (ws:// and wss:// are synonyms)"
    )]
    UnsupportedScheme(String),
    /// The TLS settings ([`ClientConfig::tls`](crate::ClientConfig::tls)) were refused.
    #[error("TLS settings: {0}")]
    Tls(TlsConfigError),
    /// The URL has a path; the Engine.IO path is [`ClientConfig::path`](crate::ClientConfig::path)
    /// and namespaces are given to [`Manager::socket`](crate::Manager::socket).
    #[error("the server URL has a path ({0:?}): set ClientConfig::path, or name the namespace in Manager::socket")]
    UrlPath(String),
    /// The URL has a query; use [`ClientConfig::query`](crate::ClientConfig::query).
    #[error("the server URL has a query: use ClientConfig::query")]
    UrlQuery,
    /// The Engine.IO path contains `?` or `#`.
    #[error("invalid Engine.IO path {0:?}")]
    InvalidPath(String),
    /// A query parameter uses a name the protocol owns (`EIO`, `transport`, `sid`, `t`).
    #[error("query parameter {0:?} is reserved by the protocol")]
    ReservedQueryKey(String),
    /// A namespace name contains `,`, which ends the namespace on the wire.
    #[error("invalid namespace {0:?}")]
    InvalidNamespace(String),
    /// [`ClientConfig::transports`](crate::ClientConfig::transports) is empty.
    #[error("no transport configured")]
    NoTransport,
    /// The manager must be created inside a tokio runtime, where it spawns its task.
    #[error("no tokio runtime: create the Manager from within one")]
    NoRuntime,
}

/// Why [`Socket::connect`](crate::Socket::connect) did not end connected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server refused the namespace connection (CONNECT_ERROR), with its message and
    /// data. The socket is inactive.
    #[error("the server refused the connection: {0}")]
    Refused(ConnectRefused),
    /// Not connected within [`ClientConfig::timeout`](crate::ClientConfig::timeout). The
    /// socket stays active: it connects when the connection opens, unless
    /// [`Socket::disconnect`](crate::Socket::disconnect) is called.
    #[error("not connected after {waited:?}{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    Timeout {
        /// How long the call waited.
        waited: Duration,
        /// The last failure to open the connection, if any.
        last_error: Option<OpenError>,
    },
    /// Every reconnection attempt failed.
    #[error("gave up reconnecting{}", last_error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    ReconnectFailed {
        /// The last failure to open the connection.
        last_error: Option<OpenError>,
    },
    /// The connection or the socket was closed for good while waiting: the client
    /// disconnected, the server disconnected the socket, or the connection failed with
    /// reconnection off.
    #[error("closed while connecting: {reason}")]
    Closed {
        /// Why.
        reason: DisconnectReason,
    },
    /// The manager's task has stopped.
    #[error("the client has shut down")]
    Shutdown,
}

/// Why an attempt to open the connection to the server failed
/// ([`Manager::last_error`](crate::Manager::last_error), and the `last_error` of
/// [`ConnectError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The server's TLS certificate was refused. Retrying does not help until the
    /// certificate or the client's trusted roots ([`TlsConfig`](crate::TlsConfig)) change.
    #[error("the server's TLS certificate was refused: {0}")]
    Certificate(CertificateError),
    /// The TLS handshake failed for another reason (the server does not speak TLS on this
    /// port, no protocol version in common, the connection was closed); the text says what.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// Anything else: no TCP connection, an HTTP error status, an answer the protocol does
    /// not allow, a timeout; the text says what.
    #[error("{0}")]
    Transport(String),
}

impl OpenError {
    /// The certificate problem, when that is what failed.
    pub fn certificate(&self) -> Option<&CertificateError> {
        match self {
            Self::Certificate(error) => Some(error),
            _ => None,
        }
    }
}

/// Why an event could not be emitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The event name is one the protocol reserves (`connect`, `disconnect`, ...).
    #[error("{0:?} is a reserved event name")]
    ReservedName(String),
    /// The data could not be serialized to JSON.
    #[error("cannot serialize the data: {0}")]
    Json(#[from] serde_json::Error),
    /// The socket is not connected and its buffer of packets to send later is full.
    #[error("send buffer full ({max} packets) while not connected")]
    BufferFull {
        /// [`ClientConfig::send_buffer`](crate::ClientConfig::send_buffer).
        max: usize,
    },
    /// The connection that an acknowledgement was for is gone: the server will not take it.
    #[error("the socket was disconnected")]
    Disconnected,
    /// The manager's task has stopped.
    #[error("the client has shut down")]
    Shutdown,
}

/// Why an acknowledgement did not come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The event could not be emitted.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// No acknowledgement within the timeout given.
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
    /// The socket was disconnected after the event was sent; its acknowledgement, if the
    /// server sends one, is lost with the connection.
    #[error("the socket was disconnected before the acknowledgement came")]
    Disconnected,
}
