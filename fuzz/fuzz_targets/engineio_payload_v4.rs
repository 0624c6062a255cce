//! The Engine.IO revision 4 polling payload decoder (packets joined by the record separator,
//! binary as `b` + base64). Never panics; what decodes re-encodes and decodes to the same packets.

#![no_main]

use bytes::Bytes;
use ferrio_engineio_proto::payload;
use ferrio_engineio_proto::ProtocolVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(packets) = payload::decode(body, ProtocolVersion::V4, false) {
        if packets.is_empty() {
            return;
        }
        let encoded = payload::encode(&packets, ProtocolVersion::V4, true);
        let again = payload::decode(encoded.body, ProtocolVersion::V4, encoded.binary);
        assert_eq!(again.as_ref(), Ok(&packets), "v4 round trip");
    }
});
