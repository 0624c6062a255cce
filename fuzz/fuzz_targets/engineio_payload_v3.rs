//! The Engine.IO revision 3 polling payload decoder (length-prefixed text framing, and the binary
//! framing). Never panics; what decodes re-encodes and decodes to the same packets.

#![no_main]

use bytes::Bytes;
use ferrio_engineio_proto::payload;
use ferrio_engineio_proto::ProtocolVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says whether the request declared a binary body.
    let Some((flag, body)) = data.split_first() else {
        return;
    };
    let binary_body = flag & 1 == 1;
    let body = Bytes::copy_from_slice(body);
    if let Ok(packets) = payload::decode(body, ProtocolVersion::V3, binary_body) {
        if packets.is_empty() {
            return;
        }
        for supports_binary in [false, true] {
            let encoded = payload::encode(&packets, ProtocolVersion::V3, supports_binary);
            let again = payload::decode(encoded.body, ProtocolVersion::V3, encoded.binary);
            assert_eq!(again.as_ref(), Ok(&packets), "v3 round trip");
        }
    }
});
