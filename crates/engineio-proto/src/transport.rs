use std::fmt;

/// A way to carry Engine.IO packets, as named in the `transport` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling: a pending `GET` receives, a `POST` sends.
    Polling,
    /// One WebSocket carries both directions.
    WebSocket,
}

impl TransportKind {
    /// The name used in the `transport` query parameter and the open packet's `upgrades`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }

    /// The transport a `transport` query parameter names, if it names one.
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "polling" => Some(Self::Polling),
            "websocket" => Some(Self::WebSocket),
            _ => None,
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in [TransportKind::Polling, TransportKind::WebSocket] {
            assert_eq!(TransportKind::from_query(kind.as_str()), Some(kind));
        }
        assert_eq!(TransportKind::from_query("flashsocket"), None);
    }
}
