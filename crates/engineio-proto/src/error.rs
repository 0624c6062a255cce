use thiserror::Error;

/// Why bytes from a peer could not be decoded into Engine.IO packets.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A packet had no type character at all.
    #[error("empty packet")]
    Empty,
    /// The packet type is not one of `0`..=`6`.
    #[error("unknown packet type {0:?}")]
    UnknownType(u8),
    /// A text packet, or a text payload, was not valid UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A `b`-prefixed packet did not hold valid base64.
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,
    /// A v3 payload length prefix was missing, not a number, or longer than the rest of the body.
    #[error("invalid length prefix in a v3 payload")]
    InvalidLength,
    /// A packet type that carries no data arrived where data was required, or the reverse.
    #[error("packet of type {0:?} is not valid here")]
    Unexpected(u8),
}
