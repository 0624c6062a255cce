//! Property tests: the decoder never panics on any input, and decoding an encoded packet gives
//! the packet back.

use bytes::Bytes;
use ferrio_socketio_proto::{
    encode, placeholder, Decoder, Packet, PacketData, PacketKind, RESERVED_EVENTS,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
enum Message {
    Text(String),
    Binary(Vec<u8>),
}

/// JSON values that survive a text round trip exactly (floats with short decimal forms only:
/// serde_json's default float parser is not exact for every 17-digit float), and whose objects
/// never look like placeholders.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i32>().prop_map(|n| Value::from(f64::from(n) / 8.0)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z]{0,6}", inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(("\\PC{0,6}", json_value()), 0..4)
        .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()))
}

/// Namespaces as a decoder can return them: `/` then anything but `,`.
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![Just("/".to_owned()), "/[^,]{1,8}"]
}

/// An argument array, with `n` attachments referenced by placeholders (bare or nested).
fn packet_data(first: Option<BoxedStrategy<Value>>) -> impl Strategy<Value = PacketData> {
    let first = match first {
        Some(first) => first.prop_map(Some).boxed(),
        None => Just(None).boxed(),
    };
    (
        first,
        prop::collection::vec(json_value(), 0..4),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 0..4),
        any::<bool>(),
    )
        .prop_flat_map(|(first, values, attachments, nest)| {
            let mut rest = values;
            for num in 0..attachments.len() {
                rest.push(if nest {
                    Value::Array(vec![placeholder(num)])
                } else {
                    placeholder(num)
                });
            }
            let attachments: Vec<Bytes> = attachments.into_iter().map(Bytes::from).collect();
            Just(rest).prop_shuffle().prop_map(move |rest| {
                let args = first.clone().into_iter().chain(rest).collect();
                PacketData::with_attachments(args, attachments.clone())
            })
        })
}

fn event_name() -> BoxedStrategy<Value> {
    prop_oneof![
        any::<String>()
            .prop_filter("reserved", |name| !RESERVED_EVENTS.contains(&name.as_str()))
            .prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
    ]
    .boxed()
}

fn packet() -> impl Strategy<Value = Packet> {
    let connect = (
        prop_oneof![Just("/".to_owned()), "/[^,?]{1,8}"],
        prop::option::of(json_object()),
        prop::option::of("[^,]{0,12}"),
    )
        .prop_map(|(nsp, data, query)| Packet::new(nsp, PacketKind::Connect { data, query }));
    let disconnect = namespace().prop_map(Packet::disconnect);
    let event = (
        namespace(),
        packet_data(Some(event_name())),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(nsp, data, id)| Packet::event(nsp, data, id));
    let ack = (namespace(), packet_data(None), any::<u64>())
        .prop_map(|(nsp, data, id)| Packet::ack(nsp, data, id));
    let connect_error = (
        namespace(),
        prop_oneof![any::<String>().prop_map(Value::String), json_object()],
    )
        .prop_map(|(nsp, value)| Packet::new(nsp, PacketKind::ConnectError(value)));
    prop_oneof![connect, disconnect, event, ack, connect_error]
}

/// Text that looks enough like a packet to get past the first checks.
fn packetish_text() -> impl Strategy<Value = String> {
    "[0-7]([0-9]{0,3}-?)?(/[a-z?,]{0,4})?[0-9]{0,22}[\\[\\]{}\",:0-9a-z_ -]{0,40}"
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        any::<String>().prop_map(Message::Text),
        packetish_text().prop_map(Message::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Message::Binary),
    ]
}

/// Decodes a whole encoded packet with a fresh decoder.
fn decode_all(text: &str, attachments: &[Bytes]) -> Packet {
    let mut decoder = Decoder::default();
    let mut packet = decoder.handle_text(text).expect("text decodes");
    for (i, attachment) in attachments.iter().enumerate() {
        assert!(packet.is_none(), "complete before attachment {i}");
        packet = decoder
            .handle_binary(attachment.clone())
            .expect("attachment decodes");
    }
    assert_eq!(decoder.pending_attachments(), 0);
    packet.expect("complete after all attachments")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_text_never_panics(text in any::<String>()) {
        let _ = Decoder::default().handle_text(&text);
    }

    #[test]
    fn packetish_text_never_panics(text in packetish_text()) {
        let _ = Decoder::default().handle_text(&text);
    }

    #[test]
    fn any_message_sequence_never_panics(messages in prop::collection::vec(message(), 0..12)) {
        let mut decoder = Decoder::default();
        for message in messages {
            let result = match message {
                Message::Text(text) => decoder.handle_text(&text),
                Message::Binary(data) => decoder.handle_binary(Bytes::from(data)),
            };
            if result.is_err() {
                prop_assert_eq!(decoder.pending_attachments(), 0);
            }
        }
    }

    #[test]
    fn encode_then_decode_is_identity(packet in packet()) {
        let encoded = encode(&packet);
        prop_assert_eq!(encoded.attachments.len(), packet.attachments().len());
        let decoded = decode_all(&encoded.text, &encoded.attachments);
        // The decoder names the default namespace `/`; the encoder writes `/` and `` alike.
        prop_assert_eq!(decoded, packet);
    }

    #[test]
    fn damaged_encodings_never_panic(packet in packet(), cut in any::<prop::sample::Index>()) {
        let text = encode(&packet).text;
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        let at = boundaries[cut.index(boundaries.len())];
        let mut decoder = Decoder::default();
        let _ = decoder.handle_text(&text[..at]);
        let mut removed = text.clone();
        removed.remove(at);
        let _ = Decoder::default().handle_text(&removed);
    }
}
