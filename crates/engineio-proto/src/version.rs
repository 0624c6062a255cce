/// The Engine.IO protocol revision a client speaks, from the `EIO` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// Revision 3: socket.io-client v2. The client pings, payloads are length-prefixed.
    V3,
    /// Revision 4: socket.io-client v3 and v4. The server pings, payloads are `\x1e`-separated.
    V4,
}

impl ProtocolVersion {
    /// Parses the value of the `EIO` query parameter. Only `3` and `4` are known.
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "3" => Some(Self::V3),
            "4" => Some(Self::V4),
            _ => None,
        }
    }

    /// The number as written in the `EIO` query parameter.
    pub fn as_u8(self) -> u8 {
        match self {
            Self::V3 => 3,
            Self::V4 => 4,
        }
    }
}
