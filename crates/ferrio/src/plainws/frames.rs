//! The JSON frames of the plain WebSocket endpoint, both directions, without I/O.
//! `docs/plain-websocket.md` documents each one.

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A frame a client sends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientFrame {
    /// `{"type":"join","room":R}`: join a room the policy allows.
    Join { room: String, id: Option<Value> },
    /// `{"type":"leave","room":R}`.
    Leave { room: String, id: Option<Value> },
    /// `{"type":"publish","room":R,"event":E,"data":D}`: emit E with D to the room.
    Publish {
        room: String,
        event: String,
        data: Value,
        id: Option<Value>,
    },
    /// `{"type":"emit","event":E,"data":D}`: a client event, as a Socket.IO client's emit
    /// (forwarded to the events webhook); with an `id`, the answer comes back as `ack`.
    Emit {
        event: String,
        /// The one argument; absent: none.
        data: Option<Value>,
        id: Option<Value>,
    },
    /// `{"type":"ping"}`: answered with `{"type":"pong"}`.
    Ping { id: Option<Value> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomFields {
    #[serde(rename = "type")]
    _type: String,
    room: String,
    #[serde(default)]
    id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishFields {
    #[serde(rename = "type")]
    _type: String,
    room: String,
    event: String,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitFields {
    #[serde(rename = "type")]
    _type: String,
    event: String,
    // `Some(Null)` for `"data": null`, unlike a plain `Option`: a null argument is one.
    #[serde(default, deserialize_with = "present")]
    data: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PingFields {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default)]
    id: Option<Value>,
}

/// A field that is present, whatever its value (`null` included).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The frame types, in the order the error message lists them.
const TYPES: &str = "join, leave, publish, emit or ping";

/// Reads a client's text frame; the error is the `message` of the error frame sent back.
pub(crate) fn parse(text: &str) -> Result<ClientFrame, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Err(format!(
            "a frame must be a JSON object with a \"type\" ({TYPES})"
        ));
    };
    let kind = kind.to_owned();
    let invalid = |e: serde_json::Error| format!("invalid {kind} frame: {e}");
    match kind.as_str() {
        "join" | "leave" => {
            let f: RoomFields = serde_json::from_value(value).map_err(invalid)?;
            Ok(if kind == "join" {
                ClientFrame::Join {
                    room: f.room,
                    id: f.id,
                }
            } else {
                ClientFrame::Leave {
                    room: f.room,
                    id: f.id,
                }
            })
        }
        "publish" => {
            let f: PublishFields = serde_json::from_value(value).map_err(invalid)?;
            Ok(ClientFrame::Publish {
                room: f.room,
                event: f.event,
                data: f.data,
                id: f.id,
            })
        }
        "emit" => {
            let f: EmitFields = serde_json::from_value(value).map_err(invalid)?;
            Ok(ClientFrame::Emit {
                event: f.event,
                data: f.data,
                id: f.id,
            })
        }
        "ping" => {
            let f: PingFields = serde_json::from_value(value).map_err(invalid)?;
            Ok(ClientFrame::Ping { id: f.id })
        }
        other => Err(format!("unknown frame type {other:?}: expected {TYPES}")),
    }
}

/// Adds `"id"` when the client gave one.
fn with_id(mut frame: Value, id: Option<&Value>) -> Value {
    if let (Some(id), Value::Object(map)) = (id, &mut frame) {
        map.insert("id".to_owned(), id.clone());
    }
    frame
}

/// `{"type":"connected","id":SOCKET_ID,"namespace":NSP}`, once the connection is accepted.
pub(crate) fn connected(socket_id: &str, namespace: &str) -> Value {
    json!({ "type": "connected", "id": socket_id, "namespace": namespace })
}

/// `{"type":"error","message":M}` with optional fields (`request`, `room`, `reason`, `id`).
pub(crate) fn error(message: &str, extra: Map<String, Value>, id: Option<&Value>) -> Value {
    let mut frame = Map::new();
    frame.insert("type".to_owned(), json!("error"));
    frame.insert("message".to_owned(), json!(message));
    frame.extend(extra);
    with_id(Value::Object(frame), id)
}

/// The success frame of a room request: `joined`, `left` or `published`, with the room.
pub(crate) fn room_done(kind: &str, room: &str, id: Option<&Value>) -> Value {
    with_id(json!({ "type": kind, "room": room }), id)
}

/// `{"type":"pong"}`.
pub(crate) fn pong(id: Option<&Value>) -> Value {
    with_id(json!({ "type": "pong" }), id)
}

/// Event arguments as `data` (the first, `null` when none) and, when there are several,
/// `args` (all of them).
fn data_and_args(frame: &mut Map<String, Value>, args: Vec<Value>) {
    frame.insert(
        "data".to_owned(),
        args.first().cloned().unwrap_or(Value::Null),
    );
    if args.len() > 1 {
        frame.insert("args".to_owned(), Value::Array(args));
    }
}

/// `{"type":"event","event":E,"data":D}` (and `args` for several arguments).
pub(crate) fn event(name: &str, args: Vec<Value>) -> Value {
    let mut frame = Map::new();
    frame.insert("type".to_owned(), json!("event"));
    frame.insert("event".to_owned(), json!(name));
    data_and_args(&mut frame, args);
    Value::Object(frame)
}

/// `{"type":"ack","id":ID,"data":D}` (and `args` for several arguments): the answer to an
/// `emit` that had an `id`.
pub(crate) fn ack(id: &Value, args: Vec<Value>) -> Value {
    let mut frame = Map::new();
    frame.insert("type".to_owned(), json!("ack"));
    frame.insert("id".to_owned(), id.clone());
    data_and_args(&mut frame, args);
    Value::Object(frame)
}

/// `{"type":"disconnected","reason":R}`, before the server closes the WebSocket.
pub(crate) fn disconnected(reason: &str) -> Value {
    json!({ "type": "disconnected", "reason": reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames() {
        assert_eq!(
            parse(r#"{"type":"join","room":"r","id":1}"#),
            Ok(ClientFrame::Join {
                room: "r".into(),
                id: Some(json!(1))
            })
        );
        assert_eq!(
            parse(r#"{"type":"publish","room":"r","event":"e","data":{"x":1}}"#),
            Ok(ClientFrame::Publish {
                room: "r".into(),
                event: "e".into(),
                data: json!({"x": 1}),
                id: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"emit","event":"e"}"#),
            Ok(ClientFrame::Emit {
                event: "e".into(),
                data: None,
                id: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"emit","event":"e","data":null}"#),
            Ok(ClientFrame::Emit {
                event: "e".into(),
                data: Some(Value::Null),
                id: None
            })
        );
        assert_eq!(
            parse(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping { id: None })
        );
    }

    #[test]
    fn bad_frames_say_why() {
        assert_eq!(
            parse("{oops"),
            Err("invalid JSON: key must be a string at line 1 column 2".into())
        );
        assert_eq!(
            parse("[1]"),
            Err("a frame must be a JSON object with a \"type\" (join, leave, publish, emit or ping)".into())
        );
        assert_eq!(
            parse(r#"{"type":"dance"}"#),
            Err("unknown frame type \"dance\": expected join, leave, publish, emit or ping".into())
        );
        assert_eq!(
            parse(r#"{"type":"join"}"#),
            Err("invalid join frame: missing field `room`".into())
        );
        assert_eq!(
            parse(r#"{"type":"join","room":7}"#),
            Err("invalid join frame: invalid type: integer `7`, expected a string".into())
        );
        assert!(parse(r#"{"type":"leave","room":"a","extra":1}"#)
            .unwrap_err()
            .starts_with("invalid leave frame: unknown field `extra`"));
    }

    #[test]
    fn server_frames() {
        assert_eq!(
            event("e", vec![]),
            json!({"type":"event","event":"e","data":null})
        );
        assert_eq!(
            event("e", vec![json!(1), json!(2)]),
            json!({"type":"event","event":"e","data":1,"args":[1,2]})
        );
        assert_eq!(
            room_done("joined", "r", Some(&json!("a"))),
            json!({"type":"joined","room":"r","id":"a"})
        );
        assert_eq!(
            ack(&json!(3), vec![json!("ok")]),
            json!({"type":"ack","id":3,"data":"ok"})
        );
    }
}
