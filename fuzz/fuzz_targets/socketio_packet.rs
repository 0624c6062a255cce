//! The Socket.IO packet decoder with binary attachments: the input is cut into Engine.IO
//! messages at each 0xFF byte, and each message's first byte says text (even) or binary (odd).
//! Never panics; a complete packet encodes and decodes to itself.

#![no_main]

use bytes::Bytes;
use ferrio_socketio_proto::{encode, Decoder, DecoderConfig, Packet};
use libfuzzer_sys::fuzz_target;

fn decode_whole(text: &str, attachments: &[Bytes]) -> Option<Packet> {
    let mut decoder = Decoder::default();
    let mut packet = decoder.handle_text(text).ok()?;
    for attachment in attachments {
        packet = decoder.handle_binary(attachment.clone()).ok()?;
    }
    packet
}

fuzz_target!(|data: &[u8]| {
    let mut config = DecoderConfig::default();
    config.max_attachments = 4;
    let mut decoder = Decoder::new(config);
    for message in data.split(|b| *b == 0xFF) {
        let Some((kind, body)) = message.split_first() else {
            continue;
        };
        let result = if kind & 1 == 0 {
            match std::str::from_utf8(body) {
                Ok(text) => decoder.handle_text(text),
                Err(_) => continue,
            }
        } else {
            decoder.handle_binary(Bytes::copy_from_slice(body))
        };
        if let Ok(Some(packet)) = result {
            let encoded = encode(&packet);
            let again = decode_whole(&encoded.text, &encoded.attachments);
            assert_eq!(again.as_ref(), Some(&packet), "socket.io round trip");
        }
    }
});
