//! The socket routes: `POST /api/v1/sockets/join`, `/leave` and `/disconnect` act on chosen
//! sockets; `GET /api/v1/sockets` lists them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::{Query, Request, State};
use axum::Json;
use ferrio_socketio::{Namespace, Socket};
use serde_json::{json, Value};

use super::body::{read_object, Fields};
use super::error::ApiError;
use super::select::Selection;
use super::{query, ApiState};

/// What a socket operation reads: its namespace and sockets, and the rest of its fields.
async fn read(
    state: &ApiState,
    request: Request,
) -> Result<(Option<Arc<Namespace>>, Selection, Fields), ApiError> {
    let mut fields = read_object(request.into_body(), state.max_body).await?;
    let namespace: String = fields
        .optional("namespace")?
        .unwrap_or_else(|| "/".to_owned());
    let selection = Selection::read_required(&mut fields)?;
    let (_, namespace) = state.namespace_to_act_on(&namespace)?;
    Ok((namespace, selection, fields))
}

/// `rooms`, the rooms to join or leave: at least one.
fn rooms(fields: &mut Fields) -> Result<Vec<String>, ApiError> {
    let rooms = fields.names("rooms")?;
    if rooms.is_empty() {
        return Err(ApiError::field("rooms", "missing: name at least one room"));
    }
    Ok(rooms)
}

/// Which way `join` and `leave` move the chosen sockets.
#[derive(Clone, Copy)]
enum RoomChange {
    Join,
    Leave,
}

/// `join` and `leave`: the chosen sockets join or leave `rooms`; answers how many matched.
async fn change_rooms(
    state: &ApiState,
    request: Request,
    change: RoomChange,
) -> Result<Json<Value>, ApiError> {
    let (namespace, selection, mut fields) = read(state, request).await?;
    let rooms = rooms(&mut fields)?;
    fields.finish()?;
    let Some(namespace) = namespace else {
        return Ok(Json(json!({ "matched": 0 })));
    };
    let operator = selection.operator(&namespace);
    let matched = operator.sockets().len();
    match change {
        RoomChange::Join => {
            operator.sockets_join(rooms);
        }
        RoomChange::Leave => {
            operator.sockets_leave(rooms);
        }
    }
    Ok(Json(json!({ "matched": matched })))
}

/// `POST /api/v1/sockets/join`.
pub(crate) async fn join(
    State(state): State<Arc<ApiState>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    change_rooms(&state, request, RoomChange::Join).await
}

/// `POST /api/v1/sockets/leave`.
pub(crate) async fn leave(
    State(state): State<Arc<ApiState>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    change_rooms(&state, request, RoomChange::Leave).await
}

/// `POST /api/v1/sockets/disconnect`: without `close`, the client is told it was disconnected
/// by the server and does not reconnect; with `close: true` its connection is closed and it
/// reconnects.
pub(crate) async fn disconnect(
    State(state): State<Arc<ApiState>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let (namespace, selection, mut fields) = read(&state, request).await?;
    let close = fields.optional::<bool>("close")?.unwrap_or(false);
    fields.finish()?;
    let Some(namespace) = namespace else {
        return Ok(Json(json!({ "matched": 0 })));
    };
    let operator = selection.operator(&namespace);
    let matched = operator.sockets().len();
    operator.disconnect_sockets(close);
    Ok(Json(json!({ "matched": matched })))
}

/// `GET /api/v1/sockets?namespace=/&room=X`: the sockets of this node, oldest first.
pub(crate) async fn list(
    State(state): State<Arc<ApiState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut params = query::Params::new(params);
    let name = params.namespace();
    let room = params.optional("room")?;
    params.finish()?;
    let (name, namespace) = state.namespace(&name)?;
    let mut sockets = match (&namespace, &room) {
        (None, _) => Vec::new(),
        (Some(namespace), None) => namespace.sockets(),
        (Some(namespace), Some(room)) => namespace.to(room.as_str()).sockets(),
    };
    sockets.sort_by(|a, b| {
        (a.handshake().issued_at, a.id().as_str()).cmp(&(b.handshake().issued_at, b.id().as_str()))
    });
    let proxies = state.proxies.as_ref();
    let list: Vec<Value> = sockets.iter().map(|s| describe(s, proxies)).collect();
    Ok(Json(json!({ "namespace": name, "sockets": list })))
}

/// One socket, as the listing shows it.
fn describe(socket: &Socket, proxies: Option<&ferrio_engineio::TrustedProxies>) -> Value {
    let own = socket.id().room();
    let mut rooms: Vec<String> = socket
        .rooms()
        .into_iter()
        .filter(|room| *room != own)
        .map(|room| room.to_string())
        .collect();
    rooms.sort();
    let handshake = socket.handshake();
    let connected_at = handshake
        .issued_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let identity = crate::gateway::events::identity(socket);
    json!({
        "id": socket.id().as_str(),
        "user": identity.sub(),
        "rooms": rooms,
        "transport": socket.transport().as_str(),
        "address": handshake.remote_addr.map(|a| a.to_string()),
        "ip": crate::gateway::address::client_ip(socket, proxies).map(|ip| ip.to_string()),
        "connected_at": connected_at,
    })
}
