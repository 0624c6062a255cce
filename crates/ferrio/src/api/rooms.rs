//! `GET /api/v1/rooms?namespace=/`: the rooms of a namespace with their member counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use ferrio_socketio::{BroadcastOptions, Namespace, SocketId};
use serde_json::{json, Value};

use super::error::ApiError;
use super::{query, ApiState};

/// The handler.
pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut params = query::Params::new(params);
    let name = params.namespace();
    params.finish()?;
    let (name, namespace) = state.namespace(&name)?;
    let rooms: Vec<Value> = namespace
        .map(|namespace| room_counts(&namespace))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, sockets)| json!({ "name": name, "sockets": sockets }))
        .collect();
    Ok(Json(json!({ "namespace": name, "rooms": rooms })))
}

/// Every room of this node with its local member count, by name. The room each socket has to
/// itself (named after its id) is left out: it is an address, not a room anyone joined.
pub(crate) fn room_counts(namespace: &Arc<Namespace>) -> BTreeMap<String, usize> {
    let adapter = namespace.adapter();
    adapter
        .rooms()
        .into_iter()
        .filter(|room| {
            namespace
                .socket(&SocketId::from_string(room.clone()))
                .is_none()
        })
        .map(|room| {
            let options = BroadcastOptions {
                rooms: vec![room.clone()],
                ..BroadcastOptions::default()
            };
            (room.to_string(), adapter.socket_ids(&options).len())
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}
