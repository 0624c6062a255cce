//! Socket.IO packets as Engine.IO messages, through the shared codec.

use ferrio_engineio_proto::{Message, Packet as EnginePacket, Text};
use ferrio_socketio_proto::{encode_text_into, Packet};

/// The Engine.IO packets that carry `packet`: its text message, then one binary message per
/// attachment.
pub(crate) fn to_engine(packet: &Packet) -> Vec<EnginePacket> {
    let mut text = String::from("4");
    encode_text_into(packet, &mut text);
    // The buffer starts with the message type `4`, which is all `from_packet_string` checks.
    let text = Text::from_packet_string(text).unwrap_or_else(|_| Text::new(""));
    let mut out = Vec::with_capacity(1 + packet.attachments().len());
    out.push(EnginePacket::Message(Message::Text(text)));
    out.extend(
        packet
            .attachments()
            .iter()
            .map(|data| EnginePacket::Message(Message::Binary(data.clone()))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ferrio_socketio_proto::{placeholder, PacketData};
    use serde_json::json;

    #[test]
    fn text_then_attachments() {
        let data = PacketData::with_attachments(
            vec![json!("up"), placeholder(0)],
            vec![Bytes::from_static(&[1, 2])],
        );
        let packets = to_engine(&Packet::event("/a", data, Some(3)));
        assert_eq!(
            packets,
            vec![
                EnginePacket::Message(Message::from(
                    r#"51-/a,3["up",{"_placeholder":true,"num":0}]"#
                )),
                EnginePacket::Message(Message::Binary(Bytes::from_static(&[1, 2]))),
            ]
        );
    }
}
