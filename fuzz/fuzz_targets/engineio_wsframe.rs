//! The server's WebSocket frame decoder: never panics, yields only valid UTF-8 text and messages
//! within the limit, and yields the same events whether the bytes arrive at once or in two reads
//! split anywhere (the first input byte picks the split).

#![no_main]

use ferrio_engineio_proto::wsframe::{Decoder, Event, FrameError};
use libfuzzer_sys::fuzz_target;

const MAX: u64 = 4096;

/// Every event until the decoder wants more bytes or stops with an error.
fn drain(decoder: &mut Decoder, events: &mut Vec<Event>) -> Option<FrameError> {
    loop {
        match decoder.poll_event() {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return None,
            Err(error) => return Some(error),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, wire)) = data.split_first() else {
        return;
    };
    let mut whole = Decoder::new(MAX);
    whole.handle_bytes(wire);
    let mut expected = Vec::new();
    let expected_error = drain(&mut whole, &mut expected);

    let at = usize::from(split).min(wire.len());
    let mut parts = Decoder::new(MAX);
    let mut events = Vec::new();
    parts.handle_bytes(&wire[..at]);
    let mut error = drain(&mut parts, &mut events);
    if error.is_none() {
        parts.handle_bytes(&wire[at..]);
        error = drain(&mut parts, &mut events);
    }
    assert_eq!(events, expected, "same events at any split");
    assert_eq!(error, expected_error, "same error at any split");

    for event in &expected {
        match event {
            Event::Text(text) => {
                assert!(std::str::from_utf8(text).is_ok(), "text is UTF-8");
                assert!(text.len() as u64 <= MAX, "within the limit");
            }
            Event::Binary(data) => assert!(data.len() as u64 <= MAX, "within the limit"),
            Event::Ping(payload) => assert!(payload.len() <= 125, "control frames are short"),
            Event::Pong | Event::Close(_) => {}
        }
    }
});
