//! The Engine.IO packet decoder: one WebSocket frame (text or binary, revisions 3 and 4), or one
//! text packet of a polling payload. Never panics; what decodes re-encodes to itself.

#![no_main]

use bytes::Bytes;
use ferrio_engineio_proto::ws::{self, Frame};
use ferrio_engineio_proto::{Packet, ProtocolVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for version in [ProtocolVersion::V3, ProtocolVersion::V4] {
        if let Ok(packet) = ws::decode(Frame::Binary(bytes.clone()), version) {
            let again = ws::decode(ws::encode(&packet, version), version);
            assert_eq!(again.as_ref(), Ok(&packet), "binary frame round trip");
        }
    }
    // Text frames are UTF-8 by the WebSocket layer's own check.
    if std::str::from_utf8(data).is_err() {
        return;
    }
    if let Ok(packet) = Packet::decode_text(bytes.clone()) {
        let text = packet.encode_text().expect("a text packet encodes as text");
        assert_eq!(
            Packet::decode_text(text).as_ref(),
            Ok(&packet),
            "text round trip"
        );
    }
    for version in [ProtocolVersion::V3, ProtocolVersion::V4] {
        let _ = ws::decode(Frame::Text(bytes.clone()), version);
    }
});
