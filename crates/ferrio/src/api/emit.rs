//! `POST /api/v1/emit`: an event to rooms, sockets, users or every socket of a namespace.
//!
//! Binary arguments: JSON has no bytes, so an object `{"$binary": "<base64>"}` anywhere in
//! `args` or `data` (nested too) is sent as a binary attachment in its place; clients receive
//! an `ArrayBuffer` / `Buffer` / `bytes` there, as if the server had emitted bytes.
//!
//! Acknowledgements: with `"ack": {"timeout": "5s"}` the event asks every recipient for an
//! acknowledgement (socket.io's `io.timeout(5000).emit(...)` with a callback), and the answer
//! lists, per socket, the arguments it acknowledged with (binary ones as `{"$binary": ...}`)
//! or why none came.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::Json;
use base64::Engine as _;
use ferrio_socketio::{AckError, AckResponse, EmitError, Payload};
use serde_json::{json, Map, Value};

use super::body::{kind, read_object};
use super::error::ApiError;
use super::select::Selection;
use super::ApiState;

/// The key of a binary placeholder object.
pub(crate) const BINARY_KEY: &str = "$binary";

/// How long an emit waits for acknowledgements when `ack` gives no timeout.
pub(crate) const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest wait for acknowledgements: the backend's request is held open meanwhile.
pub(crate) const MAX_ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// The handler.
pub(crate) async fn emit(
    State(state): State<Arc<ApiState>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let mut fields = read_object(request.into_body(), state.max_body).await?;
    let namespace: String = fields
        .optional("namespace")?
        .unwrap_or_else(|| "/".to_owned());
    let event: String = fields.required("event")?;
    if event.is_empty() {
        return Err(ApiError::field("event", "must not be empty"));
    }
    let args = fields.raw("args");
    let data = fields.raw("data");
    let selection = Selection::read(&mut fields)?;
    let volatile = fields.optional::<bool>("volatile")?.unwrap_or(false);
    let ack = ack_timeout(&mut fields)?;
    fields.finish()?;

    let mut payload = Payload::new();
    match (args, data) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "data",
                "give either args (every argument, as an array) or data (one argument), not both",
            ))
        }
        (Some(Value::Array(args)), None) => {
            for (i, arg) in args.into_iter().enumerate() {
                let arg = with_attachments(arg, &format!("args[{i}]"), &mut payload)?;
                payload.args.push(arg);
            }
        }
        (Some(Value::Null), None) | (None, None) => {}
        (Some(other), None) => {
            return Err(ApiError::field(
                "args",
                format!(
                    "must be an array of the event's arguments, not {}; use data for one argument",
                    kind(&other)
                ),
            ))
        }
        (None, Some(data)) => {
            let arg = with_attachments(data, "data", &mut payload)?;
            payload.args.push(arg);
        }
    }

    let (normalized, namespace) = state.namespace_to_act_on(&namespace)?;
    if ack.is_some() && super::history::durable_rooms(&state, &selection.rooms).is_some() {
        return Err(ApiError::field(
            "ack",
            "not available for rooms that keep history (history.rooms): an emit to them is \
             answered once it is on disk, not with the clients' acknowledgements",
        ));
    }
    if let Some(durable) = super::history::durable_rooms(&state, &selection.rooms) {
        // Rooms that keep history: on disk before the fan-out (api/history.rs).
        let operator = namespace.map(|n| selection.operator(&n));
        let operator = operator.map(|o| if volatile { o.volatile() } else { o });
        return super::history::emit(&state, &normalized, durable, event, payload, operator).await;
    }
    let Some(namespace) = namespace else {
        // Served, but no client ever connected to it: nobody to deliver to.
        return Ok(Json(match ack {
            Some(_) => json!({ "recipients": 0, "acks": [] }),
            None => json!({ "recipients": 0 }),
        }));
    };
    let mut operator = selection.operator(&namespace);
    if volatile {
        operator = operator.volatile();
    }
    let recipients = operator.sockets().len();
    let emit_error = |error: EmitError| match error {
        EmitError::ReservedEvent(_) => ApiError::field(
            "event",
            format!("{event:?} is reserved by the Socket.IO protocol; choose another name"),
        ),
        other => ApiError::field("args", other.to_string()),
    };
    let Some(timeout) = ack else {
        operator.emit_payload(&event, payload).map_err(emit_error)?;
        return Ok(Json(json!({ "recipients": recipients })));
    };
    let responses = operator
        .timeout(timeout)
        .emit_with_ack(&event, payload)
        .await
        .map_err(emit_error)?;
    Ok(Json(
        json!({ "recipients": recipients, "acks": acks_json(responses) }),
    ))
}

/// Reads `ack`: absent means no acknowledgement is asked for; `{"timeout": "5s"}` (or a
/// number of milliseconds, or no timeout for 5s) asks every recipient for one.
fn ack_timeout(fields: &mut super::body::Fields) -> Result<Option<Duration>, ApiError> {
    let Some(mut ack) = fields.object("ack")? else {
        return Ok(None);
    };
    let timeout = match ack.raw("timeout") {
        None | Some(Value::Null) => DEFAULT_ACK_TIMEOUT,
        Some(Value::Number(millis)) => match millis.as_u64() {
            Some(millis) => Duration::from_millis(millis),
            None => {
                return Err(ApiError::field(
                    "ack.timeout",
                    format!("{millis} is not a whole number of milliseconds"),
                ))
            }
        },
        Some(Value::String(text)) => crate::config::duration::parse(&text)
            .map_err(|message| ApiError::field("ack.timeout", message))?,
        Some(other) => {
            return Err(ApiError::field(
                "ack.timeout",
                format!(
                    "must be a duration (\"5s\", \"500ms\") or a number of milliseconds, not {}",
                    kind(&other)
                ),
            ))
        }
    };
    ack.finish()?;
    if timeout.is_zero() {
        return Err(ApiError::field("ack.timeout", "must be above 0"));
    }
    if timeout > MAX_ACK_TIMEOUT {
        return Err(ApiError::field(
            "ack.timeout",
            format!(
                "{} is longer than the longest wait, {}: the request is held open meanwhile",
                crate::config::duration::format(timeout),
                crate::config::duration::format(MAX_ACK_TIMEOUT)
            ),
        ));
    }
    Ok(Some(timeout))
}

/// Each socket's answer, in socket id order: `{"socket", "args"}` for an acknowledgement,
/// `{"socket", "error", "code"}` when none came. A socket of another node that did not answer
/// has `"socket": null`: the other node reports how many sockets it asked, not which.
fn acks_json(mut responses: Vec<AckResponse>) -> Vec<Value> {
    responses.sort_by(|a, b| {
        let key = |r: &AckResponse| (r.socket.as_str().is_empty(), r.socket.as_str().to_owned());
        key(a).cmp(&key(b))
    });
    responses
        .into_iter()
        .map(|response| {
            let socket = match response.socket.as_str() {
                "" => Value::Null,
                id => Value::String(id.to_owned()),
            };
            match response.result {
                Ok(payload) => json!({ "socket": socket, "args": with_base64_args(&payload) }),
                Err(error) => {
                    let code = match &error {
                        AckError::Timeout => "timeout",
                        AckError::Disconnected => "disconnected",
                        AckError::Emit(_) => "emit_failed",
                    };
                    json!({ "socket": socket, "error": error.to_string(), "code": code })
                }
            }
        })
        .collect()
}

/// The arguments of `payload`, each binary attachment written back as `{"$binary": "<base64>"}`
/// (the inverse of [`with_attachments`]).
fn with_base64_args(payload: &Payload) -> Vec<Value> {
    fn walk(value: &Value, payload: &Payload) -> Value {
        if let Some(bytes) = payload.binary_of(value) {
            return json!({ BINARY_KEY: base64::engine::general_purpose::STANDARD.encode(bytes) });
        }
        match value {
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, payload)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, payload)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    payload.args.iter().map(|arg| walk(arg, payload)).collect()
}

/// Replaces every `{"$binary": "<base64>"}` in `value` by an attachment of `payload`.
fn with_attachments(value: Value, path: &str, payload: &mut Payload) -> Result<Value, ApiError> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key(BINARY_KEY) => {
            let Some(Value::String(text)) = map.get(BINARY_KEY) else {
                return Err(ApiError::field(
                    format!("{path}.{BINARY_KEY}"),
                    "must be a base64 string",
                ));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| {
                    ApiError::field(format!("{path}.{BINARY_KEY}"), format!("not base64: {e}"))
                })?;
            Ok(payload.attach(bytes))
        }
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (key, item) in map {
                let item = with_attachments(item, &format!("{path}.{key}"), payload)?;
                out.insert(key, item);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| with_attachments(item, &format!("{path}[{i}]"), payload))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_placeholders_become_attachments() {
        let mut payload = Payload::new();
        let value =
            json!({"name": "a.bin", "file": {"$binary": "AAEC"}, "parts": [{"$binary": ""}]});
        let out = with_attachments(value, "data", &mut payload).unwrap();
        assert_eq!(payload.attachments.len(), 2);
        assert_eq!(&payload.attachments[0][..], &[0, 1, 2]);
        assert!(payload.attachments[1].is_empty());
        assert_eq!(
            payload.binary_of(&out["file"]).map(|b| b.to_vec()),
            Some(vec![0, 1, 2])
        );
        assert_eq!(out["name"], "a.bin");
    }

    #[test]
    fn acknowledged_binary_is_written_back_as_base64() {
        let mut payload = Payload::new();
        let value = with_attachments(
            json!([{"ok": true}, {"file": {"$binary": "AAEC"}}]),
            "args",
            &mut payload,
        )
        .unwrap();
        payload.args = value.as_array().cloned().unwrap_or_default();
        assert_eq!(
            with_base64_args(&payload),
            vec![json!({"ok": true}), json!({"file": {"$binary": "AAEC"}})]
        );
    }

    #[test]
    fn bad_base64_names_its_place() {
        let mut payload = Payload::new();
        let error = with_attachments(json!([1, {"$binary": "**"}]), "args", &mut payload);
        assert_eq!(
            error.unwrap_err(),
            ApiError::field(
                "args[1].$binary",
                "not base64: Invalid symbol 42, offset 0."
            )
        );
        let error = with_attachments(json!({"$binary": 5}), "data", &mut payload);
        assert_eq!(
            error.unwrap_err(),
            ApiError::field("data.$binary", "must be a base64 string")
        );
    }
}
