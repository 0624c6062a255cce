use std::fmt;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::InvalidPacketType;

/// Event names a peer may not send, because they have a meaning of their own on one side or the
/// other (the reference parser rejects events named so).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Whether `nsp` can be written on the wire and read back unchanged: it starts with `/` and
/// contains no `,` (the comma ends the namespace in the encoding).
///
/// Namespaces read by the [`Decoder`](crate::Decoder) always pass. Check names that come from
/// anywhere else before putting them in a [`Packet`].
pub fn is_valid_namespace(nsp: &str) -> bool {
    nsp.starts_with('/') && !nsp.contains(',')
}

/// The type of a Socket.IO packet: the first character of its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// `0`: connect to a namespace (client), or accept the connection (server).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event without binary attachments.
    Event = 2,
    /// `3`: the answer to an event that asked for an ack, without binary attachments.
    Ack = 3,
    /// `4`: the server refuses a connection to a namespace (called ERROR in protocol v4).
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an ack with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    /// The number written on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether packets of this type announce binary attachments (`<count>-`).
    pub const fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }

    /// The name the protocol specification uses, such as `"BINARY_EVENT"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Disconnect => "DISCONNECT",
            Self::Event => "EVENT",
            Self::Ack => "ACK",
            Self::ConnectError => "CONNECT_ERROR",
            Self::BinaryEvent => "BINARY_EVENT",
            Self::BinaryAck => "BINARY_ACK",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<PacketType> for u8 {
    fn from(ty: PacketType) -> Self {
        ty.as_u8()
    }
}

impl TryFrom<u8> for PacketType {
    type Error = InvalidPacketType;

    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Ok(match n {
            0 => Self::Connect,
            1 => Self::Disconnect,
            2 => Self::Event,
            3 => Self::Ack,
            4 => Self::ConnectError,
            5 => Self::BinaryEvent,
            6 => Self::BinaryAck,
            _ => return Err(InvalidPacketType(n)),
        })
    }
}

/// The arguments of an event or an ack, with their binary attachments.
///
/// `args` is the JSON array sent on the wire. For an event its first element is the event name.
/// Binary values appear in it as placeholders (see [`placeholder`](crate::placeholder)) whose
/// `num` indexes `attachments`.
///
/// When `attachments` is empty the packet is encoded as EVENT or ACK and `args` is plain JSON.
/// When it is not, the packet is encoded as BINARY_EVENT or BINARY_ACK; a packet built for
/// sending must then refer to every attachment by exactly the placeholders it means, since the
/// encoder writes `args` as given. Packets from the [`Decoder`](crate::Decoder) always satisfy
/// this: every placeholder has a valid `num` and every attachment is referenced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketData {
    /// The JSON arguments, placeholders in place of binary values.
    pub args: Vec<Value>,
    /// The binary attachments, in placeholder `num` order (the order they travel in).
    pub attachments: Vec<Bytes>,
}

impl PacketData {
    /// Arguments without binary attachments.
    pub fn new(args: Vec<Value>) -> Self {
        Self {
            args,
            attachments: Vec::new(),
        }
    }

    /// Arguments with binary attachments; `args` must refer to them by placeholders.
    pub fn with_attachments(args: Vec<Value>, attachments: Vec<Bytes>) -> Self {
        Self { args, attachments }
    }

    /// The arguments of an event: its name followed by `args`, without attachments.
    pub fn event(name: impl Into<String>, args: impl IntoIterator<Item = Value>) -> Self {
        let args = std::iter::once(Value::String(name.into()))
            .chain(args)
            .collect();
        Self::new(args)
    }

    /// Whether there are binary attachments (the packet is then BINARY_EVENT or BINARY_ACK).
    pub fn has_attachments(&self) -> bool {
        !self.attachments.is_empty()
    }
}

/// What a packet is, with the data its type carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketKind {
    /// CONNECT. From a client: a request to join the namespace, with an optional auth payload
    /// (protocol v5). From the server: the acceptance, `{"sid": ...}` in v5, no payload in v4.
    Connect {
        /// The payload; when present it must be a JSON object.
        data: Option<Value>,
        /// The query string a protocol v4 client (socket.io-client v2) appends to the namespace,
        /// as in `0/chat?token=abc,`: here `token=abc`, still URL-encoded. `None` when the
        /// namespace had no `?`.
        query: Option<String>,
    },
    /// DISCONNECT: leave the namespace. It carries nothing.
    Disconnect,
    /// EVENT, or BINARY_EVENT when the data has attachments.
    Event {
        /// The event name and arguments.
        data: PacketData,
        /// The ack id, when the sender expects an ACK.
        id: Option<u64>,
    },
    /// ACK, or BINARY_ACK when the data has attachments.
    Ack {
        /// The ack arguments.
        data: PacketData,
        /// The id of the event being acknowledged.
        id: u64,
    },
    /// CONNECT_ERROR: the server refused the connection. The payload is a string or an object:
    /// `{"message": ..., "data": ...}` in protocol v5, usually a string or the error's data in v4.
    ConnectError(Value),
}

/// One Socket.IO packet: the namespace it belongs to and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The namespace, `/` by default. It must satisfy [`is_valid_namespace`] to be encoded
    /// faithfully; an empty string is written like `/`.
    pub nsp: String,
    /// The packet type and its data.
    pub kind: PacketKind,
}

impl Packet {
    /// A packet of any kind.
    pub fn new(nsp: impl Into<String>, kind: PacketKind) -> Self {
        Self {
            nsp: nsp.into(),
            kind,
        }
    }

    /// A client's CONNECT with an optional auth payload, which must be a JSON object.
    pub fn connect(nsp: impl Into<String>, auth: Option<Value>) -> Self {
        Self::new(
            nsp,
            PacketKind::Connect {
                data: auth,
                query: None,
            },
        )
    }

    /// The server's CONNECT reply in protocol v5: `{"sid": sid}`, plus `"pid"` (the private
    /// session id for connection state recovery) when given.
    ///
    /// Protocol v4 clients expect a CONNECT without payload: use [`Packet::connect`] with `None`.
    pub fn connect_reply(nsp: impl Into<String>, sid: &str, pid: Option<&str>) -> Self {
        let mut data = Map::new();
        data.insert("sid".to_owned(), Value::String(sid.to_owned()));
        if let Some(pid) = pid {
            data.insert("pid".to_owned(), Value::String(pid.to_owned()));
        }
        Self::connect(nsp, Some(Value::Object(data)))
    }

    /// The server's CONNECT_ERROR in protocol v5: `{"message": message}`, plus `"data"` when given.
    pub fn connect_error(nsp: impl Into<String>, message: &str, data: Option<Value>) -> Self {
        let mut payload = Map::new();
        payload.insert("message".to_owned(), Value::String(message.to_owned()));
        if let Some(data) = data {
            payload.insert("data".to_owned(), data);
        }
        Self::new(nsp, PacketKind::ConnectError(Value::Object(payload)))
    }

    /// A DISCONNECT from `nsp`.
    pub fn disconnect(nsp: impl Into<String>) -> Self {
        Self::new(nsp, PacketKind::Disconnect)
    }

    /// An EVENT (or BINARY_EVENT when `data` has attachments), asking for an ack when `id` is set.
    ///
    /// `data.args` must start with the event name; [`PacketData::event`] builds it.
    pub fn event(nsp: impl Into<String>, data: PacketData, id: Option<u64>) -> Self {
        Self::new(nsp, PacketKind::Event { data, id })
    }

    /// An ACK (or BINARY_ACK when `data` has attachments) answering the event with ack id `id`.
    pub fn ack(nsp: impl Into<String>, data: PacketData, id: u64) -> Self {
        Self::new(nsp, PacketKind::Ack { data, id })
    }

    /// The type written on the wire: events and acks with attachments are BINARY_EVENT and
    /// BINARY_ACK.
    pub fn packet_type(&self) -> PacketType {
        match &self.kind {
            PacketKind::Connect { .. } => PacketType::Connect,
            PacketKind::Disconnect => PacketType::Disconnect,
            PacketKind::Event { data, .. } if data.has_attachments() => PacketType::BinaryEvent,
            PacketKind::Event { .. } => PacketType::Event,
            PacketKind::Ack { data, .. } if data.has_attachments() => PacketType::BinaryAck,
            PacketKind::Ack { .. } => PacketType::Ack,
            PacketKind::ConnectError(_) => PacketType::ConnectError,
        }
    }

    /// The ack id of an event or ack.
    pub fn id(&self) -> Option<u64> {
        match &self.kind {
            PacketKind::Event { id, .. } => *id,
            PacketKind::Ack { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The arguments of an event or ack.
    pub fn data(&self) -> Option<&PacketData> {
        match &self.kind {
            PacketKind::Event { data, .. } | PacketKind::Ack { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The binary attachments, in the order they follow the text on the wire (empty for
    /// packets other than events and acks).
    pub fn attachments(&self) -> &[Bytes] {
        self.data().map_or(&[], |data| &data.attachments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packet_type_numbers() {
        for n in 0..=6u8 {
            let ty = PacketType::try_from(n).expect("valid type");
            assert_eq!(ty.as_u8(), n);
            assert_eq!(u8::from(ty), n);
        }
        assert_eq!(PacketType::try_from(7), Err(InvalidPacketType(7)));
        assert_eq!(PacketType::BinaryAck.to_string(), "BINARY_ACK");
        assert!(PacketType::BinaryEvent.is_binary());
        assert!(!PacketType::Event.is_binary());
    }

    #[test]
    fn type_follows_attachments() {
        let plain = Packet::event("/", PacketData::event("a", []), None);
        assert_eq!(plain.packet_type(), PacketType::Event);
        let binary = Packet::ack(
            "/",
            PacketData::with_attachments(vec![crate::placeholder(0)], vec![Bytes::new()]),
            1,
        );
        assert_eq!(binary.packet_type(), PacketType::BinaryAck);
        assert_eq!(binary.id(), Some(1));
        assert_eq!(binary.attachments().len(), 1);
        assert!(Packet::disconnect("/").attachments().is_empty());
    }

    #[test]
    fn constructors() {
        let reply = Packet::connect_reply("/", "abc", Some("p"));
        assert_eq!(
            reply.kind,
            PacketKind::Connect {
                data: Some(json!({"sid": "abc", "pid": "p"})),
                query: None
            }
        );
        let err = Packet::connect_error("/x", "no", Some(json!({"a": 1})));
        assert_eq!(
            err.kind,
            PacketKind::ConnectError(json!({"message": "no", "data": {"a": 1}}))
        );
        assert_eq!(
            PacketData::event("ev", [json!(1), json!("2")]).args,
            vec![json!("ev"), json!(1), json!("2")]
        );
    }

    #[test]
    fn namespace_validity() {
        assert!(is_valid_namespace("/"));
        assert!(is_valid_namespace("/chat"));
        assert!(!is_valid_namespace(""));
        assert!(!is_valid_namespace("chat"));
        assert!(!is_valid_namespace("/a,b"));
    }
}
