//! Arbitrary input never panics the Engine.IO decoders: one packet (a WebSocket frame or a
//! polling packet) and whole polling payloads, with inputs shaped like the real framing so that
//! the interesting paths (lengths, separators, base64) are reached. The fuzz targets in `fuzz/`
//! go deeper; these run with every `cargo test`.

use bytes::Bytes;
use ferrio_engineio_proto::ws::{self, Frame};
use ferrio_engineio_proto::{payload, Packet, ProtocolVersion};
use proptest::prelude::*;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3, ProtocolVersion::V4];

/// Text close to a packet: a type digit, then anything.
fn packetish() -> impl Strategy<Value = String> {
    ("[0-9b]", any::<String>()).prop_map(|(head, tail)| head + &tail)
}

/// A v3 text payload of length-prefixed pieces, with lengths that may lie.
fn v3_text_payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0usize..40, packetish()), 0..6).prop_map(|pieces| {
        let mut out = String::new();
        for (length, text) in pieces {
            out.push_str(&format!("{length}:{text}"));
        }
        out.into_bytes()
    })
}

/// A v3 binary payload: a kind byte, length digits (0-9 as bytes, maybe out of range), 0xFF, data.
fn v3_binary_payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            0u8..3,
            prop::collection::vec(0u8..12, 0..4),
            prop::collection::vec(any::<u8>(), 0..32),
        ),
        0..5,
    )
    .prop_map(|pieces| {
        let mut out = Vec::new();
        for (kind, digits, data) in pieces {
            out.push(kind);
            out.extend(digits);
            out.push(0xFF);
            out.extend(data);
        }
        out
    })
}

/// A v4 payload: packet-like texts joined by the record separator, some `b` + base64-ish.
fn v4_payload() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![packetish(), "b[A-Za-z0-9+/=]{0,20}".prop_map(String::from)],
        0..6,
    )
    .prop_map(|parts| parts.join("\x1e").into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_frame_never_panics(data in prop::collection::vec(any::<u8>(), 0..64)) {
        let bytes = Bytes::from(data);
        for version in VERSIONS {
            let _ = ws::decode(Frame::Binary(bytes.clone()), version);
        }
    }

    #[test]
    fn any_text_packet_never_panics_and_round_trips(text in packetish()) {
        let bytes = Bytes::from(text);
        for version in VERSIONS {
            let _ = ws::decode(Frame::Text(bytes.clone()), version);
        }
        if let Ok(packet) = Packet::decode_text(bytes) {
            let encoded = packet.encode_text().expect("a decoded text packet encodes as text");
            prop_assert_eq!(Packet::decode_text(encoded), Ok(packet));
        }
    }

    #[test]
    fn shaped_payloads_never_panic(
        v3_text in v3_text_payload(),
        v3_binary in v3_binary_payload(),
        v4 in v4_payload(),
    ) {
        for binary in [false, true] {
            let _ = payload::decode(Bytes::from(v3_text.clone()), ProtocolVersion::V3, binary);
            let _ = payload::decode(Bytes::from(v3_binary.clone()), ProtocolVersion::V3, binary);
        }
        if let Ok(packets) = payload::decode(Bytes::from(v4), ProtocolVersion::V4, false) {
            if !packets.is_empty() {
                let encoded = payload::encode(&packets, ProtocolVersion::V4, true);
                prop_assert_eq!(
                    payload::decode(encoded.body, ProtocolVersion::V4, encoded.binary),
                    Ok(packets)
                );
            }
        }
    }
}
