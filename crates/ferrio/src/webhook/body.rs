//! What the gateway posts to the backend and how the backend's answer is read: plain data in,
//! plain data out, no I/O.

use ferrio_engineio::TrustedProxies;
use ferrio_socketio::{Payload, Socket};
use serde_json::{json, Map, Value};

use super::client::snippet;
use crate::gateway::claims::Identity;

/// `{id, user, namespace, rooms, address, ip, transport}` of a socket, as every webhook body
/// carries. `ip` is the client's address as the server judges it: behind `proxies`, the one
/// they forwarded.
pub(crate) fn socket_json(
    socket: &Socket,
    identity: &Identity,
    proxies: Option<&TrustedProxies>,
) -> Value {
    let handshake = socket.handshake();
    let ip = crate::gateway::address::client_ip(socket, proxies);
    let mut rooms: Vec<String> = socket
        .rooms()
        .into_iter()
        .map(|room| room.to_string())
        .filter(|room| room != socket.id().as_str())
        .collect();
    rooms.sort();
    json!({
        "id": socket.id().as_str(),
        "user": identity.sub(),
        "namespace": socket.nsp(),
        "rooms": rooms,
        "address": handshake.remote_addr.map(|a| a.to_string()),
        "ip": ip.map(|ip| ip.to_string()),
        "transport": format!("{:?}", socket.transport()).to_ascii_lowercase(),
    })
}

/// The body of an event call: `{socket, namespace, event, args}`, binary arguments written as
/// `{"base64": "..."}`.
pub(crate) fn event_body(socket: Value, namespace: &str, event: &str, payload: &Payload) -> Value {
    let args = inline_binary(payload);
    json!({ "socket": socket, "namespace": namespace, "event": event, "args": args })
}

/// The arguments as plain JSON: each binary one written as `{"base64": "..."}`.
pub(crate) fn inline_binary(payload: &Payload) -> Vec<Value> {
    payload
        .args
        .iter()
        .map(|arg| with_binary_inline(arg, payload))
        .collect()
}

/// `value` with each attachment placeholder replaced by `{"base64": ...}`.
fn with_binary_inline(value: &Value, payload: &Payload) -> Value {
    if let Some(bytes) = payload.binary_of(value) {
        use base64::Engine;
        return json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) });
    }
    match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| with_binary_inline(v, payload))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_binary_inline(v, payload)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The body of a connect call: `{socket, namespace, auth}`, the auth payload without its token
/// (the gateway verified it; the backend gets the user id instead).
pub(crate) fn connect_body(socket: Value, namespace: &str, auth: &Value) -> Value {
    let auth = match auth {
        Value::Object(map) => {
            let mut map: Map<String, Value> = map.clone();
            map.remove("token");
            Value::Object(map)
        }
        _ => Value::Object(Map::new()),
    };
    json!({ "socket": socket, "namespace": namespace, "auth": auth })
}

/// The body of a disconnect call: `{socket, namespace, reason}`.
pub(crate) fn disconnect_body(socket: Value, namespace: &str, reason: &str) -> Value {
    json!({ "socket": socket, "namespace": namespace, "reason": reason })
}

/// The acknowledgement arguments a 2xx answer body stands for: a JSON array gives its elements
/// (`[]` gives none), any other JSON value is the one argument, an empty body gives none. Not
/// JSON: the error of the ack.
pub(crate) fn ack_args(body: &[u8]) -> Result<Vec<Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(args)) => Ok(args),
        Ok(other) => Ok(vec![other]),
        Err(e) => Err(format!(
            "webhook answer is not JSON ({e}): {}",
            snippet(body)
        )),
    }
}

/// The longest room name a connect answer may name.
const MAX_ROOM_LEN: usize = 256;

/// The rooms a 2xx connect answer names: `{"rooms": ["a", "b"]}`. Anything else names none;
/// names that are not strings, empty or longer than 256 bytes are left out.
pub(crate) fn connect_rooms(body: &[u8]) -> Vec<String> {
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(Value::Array(rooms)) = answer.get("rooms") else {
        return Vec::new();
    };
    rooms
        .iter()
        .filter_map(Value::as_str)
        .filter(|room| !room.is_empty() && room.len() <= MAX_ROOM_LEN)
        .map(str::to_owned)
        .collect()
}

/// What a refusing backend said: the `message` (or `error`) of a JSON object answer, else the
/// text of the body, else `None`.
pub(crate) fn refusal_message(body: &[u8]) -> Option<String> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        for key in ["message", "error"] {
            if let Some(Value::String(text)) = map.get(key) {
                return Some(text.clone());
            }
        }
    }
    let text = snippet(body);
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_ack_arguments() {
        assert_eq!(ack_args(b"[1, \"two\"]"), Ok(vec![json!(1), json!("two")]));
        assert_eq!(ack_args(b"[]"), Ok(vec![]));
        assert_eq!(ack_args(b"{\"ok\":true}"), Ok(vec![json!({"ok": true})]));
        assert_eq!(ack_args(b"  "), Ok(vec![]));
        assert_eq!(
            ack_args(b"<html>"),
            Err("webhook answer is not JSON (expected value at line 1 column 1): <html>".into())
        );
    }

    #[test]
    fn connect_answers_may_name_rooms() {
        assert_eq!(
            connect_rooms(br#"{"rooms": ["a", "", 7, "b"]}"#),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(connect_rooms(b"{}"), Vec::<String>::new());
        assert_eq!(connect_rooms(b""), Vec::<String>::new());
        assert_eq!(connect_rooms(br#"["a"]"#), Vec::<String>::new());
        let long = format!(r#"{{"rooms": ["{}"]}}"#, "x".repeat(257));
        assert_eq!(connect_rooms(long.as_bytes()), Vec::<String>::new());
    }

    #[test]
    fn refusals_read_message_error_or_text() {
        assert_eq!(
            refusal_message(b"{\"message\":\"banned\"}"),
            Some("banned".into())
        );
        assert_eq!(
            refusal_message(b"{\"error\":\"nope\"}"),
            Some("nope".into())
        );
        assert_eq!(refusal_message(b"go away\n"), Some("go away".into()));
        assert_eq!(refusal_message(b""), None);
    }

    #[test]
    fn binary_arguments_are_inlined_as_base64() {
        let mut payload = Payload::new();
        payload.push(json!({"n": 1})).unwrap();
        let placeholder = payload.attach(vec![1u8, 2, 3]);
        payload.args.push(json!({ "file": placeholder }));
        let body = event_body(json!({}), "/", "upload", &payload);
        assert_eq!(
            body["args"],
            json!([{"n": 1}, {"file": {"base64": "AQID"}}])
        );
    }

    #[test]
    fn connect_bodies_drop_the_token() {
        let body = connect_body(json!({}), "/", &json!({"token": "secret", "room": "a"}));
        assert_eq!(body["auth"], json!({"room": "a"}));
    }
}
