//! The messages of `@socket.io/redis-adapter` (classic, pub/sub) and `@socket.io/redis-emitter`,
//! without I/O: channel names, the msgpack broadcast message, and the JSON or msgpack requests
//! and responses.
//!
//! - Broadcast, on `<key>#<nsp>#` or `<key>#<nsp>#<room>#` when it targets exactly one room:
//!   msgpack `[uid, packet, { rooms, except, flags }]`, where `packet` is the socket.io-parser
//!   object `{ type, data, nsp, id? }` with binary values as msgpack `bin` where the text
//!   encoding has placeholders. The emitter's uid is `"emitter"`. A Ferrio node with
//!   connection state recovery adds a fourth item, `{ seq, offset? }` (see [`Recorded`]); the
//!   Node adapter reads the first three and ignores it.
//! - Requests on `<key>-request#<nsp>#`, responses on `<key>-response#<nsp>#` or
//!   `<key>-response#<nsp>#<uid>#`: JSON objects, except BROADCAST requests and BROADCAST_ACK
//!   responses, which are msgpack maps (they may carry binary). A message is JSON when its first
//!   byte is `{`.

use bytes::Bytes;
use ferrio_socketio::{BroadcastOptions, Room};
use ferrio_socketio_proto::{placeholder, placeholder_num, Packet, PacketData, PacketKind};
use rmpv::Value as Mp;
use serde_json::{Map, Value};

/// Request and response types, with the numeric codes of the Node adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestType {
    /// The ids of the targeted sockets.
    Sockets = 0,
    /// Every room of a node.
    AllRooms = 1,
    /// Targeted sockets join rooms.
    RemoteJoin = 2,
    /// Targeted sockets leave rooms.
    RemoteLeave = 3,
    /// Targeted sockets are disconnected.
    RemoteDisconnect = 4,
    /// The targeted sockets, described.
    RemoteFetch = 5,
    /// An event between servers.
    ServerSideEmit = 6,
    /// A broadcast asking for acknowledgements.
    Broadcast = 7,
    /// How many clients a node sent a BROADCAST to.
    BroadcastClientCount = 8,
    /// One client's acknowledgement of a BROADCAST.
    BroadcastAck = 9,
    /// Ferrio only (Node nodes ignore the code): hand over a recovery session, and the answer.
    RestoreSession = 100,
}

impl RequestType {
    pub(crate) fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Sockets,
            1 => Self::AllRooms,
            2 => Self::RemoteJoin,
            3 => Self::RemoteLeave,
            4 => Self::RemoteDisconnect,
            5 => Self::RemoteFetch,
            6 => Self::ServerSideEmit,
            7 => Self::Broadcast,
            8 => Self::BroadcastClientCount,
            9 => Self::BroadcastAck,
            100 => Self::RestoreSession,
            _ => return None,
        })
    }
}

/// The channels of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    /// `<key>#<nsp>#`: broadcasts to the whole namespace or several rooms.
    pub(crate) broadcast: String,
    /// `<key>-request#<nsp>#`.
    pub(crate) request: String,
    /// `<key>-response#<nsp>#`.
    pub(crate) response: String,
    /// `<key>-response#<nsp>#<uid>#`: responses meant for this node only.
    pub(crate) specific_response: String,
}

impl Channels {
    pub(crate) fn new(key: &str, nsp: &str, uid: &str) -> Self {
        let response = format!("{key}-response#{nsp}#");
        Self {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            specific_response: format!("{response}{uid}#"),
            response,
        }
    }

    /// The pattern every broadcast of the namespace matches.
    pub(crate) fn broadcast_pattern(&self) -> String {
        format!("{}*", self.broadcast)
    }

    /// Where a broadcast with these options is published.
    pub(crate) fn broadcast_channel(&self, opts: &BroadcastOptions) -> String {
        match opts.rooms.as_slice() {
            [room] => format!("{}{room}#", self.broadcast),
            _ => self.broadcast.clone(),
        }
    }

    /// Where responses to a request of node `uid` go: its own channel when the request says
    /// who sent it (every Node adapter listens there too), the shared one otherwise.
    pub(crate) fn response_for(&self, uid: Option<&str>) -> String {
        match uid {
            Some(uid) => format!("{}{uid}#", self.response),
            None => self.response.clone(),
        }
    }
}

/// Why a message from Redis was not understood.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// Not msgpack.
    #[error("invalid msgpack: {0}")]
    Msgpack(String),
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Well-formed, but not the expected shape.
    #[error("unexpected message shape: {0}")]
    Shape(&'static str),
}

// ---------------------------------------------------------------------------------------------
// Values: JSON with placeholders <-> msgpack with bin
// ---------------------------------------------------------------------------------------------

/// A JSON value as msgpack, each placeholder replaced by its attachment as `bin`.
pub(crate) fn json_to_mp(value: &Value, attachments: &[Bytes]) -> Mp {
    if let Some(num) = placeholder_num(value) {
        if let Some(data) = attachments.get(num) {
            return Mp::Binary(data.to_vec());
        }
    }
    match value {
        Value::Null => Mp::Nil,
        Value::Bool(b) => Mp::Boolean(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Mp::from(u)
            } else if let Some(i) = n.as_i64() {
                Mp::from(i)
            } else {
                Mp::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => Mp::from(s.as_str()),
        Value::Array(items) => {
            Mp::Array(items.iter().map(|v| json_to_mp(v, attachments)).collect())
        }
        Value::Object(map) => Mp::Map(
            map.iter()
                .map(|(k, v)| (Mp::from(k.as_str()), json_to_mp(v, attachments)))
                .collect(),
        ),
    }
}

/// A msgpack value as JSON, each `bin` moved to `attachments` and replaced by its placeholder.
pub(crate) fn mp_to_json(value: &Mp, attachments: &mut Vec<Bytes>) -> Value {
    match value {
        // `undefined` (notepack writes it as an extension) becomes null, as JSON.stringify does
        // inside arrays.
        Mp::Nil | Mp::Ext(..) => Value::Null,
        Mp::Boolean(b) => Value::Bool(*b),
        Mp::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            _ => Value::Null,
        },
        Mp::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number)
        }
        Mp::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Mp::String(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        Mp::Binary(data) => {
            attachments.push(Bytes::copy_from_slice(data));
            placeholder(attachments.len() - 1)
        }
        Mp::Array(items) => {
            Value::Array(items.iter().map(|v| mp_to_json(v, attachments)).collect())
        }
        Mp::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match k {
                    Mp::String(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    other => other.to_string(),
                };
                map.insert(key, mp_to_json(v, attachments));
            }
            Value::Object(map)
        }
    }
}

/// A part of a decoded message with its own attachments: the placeholders in `value` renumbered
/// to index the returned list, in order of appearance.
pub(crate) fn extract(value: &Value, attachments: &[Bytes]) -> (Value, Vec<Bytes>) {
    fn walk(value: &Value, all: &[Bytes], out: &mut Vec<Bytes>) -> Value {
        if let Some(num) = placeholder_num(value) {
            if let Some(data) = all.get(num) {
                out.push(data.clone());
                return placeholder(out.len() - 1);
            }
        }
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, all, out)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, all, out)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut out = Vec::new();
    let value = walk(value, attachments, &mut out);
    (value, out)
}

fn encode_mp(value: &Mp) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

fn decode_mp(bytes: &[u8]) -> Result<Mp, WireError> {
    let mut reader = bytes;
    rmpv::decode::read_value(&mut reader).map_err(|e| WireError::Msgpack(e.to_string()))
}

/// A message of the request or response channels, JSON or msgpack, as JSON; binary values are
/// moved to the returned attachments.
pub(crate) fn decode_control(bytes: &[u8]) -> Result<(Value, Vec<Bytes>), WireError> {
    if bytes.first() == Some(&b'{') {
        return Ok((serde_json::from_slice(bytes)?, Vec::new()));
    }
    let mut attachments = Vec::new();
    let value = mp_to_json(&decode_mp(bytes)?, &mut attachments);
    Ok((value, attachments))
}

/// A control message as msgpack (for the types that may carry binary).
pub(crate) fn encode_control_mp(value: &Value, attachments: &[Bytes]) -> Vec<u8> {
    encode_mp(&json_to_mp(value, attachments))
}

// ---------------------------------------------------------------------------------------------
// Packets and options
// ---------------------------------------------------------------------------------------------

const EVENT: u64 = 2;
const BINARY_EVENT: u64 = 5;

/// The socket.io-parser object of an event packet, as JSON with placeholders.
pub(crate) fn packet_object(packet: &Packet) -> Option<(Value, &[Bytes])> {
    let PacketKind::Event { data, id } = &packet.kind else {
        return None;
    };
    let mut object = Map::new();
    object.insert("type".into(), Value::from(EVENT));
    object.insert("data".into(), Value::Array(data.args.clone()));
    object.insert("nsp".into(), Value::from(packet.nsp.as_str()));
    if let Some(id) = id {
        object.insert("id".into(), Value::from(*id));
    }
    Some((Value::Object(object), &data.attachments))
}

/// An event packet from its socket.io-parser object (placeholders index `attachments`).
pub(crate) fn packet_from_object(
    object: &Value,
    attachments: Vec<Bytes>,
    default_nsp: &str,
) -> Result<Packet, WireError> {
    let kind = object.get("type").and_then(Value::as_u64);
    if kind != Some(EVENT) && kind != Some(BINARY_EVENT) {
        return Err(WireError::Shape("packet type is not EVENT"));
    }
    let args = object
        .get("data")
        .and_then(Value::as_array)
        .filter(|args| args.first().is_some_and(Value::is_string))
        .ok_or(WireError::Shape("packet data is not [name, ...args]"))?
        .clone();
    let nsp = object
        .get("nsp")
        .and_then(Value::as_str)
        .unwrap_or(default_nsp);
    let id = object.get("id").and_then(Value::as_u64);
    Ok(Packet::event(
        nsp,
        PacketData::with_attachments(args, attachments),
        id,
    ))
}

fn rooms_json(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(&**r)).collect())
}

fn rooms_from_json(value: Option<&Value>) -> Vec<Room> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|room| match room {
            Value::String(s) => Some(Room::from(s.as_str())),
            // Rooms may be numbers in Node.
            Value::Number(n) => Some(Room::from(n.to_string().as_str())),
            _ => None,
        })
        .collect()
}

/// `{ rooms, except }` as the requests carry them.
pub(crate) fn opts_json(opts: &BroadcastOptions) -> Value {
    serde_json::json!({ "rooms": rooms_json(&opts.rooms), "except": rooms_json(&opts.except) })
}

/// `{ rooms, except, flags }` of a broadcast, `flags.timeout` (ms) for one asking for acks.
pub(crate) fn broadcast_opts_json(opts: &BroadcastOptions, timeout_ms: Option<u64>) -> Value {
    let mut flags = Map::new();
    if opts.volatile {
        flags.insert("volatile".into(), Value::Bool(true));
    }
    if let Some(ms) = timeout_ms {
        flags.insert("timeout".into(), Value::from(ms));
    }
    let mut value = opts_json(opts);
    value["flags"] = Value::Object(flags);
    value
}

/// Broadcast options from the `opts` of a message (never `local`: it came from elsewhere).
pub(crate) fn opts_from_json(value: Option<&Value>) -> BroadcastOptions {
    let flags = value.and_then(|v| v.get("flags"));
    BroadcastOptions {
        rooms: rooms_from_json(value.and_then(|v| v.get("rooms"))),
        except: rooms_from_json(value.and_then(|v| v.get("except"))),
        local: false,
        volatile: flags
            .and_then(|f| f.get("volatile"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    }
}

/// The ack timeout (ms) of a BROADCAST request's flags.
pub(crate) fn flags_timeout_ms(opts: Option<&Value>) -> Option<u64> {
    opts?.get("flags")?.get("timeout")?.as_u64()
}

// ---------------------------------------------------------------------------------------------
// Broadcast messages
// ---------------------------------------------------------------------------------------------

/// What a Ferrio node says of a broadcast it recorded for connection state recovery: its
/// sequence number among the node's published packets of the namespace, and the offset it was
/// assigned, if any (every node records it under that offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) seq: u64,
    pub(crate) offset: Option<u64>,
}

/// `[uid, packet, { rooms, except, flags }]`, msgpack, and `{ seq, offset? }` after it for a
/// recorded packet; `None` for a packet that is not an event. With `drop_offset`, the event's
/// last argument (this node's recovery offset) is left out.
pub(crate) fn encode_broadcast(
    uid: &str,
    packet: &Packet,
    opts: &BroadcastOptions,
    drop_offset: bool,
    recorded: Option<Recorded>,
) -> Option<Vec<u8>> {
    let (mut object, attachments) = packet_object(packet)?;
    if drop_offset {
        if let Some(Value::Array(data)) = object.get_mut("data") {
            // Never the event name.
            if data.len() > 1 {
                data.pop();
            }
        }
    }
    let mut items = vec![
        Mp::from(uid),
        json_to_mp(&object, attachments),
        json_to_mp(&broadcast_opts_json(opts, None), &[]),
    ];
    if let Some(recorded) = recorded {
        let mut ext = vec![(Mp::from("seq"), Mp::from(recorded.seq))];
        if let Some(offset) = recorded.offset {
            ext.push((Mp::from("offset"), Mp::from(offset)));
        }
        items.push(Mp::Map(ext));
    }
    Some(encode_mp(&Mp::Array(items)))
}

/// A broadcast another node (or an emitter) published.
#[derive(Debug)]
pub(crate) struct RemoteBroadcast {
    /// Who published it.
    pub(crate) uid: String,
    /// The event.
    pub(crate) packet: Packet,
    /// Its targets.
    pub(crate) opts: BroadcastOptions,
    /// Its recovery numbering, from a Ferrio node.
    pub(crate) recorded: Option<Recorded>,
}

/// Decodes a broadcast message; `default_nsp` stands in for a packet without `nsp`.
pub(crate) fn decode_broadcast(
    bytes: &[u8],
    default_nsp: &str,
) -> Result<RemoteBroadcast, WireError> {
    let Mp::Array(items) = decode_mp(bytes)? else {
        return Err(WireError::Shape("broadcast is not an array"));
    };
    let [uid, packet, opts, rest @ ..] = items.as_slice() else {
        return Err(WireError::Shape("broadcast has fewer than 3 items"));
    };
    let uid = uid
        .as_str()
        .ok_or(WireError::Shape("broadcast uid is not a string"))?
        .to_owned();
    let mut attachments = Vec::new();
    let object = mp_to_json(packet, &mut attachments);
    let packet = packet_from_object(&object, attachments, default_nsp)?;
    let opts = opts_from_json(Some(&mp_to_json(opts, &mut Vec::new())));
    let recorded = rest.first().and_then(|ext| {
        let ext = mp_to_json(ext, &mut Vec::new());
        Some(Recorded {
            seq: ext.get("seq")?.as_u64()?,
            offset: ext.get("offset").and_then(Value::as_u64),
        })
    });
    Ok(RemoteBroadcast {
        uid,
        packet,
        opts,
        recorded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn broadcast_round_trip_with_binary() {
        let data = PacketData::with_attachments(
            vec![
                Value::from("ev"),
                serde_json::json!({"a": 1, "b": placeholder(0)}),
            ],
            vec![Bytes::from_static(b"\x01\x02")],
        );
        let packet = Packet::event("/chat", data, None);
        let opts = BroadcastOptions {
            rooms: vec![Arc::from("r1")],
            except: vec![Arc::from("x")],
            local: false,
            volatile: true,
        };
        let bytes = encode_broadcast("abc", &packet, &opts, false, None).expect("an event");
        let decoded = decode_broadcast(&bytes, "/").expect("decodes");
        assert_eq!(decoded.uid, "abc");
        assert_eq!(decoded.packet, packet);
        assert_eq!(decoded.opts, opts);
    }

    #[test]
    fn binary_is_msgpack_bin() {
        let data = PacketData::with_attachments(
            vec![Value::from("ev"), placeholder(0)],
            vec![Bytes::from_static(b"\xff")],
        );
        let bytes = encode_broadcast(
            "u",
            &Packet::event("/", data, None),
            &BroadcastOptions::default(),
            false,
            None,
        )
        .expect("an event");
        // bin 8, length 1, 0xff
        assert!(bytes.windows(3).any(|w| w == [0xc4, 0x01, 0xff]));
    }

    #[test]
    fn a_recovery_offset_stays_on_its_node() {
        let data = PacketData::new(vec![
            Value::from("ev"),
            Value::from(1),
            Value::from("7-off"),
        ]);
        let packet = Packet::event("/", data, None);
        let bytes = encode_broadcast("u", &packet, &BroadcastOptions::default(), true, None)
            .expect("an event");
        let decoded = decode_broadcast(&bytes, "/").expect("decodes");
        let PacketKind::Event { data, .. } = decoded.packet.kind else {
            panic!("an event");
        };
        assert_eq!(data.args, vec![Value::from("ev"), Value::from(1)]);
    }

    #[test]
    fn a_recorded_broadcast_carries_its_sequence_and_assigned_offset_after_the_node_items() {
        let packet = Packet::event("/", PacketData::new(vec![Value::from("ev")]), None);
        let opts = BroadcastOptions::default();
        let recorded = Recorded {
            seq: 7,
            offset: Some(42),
        };
        let bytes = encode_broadcast("u", &packet, &opts, false, Some(recorded)).expect("event");
        let decoded = decode_broadcast(&bytes, "/").expect("decodes");
        assert_eq!(decoded.recorded, Some(recorded));
        assert_eq!(decoded.packet, packet);
        let Mp::Array(items) = decode_mp(&bytes).expect("msgpack") else {
            panic!("an array");
        };
        assert_eq!(items.len(), 4, "the Node adapter reads items 0 to 2");
        let fresh = Recorded {
            seq: 8,
            offset: None,
        };
        let bytes = encode_broadcast("u", &packet, &opts, false, Some(fresh)).expect("event");
        assert_eq!(
            decode_broadcast(&bytes, "/").expect("decodes").recorded,
            Some(fresh)
        );
        let bytes = encode_broadcast("u", &packet, &opts, false, None).expect("event");
        assert_eq!(
            decode_broadcast(&bytes, "/").expect("decodes").recorded,
            None
        );
    }

    #[test]
    fn channels() {
        let channels = Channels::new("socket.io", "/", "u1");
        assert_eq!(channels.broadcast, "socket.io#/#");
        assert_eq!(channels.request, "socket.io-request#/#");
        assert_eq!(channels.specific_response, "socket.io-response#/#u1#");
        let one = BroadcastOptions {
            rooms: vec![Arc::from("room")],
            ..Default::default()
        };
        assert_eq!(channels.broadcast_channel(&one), "socket.io#/#room#");
        assert_eq!(
            channels.broadcast_channel(&BroadcastOptions::default()),
            "socket.io#/#"
        );
    }

    #[test]
    fn json_control_messages_are_detected() {
        let (value, attachments) = decode_control(br#"{"type":5,"requestId":"x"}"#).expect("JSON");
        assert_eq!(value["type"], 5);
        assert!(attachments.is_empty());
        let mp = encode_control_mp(
            &serde_json::json!({"type": 9, "packet": placeholder(0)}),
            &[Bytes::from_static(b"z")],
        );
        let (value, attachments) = decode_control(&mp).expect("msgpack");
        assert_eq!(value["type"], 9);
        assert_eq!(attachments, [Bytes::from_static(b"z")]);
    }
}
