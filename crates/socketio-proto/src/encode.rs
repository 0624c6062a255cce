use std::fmt::Write as _;

use bytes::Bytes;
use serde_json::Value;

use crate::{Packet, PacketKind};

/// An encoded packet: one Engine.IO text message, then one Engine.IO binary message per
/// attachment, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The text message, without the Engine.IO message type `4`.
    pub text: String,
    /// The binary messages that follow the text (empty unless BINARY_EVENT or BINARY_ACK).
    pub attachments: Vec<Bytes>,
}

/// Encodes `packet` as its text and its attachments.
///
/// The attachments are reference-counted clones of the packet's: encoding a broadcast once and
/// cloning the result for each recipient copies no payload.
pub fn encode(packet: &Packet) -> Encoded {
    let mut text = String::new();
    encode_text_into(packet, &mut text);
    Encoded {
        text,
        attachments: packet.attachments().to_vec(),
    }
}

/// Appends the text message of `packet` to `out`, leaving what `out` already holds in place.
///
/// This lets the caller put the Engine.IO message type in front (`out` = `"4"`) and hand the
/// whole buffer to the transport without another copy. The JSON payload is written compactly,
/// straight into `out`. The attachments to send after the text are
/// [`packet.attachments()`](Packet::attachments).
pub fn encode_text_into(packet: &Packet, out: &mut String) {
    let ty = packet.packet_type();
    out.push(char::from(b'0' + ty.as_u8()));
    if ty.is_binary() {
        out.push_str(itoa::Buffer::new().format(packet.attachments().len()));
        out.push('-');
    }

    match &packet.kind {
        PacketKind::Connect {
            query: Some(query), ..
        } => {
            // Protocol v4 (socket.io-client v2): the query rides in the namespace, which is then
            // always written, even `/`.
            out.push_str(if packet.nsp.is_empty() {
                "/"
            } else {
                &packet.nsp
            });
            out.push('?');
            out.push_str(query);
            out.push(',');
        }
        _ if packet.nsp.is_empty() || packet.nsp == "/" => {}
        _ => {
            out.push_str(&packet.nsp);
            out.push(',');
        }
    }

    if let Some(id) = packet.id() {
        out.push_str(itoa::Buffer::new().format(id));
    }

    match &packet.kind {
        PacketKind::Connect { data: None, .. } | PacketKind::Disconnect => {}
        PacketKind::Connect {
            data: Some(value), ..
        }
        | PacketKind::ConnectError(value) => write_json(out, value),
        PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } => {
            out.push('[');
            for (i, arg) in data.args.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, arg);
            }
            out.push(']');
        }
    }
}

/// Writes `value` as compact JSON.
fn write_json(out: &mut String, value: &Value) {
    // `Value`'s `Display` is serde_json's compact serializer writing through `fmt::Write`, so the
    // JSON goes straight into `out` with no intermediate buffer and no UTF-8 re-validation.
    // Writing to a `String` cannot fail, and serializing a `Value` cannot either (its keys are
    // strings and its numbers finite), so there is no error to report.
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{placeholder, PacketData};
    use serde_json::json;

    fn text(packet: &Packet) -> String {
        encode(packet).text
    }

    #[test]
    fn connect_forms() {
        assert_eq!(text(&Packet::connect("/", None)), "0");
        assert_eq!(text(&Packet::connect("/chat", None)), "0/chat,");
        assert_eq!(
            text(&Packet::connect("/admin", Some(json!({"token": "123"})))),
            r#"0/admin,{"token":"123"}"#
        );
        assert_eq!(
            text(&Packet::connect_reply("/", "wZX3", None)),
            r#"0{"sid":"wZX3"}"#
        );
        let v2 = Packet::new(
            "/chat",
            PacketKind::Connect {
                data: None,
                query: Some("token=abc".into()),
            },
        );
        assert_eq!(text(&v2), "0/chat?token=abc,");
        let v2_root = Packet::new(
            "/",
            PacketKind::Connect {
                data: None,
                query: Some("a=1".into()),
            },
        );
        assert_eq!(text(&v2_root), "0/?a=1,");
    }

    #[test]
    fn disconnect_and_error_forms() {
        assert_eq!(text(&Packet::disconnect("/")), "1");
        assert_eq!(text(&Packet::disconnect("")), "1");
        assert_eq!(text(&Packet::disconnect("/chat")), "1/chat,");
        assert_eq!(
            text(&Packet::connect_error("/random", "Invalid namespace", None)),
            r#"4/random,{"message":"Invalid namespace"}"#
        );
        assert_eq!(
            text(&Packet::new(
                "/",
                PacketKind::ConnectError(json!("Not authorized"))
            )),
            r#"4"Not authorized""#
        );
    }

    #[test]
    fn event_and_ack_forms() {
        assert_eq!(
            text(&Packet::event("/", PacketData::event("foo", []), None)),
            r#"2["foo"]"#
        );
        assert_eq!(
            text(&Packet::event("/admin", PacketData::event("bar", []), None)),
            r#"2/admin,["bar"]"#
        );
        assert_eq!(
            text(&Packet::event("/", PacketData::event("foo", []), Some(12))),
            r#"212["foo"]"#
        );
        assert_eq!(
            text(&Packet::ack("/admin", PacketData::event("bar", []), 13)),
            r#"3/admin,13["bar"]"#
        );
        assert_eq!(text(&Packet::ack("/", PacketData::default(), 0)), "30[]");
    }

    #[test]
    fn binary_forms() {
        let data = PacketData::with_attachments(
            vec![json!("baz"), placeholder(0), placeholder(1)],
            vec![Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])],
        );
        let encoded = encode(&Packet::event("/admin", data.clone(), None));
        assert_eq!(
            encoded.text,
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
        );
        assert_eq!(encoded.attachments, data.attachments);

        let ack = PacketData::with_attachments(
            vec![json!("bar"), placeholder(0)],
            vec![Bytes::from_static(&[1, 2, 3, 4])],
        );
        assert_eq!(
            text(&Packet::ack("/", ack, 15)),
            r#"61-15["bar",{"_placeholder":true,"num":0}]"#
        );
    }

    #[test]
    fn appends_after_prefix() {
        let mut out = String::from("4");
        encode_text_into(
            &Packet::event("/", PacketData::event("hey", [json!("Jude")]), None),
            &mut out,
        );
        assert_eq!(out, r#"42["hey","Jude"]"#);
    }

    #[test]
    fn escapes_strings() {
        assert_eq!(
            text(&Packet::event(
                "/",
                PacketData::event("e", [json!("a\"b\\c\n\u{1}é😀")]),
                None
            )),
            "2[\"e\",\"a\\\"b\\\\c\\n\\u0001é😀\"]"
        );
    }
}
