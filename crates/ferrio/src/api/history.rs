//! Room history in the HTTP API (`docs/history.md`):
//!
//! - `GET /api/v1/rooms/{room}/history?namespace=&after=&limit=` reads a durable room's
//!   history: `{namespace, room, messages: [{offset, event, args, at}], next, more}`.
//! - `POST /api/v1/emit` to durable rooms goes through [`emit`]: the message is appended to the
//!   history of each durable room it names and is on disk before it fans out; the 200 answer
//!   carries each room's offset. Binary arguments are kept as `{"$binary": "<base64>"}`, as the
//!   API writes them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use base64::Engine as _;
use ferrio_history::{HistoryError, ReadQuery, MAX_READ_LIMIT};
use ferrio_socketio::{BroadcastOperator, EmitError, Payload};
use serde_json::{json, Map, Value};

use super::emit::BINARY_KEY;
use super::error::ApiError;
use super::{query, ApiState};
use crate::history::publish::{PublishError, RESERVED_EVENTS};
use crate::history::{json as history_json, HistoryService, DEFAULT_LIMIT};

/// The history service, or the 404 saying it is off.
fn service(state: &ApiState) -> Result<&Arc<HistoryService>, ApiError> {
    state.history.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "room history is off: set history.enabled and history.rooms (docs/history.md)"
                .to_owned(),
        )
    })
}

/// `GET /api/v1/rooms/{room}/history`.
pub(crate) async fn read(
    State(state): State<Arc<ApiState>>,
    Path(room): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let history = service(&state)?;
    let mut params = query::Params::new(params);
    let name = params.namespace();
    let after = params
        .optional("after")?
        .map(|after| {
            after.parse::<u64>().map_err(|_| ApiError::InvalidQuery {
                parameter: "after".to_owned(),
                message: format!("{after:?} is not an offset (a whole number)"),
            })
        })
        .transpose()?;
    let limit = params
        .optional("limit")?
        .map(|limit| {
            limit
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_READ_LIMIT).contains(l))
                .ok_or_else(|| ApiError::InvalidQuery {
                    parameter: "limit".to_owned(),
                    message: format!("{limit:?} is not a number from 1 to {MAX_READ_LIMIT}"),
                })
        })
        .transpose()?
        .unwrap_or(DEFAULT_LIMIT);
    params.finish()?;
    let (name, _) = state.namespace(&name)?;
    if !history.is_durable(&room) {
        return Err(ApiError::NotFound(format!(
            "room {room:?} keeps no history (history.rooms lists the rooms that do)"
        )));
    }
    let page = history
        .read(&name, &room, ReadQuery { after, limit })
        .await
        .map_err(unavailable)?;
    let mut answer = history_json::page(&page);
    answer["namespace"] = json!(name);
    answer["room"] = json!(room);
    Ok(Json(answer))
}

/// The durable rooms among `rooms`, when history is on and there is any.
pub(crate) fn durable_rooms(state: &ApiState, rooms: &[String]) -> Option<Vec<String>> {
    let history = state.history.as_ref()?;
    let durable: Vec<String> = rooms
        .iter()
        .filter(|room| history.is_durable(room))
        .cloned()
        .collect();
    (!durable.is_empty()).then_some(durable)
}

/// Emits to a selection that names durable rooms: appends `event(payload)` to each of `durable`
/// in `namespace`, and once all are on disk fans it out through `operator` (`None` when no
/// client ever connected to the namespace). Answers `{recipients, offsets: {room: offset}}`.
pub(crate) async fn emit(
    state: &ApiState,
    namespace: &str,
    durable: Vec<String>,
    event: String,
    payload: Payload,
    operator: Option<BroadcastOperator>,
) -> Result<Json<Value>, ApiError> {
    let history = service(state)?;
    if RESERVED_EVENTS.contains(&event.as_str()) {
        return Err(ApiError::field(
            "event",
            format!("{event:?} is reserved by the Socket.IO protocol; choose another name"),
        ));
    }
    let args = stored_args(&payload);
    let recipients = operator.as_ref().map_or(0, |o| o.sockets().len());
    let name = event.clone();
    let fan_out = move |offset| match operator {
        Some(operator) => operator
            .with_offset(offset)
            .emit_payload(&name, payload)
            .map_err(|e: EmitError| e.to_string()),
        None => Ok(()),
    };
    let offsets = history
        .publish(namespace, &durable, &event, args, fan_out)
        .await
        .map_err(|error| match error {
            PublishError::Store(error) => unavailable(error),
            PublishError::Emit(message) => ApiError::field("args", message),
        })?;
    let offsets: Map<String, Value> = offsets
        .into_iter()
        .map(|(room, offset)| (room, json!(offset)))
        .collect();
    Ok(Json(
        json!({ "recipients": recipients, "offsets": offsets }),
    ))
}

/// A store failure: 503, nothing was sent.
fn unavailable(error: HistoryError) -> ApiError {
    match error {
        HistoryError::LimitOutOfRange { limit, max } => ApiError::InvalidQuery {
            parameter: "limit".to_owned(),
            message: format!("{limit} is not a number from 1 to {max}"),
        },
        other => ApiError::HistoryUnavailable(other.to_string()),
    }
}

/// The arguments as stored: binary attachments back in the API's `{"$binary": "<base64>"}`.
fn stored_args(payload: &Payload) -> Vec<Value> {
    payload
        .args
        .iter()
        .map(|arg| with_base64(arg, payload))
        .collect()
}

fn with_base64(value: &Value, payload: &Payload) -> Value {
    if let Some(bytes) = payload.binary_of(value) {
        return json!({ BINARY_KEY: base64::engine::general_purpose::STANDARD.encode(bytes) });
    }
    match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| with_base64(v, payload)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_base64(v, payload)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_arguments_are_stored_as_the_api_writes_them() {
        let mut payload = Payload::new();
        let file = payload.attach(vec![0u8, 1, 2]);
        payload.args.push(json!({ "name": "a.bin", "file": file }));
        assert_eq!(
            stored_args(&payload),
            [json!({ "name": "a.bin", "file": { "$binary": "AAEC" } })]
        );
    }
}
