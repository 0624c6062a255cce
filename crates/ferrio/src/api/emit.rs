//! `POST /api/v1/emit`: an event to rooms, sockets, users or every socket of a namespace.
//!
//! Binary arguments: JSON has no bytes, so an object `{"$binary": "<base64>"}` anywhere in
//! `args` or `data` (nested too) is sent as a binary attachment in its place; clients receive
//! an `ArrayBuffer` / `Buffer` / `bytes` there, as if the server had emitted bytes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::Json;
use base64::Engine as _;
use ferrio_socketio::{EmitError, Payload};
use serde_json::{json, Map, Value};

use super::body::{kind, read_object};
use super::error::ApiError;
use super::select::Selection;
use super::ApiState;

/// The key of a binary placeholder object.
pub(crate) const BINARY_KEY: &str = "$binary";

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

    let (normalized, namespace) = state.namespace(&namespace)?;
    if let Some(durable) = super::history::durable_rooms(&state, &selection.rooms) {
        // Rooms that keep history: on disk before the fan-out (api/history.rs).
        let operator = namespace.map(|n| selection.operator(&n));
        let operator = operator.map(|o| if volatile { o.volatile() } else { o });
        return super::history::emit(&state, &normalized, durable, event, payload, operator).await;
    }
    let Some(namespace) = namespace else {
        // Served, but no client ever connected to it: nobody to deliver to.
        return Ok(Json(json!({ "recipients": 0 })));
    };
    let mut operator = selection.operator(&namespace);
    if volatile {
        operator = operator.volatile();
    }
    let recipients = operator.sockets().len();
    operator
        .emit_payload(&event, payload)
        .map_err(|error| match error {
            EmitError::ReservedEvent(_) => ApiError::field(
                "event",
                format!("{event:?} is reserved by the Socket.IO protocol; choose another name"),
            ),
            other => ApiError::field("args", other.to_string()),
        })?;
    Ok(Json(json!({ "recipients": recipients })))
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
