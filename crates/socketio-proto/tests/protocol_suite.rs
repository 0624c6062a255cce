//! The exchanges of the official `socket.io-protocol` test suite (and the v2-client forms),
//! replayed through the codec: what the client sends must decode as the suite's reference server
//! understands it, and what that server answers must encode to exactly the bytes the suite
//! expects.
//!
//! Engine.IO messages here include the Engine.IO type `4` as the suite writes them; the codec
//! sees the text after it.

use bytes::Bytes;
use ferrio_socketio_proto::{
    encode, DecodeError, Decoder, Packet, PacketData, PacketKind, PacketType,
};
use serde_json::{json, Value};

/// One Engine.IO message on a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Text(String),
    Binary(Bytes),
}

/// Feeds the frames a client sent and returns the packets they complete.
fn receive(decoder: &mut Decoder, frames: &[Frame]) -> Result<Vec<Packet>, DecodeError> {
    let mut packets = Vec::new();
    for frame in frames {
        let packet = match frame {
            Frame::Text(text) => {
                let text = text.strip_prefix('4').expect("an Engine.IO message");
                decoder.handle_text(text)?
            }
            Frame::Binary(data) => decoder.handle_binary(data.clone())?,
        };
        packets.extend(packet);
    }
    Ok(packets)
}

fn receive_one(frames: &[Frame]) -> Packet {
    let mut packets = receive(&mut Decoder::default(), frames).expect("valid packets");
    assert_eq!(packets.len(), 1, "{packets:?}");
    packets.remove(0)
}

fn text(s: &str) -> Frame {
    Frame::Text(s.to_owned())
}

/// The frames the server sends for `packet`.
fn send(packet: &Packet) -> Vec<Frame> {
    let encoded = encode(packet);
    let mut frames = vec![Frame::Text(format!("4{}", encoded.text))];
    frames.extend(encoded.attachments.into_iter().map(Frame::Binary));
    frames
}

/// What the suite's server does on a CONNECT: accept `/` and `/custom` and emit `auth`, refuse
/// anything else.
fn on_connect(packet: &Packet) -> Vec<Packet> {
    let PacketKind::Connect { data, query: None } = &packet.kind else {
        panic!("not a v5 CONNECT: {packet:?}");
    };
    if packet.nsp != "/" && packet.nsp != "/custom" {
        return vec![Packet::connect_error(
            packet.nsp.clone(),
            "Invalid namespace",
            None,
        )];
    }
    let auth = data.clone().unwrap_or_else(|| json!({}));
    vec![
        Packet::connect_reply(packet.nsp.clone(), "wZX3oN0bSVIhsaknAAAI", None),
        Packet::event(packet.nsp.clone(), PacketData::event("auth", [auth]), None),
    ]
}

/// What the suite's server does on an event: `message` echoes as `message-back`,
/// `message-with-ack` acks its arguments.
fn on_event(packet: Packet) -> Packet {
    let PacketKind::Event { mut data, id } = packet.kind else {
        panic!("not an event: {packet:?}");
    };
    let name = data.args.remove(0);
    match (name.as_str(), id) {
        (Some("message"), None) => {
            data.args.insert(0, Value::from("message-back"));
            Packet::event(packet.nsp, data, None)
        }
        (Some("message-with-ack"), Some(id)) => Packet::ack(packet.nsp, data, id),
        other => panic!("unexpected event {other:?}"),
    }
}

fn sent_text(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .flat_map(send)
        .map(|frame| match frame {
            Frame::Text(text) => text,
            Frame::Binary(_) => panic!("unexpected binary frame"),
        })
        .collect()
}

#[test]
fn connect_to_main_namespace() {
    let packet = receive_one(&[text("40")]);
    assert_eq!(packet, Packet::connect("/", None));
    assert_eq!(
        sent_text(&on_connect(&packet)),
        [r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#, r#"42["auth",{}]"#]
    );
}

#[test]
fn connect_to_main_namespace_with_payload() {
    let packet = receive_one(&[text(r#"40{"token":"123"}"#)]);
    assert_eq!(
        sent_text(&on_connect(&packet))[1],
        r#"42["auth",{"token":"123"}]"#
    );
}

#[test]
fn connect_to_custom_namespace() {
    let packet = receive_one(&[text("40/custom,")]);
    let sent = sent_text(&on_connect(&packet));
    assert_eq!(sent[0], r#"40/custom,{"sid":"wZX3oN0bSVIhsaknAAAI"}"#);
    assert_eq!(sent[1], r#"42/custom,["auth",{}]"#);
}

#[test]
fn connect_to_custom_namespace_with_payload() {
    let packet = receive_one(&[text(r#"40/custom,{"token":"abc"}"#)]);
    assert_eq!(
        sent_text(&on_connect(&packet))[1],
        r#"42/custom,["auth",{"token":"abc"}]"#
    );
}

#[test]
fn connect_to_unknown_namespace() {
    let packet = receive_one(&[text("40/random")]);
    assert_eq!(packet.nsp, "/random");
    assert_eq!(
        sent_text(&on_connect(&packet)),
        [r#"44/random,{"message":"Invalid namespace"}"#]
    );
}

#[test]
fn invalid_handshake() {
    let err = receive(&mut Decoder::default(), &[text("4abc")]).expect_err("invalid");
    assert!(
        matches!(err, DecodeError::UnknownPacketType('a')),
        "{err:?}"
    );
}

#[test]
fn disconnect() {
    assert_eq!(receive_one(&[text("41")]), Packet::disconnect("/"));
    let mut decoder = Decoder::default();
    let packets = receive(
        &mut decoder,
        &[
            text("40/custom"),
            text("41/custom"),
            text(r#"42["message","message to main namespace"]"#),
        ],
    )
    .expect("valid");
    assert_eq!(packets[0], Packet::connect("/custom", None));
    assert_eq!(packets[1], Packet::disconnect("/custom"));
    assert_eq!(
        sent_text(&[on_event(packets[2].clone())]),
        [r#"42["message-back","message to main namespace"]"#]
    );
}

#[test]
fn plain_text_event() {
    let packet = receive_one(&[text(r#"42["message",1,"2",{"3":[true]}]"#)]);
    assert_eq!(
        sent_text(&[on_event(packet)]),
        [r#"42["message-back",1,"2",{"3":[true]}]"#]
    );
}

#[test]
fn binary_event() {
    let packet = receive_one(&[
        text(r#"452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
        Frame::Binary(Bytes::from_static(&[1, 2, 3])),
        Frame::Binary(Bytes::from_static(&[4, 5, 6])),
    ]);
    assert_eq!(packet.packet_type(), PacketType::BinaryEvent);
    assert_eq!(
        send(&on_event(packet)),
        [
            text(
                r#"452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
            ),
            Frame::Binary(Bytes::from_static(&[1, 2, 3])),
            Frame::Binary(Bytes::from_static(&[4, 5, 6])),
        ]
    );
}

#[test]
fn plain_text_event_with_ack() {
    let packet = receive_one(&[text(r#"42456["message-with-ack",1,"2",{"3":[false]}]"#)]);
    assert_eq!(packet.id(), Some(456));
    assert_eq!(
        sent_text(&[on_event(packet)]),
        [r#"43456[1,"2",{"3":[false]}]"#]
    );
}

#[test]
fn binary_event_with_ack() {
    let packet = receive_one(&[
        text(
            r#"452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        ),
        Frame::Binary(Bytes::from_static(&[1, 2, 3])),
        Frame::Binary(Bytes::from_static(&[4, 5, 6])),
    ]);
    assert_eq!(packet.id(), Some(789));
    assert_eq!(
        send(&on_event(packet)),
        [
            text(r#"462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#),
            Frame::Binary(Bytes::from_static(&[1, 2, 3])),
            Frame::Binary(Bytes::from_static(&[4, 5, 6])),
        ]
    );
}

#[test]
fn invalid_formats_close_the_connection() {
    type Check = fn(&DecodeError) -> bool;
    let cases: [(&str, Check); 3] = [
        ("4abc", |e| matches!(e, DecodeError::UnknownPacketType('a'))),
        ("42{}", |e| {
            matches!(e, DecodeError::InvalidPayload(PacketType::Event))
        }),
        (r#"42abc["message-with-ack",1,"2",{"3":[false]}]"#, |e| {
            matches!(e, DecodeError::InvalidJson(_))
        }),
    ];
    for (frame, check) in cases {
        let err = receive(&mut Decoder::default(), &[text(frame)]).expect_err(frame);
        assert!(check(&err), "{frame}: {err:?}");
    }
}

#[test]
fn sample_session_binary_ack() {
    let packet = Packet::ack(
        "/admin",
        PacketData::with_attachments(
            vec![ferrio_socketio_proto::placeholder(0)],
            vec![Bytes::from_static(b"bin")],
        ),
        1,
    );
    assert_eq!(
        send(&packet)[0],
        text(r#"461-/admin,1[{"_placeholder":true,"num":0}]"#)
    );
    assert_eq!(
        receive_one(&[text(r#"42/admin,1["tellme"]"#)]),
        Packet::event("/admin", PacketData::event("tellme", []), Some(1))
    );
}

/// socket.io-client v2 (protocol v4 over Engine.IO v3).
mod v2_client {
    use super::*;

    #[test]
    fn connect_with_query() {
        let packet = receive_one(&[text("40/chat?token=abc,")]);
        assert_eq!(packet.nsp, "/chat");
        assert_eq!(
            packet.kind,
            PacketKind::Connect {
                data: None,
                query: Some("token=abc".to_owned()),
            }
        );
    }

    #[test]
    fn server_replies() {
        // The v4 CONNECT reply has no payload.
        assert_eq!(sent_text(&[Packet::connect("/chat", None)]), ["40/chat,"]);
        assert_eq!(sent_text(&[Packet::connect("/", None)]), ["40"]);
        // The v4 ERROR packet carries the error's data.
        assert_eq!(
            sent_text(&[Packet::new(
                "/private",
                PacketKind::ConnectError(json!({"reason": "bad token"}))
            )]),
            [r#"44/private,{"reason":"bad token"}"#]
        );
        assert_eq!(
            sent_text(&[Packet::new(
                "/chat",
                PacketKind::ConnectError(json!("Invalid namespace"))
            )]),
            [r#"44/chat,"Invalid namespace""#]
        );
        assert_eq!(sent_text(&[Packet::disconnect("/chat")]), ["41/chat,"]);
    }

    #[test]
    fn client_decodes_string_error() {
        let packet = receive_one(&[text(r#"44/chat,"Invalid namespace""#)]);
        assert_eq!(
            packet.kind,
            PacketKind::ConnectError(json!("Invalid namespace"))
        );
    }
}
