use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Packet, Sid};

/// The handshake data the server sends in the open packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPacket {
    /// The new session's id.
    pub sid: Sid,
    /// Transports the client may upgrade to from this one (`["websocket"]` from polling).
    pub upgrades: Vec<&'static str>,
    /// How often the server pings (v4) or the client must ping (v3).
    pub ping_interval: Duration,
    /// How long a pong (v4) or the next ping (v3) may be late before the session is closed.
    pub ping_timeout: Duration,
    /// Largest message or polling body the server accepts, in bytes.
    pub max_payload: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OpenJson<'a> {
    sid: &'a str,
    upgrades: &'a [&'static str],
    ping_interval: u128,
    ping_timeout: u128,
    max_payload: u64,
}

impl OpenPacket {
    /// The JSON object sent after the `0`.
    pub fn to_json(&self) -> Bytes {
        let json = OpenJson {
            sid: self.sid.as_str(),
            upgrades: &self.upgrades,
            ping_interval: self.ping_interval.as_millis(),
            ping_timeout: self.ping_timeout.as_millis(),
            max_payload: self.max_payload,
        };
        // Serializing plain strings and numbers into a Vec cannot fail.
        Bytes::from(serde_json::to_vec(&json).unwrap_or_default())
    }

    /// The open packet.
    pub fn to_packet(&self) -> Packet {
        Packet::Open(self.to_json())
    }
}

/// The handshake data of an open packet as a client reads it, from any server.
///
/// Unlike [`OpenPacket`], which a server builds, nothing here assumes the server is this one:
/// the session id is kept as sent (other servers issue ids of other lengths and alphabets), and
/// transport names are kept as strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenData {
    /// The session id, to send as the `sid` query parameter of every later request.
    pub sid: String,
    /// Transports the client may upgrade to from the one it opened with.
    pub upgrades: Vec<String>,
    /// How often the server pings (revision 4).
    pub ping_interval: Duration,
    /// How long the server waits for the pong, and so how late a ping may be.
    pub ping_timeout: Duration,
    /// Largest polling body the server accepts, in bytes; `None` when the server did not say
    /// (servers older than the key).
    pub max_payload: Option<u64>,
}

/// Why the JSON of an open packet could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid open packet: {0}")]
pub struct InvalidOpenPacket(#[source] serde_json::Error);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenJsonIn {
    sid: String,
    #[serde(default)]
    upgrades: Vec<String>,
    ping_interval: u64,
    ping_timeout: u64,
    #[serde(default)]
    max_payload: Option<u64>,
}

impl OpenData {
    /// Parses the JSON object that follows the `0` of an open packet. `sid`, `pingInterval`
    /// and `pingTimeout` are required; `upgrades` defaults to none; unknown keys are ignored.
    pub fn parse(json: &[u8]) -> Result<Self, InvalidOpenPacket> {
        let open: OpenJsonIn = serde_json::from_slice(json).map_err(InvalidOpenPacket)?;
        Ok(Self {
            sid: open.sid,
            upgrades: open.upgrades,
            ping_interval: Duration::from_millis(open.ping_interval),
            ping_timeout: Duration::from_millis(open.ping_timeout),
            max_payload: open.max_payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_reads_back_what_the_server_writes() {
        let open = OpenPacket {
            sid: Sid::from_random([7; 15]),
            upgrades: vec!["websocket"],
            ping_interval: Duration::from_millis(300),
            ping_timeout: Duration::from_millis(200),
            max_payload: 1_000,
        };
        let data = OpenData::parse(&open.to_json()).expect("valid");
        assert_eq!(data.sid, open.sid.as_str());
        assert_eq!(data.upgrades, ["websocket"]);
        assert_eq!(data.ping_interval, open.ping_interval);
        assert_eq!(data.ping_timeout, open.ping_timeout);
        assert_eq!(data.max_payload, Some(1_000));
    }

    #[test]
    fn foreign_ids_and_missing_optional_keys_are_accepted() {
        let data = OpenData::parse(br#"{"sid":"a+b/c==","pingInterval":1,"pingTimeout":2,"x":0}"#)
            .expect("valid");
        assert_eq!(data.sid, "a+b/c==");
        assert!(data.upgrades.is_empty());
        assert_eq!(data.max_payload, None);
    }

    #[test]
    fn missing_or_mistyped_required_keys_are_errors() {
        for json in [
            &br#"{"pingInterval":1,"pingTimeout":2}"#[..],
            br#"{"sid":"a","pingTimeout":2}"#,
            br#"{"sid":"a","pingInterval":-1,"pingTimeout":2}"#,
            br#"{"sid":1,"pingInterval":1,"pingTimeout":2}"#,
            b"[]",
            b"",
        ] {
            assert!(
                OpenData::parse(json).is_err(),
                "{:?}",
                std::str::from_utf8(json)
            );
        }
    }

    #[test]
    fn json_has_the_reference_keys_in_milliseconds() {
        let open = OpenPacket {
            sid: Sid::from_random([0; 15]),
            upgrades: vec!["websocket"],
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
        };
        assert_eq!(
            std::str::from_utf8(&open.to_json()),
            Ok(
                r#"{"sid":"AAAAAAAAAAAAAAAAAAAA","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
            )
        );
    }
}
