use std::fmt;

use ferrio_engineio::DisconnectReason as EngineReason;

/// Why a socket left its namespace. The strings are the reference server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The client closed its connection. It may reconnect.
    TransportClose,
    /// The connection failed, or the client broke the protocol at the transport level. The
    /// client should reconnect.
    TransportError,
    /// The client stopped answering the heartbeat. The client should reconnect.
    PingTimeout,
    /// The client sent a packet that could not be decoded. Terminal for that connection.
    ParseError,
    /// The server is shutting down. The client should reconnect elsewhere.
    ServerShuttingDown,
    /// The server closed the whole connection while the socket was still in it. Terminal: the
    /// client does not reconnect by itself. ([`crate::Socket::disconnect_with`] with `close`
    /// disconnects every namespace first, so its sockets see
    /// [`DisconnectReason::ServerNamespaceDisconnect`], as in the reference server.)
    ForcedServerClose,
    /// The server disconnected the socket from the namespace. Terminal.
    ServerNamespaceDisconnect,
    /// The client disconnected from the namespace. Terminal.
    ClientNamespaceDisconnect,
    /// The engine closed the connection on the server's order. Terminal.
    ForcedClose,
    /// The socket sent events faster than [`crate::SocketIoConfig::event_rate`] allows, with
    /// [`crate::OverLimit::Disconnect`]: the client got a DISCONNECT. Terminal.
    EventRateExceeded,
}

impl DisconnectReason {
    /// The reference server's wording, e.g. `"client namespace disconnect"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ServerShuttingDown => "server shutting down",
            Self::ForcedServerClose => "forced server close",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ForcedClose => "forced close",
            Self::EventRateExceeded => "event rate exceeded",
        }
    }

    /// Whether the session is kept for connection state recovery after a disconnection for
    /// this reason (the reference server's list).
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            Self::TransportClose
                | Self::TransportError
                | Self::PingTimeout
                | Self::ForcedClose
                | Self::ServerShuttingDown
                | Self::ForcedServerClose
        )
    }
}

impl From<EngineReason> for DisconnectReason {
    fn from(reason: EngineReason) -> Self {
        match reason {
            EngineReason::TransportClose => Self::TransportClose,
            EngineReason::TransportError => Self::TransportError,
            EngineReason::PingTimeout => Self::PingTimeout,
            EngineReason::ParseError => Self::ParseError,
            EngineReason::ForcedClose => Self::ForcedClose,
            EngineReason::ServerShutdown => Self::ServerShuttingDown,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
