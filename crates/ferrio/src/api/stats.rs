//! `GET /api/v1/stats`: connections by transport, sockets by namespace and room, on this node.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use ferrio_socketio::TransportKind;
use serde_json::{json, Value};

use super::rooms::room_counts;
use super::ApiState;

/// The handler.
pub(crate) async fn stats(State(state): State<Arc<ApiState>>) -> Json<Value> {
    let transports = state.io.connection_transports();
    let count = |kind: TransportKind| transports.iter().filter(|t| **t == kind).count();
    let mut namespaces = BTreeMap::new();
    for namespace in state.io.namespaces() {
        namespaces.insert(
            namespace.name().to_owned(),
            json!({
                "sockets": namespace.socket_count(),
                "rooms": room_counts(&namespace),
            }),
        );
    }
    Json(json!({
        "connections": {
            "total": transports.len(),
            "polling": count(TransportKind::Polling),
            "websocket": count(TransportKind::WebSocket),
        },
        "namespaces": namespaces,
    }))
}
