//! WebSocket framing: one Engine.IO packet per frame.
//!
//! Text packets travel in text frames exactly as in [`Packet::encode_text`]. Binary messages
//! travel in binary frames: raw in revision 4, behind the message type byte `4` in revision 3.

use bytes::Bytes;

use crate::{DecodeError, Message, Packet, ProtocolVersion};

/// One WebSocket data frame's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame; the bytes are UTF-8.
    Text(Bytes),
    /// A binary frame.
    Binary(Bytes),
}

/// Decodes the packet carried by one frame.
pub fn decode(frame: Frame, version: ProtocolVersion) -> Result<Packet, DecodeError> {
    match frame {
        Frame::Text(text) => Packet::decode_text(text),
        Frame::Binary(data) => match version {
            ProtocolVersion::V4 => Ok(Packet::Message(Message::Binary(data))),
            ProtocolVersion::V3 => match data.first() {
                Some(b'\x04') => Ok(Packet::Message(Message::Binary(data.slice(1..)))),
                Some(other) => Err(DecodeError::UnknownType(*other)),
                None => Err(DecodeError::Empty),
            },
        },
    }
}

/// Encodes a packet as one frame.
pub fn encode(packet: &Packet, version: ProtocolVersion) -> Frame {
    match packet {
        Packet::Message(Message::Binary(data)) => match version {
            ProtocolVersion::V4 => Frame::Binary(data.clone()),
            ProtocolVersion::V3 => {
                let mut out = Vec::with_capacity(data.len() + 1);
                out.push(4);
                out.extend_from_slice(data);
                Frame::Binary(Bytes::from(out))
            }
        },
        // Every packet but a binary message has a text encoding.
        other => Frame::Text(other.encode_text().unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_binary_frames_are_raw() {
        let packet = Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3])));
        let frame = encode(&packet, ProtocolVersion::V4);
        assert_eq!(frame, Frame::Binary(Bytes::from_static(&[1, 2, 3])));
        assert_eq!(decode(frame, ProtocolVersion::V4), Ok(packet));
    }

    #[test]
    fn v3_binary_frames_carry_the_type_byte() {
        let packet = Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3])));
        let frame = encode(&packet, ProtocolVersion::V3);
        assert_eq!(frame, Frame::Binary(Bytes::from_static(&[4, 1, 2, 3])));
        assert_eq!(decode(frame, ProtocolVersion::V3), Ok(packet));
        assert_eq!(
            decode(Frame::Binary(Bytes::from_static(&[9])), ProtocolVersion::V3),
            Err(DecodeError::UnknownType(9))
        );
    }

    #[test]
    fn text_frames_carry_text_packets() {
        let frame = encode(&Packet::Message(Message::from("hi")), ProtocolVersion::V4);
        assert_eq!(frame, Frame::Text(Bytes::from_static(b"4hi")));
        assert_eq!(
            decode(
                Frame::Text(Bytes::from_static(b"2probe")),
                ProtocolVersion::V4
            ),
            Ok(Packet::ping_probe())
        );
    }
}
