//! Sans-IO codec for Socket.IO packets: protocol v5, and protocol v4 as spoken by
//! socket.io-client v2 over Engine.IO v3.
//!
//! Nothing here touches a socket or a runtime. One Socket.IO packet travels as one Engine.IO text
//! message, followed by one Engine.IO binary message per binary attachment:
//!
//! ```text
//! <type digit>[<attachment count>-][<namespace>,][<ack id>][<JSON payload>]
//! ```
//!
//! - [`Packet`] is one decoded packet: a namespace and a [`PacketKind`]. Events and acks carry
//!   [`PacketData`]: the JSON argument array with binary placeholders left in place, and the
//!   attachments in arrival order.
//! - [`encode`] turns a packet into its text and its attachments ([`Encoded`]);
//!   [`encode_text_into`] appends the text to a buffer the caller owns (for example one that
//!   already starts with the Engine.IO message type `4`), so a broadcast is serialized once.
//! - [`Decoder`] is the receiving state machine: feed it every Engine.IO message of one
//!   connection, in order, through [`Decoder::handle_text`] and [`Decoder::handle_binary`]; it
//!   returns a [`Packet`] once the packet and all its attachments have arrived. Every malformed
//!   input is a typed [`DecodeError`]; the protocol says the connection must then be closed.
//! - [`placeholder`] and [`placeholder_num`] build and recognise the
//!   `{"_placeholder":true,"num":N}` objects that stand for attachments inside the JSON.
//!
//! ```
//! use bytes::Bytes;
//! use ferrio_socketio_proto::{encode, Decoder, Packet, PacketData, PacketKind};
//! use serde_json::json;
//!
//! let mut decoder = Decoder::default();
//! let text = r#"51-/admin,7["upload",{"_placeholder":true,"num":0}]"#;
//! assert!(decoder.handle_text(text)?.is_none()); // waits for the attachment
//! let packet = decoder.handle_binary(Bytes::from_static(b"\x01\x02"))?.expect("complete");
//! assert_eq!(packet.nsp, "/admin");
//! let PacketKind::Event { data, id } = &packet.kind else { panic!("not an event") };
//! assert_eq!(*id, Some(7));
//! assert_eq!(data.attachments, [Bytes::from_static(b"\x01\x02")]);
//!
//! let reply = Packet::ack("/admin", PacketData::new(vec![json!("ok")]), 7);
//! assert_eq!(encode(&reply).text, r#"3/admin,7["ok"]"#);
//! # Ok::<(), ferrio_socketio_proto::DecodeError>(())
//! ```

mod decode;
mod encode;
mod error;
mod packet;
mod payload;
mod placeholder;

pub use decode::{Decoder, DecoderConfig};
pub use encode::{encode, encode_text_into, Encoded};
pub use error::{DecodeError, InvalidPacketType};
pub use packet::{is_valid_namespace, Packet, PacketData, PacketKind, PacketType, RESERVED_EVENTS};
pub use payload::{ArgError, Payload};
pub use placeholder::{placeholder, placeholder_num};
