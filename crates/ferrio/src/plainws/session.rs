//! One plain WebSocket client: its frames turned into its Socket.IO socket's events, the
//! socket's events and answers turned into frames, and the heartbeat. One task per client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::bridge::{Bridge, Inbound, Origin};
use super::frames::{self, ClientFrame};
use super::heartbeat::{Beat, Heartbeat};
use super::Settings;

/// The most requests of one client waiting for an answer at once.
const MAX_PENDING: usize = 1024;

/// A request sent as an event with an ack id, waiting for the answer.
#[derive(Debug)]
struct Pending {
    /// `join`, `leave`, `publish` or `emit`.
    request: &'static str,
    room: Option<String>,
    /// The client's `id`, echoed in the answer.
    id: Option<Value>,
    /// When it is given up: the server drops events over the rate limit without a word.
    deadline: Instant,
}

/// Serves one client until either side leaves.
pub(crate) async fn run<S>(
    mut client: WebSocketStream<S>,
    settings: Arc<Settings>,
    origin: Origin,
    nsp: String,
    auth: Value,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bridge = Bridge::open(
        settings.service.clone(),
        &settings.engine_path,
        origin,
        &nsp,
        auth,
        settings.max_message,
        settings.connect_timeout,
    )
    .await;
    let mut bridge = match bridge {
        Ok(bridge) => bridge,
        Err(refused) => {
            let mut extra = Map::new();
            if let Some(Value::Object(data)) = &refused.data {
                extra.extend(data.clone());
            }
            let frame = frames::error(&refused.message, extra, None);
            let _ = client.send(Message::text(frame.to_string())).await;
            close(&mut client, CloseCode::Policy, &refused.message).await;
            return;
        }
    };
    let mut session = Session {
        pending: HashMap::new(),
        next_ack: 0,
        answer_timeout: settings.answer_timeout,
    };
    if send(&mut client, &frames::connected(&bridge.sid, &nsp))
        .await
        .is_err()
    {
        bridge.close().await;
        return;
    }
    let mut beat = Heartbeat::new(
        settings.ping_interval,
        settings.ping_timeout,
        Instant::now(),
    );
    loop {
        let wake = session
            .next_deadline()
            .map_or(beat.poll_timeout(), |d| d.min(beat.poll_timeout()));
        let deadline = tokio::time::Instant::from_std(wake);
        tokio::select! {
            frame = client.next() => {
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(error))) => {
                        close(&mut client, CloseCode::Size, &format!("frame too large: {error}")).await;
                        break;
                    }
                    _ => break,
                };
                beat.handle_activity(Instant::now());
                let handled = match frame {
                    Message::Text(text) => {
                        session.handle_text(&mut client, &mut bridge, text.as_str()).await
                    }
                    Message::Binary(_) => {
                        let frame = frames::error(
                            "binary frames are not supported: send JSON text frames",
                            Map::new(),
                            None,
                        );
                        send(&mut client, &frame).await
                    }
                    Message::Close(_) => Err(Gone),
                    _ => Ok(()),
                };
                if handled.is_err() {
                    break;
                }
            }
            inbound = bridge.next() => {
                let frame = match inbound {
                    Inbound::Event { name, args } => frames::event(&name, args),
                    Inbound::Ack { id, args } => match session.pending.remove(&id) {
                        Some(pending) => answer(pending, args),
                        None => continue,
                    },
                    Inbound::Closed(reason) => {
                        let _ = send(&mut client, &frames::disconnected(&reason)).await;
                        close(&mut client, CloseCode::Away, &reason).await;
                        return;
                    }
                };
                if send(&mut client, &frame).await.is_err() {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                let mut gone = false;
                for frame in session.expire(Instant::now()) {
                    gone = gone || send(&mut client, &frame).await.is_err();
                }
                if gone {
                    break;
                }
                match beat.handle_timeout(Instant::now()) {
                    Beat::Wait => {}
                    Beat::Ping => {
                        if client.send(Message::Ping(Default::default())).await.is_err() {
                            break;
                        }
                    }
                    Beat::TimedOut => {
                        close(&mut client, CloseCode::Away, "ping timeout").await;
                        break;
                    }
                }
            }
        }
    }
    bridge.close().await;
}

/// The requests in flight of one client.
struct Session {
    pending: HashMap<u64, Pending>,
    next_ack: u64,
    /// How long a request waits for its answer.
    answer_timeout: Duration,
}

/// The client is gone: stop serving it.
struct Gone;

impl Session {
    /// When the oldest request is given up.
    fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Gives up the requests past their deadline: the error frames that say so.
    fn expire(&mut self, now: Instant) -> Vec<Value> {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(ack, _)| *ack)
            .collect();
        let mut frames = Vec::new();
        for ack in expired {
            let Some(pending) = self.pending.remove(&ack) else {
                continue;
            };
            let message = format!(
                "no answer within {}: the server dropped the request (over the event rate \
                 limit?)",
                crate::config::duration::format(self.answer_timeout)
            );
            let mut extra = Map::new();
            extra.insert("request".to_owned(), json!(pending.request));
            if let Some(room) = &pending.room {
                extra.insert("room".to_owned(), json!(room));
            }
            frames.push(frames::error(&message, extra, pending.id.as_ref()));
        }
        frames
    }

    async fn handle_text<S>(
        &mut self,
        client: &mut WebSocketStream<S>,
        bridge: &mut Bridge,
        text: &str,
    ) -> Result<(), Gone>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let frame = match frames::parse(text) {
            Ok(frame) => frame,
            Err(message) => return send(client, &frames::error(&message, Map::new(), None)).await,
        };
        let deadline = Instant::now() + self.answer_timeout;
        let (event, args, pending) = match frame {
            ClientFrame::Ping { id } => return send(client, &frames::pong(id.as_ref())).await,
            ClientFrame::Join { room, id } => (
                "join".to_owned(),
                vec![json!({ "room": room })],
                Some(Pending {
                    request: "join",
                    room: Some(room),
                    id,
                    deadline,
                }),
            ),
            ClientFrame::Leave { room, id } => (
                "leave".to_owned(),
                vec![json!({ "room": room })],
                Some(Pending {
                    request: "leave",
                    room: Some(room),
                    id,
                    deadline,
                }),
            ),
            ClientFrame::Publish {
                room,
                event,
                data,
                id,
            } => (
                "publish".to_owned(),
                vec![json!({ "room": room, "event": event, "data": data })],
                Some(Pending {
                    request: "publish",
                    room: Some(room),
                    id,
                    deadline,
                }),
            ),
            ClientFrame::Emit { event, data, id } => {
                if ferrio_socketio_proto::RESERVED_EVENTS.contains(&event.as_str()) {
                    let message = format!("event name {event:?} is reserved");
                    return send(client, &frames::error(&message, Map::new(), id.as_ref())).await;
                }
                let pending = id.map(|id| Pending {
                    request: "emit",
                    room: None,
                    id: Some(id),
                    deadline,
                });
                (event, data.into_iter().collect(), pending)
            }
        };
        let ack = match pending {
            Some(pending) => {
                if self.pending.len() >= MAX_PENDING {
                    let message =
                        format!("too many requests waiting for an answer (at most {MAX_PENDING})");
                    return send(
                        client,
                        &frames::error(&message, Map::new(), pending.id.as_ref()),
                    )
                    .await;
                }
                let ack = self.next_ack;
                self.next_ack = self.next_ack.wrapping_add(1);
                self.pending.insert(ack, pending);
                Some(ack)
            }
            None => None,
        };
        bridge.emit(&event, args, ack).await.map_err(|_| Gone)
    }
}

/// The frame answering a request: `joined`/`left`/`published` or `error` for the room
/// requests (the built-in events answer `{"ok": ...}`), `ack` for `emit`.
fn answer(pending: Pending, args: Vec<Value>) -> Value {
    let Pending {
        request, room, id, ..
    } = pending;
    if request == "emit" {
        return frames::ack(id.as_ref().unwrap_or(&Value::Null), args);
    }
    let room = room.unwrap_or_default();
    let reply = args.into_iter().next().unwrap_or(Value::Null);
    if reply.get("ok").and_then(Value::as_bool) == Some(true) {
        let done = match request {
            "join" => "joined",
            "leave" => "left",
            _ => "published",
        };
        return frames::room_done(done, &room, id.as_ref());
    }
    let message = reply
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("refused")
        .to_owned();
    let mut extra = Map::new();
    extra.insert("request".to_owned(), json!(request));
    extra.insert("room".to_owned(), json!(room));
    frames::error(&message, extra, id.as_ref())
}

async fn send<S>(client: &mut WebSocketStream<S>, frame: &Value) -> Result<(), Gone>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    client
        .send(Message::text(frame.to_string()))
        .await
        .map_err(|_| Gone)
}

/// Closes with a code and a reason cut to the 123 bytes a close frame holds.
async fn close<S>(client: &mut WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].to_owned().into(),
    };
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(1), client.close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_frames() {
        let join = |id| Pending {
            request: "join",
            room: Some("r".into()),
            id,
            deadline: Instant::now(),
        };
        assert_eq!(
            answer(join(Some(json!(1))), vec![json!({"ok": true, "room": "r"})]),
            json!({"type": "joined", "room": "r", "id": 1})
        );
        assert_eq!(
            answer(
                join(None),
                vec![json!({"ok": false, "error": "not allowed to join room r"})]
            ),
            json!({"type": "error", "message": "not allowed to join room r", "request": "join", "room": "r"})
        );
        let emit = Pending {
            request: "emit",
            room: None,
            id: Some(json!("q")),
            deadline: Instant::now(),
        };
        assert_eq!(
            answer(emit, vec![json!({"n": 2})]),
            json!({"type": "ack", "id": "q", "data": {"n": 2}})
        );
    }

    #[test]
    fn unanswered_requests_are_given_up_at_their_deadline() {
        let start = Instant::now();
        let mut session = Session {
            pending: HashMap::new(),
            next_ack: 0,
            answer_timeout: Duration::from_secs(3),
        };
        for (ack, after) in [(0, 3), (1, 5)] {
            session.pending.insert(
                ack,
                Pending {
                    request: "join",
                    room: Some("r".into()),
                    id: Some(json!(ack)),
                    deadline: start + Duration::from_secs(after),
                },
            );
        }
        assert_eq!(
            session.next_deadline(),
            Some(start + Duration::from_secs(3))
        );
        assert!(session.expire(start + Duration::from_secs(2)).is_empty());
        assert_eq!(
            session.expire(start + Duration::from_secs(3)),
            vec![json!({
                "type": "error",
                "message": "no answer within 3s: the server dropped the request (over the event \
                            rate limit?)",
                "request": "join",
                "room": "r",
                "id": 0
            })]
        );
        assert_eq!(
            session.next_deadline(),
            Some(start + Duration::from_secs(5))
        );
    }
}
