use std::fmt;

/// Why an Engine.IO session ended. The strings are the reference server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The client closed the connection or sent a close packet. The client may reconnect.
    TransportClose,
    /// The connection failed: a network error, an oversized message, a protocol violation such
    /// as two concurrent polls. The client should reconnect.
    TransportError,
    /// The client missed the heartbeat deadline. The client should reconnect.
    PingTimeout,
    /// The client sent bytes that are not Engine.IO packets.
    ParseError,
    /// The server closed the session on purpose.
    ForcedClose,
    /// The server is shutting down; the client should reconnect elsewhere.
    ServerShutdown,
}

impl DisconnectReason {
    /// The reference server's wording, e.g. `"ping timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ServerShutdown => "server shutting down",
        }
    }

    /// The reason as a metric label, e.g. `"ping_timeout"` (see [`crate::DISCONNECTS_TOTAL`]).
    pub fn label(self) -> &'static str {
        match self {
            Self::TransportClose => "transport_close",
            Self::TransportError => "transport_error",
            Self::PingTimeout => "ping_timeout",
            Self::ParseError => "parse_error",
            Self::ForcedClose => "forced_close",
            Self::ServerShutdown => "server_shutdown",
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
