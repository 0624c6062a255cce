//! A chat with rooms and a browser page, served by axum with Ferrio mounted at `/socket.io/`.
//!
//! ```sh
//! cargo run --release --example chat      # then open http://127.0.0.1:3000/ in two windows
//! ```
//!
//! Listens on `HOST:PORT` (default `127.0.0.1:3000`) and serves:
//!
//! - `/`: the page, `index.html` beside this file (plain HTML, CSS and JS, no build step);
//! - `/socket.io.min.js`: the official browser client, read at start from the file named by
//!   `FERRIO_CLIENT_JS` (default `tests/interop/node_modules/sio-client-v4/dist/socket.io.min.js`
//!   relative to the current directory, there after `npm ci` in `tests/interop`). When that file
//!   is missing this answers 404 and the page loads the same client version from a CDN instead;
//! - `/socket.io/`: the Socket.IO server.
//!
//! The protocol between the page and the server, on the main namespace:
//!
//! - connect with auth `{name}`: a middleware refuses an empty name or one longer than 32
//!   characters with a `ConnectError` the page shows;
//! - `join(room, ack)`: leaves the current room, joins `room` (the page joins `lobby` first, and
//!   again after every reconnection); the ack carries `{room, history, members}`: the last 50
//!   messages of the room and the names in it;
//! - `message(text, ack)`: at most 2000 characters; sent to everyone in the room, sender
//!   included, as `message {id, room, name, text, time}`; the ack is `{ok, id}` or `{error}`;
//! - `typing(bool)`: relayed to the others in the room as a volatile `typing {room, name,
//!   typing}` (dropped for clients that are not keeping up: it is stale a second later anyway);
//! - the server also sends `notice {room, name, kind: "joined" | "left"}` and
//!   `members {room, members}` to a room when someone joins or leaves it.
//!
//! Members come from the data of the sockets of this process, and the history lives in its memory:
//! one node. Across several nodes, `BroadcastOperator::fetch_sockets` gives the members and a
//! shared store the history.

#[path = "../common/mod.rs"]
mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ferrio_socketio::{AckSender, ConnectError, Event, Socket, SocketIo, SocketIoConfig};
use serde::Serialize;
use serde_json::{json, Value};

/// The page, embedded in the binary.
const INDEX_HTML: &str = include_str!("index.html");
/// Where the official browser client is read from when `FERRIO_CLIENT_JS` is not set.
const DEFAULT_CLIENT_JS: &str = "tests/interop/node_modules/sio-client-v4/dist/socket.io.min.js";

/// Longest nickname, in characters.
const MAX_NAME_CHARS: usize = 32;
/// Longest room name, in characters.
const MAX_ROOM_CHARS: usize = 32;
/// Longest message, in characters.
const MAX_MESSAGE_CHARS: usize = 2000;
/// Messages kept per room and sent to whoever joins it.
const HISTORY_LEN: usize = 50;
/// Rooms whose history is kept; past that, the room that was quiet the longest is forgotten.
const MAX_ROOMS: usize = 1000;

fn main() -> std::io::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> std::io::Result<()> {
    common::init_tracing();
    let client_path =
        std::env::var("FERRIO_CLIENT_JS").unwrap_or_else(|_| DEFAULT_CLIENT_JS.to_owned());
    let client_js: Option<Bytes> = match std::fs::read(&client_path) {
        Ok(js) => Some(js.into()),
        Err(error) => {
            eprintln!("{client_path}: {error}: the page will load the Socket.IO client from a CDN");
            None
        }
    };

    let (service, io) = SocketIo::new(SocketIoConfig::default());
    let chat = Arc::new(Chat::default());
    let main = io.of("/");
    main.use_middleware(|socket: Arc<Socket>| async move {
        let name = nickname(socket.auth())?;
        socket.insert_data(Nickname(name));
        Ok(())
    });
    main.on_connection(move |socket| chat.on_connection(socket));

    let app = Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route(
            "/socket.io.min.js",
            get(move || {
                let js = client_js.clone();
                async move { client_script(js) }
            }),
        )
        .route_service("/socket.io/", service);

    let listener = common::bind_from_env(3000).await?;
    eprintln!("chat on http://{}/", listener.local_addr()?);
    ferrio_socketio::serve(listener, app).await
}

/// The official browser client, or 404 so that the page falls back to the CDN.
fn client_script(js: Option<Bytes>) -> Response {
    match js {
        Some(js) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            js,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "the Socket.IO client is not installed",
        )
            .into_response(),
    }
}

/// The validated nickname of a connection's auth `{name}`.
fn nickname(auth: &Value) -> Result<String, ConnectError> {
    let name = auth
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(ConnectError::with_data(
            "a nickname is required",
            json!({ "max": MAX_NAME_CHARS }),
        ));
    }
    if chars > MAX_NAME_CHARS {
        return Err(ConnectError::with_data(
            format!("nickname too long: {chars} characters, the limit is {MAX_NAME_CHARS}"),
            json!({ "size": chars, "max": MAX_NAME_CHARS }),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ConnectError::new(
            "a nickname cannot contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A validated room name.
fn room_name(event: &Event) -> Result<String, String> {
    let room = event
        .payload
        .get::<String>(0)
        .map_err(|_| "join takes a room name".to_owned())?;
    let room = room.trim();
    let chars = room.chars().count();
    if chars == 0 {
        return Err("a room name is required".to_owned());
    }
    if chars > MAX_ROOM_CHARS {
        return Err(format!(
            "room name too long: {chars} characters, the limit is {MAX_ROOM_CHARS}"
        ));
    }
    if room.chars().any(char::is_control) {
        return Err("a room name cannot contain control characters".to_owned());
    }
    Ok(room.to_owned())
}

/// The adapter room of a chat room. Chat rooms are prefixed so that no one can join the private
/// room every socket has under its own id.
fn room_key(room: &str) -> String {
    format!("chat:{room}")
}

/// A socket's nickname (socket data, set by the middleware).
#[derive(Clone)]
struct Nickname(String);

/// The room a socket is in (socket data).
#[derive(Clone)]
struct CurrentRoom(String);

/// One chat message, as sent to the page and kept in the history.
#[derive(Clone, Serialize)]
struct ChatMessage {
    id: u64,
    room: String,
    name: String,
    text: String,
    /// Milliseconds since the Unix epoch.
    time: u64,
}

/// The last messages of one room.
struct RoomHistory {
    messages: VecDeque<ChatMessage>,
    last_active: Instant,
}

/// The chat server's state.
#[derive(Default)]
struct Chat {
    /// Room histories. Joins, leaves and messages happen under this lock, so that every client
    /// sees the same order of events and no history or member list is stale. Emits only queue
    /// packets: nothing waits while holding it.
    rooms: Mutex<HashMap<String, RoomHistory>>,
    next_id: AtomicU64,
}

impl Chat {
    fn on_connection(self: &Arc<Self>, socket: &Arc<Socket>) {
        let chat = self.clone();
        socket.on("join", move |socket, event| chat.join(socket, event));
        let chat = self.clone();
        socket.on("message", move |socket, event| chat.message(socket, event));
        socket.on("typing", typing);
        let chat = self.clone();
        socket.on_disconnect(move |socket, _reason| {
            let _order = chat.lock();
            leave_current_room(socket);
        });
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, RoomHistory>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `join(room, ack)`: moves the socket to `room`.
    fn join(&self, socket: &Arc<Socket>, event: Event) {
        let room = match room_name(&event) {
            Ok(room) => room,
            Err(error) => return reply_error(event.ack, error),
        };
        let rooms = self.lock();
        let current = socket.data::<CurrentRoom>().map(|c| c.0);
        if current.as_deref() != Some(room.as_str()) {
            leave_current_room(socket);
            let key = room_key(&room);
            socket.join(key.as_str());
            socket.insert_data(CurrentRoom(room.clone()));
            let _ = socket.to(key.as_str()).emit(
                "notice",
                json!({ "room": room, "name": name_of(socket), "kind": "joined" }),
            );
            let _ = socket.to(key.as_str()).emit(
                "members",
                json!({ "room": room, "members": members(socket, &room) }),
            );
        }
        let history: Vec<&ChatMessage> = rooms
            .get(&room)
            .map(|h| h.messages.iter().collect())
            .unwrap_or_default();
        if let Some(ack) = event.ack {
            let _ = ack.send_json(json!({
                "room": room,
                "history": history,
                "members": members(socket, &room),
            }));
        }
    }

    /// `message(text, ack)`: sends a message to the socket's room.
    fn message(&self, socket: &Arc<Socket>, event: Event) {
        let Ok(text) = event.payload.get::<String>(0) else {
            return reply_error(event.ack, "a message is text".to_owned());
        };
        let chars = text.chars().count();
        if text.trim().is_empty() {
            return reply_error(event.ack, "the message is empty".to_owned());
        }
        if chars > MAX_MESSAGE_CHARS {
            return reply_error(
                event.ack,
                format!("message too long: {chars} characters, the limit is {MAX_MESSAGE_CHARS}"),
            );
        }
        let Some(CurrentRoom(room)) = socket.data() else {
            return reply_error(event.ack, "join a room first".to_owned());
        };
        // Under the lock, ids, history and delivery share one order.
        let mut rooms = self.lock();
        let message = ChatMessage {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            room: room.clone(),
            name: name_of(socket),
            text,
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        let _ = socket
            .namespace()
            .to(room_key(&room))
            .emit("message", &message);
        let id = message.id;
        record(&mut rooms, message);
        drop(rooms);
        if let Some(ack) = event.ack {
            let _ = ack.send_json(json!({ "ok": true, "id": id }));
        }
    }
}

/// Appends a message to its room's history, forgetting the quietest room when there are too many.
fn record(rooms: &mut HashMap<String, RoomHistory>, message: ChatMessage) {
    if !rooms.contains_key(&message.room) && rooms.len() >= MAX_ROOMS {
        let quietest = rooms
            .iter()
            .min_by_key(|(_, history)| history.last_active)
            .map(|(room, _)| room.clone());
        if let Some(room) = quietest {
            rooms.remove(&room);
        }
    }
    let history = rooms
        .entry(message.room.clone())
        .or_insert_with(|| RoomHistory {
            messages: VecDeque::with_capacity(HISTORY_LEN),
            last_active: Instant::now(),
        });
    if history.messages.len() == HISTORY_LEN {
        history.messages.pop_front();
    }
    history.messages.push_back(message);
    history.last_active = Instant::now();
}

/// `typing(bool)`: tells the others in the room, volatile.
fn typing(socket: &Arc<Socket>, event: Event) {
    let Some(CurrentRoom(room)) = socket.data() else {
        return;
    };
    let typing = event.payload.get::<bool>(0).unwrap_or(false);
    let _ = socket.to(room_key(&room)).volatile().emit(
        "typing",
        json!({ "room": room, "name": name_of(socket), "typing": typing }),
    );
}

/// Takes the socket out of its room and tells those who stay. Call with the chat lock held.
fn leave_current_room(socket: &Arc<Socket>) {
    let Some(CurrentRoom(room)) = socket.data() else {
        return;
    };
    let key = room_key(&room);
    socket.leave(key.as_str());
    let namespace = socket.namespace();
    let _ = namespace.to(key.as_str()).emit(
        "notice",
        json!({ "room": room, "name": name_of(socket), "kind": "left" }),
    );
    let _ = namespace.to(key.as_str()).emit(
        "members",
        json!({ "room": room, "members": members(socket, &room) }),
    );
}

/// The sorted nicknames of the sockets in `room`.
fn members(socket: &Socket, room: &str) -> Vec<String> {
    let mut names: Vec<String> = socket
        .namespace()
        .to(room_key(room))
        .sockets()
        .iter()
        .filter_map(|member| member.data::<Nickname>().map(|n| n.0))
        .collect();
    names.sort_by_cached_key(|name| name.to_lowercase());
    names
}

fn name_of(socket: &Socket) -> String {
    socket
        .data::<Nickname>()
        .map_or_else(|| "?".to_owned(), |n| n.0)
}

fn reply_error(ack: Option<AckSender>, error: String) {
    if let Some(ack) = ack {
        let _ = ack.send_json(json!({ "error": error }));
    }
}
