use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::DecodeError;

/// The text of an Engine.IO message, stored as the whole encoded packet (`4` followed by the text).
///
/// Keeping the packet type byte in front means a message read from a WebSocket frame or a polling
/// body is a zero-copy slice of it, and a message written to many sessions (a broadcast) is
/// encoded once and only its reference count changes per recipient.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    /// Makes a message from a string, copying it once behind the packet type byte.
    pub fn new(text: &str) -> Self {
        let mut buf = BytesMut::with_capacity(text.len() + 1);
        buf.put_u8(b'4');
        buf.put_slice(text.as_bytes());
        Self(buf.freeze())
    }

    /// Makes a message from a buffer that already starts with the packet type byte `4`.
    ///
    /// Lets an encoder write `4` and its text into one buffer and hand it over without a copy.
    pub fn from_packet(packet: Bytes) -> Result<Self, DecodeError> {
        match packet.first() {
            Some(b'4') => {}
            Some(other) => return Err(DecodeError::Unexpected(*other)),
            None => return Err(DecodeError::Empty),
        }
        std::str::from_utf8(&packet[1..]).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(Self(packet))
    }

    /// Like [`Text::from_packet`] for a `String` an encoder wrote, skipping the UTF-8 check a
    /// `String` makes needless.
    pub fn from_packet_string(packet: String) -> Result<Self, DecodeError> {
        match packet.as_bytes().first() {
            Some(b'4') => Ok(Self(Bytes::from(packet))),
            Some(other) => Err(DecodeError::Unexpected(*other)),
            None => Err(DecodeError::Empty),
        }
    }

    /// The text, without the packet type byte.
    pub fn as_str(&self) -> &str {
        // Every constructor checked that the bytes after the type byte are UTF-8.
        std::str::from_utf8(&self.0[1..]).unwrap_or_default()
    }

    /// The whole packet as sent on the wire: `4` followed by the text.
    pub fn packet_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Length of the text in bytes, without the packet type byte.
    pub fn len(&self) -> usize {
        self.0.len() - 1
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self::new(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_type_byte_in_front() {
        let text = Text::new("héllo");
        assert_eq!(text.as_str(), "héllo");
        assert_eq!(text.packet_bytes().as_ref(), "4héllo".as_bytes());
        assert_eq!(text.len(), "héllo".len());
    }

    #[test]
    fn from_packet_checks_type_and_utf8() {
        assert_eq!(
            Text::from_packet(Bytes::from_static(b"4ok")).map(|t| t.as_str().to_owned()),
            Ok("ok".to_owned())
        );
        assert_eq!(
            Text::from_packet(Bytes::from_static(b"2ok")),
            Err(DecodeError::Unexpected(b'2'))
        );
        assert_eq!(
            Text::from_packet(Bytes::from_static(b"4\xff")),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(Text::from_packet(Bytes::new()), Err(DecodeError::Empty));
    }
}
