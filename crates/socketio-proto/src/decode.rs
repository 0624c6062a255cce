use bytes::Bytes;
use serde_json::Value;

use crate::placeholder::check_placeholders;
use crate::{DecodeError, Packet, PacketData, PacketKind, PacketType, RESERVED_EVENTS};

/// Limits of a [`Decoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecoderConfig {
    /// The most binary attachments one packet may announce; more is
    /// [`DecodeError::TooManyAttachments`]. Default 32. Zero refuses every binary packet.
    ///
    /// The size of each attachment is bounded by the Engine.IO layer's maximum message size.
    pub max_attachments: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            max_attachments: 32,
        }
    }
}

/// The receiving side of the codec, for one connection.
///
/// Feed it every Engine.IO message of the connection, in arrival order: text messages to
/// [`handle_text`](Self::handle_text), binary messages to [`handle_binary`](Self::handle_binary).
/// Each returns `Some(packet)` once a packet is complete. A BINARY_EVENT or BINARY_ACK is
/// complete after its text and as many binary messages as it announced; in between the decoder
/// returns `None` and holds the partial packet, and a text message is then an error, as is a
/// binary message at any other time.
///
/// On any error the partial packet (if any) is dropped and the decoder is ready for a new packet,
/// though the protocol says the connection must be closed.
///
/// Placeholders are checked when the text arrives, so a malformed binary packet fails before its
/// attachments are buffered.
#[derive(Debug, Default)]
pub struct Decoder {
    config: DecoderConfig,
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// No packet in progress.
    #[default]
    Idle,
    /// A binary packet's text has arrived; its attachments are being collected.
    AwaitingAttachments(Box<Partial>),
}

/// A binary packet waiting for its attachments.
#[derive(Debug)]
struct Partial {
    nsp: String,
    kind: BinaryKind,
    args: Vec<Value>,
    expected: usize,
    attachments: Vec<Bytes>,
}

impl Partial {
    fn into_packet(self) -> Packet {
        let data = PacketData::with_attachments(self.args, self.attachments);
        let kind = match self.kind {
            BinaryKind::Event(id) => PacketKind::Event { data, id },
            BinaryKind::Ack(id) => PacketKind::Ack { data, id },
        };
        Packet::new(self.nsp, kind)
    }
}

/// Which binary packet is pending, with its ack id.
#[derive(Debug, Clone, Copy)]
enum BinaryKind {
    Event(Option<u64>),
    Ack(u64),
}

/// What one text message decoded to.
enum Decoded {
    Complete(Packet),
    NeedsAttachments(Box<Partial>),
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            state: State::Idle,
        }
    }

    /// The limits this decoder enforces.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Handles one Engine.IO text message (without its `4` message type).
    ///
    /// Returns the packet if it is complete, or `None` if it is a binary packet whose attachments
    /// must follow.
    pub fn handle_text(&mut self, text: &str) -> Result<Option<Packet>, DecodeError> {
        if let State::AwaitingAttachments(partial) = std::mem::take(&mut self.state) {
            return Err(DecodeError::UnexpectedText {
                expected: partial.expected,
                received: partial.attachments.len(),
            });
        }
        match decode_text(text, self.config.max_attachments)? {
            Decoded::Complete(packet) => Ok(Some(packet)),
            Decoded::NeedsAttachments(partial) => {
                self.state = State::AwaitingAttachments(partial);
                Ok(None)
            }
        }
    }

    /// Handles one Engine.IO binary message: the next attachment of the pending binary packet.
    ///
    /// Returns the packet once this was its last attachment, `None` while more must follow.
    pub fn handle_binary(&mut self, data: Bytes) -> Result<Option<Packet>, DecodeError> {
        let State::AwaitingAttachments(mut partial) = std::mem::take(&mut self.state) else {
            return Err(DecodeError::UnexpectedBinary);
        };
        partial.attachments.push(data);
        if partial.attachments.len() < partial.expected {
            self.state = State::AwaitingAttachments(partial);
            Ok(None)
        } else {
            Ok(Some(partial.into_packet()))
        }
    }

    /// How many attachments the pending binary packet still waits for (0 when none is pending).
    pub fn pending_attachments(&self) -> usize {
        match &self.state {
            State::Idle => 0,
            State::AwaitingAttachments(partial) => partial.expected - partial.attachments.len(),
        }
    }

    /// Drops the pending binary packet, if any.
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at_checked(end).unwrap_or((s, ""))
}

fn decode_text(text: &str, max_attachments: usize) -> Result<Decoded, DecodeError> {
    let mut chars = text.chars();
    let first = chars.next().ok_or(DecodeError::Empty)?;
    let ty = first
        .to_digit(10)
        .and_then(|digit| u8::try_from(digit).ok())
        .and_then(|digit| PacketType::try_from(digit).ok())
        .ok_or(DecodeError::UnknownPacketType(first))?;
    let mut rest = chars.as_str();

    let attachments = if ty.is_binary() {
        let (digits, after) = split_digits(rest);
        let after = after
            .strip_prefix('-')
            .ok_or(DecodeError::InvalidAttachmentCount)?;
        let count: usize = digits
            .parse()
            .map_err(|_| DecodeError::InvalidAttachmentCount)?;
        if count == 0 {
            return Err(DecodeError::InvalidAttachmentCount);
        }
        if count > max_attachments {
            return Err(DecodeError::TooManyAttachments {
                count,
                max: max_attachments,
            });
        }
        rest = after;
        count
    } else {
        0
    };

    let mut nsp = "/";
    if rest.starts_with('/') {
        (nsp, rest) = rest.split_once(',').unwrap_or((rest, ""));
    }

    let (digits, payload) = split_digits(rest);
    let id = if digits.is_empty() {
        None
    } else {
        Some(
            digits
                .parse::<u64>()
                .map_err(|_| DecodeError::AckIdOverflow)?,
        )
    };
    match ty {
        PacketType::Connect | PacketType::Disconnect | PacketType::ConnectError if id.is_some() => {
            return Err(DecodeError::UnexpectedAckId(ty));
        }
        PacketType::Ack | PacketType::BinaryAck if id.is_none() => {
            return Err(DecodeError::MissingAckId(ty));
        }
        _ => {}
    }

    let payload = if payload.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Value>(payload).map_err(DecodeError::InvalidJson)?)
    };

    let kind = match ty {
        PacketType::Connect => {
            let data = match payload {
                None => None,
                Some(object @ Value::Object(_)) => Some(object),
                Some(_) => return Err(DecodeError::InvalidPayload(ty)),
            };
            // Protocol v4 clients append the handshake query to the namespace.
            let query = nsp.split_once('?').map(|(path, query)| {
                nsp = path;
                query.to_owned()
            });
            PacketKind::Connect { data, query }
        }
        PacketType::Disconnect => match payload {
            None => PacketKind::Disconnect,
            Some(_) => return Err(DecodeError::InvalidPayload(ty)),
        },
        PacketType::ConnectError => match payload {
            None => return Err(DecodeError::MissingPayload(ty)),
            Some(value @ (Value::String(_) | Value::Object(_))) => PacketKind::ConnectError(value),
            Some(_) => return Err(DecodeError::InvalidPayload(ty)),
        },
        PacketType::Event | PacketType::BinaryEvent => {
            let args = array_payload(ty, payload)?;
            match args.first() {
                Some(Value::Number(_)) => {}
                Some(Value::String(name)) if RESERVED_EVENTS.contains(&name.as_str()) => {
                    return Err(DecodeError::ReservedEventName(name.clone()));
                }
                Some(Value::String(_)) => {}
                _ => return Err(DecodeError::InvalidPayload(ty)),
            }
            if ty.is_binary() {
                return binary(nsp, BinaryKind::Event(id), args, attachments);
            }
            PacketKind::Event {
                data: PacketData::new(args),
                id,
            }
        }
        PacketType::Ack | PacketType::BinaryAck => {
            // Acks without an id were rejected above, before parsing the JSON.
            let id = id.ok_or(DecodeError::MissingAckId(ty))?;
            let args = array_payload(ty, payload)?;
            if ty.is_binary() {
                return binary(nsp, BinaryKind::Ack(id), args, attachments);
            }
            PacketKind::Ack {
                data: PacketData::new(args),
                id,
            }
        }
    };
    Ok(Decoded::Complete(Packet::new(nsp, kind)))
}

/// The payload of an event or ack: a JSON array.
fn array_payload(ty: PacketType, payload: Option<Value>) -> Result<Vec<Value>, DecodeError> {
    match payload {
        None => Err(DecodeError::MissingPayload(ty)),
        Some(Value::Array(args)) => Ok(args),
        Some(_) => Err(DecodeError::InvalidPayload(ty)),
    }
}

/// A binary packet's text, checked and waiting for `expected` attachments.
fn binary(
    nsp: &str,
    kind: BinaryKind,
    args: Vec<Value>,
    expected: usize,
) -> Result<Decoded, DecodeError> {
    check_placeholders(&args, expected)?;
    Ok(Decoded::NeedsAttachments(Box::new(Partial {
        nsp: nsp.to_owned(),
        kind,
        args,
        expected,
        attachments: Vec::with_capacity(expected),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, placeholder};
    use serde_json::json;

    fn decode(text: &str) -> Result<Option<Packet>, DecodeError> {
        Decoder::default().handle_text(text)
    }

    fn complete(text: &str) -> Packet {
        match decode(text) {
            Ok(Some(packet)) => packet,
            other => panic!("{text:?} decoded to {other:?}"),
        }
    }

    #[test]
    fn connect() {
        assert_eq!(complete("0"), Packet::connect("/", None));
        assert_eq!(complete("0/chat,"), Packet::connect("/chat", None));
        assert_eq!(complete("0/random"), Packet::connect("/random", None));
        assert_eq!(
            complete(r#"0{"token":"123"}"#),
            Packet::connect("/", Some(json!({"token": "123"})))
        );
        assert_eq!(
            complete(r#"0/custom,{"token":"abc"}"#),
            Packet::connect("/custom", Some(json!({"token": "abc"})))
        );
    }

    #[test]
    fn connect_v2_query() {
        let packet = complete("0/chat?token=abc,");
        assert_eq!(
            packet,
            Packet::new(
                "/chat",
                PacketKind::Connect {
                    data: None,
                    query: Some("token=abc".into())
                }
            )
        );
        assert_eq!(encode(&packet).text, "0/chat?token=abc,");
        let empty = complete("0/chat?");
        assert_eq!(
            empty.kind,
            PacketKind::Connect {
                data: None,
                query: Some(String::new())
            }
        );
        // Only CONNECT carries a query; elsewhere `?` is part of the namespace.
        assert_eq!(complete("1/chat?x,").nsp, "/chat?x");
    }

    #[test]
    fn disconnect() {
        assert_eq!(complete("1"), Packet::disconnect("/"));
        assert_eq!(complete("1/chat,"), Packet::disconnect("/chat"));
        assert_eq!(complete("1/custom"), Packet::disconnect("/custom"));
    }

    #[test]
    fn connect_error() {
        assert_eq!(
            complete(r#"4/random,{"message":"Invalid namespace"}"#),
            Packet::connect_error("/random", "Invalid namespace", None)
        );
        assert_eq!(
            complete(r#"4"Not authorized""#).kind,
            PacketKind::ConnectError(json!("Not authorized"))
        );
    }

    #[test]
    fn events_and_acks() {
        assert_eq!(
            complete(r#"2["foo"]"#),
            Packet::event("/", PacketData::event("foo", []), None)
        );
        assert_eq!(
            complete(r#"2/admin,13["bar",1]"#),
            Packet::event("/admin", PacketData::event("bar", [json!(1)]), Some(13))
        );
        assert_eq!(
            complete(r#"2[42,"numeric event name"]"#)
                .data()
                .map(|d| d.args.len()),
            Some(2)
        );
        assert_eq!(
            complete("3/admin,13[]"),
            Packet::ack("/admin", PacketData::default(), 13)
        );
        assert_eq!(complete(&format!("3{}[]", u64::MAX)).id(), Some(u64::MAX));
        // A placeholder-shaped object in a plain event is ordinary data.
        let plain = complete(r#"2["e",{"_placeholder":true,"num":5}]"#);
        assert!(plain.attachments().is_empty());
    }

    #[test]
    fn binary_event_then_attachments() {
        let mut decoder = Decoder::default();
        let text =
            r#"52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert!(decoder.handle_text(text).expect("text").is_none());
        assert_eq!(decoder.pending_attachments(), 2);
        assert!(decoder
            .handle_binary(Bytes::from_static(&[1, 2]))
            .expect("first")
            .is_none());
        assert_eq!(decoder.pending_attachments(), 1);
        let packet = decoder
            .handle_binary(Bytes::from_static(&[3, 4]))
            .expect("second")
            .expect("complete");
        assert_eq!(decoder.pending_attachments(), 0);
        assert_eq!(
            packet,
            Packet::event(
                "/admin",
                PacketData::with_attachments(
                    vec![json!("baz"), placeholder(0), placeholder(1)],
                    vec![Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])]
                ),
                None
            )
        );
        assert_eq!(encode(&packet).text, text);
        // The decoder is ready for the next packet.
        assert!(decoder.handle_text("1").expect("next").is_some());
    }

    #[test]
    fn binary_ack() {
        let mut decoder = Decoder::default();
        assert!(decoder
            .handle_text(r#"61-15["bar",{"_placeholder":true,"num":0}]"#)
            .expect("text")
            .is_none());
        let packet = decoder
            .handle_binary(Bytes::from_static(&[1, 2, 3, 4]))
            .expect("binary")
            .expect("complete");
        assert_eq!(packet.packet_type(), PacketType::BinaryAck);
        assert_eq!(packet.id(), Some(15));
    }

    #[test]
    fn errors() {
        type Check = fn(&DecodeError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, DecodeError::Empty)),
            ("abc", |e| matches!(e, DecodeError::UnknownPacketType('a'))),
            ("7", |e| matches!(e, DecodeError::UnknownPacketType('7'))),
            ("é", |e| matches!(e, DecodeError::UnknownPacketType('é'))),
            ("5[\"a\"]", |e| {
                matches!(e, DecodeError::InvalidAttachmentCount)
            }),
            ("51[\"a\"]", |e| {
                matches!(e, DecodeError::InvalidAttachmentCount)
            }),
            ("5-[\"a\"]", |e| {
                matches!(e, DecodeError::InvalidAttachmentCount)
            }),
            ("50-[\"a\"]", |e| {
                matches!(e, DecodeError::InvalidAttachmentCount)
            }),
            ("5x1-[\"a\"]", |e| {
                matches!(e, DecodeError::InvalidAttachmentCount)
            }),
            ("599999999999999999999999-[\"a\"]", |e| {
                matches!(e, DecodeError::InvalidAttachmentCount)
            }),
            ("533-[\"a\"]", |e| {
                matches!(e, DecodeError::TooManyAttachments { count: 33, max: 32 })
            }),
            ("218446744073709551616[\"a\"]", |e| {
                matches!(e, DecodeError::AckIdOverflow)
            }),
            ("3[]", |e| {
                matches!(e, DecodeError::MissingAckId(PacketType::Ack))
            }),
            ("61-[{\"_placeholder\":true,\"num\":0}]", |e| {
                matches!(e, DecodeError::MissingAckId(PacketType::BinaryAck))
            }),
            ("01{}", |e| {
                matches!(e, DecodeError::UnexpectedAckId(PacketType::Connect))
            }),
            ("1/a,1", |e| {
                matches!(e, DecodeError::UnexpectedAckId(PacketType::Disconnect))
            }),
            ("4123", |e| {
                matches!(e, DecodeError::UnexpectedAckId(PacketType::ConnectError))
            }),
            ("2abc[\"x\"]", |e| matches!(e, DecodeError::InvalidJson(_))),
            ("2[\"x\"", |e| matches!(e, DecodeError::InvalidJson(_))),
            ("2", |e| {
                matches!(e, DecodeError::MissingPayload(PacketType::Event))
            }),
            ("31", |e| {
                matches!(e, DecodeError::MissingPayload(PacketType::Ack))
            }),
            ("4", |e| {
                matches!(e, DecodeError::MissingPayload(PacketType::ConnectError))
            }),
            ("51-", |e| {
                matches!(e, DecodeError::MissingPayload(PacketType::BinaryEvent))
            }),
            ("2{}", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Event))
            }),
            ("2[]", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Event))
            }),
            ("2[null]", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Event))
            }),
            ("2[{}]", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Event))
            }),
            ("31{}", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Ack))
            }),
            ("0[]", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Connect))
            }),
            ("0\"x\"", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Connect))
            }),
            ("1{}", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::Disconnect))
            }),
            ("4[]", |e| {
                matches!(e, DecodeError::InvalidPayload(PacketType::ConnectError))
            }),
            (
                "2[\"disconnect\"]",
                |e| matches!(e, DecodeError::ReservedEventName(name) if name == "disconnect"),
            ),
            ("51-[\"a\",{\"_placeholder\":true}]", |e| {
                matches!(e, DecodeError::InvalidPlaceholder)
            }),
            ("51-[\"a\",{\"_placeholder\":true,\"num\":1}]", |e| {
                matches!(e, DecodeError::PlaceholderOutOfRange { num: 1, count: 1 })
            }),
            ("52-[\"a\",{\"_placeholder\":true,\"num\":1}]", |e| {
                matches!(e, DecodeError::UnreferencedAttachment { index: 0 })
            }),
            ("51-[\"a\"]", |e| {
                matches!(e, DecodeError::UnreferencedAttachment { index: 0 })
            }),
        ];
        for (text, check) in cases {
            match decode(text) {
                Err(e) => assert!(check(&e), "{text:?} gave {e:?}"),
                Ok(p) => panic!("{text:?} decoded to {p:?}"),
            }
        }
    }

    #[test]
    fn too_deep_json_is_an_error() {
        let text = format!("2[\"a\",{}{}]", "[".repeat(1000), "]".repeat(1000));
        assert!(matches!(decode(&text), Err(DecodeError::InvalidJson(_))));
    }

    #[test]
    fn configured_limit() {
        let mut decoder = Decoder::new(DecoderConfig { max_attachments: 1 });
        assert_eq!(decoder.config().max_attachments, 1);
        assert!(matches!(
            decoder.handle_text(
                r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
            ),
            Err(DecodeError::TooManyAttachments { count: 2, max: 1 })
        ));
        assert!(matches!(
            Decoder::new(DecoderConfig { max_attachments: 0 })
                .handle_text(r#"51-["a",{"_placeholder":true,"num":0}]"#),
            Err(DecodeError::TooManyAttachments { count: 1, max: 0 })
        ));
    }

    #[test]
    fn unexpected_messages() {
        let mut decoder = Decoder::default();
        assert!(matches!(
            decoder.handle_binary(Bytes::new()),
            Err(DecodeError::UnexpectedBinary)
        ));

        let text = r#"52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert!(decoder.handle_text(text).expect("text").is_none());
        assert!(decoder
            .handle_binary(Bytes::new())
            .expect("first")
            .is_none());
        assert!(matches!(
            decoder.handle_text(r#"2["a"]"#),
            Err(DecodeError::UnexpectedText {
                expected: 2,
                received: 1
            })
        ));
        // The partial packet was dropped.
        assert_eq!(decoder.pending_attachments(), 0);
        assert!(matches!(
            decoder.handle_binary(Bytes::new()),
            Err(DecodeError::UnexpectedBinary)
        ));
        assert!(decoder.handle_text(r#"2["a"]"#).expect("fresh").is_some());

        assert!(decoder.handle_text(text).expect("text").is_none());
        decoder.reset();
        assert_eq!(decoder.pending_attachments(), 0);
    }

    #[test]
    fn error_messages_name_limits() {
        let err = decode("540-[\"a\"]").expect_err("too many");
        assert_eq!(
            err.to_string(),
            "too many attachments: 40 announced, at most 32 allowed"
        );
    }
}
