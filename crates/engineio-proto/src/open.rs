use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

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

#[cfg(test)]
mod tests {
    use super::*;

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
