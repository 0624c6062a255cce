//! HTTP long-polling bodies: several packets in one request or response.
//!
//! - Revision 4 joins text-encoded packets with the record separator `\x1e`; a binary message is
//!   written `b` followed by its base64.
//! - Revision 3 prefixes every packet with its length and a colon (`6:4hello`), the length counted
//!   in UTF-16 code units as JavaScript counts string length. When the client can take binary and a
//!   binary message is among the packets, the whole body uses the binary framing instead:
//!   `<0 text | 1 binary> <length as one byte per decimal digit> 0xFF <packet bytes>`, lengths in
//!   bytes. Clients that cannot take binary (`b64=1`) get binary messages as `b4` + base64.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

use crate::{DecodeError, Message, Packet, ProtocolVersion};

const SEPARATOR: u8 = 0x1e;
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// An encoded polling body and what to say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPayload {
    /// The body.
    pub body: Bytes,
    /// Whether the body uses the v3 binary framing (`Content-Type: application/octet-stream`);
    /// otherwise it is text (`text/plain; charset=UTF-8`).
    pub binary: bool,
}

/// Encodes packets into one polling response body.
///
/// `supports_binary` matters for revision 3 only: it is false when the client asked for `b64=1`.
pub fn encode(
    packets: &[Packet],
    version: ProtocolVersion,
    supports_binary: bool,
) -> EncodedPayload {
    match version {
        ProtocolVersion::V4 => EncodedPayload {
            body: encode_v4(packets),
            binary: false,
        },
        ProtocolVersion::V3 => {
            let has_binary = packets
                .iter()
                .any(|p| matches!(p, Packet::Message(Message::Binary(_))));
            if supports_binary && has_binary {
                EncodedPayload {
                    body: encode_v3_binary(packets),
                    binary: true,
                }
            } else {
                EncodedPayload {
                    body: encode_v3_text(packets),
                    binary: false,
                }
            }
        }
    }
}

/// Decodes one polling request body into its packets.
///
/// `binary_body` says whether the request declared `Content-Type: application/octet-stream`;
/// revision 3 then expects the binary framing.
pub fn decode(
    body: Bytes,
    version: ProtocolVersion,
    binary_body: bool,
) -> Result<Vec<Packet>, DecodeError> {
    match version {
        ProtocolVersion::V4 => decode_v4(body),
        ProtocolVersion::V3 if binary_body || matches!(body.first(), Some(0 | 1)) => {
            decode_v3_binary(body)
        }
        ProtocolVersion::V3 => decode_v3_text(body),
    }
}

fn encode_v4(packets: &[Packet]) -> Bytes {
    if let [single] = packets {
        if let Some(text) = single.encode_text() {
            return text;
        }
    }
    let mut out = BytesMut::new();
    for (index, packet) in packets.iter().enumerate() {
        if index > 0 {
            out.put_u8(SEPARATOR);
        }
        put_text_packet(&mut out, packet, b"b");
    }
    out.freeze()
}

/// Writes a packet in its text form; a binary message becomes `binary_prefix` + base64.
fn put_text_packet(out: &mut BytesMut, packet: &Packet, binary_prefix: &[u8]) {
    match packet {
        Packet::Message(Message::Binary(data)) => {
            out.put_slice(binary_prefix);
            put_base64(out, data);
        }
        other => out.put_slice(&other.encode_text().unwrap_or_default()),
    }
}

fn put_base64(out: &mut BytesMut, data: &[u8]) {
    let start = out.len();
    out.resize(
        start + base64::encoded_len(data.len(), true).unwrap_or(0),
        0,
    );
    let written = BASE64.encode_slice(data, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
}

fn decode_v4(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    std::str::from_utf8(&body).map_err(|_| DecodeError::InvalidUtf8)?;
    let mut packets = Vec::new();
    let mut start = 0;
    loop {
        let end = body[start..]
            .iter()
            .position(|b| *b == SEPARATOR)
            .map_or(body.len(), |offset| start + offset);
        packets.push(decode_text_or_base64(body.slice(start..end), 1)?);
        if end == body.len() {
            return Ok(packets);
        }
        start = end + 1;
    }
}

/// Decodes a text packet, or a `b`-prefixed base64 binary message whose base64 starts
/// `skip` bytes in (1 for v4 `b…`, 2 for v3 `b4…`).
fn decode_text_or_base64(packet: Bytes, skip: usize) -> Result<Packet, DecodeError> {
    if packet.first() == Some(&b'b') {
        if skip == 2 && packet.get(1) != Some(&b'4') {
            return Err(DecodeError::Unexpected(
                packet.get(1).copied().unwrap_or(b'b'),
            ));
        }
        let encoded = packet.get(skip..).ok_or(DecodeError::Empty)?;
        let data = BASE64
            .decode(encoded)
            .map_err(|_| DecodeError::InvalidBase64)?;
        return Ok(Packet::Message(Message::Binary(Bytes::from(data))));
    }
    Packet::decode_text(packet)
}

fn encode_v3_text(packets: &[Packet]) -> Bytes {
    let mut out = BytesMut::new();
    let mut packet_buf = BytesMut::new();
    for packet in packets {
        packet_buf.clear();
        put_text_packet(&mut packet_buf, packet, b"b4");
        // Only the handshake, base64 and text messages reach here: all valid UTF-8.
        let text = std::str::from_utf8(&packet_buf).unwrap_or_default();
        let length = text.encode_utf16().count();
        out.put_slice(itoa::Buffer::new().format(length).as_bytes());
        out.put_u8(b':');
        out.put_slice(&packet_buf);
    }
    out.freeze()
}

fn encode_v3_binary(packets: &[Packet]) -> Bytes {
    let mut out = BytesMut::new();
    for packet in packets {
        match packet {
            Packet::Message(Message::Binary(data)) => {
                out.put_u8(1);
                put_length_digits(&mut out, data.len() + 1);
                out.put_u8(4);
                out.put_slice(data);
            }
            other => {
                let text = other.encode_text().unwrap_or_default();
                out.put_u8(0);
                put_length_digits(&mut out, text.len());
                out.put_slice(&text);
            }
        }
    }
    out.freeze()
}

/// Writes a length as one byte per decimal digit, then the 0xFF terminator.
fn put_length_digits(out: &mut BytesMut, length: usize) {
    for digit in itoa::Buffer::new().format(length).bytes() {
        out.put_u8(digit - b'0');
    }
    out.put_u8(0xff);
}

fn decode_v3_text(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    let text = std::str::from_utf8(&body).map_err(|_| DecodeError::InvalidUtf8)?;
    if text.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut packets = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let colon = rest.find(':').ok_or(DecodeError::InvalidLength)?;
        let length: usize = rest[..colon]
            .parse()
            .map_err(|_| DecodeError::InvalidLength)?;
        let after = &rest[colon + 1..];
        let end = utf16_prefix_len(after, length).ok_or(DecodeError::InvalidLength)?;
        let start_offset = body.len() - after.len();
        packets.push(decode_text_or_base64(
            body.slice(start_offset..start_offset + end),
            2,
        )?);
        rest = &after[end..];
    }
    Ok(packets)
}

/// Byte length of the prefix of `text` that is `units` UTF-16 code units long, if there is one.
fn utf16_prefix_len(text: &str, units: usize) -> Option<usize> {
    let mut counted = 0;
    for (offset, ch) in text.char_indices() {
        if counted == units {
            return Some(offset);
        }
        counted += ch.len_utf16();
        if counted > units {
            return None;
        }
    }
    (counted == units).then_some(text.len())
}

fn decode_v3_binary(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    let mut packets = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let is_text = match body[at] {
            0 => true,
            1 => false,
            _ => return Err(DecodeError::InvalidLength),
        };
        at += 1;
        let mut length: usize = 0;
        let mut digits = 0;
        loop {
            let byte = *body.get(at).ok_or(DecodeError::InvalidLength)?;
            at += 1;
            if byte == 0xff {
                break;
            }
            // 310 digits is what the reference parser allows; far beyond any real length.
            if byte > 9 || digits >= 20 {
                return Err(DecodeError::InvalidLength);
            }
            digits += 1;
            length = length
                .checked_mul(10)
                .and_then(|l| l.checked_add(usize::from(byte)))
                .ok_or(DecodeError::InvalidLength)?;
        }
        if digits == 0 || length == 0 || at + length > body.len() {
            return Err(DecodeError::InvalidLength);
        }
        let packet = body.slice(at..at + length);
        at += length;
        if is_text {
            std::str::from_utf8(&packet).map_err(|_| DecodeError::InvalidUtf8)?;
            packets.push(Packet::decode_text(packet)?);
        } else {
            match packet[0] {
                4 => packets.push(Packet::Message(Message::Binary(packet.slice(1..)))),
                other => return Err(DecodeError::UnknownType(other)),
            }
        }
    }
    if packets.is_empty() {
        return Err(DecodeError::Empty);
    }
    Ok(packets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Packet {
        Packet::Message(Message::from(s))
    }

    fn binary(data: &'static [u8]) -> Packet {
        Packet::Message(Message::Binary(Bytes::from_static(data)))
    }

    #[test]
    fn v4_matches_the_spec_examples() {
        let packets = vec![text("hello"), binary(&[1, 2, 3, 4])];
        let encoded = encode(&packets, ProtocolVersion::V4, true);
        assert_eq!(encoded.body.as_ref(), b"4hello\x1ebAQIDBA==");
        assert!(!encoded.binary);
        assert_eq!(
            decode(encoded.body, ProtocolVersion::V4, false),
            Ok(packets)
        );
    }

    #[test]
    fn v4_rejects_garbage() {
        assert_eq!(
            decode(Bytes::from_static(b"abc"), ProtocolVersion::V4, false),
            Err(DecodeError::UnknownType(b'a'))
        );
        assert_eq!(
            decode(Bytes::from_static(b"b!!"), ProtocolVersion::V4, false),
            Err(DecodeError::InvalidBase64)
        );
        assert_eq!(
            decode(Bytes::from_static(b"4a\x1e"), ProtocolVersion::V4, false),
            Err(DecodeError::Empty)
        );
    }

    #[test]
    fn v3_text_lengths_count_utf16_units() {
        // "€" is one UTF-16 unit (3 bytes); "😀" is two units (4 bytes).
        let packets = vec![text("€😀"), Packet::Ping(Bytes::new())];
        let encoded = encode(&packets, ProtocolVersion::V3, true);
        assert_eq!(std::str::from_utf8(&encoded.body), Ok("4:4€😀1:2"));
        assert!(!encoded.binary);
        assert_eq!(
            decode(encoded.body, ProtocolVersion::V3, false),
            Ok(packets)
        );
    }

    #[test]
    fn v3_binary_framing_when_the_client_takes_binary() {
        let packets = vec![text("hi"), binary(&[1, 2])];
        let encoded = encode(&packets, ProtocolVersion::V3, true);
        assert!(encoded.binary);
        assert_eq!(
            encoded.body.as_ref(),
            &[0, 3, 0xff, b'4', b'h', b'i', 1, 3, 0xff, 4, 1, 2]
        );
        assert_eq!(decode(encoded.body, ProtocolVersion::V3, true), Ok(packets));
    }

    #[test]
    fn v3_base64_when_the_client_asks_for_it() {
        let packets = vec![binary(&[1, 2, 3, 4])];
        let encoded = encode(&packets, ProtocolVersion::V3, false);
        assert_eq!(encoded.body.as_ref(), b"10:b4AQIDBA==");
        assert_eq!(
            decode(encoded.body, ProtocolVersion::V3, false),
            Ok(packets)
        );
    }

    #[test]
    fn v3_rejects_bad_lengths() {
        for body in [&b"5:4hi"[..], b"x:4hi", b"4hi", b"", b"2:4h3:"] {
            assert!(
                decode(Bytes::copy_from_slice(body), ProtocolVersion::V3, false).is_err(),
                "{body:?}"
            );
        }
        for body in [
            &[0u8, 9, 0xff][..],
            &[0, 1],
            &[1, 1, 0xff, 7],
            &[2],
            &[0, 0xff],
        ] {
            assert!(
                decode(Bytes::copy_from_slice(body), ProtocolVersion::V3, true).is_err(),
                "{body:?}"
            );
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn packet() -> impl Strategy<Value = Packet> {
            prop_oneof![
                // The record separator cannot appear in v4 text: it delimits packets.
                "[^\x1e]*".prop_map(|s| Packet::Message(Message::from(s.as_str()))),
                proptest::collection::vec(any::<u8>(), 0..64)
                    .prop_map(|v| Packet::Message(Message::Binary(Bytes::from(v)))),
                Just(Packet::Ping(Bytes::new())),
                Just(Packet::Pong(Bytes::new())),
                Just(Packet::Noop),
                Just(Packet::Close),
            ]
        }

        proptest! {
            #[test]
            fn every_encoding_round_trips(
                packets in proptest::collection::vec(packet(), 1..8),
                supports_binary in any::<bool>(),
            ) {
                for version in [ProtocolVersion::V3, ProtocolVersion::V4] {
                    let encoded = encode(&packets, version, supports_binary);
                    let decoded = decode(encoded.body, version, encoded.binary);
                    prop_assert_eq!(decoded.as_ref(), Ok(&packets));
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
                for version in [ProtocolVersion::V3, ProtocolVersion::V4] {
                    for binary in [false, true] {
                        let _ = decode(Bytes::from(body.clone()), version, binary);
                    }
                }
            }
        }
    }
}
