use std::fmt;

use base64::Engine as _;

/// An Engine.IO session id: 15 random bytes, written as 20 URL-safe base64 characters.
///
/// The bytes come from the caller (the server draws them from the operating system's CSPRNG), so
/// that this crate stays free of I/O. Ids are compared as bytes and are cheap to copy.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sid([u8; Sid::LEN]);

impl Sid {
    /// Length of the id as written on the wire.
    pub const LEN: usize = 20;
    /// Number of random bytes an id is made from.
    pub const RANDOM_BYTES: usize = 15;

    /// Makes an id from random bytes.
    pub fn from_random(bytes: [u8; Self::RANDOM_BYTES]) -> Self {
        let mut out = [0u8; Self::LEN];
        // 15 bytes encode to exactly 20 base64 characters without padding.
        let written = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut out)
            .unwrap_or(0);
        debug_assert_eq!(written, Self::LEN);
        Self(out)
    }

    /// Parses an id received from a peer (`sid` query parameter). Anything that is not exactly
    /// 20 URL-safe base64 characters is not an id this server could have issued.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != Self::LEN
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        let mut out = [0u8; Self::LEN];
        out.copy_from_slice(bytes);
        Some(Self(out))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `from_random` and `parse`).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_give_a_twenty_char_url_safe_id_that_parses_back() {
        let sid = Sid::from_random([0xff; 15]);
        assert_eq!(sid.as_str().len(), 20);
        assert_eq!(Sid::parse(sid.as_str()), Some(sid));
    }

    #[test]
    fn foreign_ids_are_refused() {
        assert_eq!(Sid::parse("short"), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaa/"), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaaaa"), None);
    }
}
