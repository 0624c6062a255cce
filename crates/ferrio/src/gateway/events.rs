//! The built-in client events: `join`, `leave` and `publish`, checked against the room policy.
//!
//! Each answers through its acknowledgement, when the client asked for one:
//! `{"ok": true, "room": ROOM}` or `{"ok": false, "error": MESSAGE}`. A refusal is logged and
//! changes nothing else.

use std::sync::Arc;

use ferrio_socketio::{AckSender, Socket};
use serde::Deserialize;
use serde_json::{json, Value};

use super::claims::{user_room, Identity};
use super::policy::Action;
use super::Gateway;

/// The longest room name accepted.
const MAX_ROOM_LEN: usize = 256;

/// `join` and `leave`: `{room}`.
#[derive(Debug, Deserialize)]
struct RoomArg {
    room: String,
}

/// `publish`: `{room, event, data}`.
#[derive(Debug, Deserialize)]
struct PublishArg {
    room: String,
    event: String,
    #[serde(default)]
    data: Value,
}

/// Registers the built-in events on a new socket.
pub(crate) fn register(socket: &Arc<Socket>, gateway: &Arc<Gateway>) {
    let gw = gateway.clone();
    socket.on_typed("join", move |socket, arg: RoomArg, ack| {
        let result = check_room(&arg.room)
            .and_then(|()| gw.policy.check(&identity(socket), Action::Join, &arg.room))
            .and_then(|()| {
                socket
                    .try_join(arg.room.clone())
                    .map_err(|e| format!("cannot join room {}: {e}", arg.room))
            });
        answer(socket, "join", &arg.room, result, ack);
    });
    socket.on_typed("leave", move |socket, arg: RoomArg, ack| {
        let own = identity(socket).sub().map(user_room);
        let result =
            if own.as_deref() == Some(arg.room.as_str()) || arg.room == socket.id().to_string() {
                Err(format!(
                    "cannot leave room {}: it is the socket's own",
                    arg.room
                ))
            } else {
                socket.leave(arg.room.clone());
                Ok(())
            };
        answer(socket, "leave", &arg.room, result, ack);
    });
    let gw = gateway.clone();
    socket.on_typed("publish", move |socket, arg: PublishArg, mut ack| {
        let result = check_room(&arg.room)
            .and_then(|()| {
                gw.policy
                    .check(&identity(socket), Action::Publish, &arg.room)
            })
            .and_then(|()| {
                let target = if gw.policy.publish_to_sender {
                    socket.namespace().to(arg.room.clone())
                } else {
                    socket.to(arg.room.clone())
                };
                // A durable room: on disk first, acknowledged after the fan-out.
                if let Some(history) = gw.history.as_ref().filter(|h| h.is_durable(&arg.room)) {
                    let (room, event) = (arg.room.clone(), arg.event.clone());
                    let (data, ack) = (arg.data.clone(), ack.take());
                    crate::history::events::publish_durably(
                        history, socket, target, room, event, data, ack,
                    );
                    return Ok(());
                }
                target
                    .emit(&arg.event, &arg.data)
                    .map_err(|e| format!("cannot publish {:?}: {e}", arg.event))
            });
        answer(socket, "publish", &arg.room, result, ack);
    });
}

/// Who the socket is, as the connect middleware found.
pub(crate) fn identity(socket: &Socket) -> Arc<Identity> {
    socket
        .data::<Arc<Identity>>()
        .unwrap_or_else(|| Arc::new(Identity::Anonymous))
}

fn check_room(room: &str) -> Result<(), String> {
    if room.is_empty() {
        Err("room must not be empty".to_owned())
    } else if room.len() > MAX_ROOM_LEN {
        Err(format!(
            "room name is {} bytes long, at most {MAX_ROOM_LEN} allowed",
            room.len()
        ))
    } else {
        Ok(())
    }
}

/// Acknowledges, and logs a refusal.
fn answer(
    socket: &Arc<Socket>,
    event: &str,
    room: &str,
    result: Result<(), String>,
    ack: Option<AckSender>,
) {
    let reply = match result {
        Ok(()) => {
            tracing::debug!(id = %socket.id(), event, room, "done");
            json!({ "ok": true, "room": room })
        }
        Err(error) => {
            tracing::info!(
                id = %socket.id(),
                nsp = socket.nsp(),
                user = identity(socket).sub().unwrap_or("(anonymous)"),
                event,
                room,
                "refused: {error}"
            );
            json!({ "ok": false, "error": error })
        }
    };
    if let Some(ack) = ack {
        let _ = ack.send_json(reply);
    }
}
