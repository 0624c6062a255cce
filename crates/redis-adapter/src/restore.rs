//! The messages that hand a connection state recovery session over between Ferrio nodes, on
//! the request and response channels: a request `{ type: 100, pid, offset }` (JSON, which Node
//! nodes ignore: they do not know the code), and each Ferrio node's answer, msgpack (missed
//! packets may carry binary):
//! `{ type: 100, requestId, owner, found, sid, rooms, publishedSeq, missed: [{ args, offset? }] }`.

use bytes::Bytes;
use ferrio_socketio::{ExportedPacket, ExportedSession, SocketId};
use ferrio_socketio_proto::PacketData;
use rmpv::Value as Mp;
use serde_json::{json, Value};

use crate::wire::{extract, json_to_mp, opts_from_json, RequestType};

/// The request for session `pid`, whose client last saw `offset`.
pub(crate) fn request(pid: &str, offset: &str) -> Value {
    json!({ "type": RequestType::RestoreSession as u8, "pid": pid, "offset": offset })
}

/// The `pid` and `offset` a request asks for.
pub(crate) fn asked(request: &Value) -> Option<(&str, &str)> {
    Some((
        request.get("pid")?.as_str()?,
        request.get("offset")?.as_str()?,
    ))
}

/// Node `owner`'s answer to request `request_id`: the session it hands over, or `None` when it
/// does not hold it.
pub(crate) fn answer(
    request_id: &Value,
    owner: &str,
    session: Option<&ExportedSession>,
) -> Vec<u8> {
    let mut map = vec![
        (
            Mp::from("type"),
            Mp::from(RequestType::RestoreSession as u8),
        ),
        (Mp::from("requestId"), json_to_mp(request_id, &[])),
        (Mp::from("owner"), Mp::from(owner)),
        (Mp::from("found"), Mp::Boolean(session.is_some())),
    ];
    if let Some(session) = session {
        let missed = session
            .missed
            .iter()
            .map(|packet| {
                let mut entry = vec![(
                    Mp::from("args"),
                    json_to_mp(
                        &Value::Array(packet.data.args.clone()),
                        &packet.data.attachments,
                    ),
                )];
                if let Some(offset) = packet.offset {
                    entry.push((Mp::from("offset"), Mp::from(offset)));
                }
                Mp::Map(entry)
            })
            .collect();
        let rooms = session.rooms.iter().map(|r| Mp::from(&**r)).collect();
        map.extend([
            (Mp::from("sid"), Mp::from(session.sid.as_str())),
            (Mp::from("rooms"), Mp::Array(rooms)),
            (Mp::from("publishedSeq"), Mp::from(session.published_seq)),
            (Mp::from("missed"), Mp::Array(missed)),
        ]);
    }
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, &Mp::Map(map));
    out
}

/// An answer, decoded (binary values in `attachments`, placeholders in `value`): the owner's
/// uid and the session, `Ok(None)` for a node that does not hold it, `Err(())` for a message
/// that is not a well-formed answer.
#[allow(clippy::result_unit_err)]
pub(crate) fn parse_answer(
    value: &Value,
    attachments: &[Bytes],
) -> Result<Option<(String, ExportedSession)>, ()> {
    if value.get("type").and_then(Value::as_u64) != Some(RequestType::RestoreSession as u64) {
        return Err(());
    }
    if !value.get("found").and_then(Value::as_bool).ok_or(())? {
        return Ok(None);
    }
    let owner = value.get("owner").and_then(Value::as_str).ok_or(())?;
    let sid = value.get("sid").and_then(Value::as_str).ok_or(())?;
    let rooms = opts_from_json(Some(
        &json!({ "rooms": value.get("rooms").cloned().ok_or(())? }),
    ))
    .rooms;
    let published_seq = value
        .get("publishedSeq")
        .and_then(Value::as_u64)
        .ok_or(())?;
    let missed = value
        .get("missed")
        .and_then(Value::as_array)
        .ok_or(())?
        .iter()
        .map(|entry| {
            let (args, attachments) = extract(entry.get("args").ok_or(())?, attachments);
            let Value::Array(args) = args else {
                return Err(());
            };
            if !args.first().is_some_and(Value::is_string) {
                return Err(());
            }
            Ok(ExportedPacket {
                data: PacketData::with_attachments(args, attachments),
                offset: entry.get("offset").and_then(Value::as_u64),
            })
        })
        .collect::<Result<Vec<_>, ()>>()?;
    Ok(Some((
        owner.to_owned(),
        ExportedSession {
            sid: SocketId::from_string(sid),
            rooms,
            missed,
            published_seq,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::decode_control;
    use ferrio_socketio_proto::placeholder;
    use std::sync::Arc;

    #[test]
    fn a_session_with_binary_missed_packets_crosses_intact() {
        let session = ExportedSession {
            sid: SocketId::from_string("s1"),
            rooms: vec![Arc::from("s1"), Arc::from("r")],
            missed: vec![
                ExportedPacket {
                    data: PacketData::with_attachments(
                        vec![json!("bin"), placeholder(0), json!({"b": placeholder(1)})],
                        vec![Bytes::from_static(b"\x00one"), Bytes::from_static(b"two")],
                    ),
                    offset: None,
                },
                ExportedPacket {
                    data: PacketData::new(vec![json!("durable"), json!(1)]),
                    offset: Some(42),
                },
                ExportedPacket {
                    data: PacketData::with_attachments(
                        vec![json!("bin2"), placeholder(0)],
                        vec![Bytes::from_static(b"three")],
                    ),
                    offset: None,
                },
            ],
            published_seq: 9,
        };
        let bytes = answer(&json!("req-1"), "node-a", Some(&session));
        let (value, attachments) = decode_control(&bytes).expect("msgpack");
        assert_eq!(value["requestId"], "req-1");
        let parsed = parse_answer(&value, &attachments).expect("well formed");
        assert_eq!(parsed, Some(("node-a".to_owned(), session)));

        let bytes = answer(&json!("req-2"), "node-b", None);
        let (value, attachments) = decode_control(&bytes).expect("msgpack");
        assert_eq!(parse_answer(&value, &attachments), Ok(None));
        assert_eq!(parse_answer(&json!({"type": 8}), &[]), Err(()));
        let truncated = json!({"type": 100, "found": true, "owner": "a"});
        assert_eq!(parse_answer(&truncated, &[]), Err(()));
    }

    #[test]
    fn the_request_names_the_session_and_offset() {
        let request = request("p1", "o-7");
        assert_eq!(request["type"], 100);
        assert_eq!(asked(&request), Some(("p1", "o-7")));
        assert_eq!(asked(&json!({"type": 100})), None);
    }
}
