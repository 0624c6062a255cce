//! The query parameters of an Engine.IO request.

use ferrio_engineio_proto::{ProtocolVersion, Sid};

use crate::errors::ErrorCode;
use crate::socket::TransportKind;

/// What an Engine.IO request says about itself in its query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineQuery {
    pub(crate) protocol: ProtocolVersion,
    pub(crate) transport: TransportKind,
    /// The session id, when the request belongs to an open session.
    pub(crate) sid: Option<Sid>,
    /// `b64=1`: the v3 client cannot take binary polling bodies.
    pub(crate) base64: bool,
}

impl EngineQuery {
    /// Parses the query, checking in the reference server's order: transport, then protocol
    /// revision, then session id.
    pub(crate) fn parse(query: &str) -> Result<Self, ErrorCode> {
        let mut transport = None;
        let mut protocol = None;
        let mut sid = None;
        let mut base64 = false;
        for (key, value) in pairs(query) {
            match key {
                "transport" => transport = Some(value),
                "EIO" => protocol = Some(value),
                "sid" => sid = Some(value),
                "b64" => base64 = value == "1" || value == "true",
                _ => {}
            }
        }
        let transport = transport
            .and_then(TransportKind::from_query)
            .ok_or(ErrorCode::UnknownTransport)?;
        let protocol = protocol
            .and_then(ProtocolVersion::from_query)
            .ok_or(ErrorCode::UnsupportedProtocolVersion)?;
        let sid = match sid {
            None => None,
            Some(text) => Some(Sid::parse(text).ok_or(ErrorCode::UnknownSid)?),
        };
        Ok(Self {
            protocol,
            transport,
            sid,
            base64,
        })
    }
}

fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// The percent-decoded value of the first parameter called `name`.
pub(crate) fn find_param(query: &str, name: &str) -> Option<String> {
    pairs(query)
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

/// Decodes `%XX` escapes and `+` (as in HTML forms); invalid escapes are kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_handshake_query() {
        let query = EngineQuery::parse("EIO=4&transport=polling&t=N8hyd6w").expect("valid");
        assert_eq!(query.protocol, ProtocolVersion::V4);
        assert_eq!(query.transport, TransportKind::Polling);
        assert_eq!(query.sid, None);
        assert!(!query.base64);
    }

    #[test]
    fn reports_errors_in_the_reference_order() {
        assert_eq!(
            EngineQuery::parse("EIO=4"),
            Err(ErrorCode::UnknownTransport)
        );
        assert_eq!(
            EngineQuery::parse("EIO=4&transport=abc"),
            Err(ErrorCode::UnknownTransport)
        );
        assert_eq!(
            EngineQuery::parse("transport=polling"),
            Err(ErrorCode::UnsupportedProtocolVersion)
        );
        assert_eq!(
            EngineQuery::parse("EIO=abc&transport=polling"),
            Err(ErrorCode::UnsupportedProtocolVersion)
        );
        assert_eq!(
            EngineQuery::parse("EIO=3&transport=polling&sid=nope"),
            Err(ErrorCode::UnknownSid)
        );
    }

    #[test]
    fn decodes_parameters() {
        assert_eq!(
            find_param("token=a%20b%2Bc&x=1", "token").as_deref(),
            Some("a b+c")
        );
        assert_eq!(find_param("x=1", "token"), None);
        assert_eq!(percent_decode("100%"), "100%");
    }
}
