use crate::PacketType;

/// Why an Engine.IO message could not be decoded as (part of) a Socket.IO packet.
///
/// The protocol requires the receiver to close the connection on any of these. After returning
/// an error the [`Decoder`](crate::Decoder) has dropped any partly received packet and is ready
/// for a fresh one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The text message was empty: there is no packet type.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type digit `0` to `6`.
    #[error("unknown packet type {0:?}")]
    UnknownPacketType(char),
    /// A BINARY_EVENT or BINARY_ACK does not start with `<count>-` where count is a positive
    /// integer (digits missing, the `-` missing, zero, or out of range).
    #[error("invalid attachment count")]
    InvalidAttachmentCount,
    /// A binary packet announces more attachments than the decoder accepts.
    #[error("too many attachments: {count} announced, at most {max} allowed")]
    TooManyAttachments {
        /// How many attachments the packet announced.
        count: usize,
        /// The configured maximum, [`DecoderConfig::max_attachments`](crate::DecoderConfig).
        max: usize,
    },
    /// The ack id does not fit in a `u64`.
    #[error("ack id out of range")]
    AckIdOverflow,
    /// An ACK or BINARY_ACK has no ack id, so it cannot be matched to an event.
    #[error("{0} packet without an ack id")]
    MissingAckId(PacketType),
    /// A CONNECT, DISCONNECT or CONNECT_ERROR carries an ack id, which only events and acks may.
    #[error("{0} packet with an ack id")]
    UnexpectedAckId(PacketType),
    /// The payload is not valid JSON (or nests deeper than the JSON parser's limit of 128).
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// A packet type that requires a payload (EVENT, ACK, CONNECT_ERROR and their binary
    /// forms) has none.
    #[error("{0} packet without a payload")]
    MissingPayload(PacketType),
    /// The payload is JSON of the wrong shape for the packet type: CONNECT takes an object,
    /// DISCONNECT nothing, CONNECT_ERROR a string or an object, events a non-empty array whose
    /// first element is a string or a number, acks an array.
    #[error("invalid payload for a {0} packet")]
    InvalidPayload(PacketType),
    /// The event name is one of [`RESERVED_EVENTS`](crate::RESERVED_EVENTS).
    #[error("reserved event name {0:?}")]
    ReservedEventName(String),
    /// An object with `"_placeholder": true` has no `num` that is a non-negative integer.
    #[error("placeholder without a valid num")]
    InvalidPlaceholder,
    /// A placeholder refers to an attachment the packet did not announce.
    #[error("placeholder refers to attachment {num} of {count}")]
    PlaceholderOutOfRange {
        /// The placeholder's `num`.
        num: u64,
        /// How many attachments the packet announced.
        count: usize,
    },
    /// An announced attachment is referred to by no placeholder.
    #[error("attachment {index} is not referenced by any placeholder")]
    UnreferencedAttachment {
        /// Index of the first unreferenced attachment.
        index: usize,
    },
    /// A text message arrived while a binary packet still waited for attachments.
    #[error("text message while {received} of {expected} attachments received")]
    UnexpectedText {
        /// Attachments the pending packet announced.
        expected: usize,
        /// Attachments received before the text message.
        received: usize,
    },
    /// A binary message arrived while no binary packet was waiting for attachments.
    #[error("binary message while no attachment is expected")]
    UnexpectedBinary,
}

/// A number that is not a Socket.IO packet type (valid types are 0 to 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid packet type {0}")]
pub struct InvalidPacketType(pub u8);
