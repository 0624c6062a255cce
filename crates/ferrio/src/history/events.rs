//! The built-in client events of durable rooms.
//!
//! `history` `{room, after?, limit?}` reads a room's history, for a page that mounts and wants
//! what it missed. Allowed for the rooms the client may join (the room policy). The ack is
//! `{"ok": true, "room", "messages": [{offset, event, args, at}], "next", "more"}` or
//! `{"ok": false, "error"}`. Without `after`: the newest `limit` messages (100 by default).
//!
//! `publish` to a durable room goes through [`publish_durably`]: acknowledged (with the
//! message's `offset`) only once the message is on disk and has fanned out.

use std::sync::Arc;

use ferrio_history::ReadQuery;
use ferrio_socketio::{AckSender, Socket};
use serde::Deserialize;
use serde_json::{json, Value};

use super::publish::PublishError;
use super::{json as history_json, HistoryService, DEFAULT_LIMIT};
use crate::gateway::events::identity;
use crate::gateway::policy::{Action, RoomPolicy};

/// The event's name.
pub(crate) const HISTORY_EVENT: &str = "history";

/// `history`'s argument.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryArg {
    room: String,
    #[serde(default)]
    after: Option<Value>,
    #[serde(default)]
    limit: Option<usize>,
}

/// Registers `history` on a new socket.
pub(crate) fn register(socket: &Arc<Socket>, history: &Arc<HistoryService>, policy: &RoomPolicy) {
    let history = history.clone();
    let policy = policy.clone();
    socket.on_typed(HISTORY_EVENT, move |socket, arg: HistoryArg, ack| {
        let checked = check(&history, &policy, socket, &arg);
        let history = history.clone();
        let socket = socket.clone();
        tokio::spawn(async move {
            let reply = match checked {
                Ok(query) => match history.read(socket.nsp(), &arg.room, query).await {
                    Ok(page) => {
                        let mut reply = history_json::page(&page);
                        reply["ok"] = json!(true);
                        reply["room"] = json!(arg.room);
                        reply
                    }
                    Err(error) => refuse(&socket, &arg.room, error.to_string()),
                },
                Err(error) => refuse(&socket, &arg.room, error),
            };
            if let Some(ack) = ack {
                let _ = ack.send_json(reply);
            }
        });
    });
}

/// The query, or why the read is refused.
fn check(
    history: &HistoryService,
    policy: &RoomPolicy,
    socket: &Socket,
    arg: &HistoryArg,
) -> Result<ReadQuery, String> {
    policy.check(&identity(socket), Action::Join, &arg.room)?;
    if !history.is_durable(&arg.room) {
        return Err(format!("room {} keeps no history", arg.room));
    }
    let after = arg.after.as_ref().map(history_json::offset).transpose()?;
    let query = ReadQuery {
        after,
        limit: arg.limit.unwrap_or(DEFAULT_LIMIT),
    };
    query.validate().map_err(|e| e.to_string())?;
    Ok(query)
}

fn refuse(socket: &Socket, room: &str, error: String) -> Value {
    tracing::info!(
        id = %socket.id(),
        nsp = socket.nsp(),
        event = HISTORY_EVENT,
        room,
        "refused: {error}"
    );
    json!({ "ok": false, "error": error })
}

/// Publishes `event(data)` to a durable room: appended, on disk, then fanned out through
/// `target`; the ack (`{"ok": true, "room", "offset"}`) follows the fan-out.
pub(crate) fn publish_durably(
    history: &Arc<HistoryService>,
    socket: &Arc<Socket>,
    target: ferrio_socketio::BroadcastOperator,
    room: String,
    event: String,
    data: Value,
    ack: Option<AckSender>,
) {
    let history = history.clone();
    let socket = socket.clone();
    let args = vec![data.clone()];
    let fan_out = {
        let event = event.clone();
        move |offset| {
            target
                .with_offset(offset)
                .emit(&event, &data)
                .map_err(|e| e.to_string())
        }
    };
    tokio::spawn(async move {
        let result = history
            .publish(
                socket.nsp(),
                std::slice::from_ref(&room),
                &event,
                args,
                fan_out,
            )
            .await;
        let reply = match result {
            Ok(offsets) => {
                let offset = offsets.first().map(|(_, offset)| *offset);
                json!({ "ok": true, "room": room, "offset": offset })
            }
            Err(error) => {
                let error = match error {
                    PublishError::Emit(why) => format!("cannot publish {event:?}: {why}"),
                    store => store.to_string(),
                };
                tracing::warn!(id = %socket.id(), nsp = socket.nsp(), room, "publish failed: {error}");
                json!({ "ok": false, "error": error })
            }
        };
        if let Some(ack) = ack {
            let _ = ack.send_json(reply);
        }
    });
}
