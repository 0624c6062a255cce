use bytes::Bytes;

use crate::{DecodeError, Text};

/// The seven Engine.IO packet types, numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: the handshake, sent by the server.
    Open = 0,
    /// `1`: the transport can be closed.
    Close = 1,
    /// `2`: heartbeat request (and `2probe` during an upgrade).
    Ping = 2,
    /// `3`: heartbeat answer (and `3probe` during an upgrade).
    Pong = 3,
    /// `4`: application data.
    Message = 4,
    /// `5`: the client completes an upgrade.
    Upgrade = 5,
    /// `6`: no operation, used to release a pending long-poll during an upgrade.
    Noop = 6,
}

impl PacketType {
    /// The type for an ASCII digit `'0'..='6'`.
    pub fn from_char(byte: u8) -> Result<Self, DecodeError> {
        Ok(match byte {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping,
            b'3' => Self::Pong,
            b'4' => Self::Message,
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            other => return Err(DecodeError::UnknownType(other)),
        })
    }

    /// The ASCII digit written for this type.
    pub fn as_char(self) -> u8 {
        b'0' + self as u8
    }
}

/// Application data carried by a message packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A UTF-8 text message.
    Text(Text),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// Size of the data in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(data) => data.len(),
        }
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(Text::new(text))
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// The handshake; holds the JSON object that follows the `0`.
    Open(Bytes),
    /// The transport can be closed.
    Close,
    /// A ping, with optional data (`probe` during an upgrade).
    Ping(Bytes),
    /// A pong, echoing the ping's data.
    Pong(Bytes),
    /// Application data.
    Message(Message),
    /// The client completes an upgrade.
    Upgrade,
    /// No operation.
    Noop,
}

/// The data of the ping and pong exchanged while probing an upgrade.
pub(crate) const PROBE: &[u8] = b"probe";

impl Packet {
    /// `2probe`, sent by a client over a new WebSocket before it upgrades.
    pub fn ping_probe() -> Self {
        Self::Ping(Bytes::from_static(PROBE))
    }

    /// `3probe`, the server's answer to [`Packet::ping_probe`].
    pub fn pong_probe() -> Self {
        Self::Pong(Bytes::from_static(PROBE))
    }

    /// Whether this is a ping or a pong carrying `probe`.
    pub fn is_probe(&self) -> bool {
        matches!(self, Self::Ping(data) | Self::Pong(data) if data.as_ref() == PROBE)
    }

    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Open(_) => PacketType::Open,
            Self::Close => PacketType::Close,
            Self::Ping(_) => PacketType::Ping,
            Self::Pong(_) => PacketType::Pong,
            Self::Message(_) => PacketType::Message,
            Self::Upgrade => PacketType::Upgrade,
            Self::Noop => PacketType::Noop,
        }
    }

    /// Decodes one text-encoded packet (a WebSocket text frame, or one packet of a polling
    /// payload). `packet` must be valid UTF-8; binary messages are not handled here.
    pub fn decode_text(packet: Bytes) -> Result<Self, DecodeError> {
        let first = *packet.first().ok_or(DecodeError::Empty)?;
        let kind = PacketType::from_char(first)?;
        Ok(match kind {
            PacketType::Message => Self::Message(Message::Text(Text::from_packet(packet)?)),
            PacketType::Open => Self::Open(packet.slice(1..)),
            PacketType::Close => Self::Close,
            PacketType::Ping => Self::Ping(packet.slice(1..)),
            PacketType::Pong => Self::Pong(packet.slice(1..)),
            PacketType::Upgrade => Self::Upgrade,
            PacketType::Noop => Self::Noop,
        })
    }

    /// Encodes a packet that is not a binary message as text: the type digit and its data.
    ///
    /// A text message is returned without a copy. Returns `None` for a binary message, whose
    /// encoding depends on the transport and protocol revision.
    pub fn encode_text(&self) -> Option<Bytes> {
        let with_data = |kind: PacketType, data: &Bytes| {
            let mut out = Vec::with_capacity(data.len() + 1);
            out.push(kind.as_char());
            out.extend_from_slice(data);
            Bytes::from(out)
        };
        Some(match self {
            Self::Message(Message::Text(text)) => text.packet_bytes().clone(),
            Self::Message(Message::Binary(_)) => return None,
            Self::Open(json) => with_data(PacketType::Open, json),
            Self::Ping(data) if data.is_empty() => Bytes::from_static(b"2"),
            Self::Pong(data) if data.is_empty() => Bytes::from_static(b"3"),
            Self::Ping(data) => with_data(PacketType::Ping, data),
            Self::Pong(data) => with_data(PacketType::Pong, data),
            Self::Close => Bytes::from_static(b"1"),
            Self::Upgrade => Bytes::from_static(b"5"),
            Self::Noop => Bytes::from_static(b"6"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_packets_round_trip() {
        for wire in [
            "0{\"sid\":\"x\"}",
            "1",
            "2",
            "3",
            "2probe",
            "3probe",
            "4hello",
            "4",
            "5",
            "6",
        ] {
            let packet = Packet::decode_text(Bytes::from(wire)).expect(wire);
            assert_eq!(
                packet.encode_text().as_deref(),
                Some(wire.as_bytes()),
                "{wire}"
            );
        }
    }

    #[test]
    fn probes_are_recognised() {
        assert!(Packet::decode_text(Bytes::from_static(b"2probe")).is_ok_and(|p| p.is_probe()));
        assert!(!Packet::decode_text(Bytes::from_static(b"2")).is_ok_and(|p| p.is_probe()));
    }

    #[test]
    fn bad_types_are_errors() {
        assert_eq!(Packet::decode_text(Bytes::new()), Err(DecodeError::Empty));
        assert_eq!(
            Packet::decode_text(Bytes::from_static(b"abc")),
            Err(DecodeError::UnknownType(b'a'))
        );
        assert_eq!(
            Packet::decode_text(Bytes::from_static(b"7")),
            Err(DecodeError::UnknownType(b'7'))
        );
    }
}
