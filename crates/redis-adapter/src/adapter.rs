//! The adapter of one namespace: local rooms in a [`LocalAdapter`], everything else forwarded
//! to the other nodes through Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use ferrio_socketio::{
    AckError, AckResponse, Adapter, BroadcastOptions, BroadcastPacket, LocalAdapter, Namespace,
    Payload, RemoteOrigin, RemoteSession, Room, ServerAck, ServerSideEmitError, ServerSideHandlers,
    SocketId, SocketInfo,
};
use ferrio_socketio_proto::Packet;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

use crate::node::{random_id, Shared};
use crate::restore;
use crate::wire::{
    self, broadcast_opts_json, decode_broadcast, decode_control, encode_broadcast,
    encode_control_mp, extract, opts_from_json, opts_json, packet_from_object, packet_object,
    Channels, Recorded, RequestType,
};

type Response = (Value, Vec<Bytes>);

/// The key of the note a pending recovery request gets when the request comes back to its
/// node (never a key of a message from Redis).
const ECHO_MARK: &str = "\u{0}echoMark";

/// Ack ids for broadcasts from other nodes that came without one: from 2^52 up.
static REMOTE_ACK_IDS: AtomicU64 = AtomicU64::new(1 << 52);

struct Ident {
    nsp: String,
    channels: Channels,
}

pub(crate) struct AdapterInner {
    local: LocalAdapter,
    namespace: Weak<Namespace>,
    shared: Arc<Shared>,
    ident: OnceLock<Ident>,
    registered: AtomicBool,
    pending: Mutex<HashMap<String, mpsc::UnboundedSender<Response>>>,
    /// The handlers of events other servers emit (SERVER_SIDE_EMIT).
    handlers: ServerSideHandlers,
    this: Weak<AdapterInner>,
}

/// The Redis adapter of one namespace. Built by [`crate::RedisNode::factory`].
///
/// Rooms are kept per node, as in the Node adapter: membership lives in a [`LocalAdapter`]
/// and operations that target sockets (broadcast, join, leave, disconnect, fetch) are applied
/// here and published for the other nodes to apply to theirs.
pub struct RedisAdapter {
    inner: Arc<AdapterInner>,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("nsp", &self.inner.ident.get().map(|i| i.nsp.as_str()))
            .finish_non_exhaustive()
    }
}

impl RedisAdapter {
    pub(crate) fn new(namespace: Weak<Namespace>, shared: Arc<Shared>) -> Self {
        let inner = Arc::new_cyclic(|this| AdapterInner {
            local: LocalAdapter::new(namespace.clone()),
            namespace,
            shared,
            ident: OnceLock::new(),
            registered: AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
            handlers: ServerSideHandlers::default(),
            this: this.clone(),
        });
        // The namespace is being built and cannot be asked its name yet: subscribe as soon as
        // it can (or at the first call, whichever comes first).
        let weak = Arc::downgrade(&inner);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Until `Namespace::new` returns, its weak reference does not upgrade yet.
                for _ in 0..1000 {
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.ident().is_some() {
                        return;
                    }
                    drop(inner);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
        }
        Self { inner }
    }
}

impl AdapterInner {
    /// The namespace's name and channels; registers for its messages on first success.
    fn ident(&self) -> Option<&Ident> {
        let ident = match self.ident.get() {
            Some(ident) => ident,
            None => {
                let namespace = self.namespace.upgrade()?;
                self.ident.get_or_init(|| Ident {
                    nsp: namespace.name().to_owned(),
                    channels: self.shared.channels(namespace.name()),
                })
            }
        };
        if !self.registered.swap(true, Ordering::AcqRel) {
            self.shared.register(&ident.nsp, self.this.clone());
        }
        Some(ident)
    }

    fn respond(&self, request: &Value, response: Vec<u8>) {
        let Some(ident) = self.ident() else { return };
        let uid = request.get("uid").and_then(Value::as_str);
        self.shared
            .publish(ident.channels.response_for(uid), response);
    }

    fn respond_json(&self, request: &Value, response: Value) {
        self.respond(request, response.to_string().into_bytes());
    }

    /// A broadcast from another node or an emitter.
    pub(crate) fn on_broadcast(&self, _room: &str, payload: &[u8]) {
        let Some(ident) = self.ident() else { return };
        let message = match decode_broadcast(payload, &ident.nsp) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "redis adapter: ignoring a malformed broadcast");
                return;
            }
        };
        if message.uid == self.shared.uid || message.packet.nsp != ident.nsp {
            return;
        }
        let Some(namespace) = self.namespace.upgrade() else {
            return;
        };
        // With recovery on, kept in this node's log under an offset of this node (or the
        // offset it was assigned), with who published it.
        let origin = RemoteOrigin {
            node: Some(message.uid),
            seq: message.recorded.map(|r| r.seq),
            offset: message.recorded.and_then(|r| r.offset),
        };
        let packet = namespace.remote_broadcast_packet_from(message.packet, &message.opts, &origin);
        self.local.broadcast(&packet, &message.opts);
    }

    /// A request from another node or an emitter.
    pub(crate) fn on_request(&self, payload: &[u8]) {
        let (request, attachments) = match decode_control(payload) {
            Ok(decoded) => decoded,
            Err(error) => {
                tracing::debug!(%error, "redis adapter: ignoring a malformed request");
                return;
            }
        };
        let kind = request
            .get("type")
            .and_then(Value::as_u64)
            .and_then(RequestType::from_code);
        if request.get("uid").and_then(Value::as_str) == Some(self.shared.uid.as_str()) {
            if kind == Some(RequestType::RestoreSession) {
                self.on_own_restore_request(&request);
            }
            return;
        }
        let Some(kind) = kind else {
            return;
        };
        let request_id = request.get("requestId").cloned().unwrap_or(Value::Null);
        let opts = request.get("opts").map(|o| opts_from_json(Some(o)));
        let rooms = |key: &str| -> Vec<Room> {
            opts_from_json(Some(
                &json!({ "rooms": request.get(key).cloned().unwrap_or(Value::Null) }),
            ))
            .rooms
        };
        match kind {
            RequestType::Sockets => {
                let opts = opts_from_json(Some(&request));
                let ids: Vec<String> = self
                    .local
                    .socket_ids(&opts)
                    .iter()
                    .map(|id| id.to_string())
                    .collect();
                self.respond_json(&request, json!({ "requestId": request_id, "sockets": ids }));
            }
            RequestType::AllRooms => {
                let rooms: Vec<String> = self.local.rooms().iter().map(|r| r.to_string()).collect();
                self.respond_json(&request, json!({ "requestId": request_id, "rooms": rooms }));
            }
            RequestType::RemoteJoin | RequestType::RemoteLeave | RequestType::RemoteDisconnect => {
                if let Some(opts) = opts {
                    match kind {
                        RequestType::RemoteJoin => self.local.add_sockets(&opts, &rooms("rooms")),
                        RequestType::RemoteLeave => self.local.del_sockets(&opts, &rooms("rooms")),
                        _ => self.local.disconnect_sockets(&opts, close_flag(&request)),
                    }
                    return;
                }
                // The older form: one socket by id.
                let Some(socket) = request.get("sid").and_then(Value::as_str).and_then(|sid| {
                    self.namespace
                        .upgrade()?
                        .socket(&SocketId::from_string(sid))
                }) else {
                    return;
                };
                let room = request.get("room").and_then(Value::as_str).unwrap_or("");
                match kind {
                    RequestType::RemoteJoin => socket.join(room),
                    RequestType::RemoteLeave => socket.leave(room),
                    _ => socket.disconnect_with(close_flag(&request)),
                }
                self.respond_json(&request, json!({ "requestId": request_id }));
            }
            RequestType::RemoteFetch => {
                let Some(inner) = self.this.upgrade() else {
                    return;
                };
                let future = self.local.fetch_sockets(opts.unwrap_or_default());
                tokio::spawn(async move {
                    let sockets: Vec<Value> = future.await.iter().map(socket_json).collect();
                    inner.respond_json(
                        &request,
                        json!({ "requestId": request_id, "sockets": sockets }),
                    );
                });
            }
            RequestType::Broadcast => self.serve_broadcast_with_ack(request, attachments),
            RequestType::ServerSideEmit => self.serve_server_side_emit(request),
            RequestType::RestoreSession => {
                let Some((pid, offset)) = restore::asked(&request) else {
                    return;
                };
                // Taken out of the log now, in the order of the messages: this node has
                // recorded what was published before the request, and nothing after.
                let session = self
                    .namespace
                    .upgrade()
                    .and_then(|n| n.export_session(pid, offset));
                if let Some(session) = &session {
                    tracing::debug!(sid = %session.sid, missed = session.missed.len(), "redis adapter: recovery session handed over");
                }
                self.respond(
                    &request,
                    restore::answer(&request_id, &self.shared.uid, session.as_ref()),
                );
            }
            RequestType::BroadcastClientCount | RequestType::BroadcastAck => {}
        }
    }

    /// This node's own request for a session, back from Redis: every message published before
    /// it has been handled, and the log's position now is the request's `echo_mark`.
    fn on_own_restore_request(&self, request: &Value) {
        let Some(id) = request.get("requestId").and_then(Value::as_str) else {
            return;
        };
        let Some(mark) = self.namespace.upgrade().and_then(|n| n.recovery_mark()) else {
            return;
        };
        if let Some(sender) = self.waiting_request(id) {
            let _ = sender.send((json!({ ECHO_MARK: mark }), Vec::new()));
        }
    }

    /// Asks the other nodes for recovery session `pid` (see [`Adapter::restore_session`]):
    /// publishes the request with this node's log locked (its `own_mark`), notes where the log
    /// stands when the request comes back (its `echo_mark`), and takes the first node's
    /// session. `None` when no node has it, when the answers do not come within
    /// `requests_timeout`, or when this node cannot be sure it saw every message published
    /// between (the request never came back, or the subscription was made again).
    async fn restore_session(
        self: Arc<Self>,
        pid: String,
        offset: String,
    ) -> Option<RemoteSession> {
        let ident = self.ident()?;
        if !self.shared.is_connected() {
            return None;
        }
        let subscribers = self
            .shared
            .num_sub(ident.channels.request.clone())
            .await
            .unwrap_or(0);
        let others = subscribers.saturating_sub(1);
        if others == 0 {
            return None;
        }
        let subscription = self.shared.subscription();
        let mut request = restore::request(&pid, &offset);
        let mut pending = self.register_request(&mut request);
        let namespace = self.namespace.upgrade()?;
        let channel = ident.channels.request.clone();
        let payload = request.to_string().into_bytes();
        let (own_mark, ()) = namespace.recovery_mark_with(|| self.shared.publish(channel, payload));
        let own_mark = own_mark?;
        drop(namespace);
        let deadline = Instant::now() + self.shared.config.requests_timeout;
        let mut echo_mark = None;
        let mut answered = 0;
        while answered < others {
            let Ok(Some((response, attachments))) =
                timeout_at(deadline, pending.receiver.recv()).await
            else {
                tracing::debug!(
                    answered,
                    others,
                    "redis adapter: no node handed the recovery session over in time"
                );
                return None;
            };
            if let Some(mark) = response.get(ECHO_MARK).and_then(Value::as_u64) {
                echo_mark = Some(mark);
                continue;
            }
            match restore::parse_answer(&response, &attachments) {
                Ok(Some((owner, session))) => {
                    let Some(echo_mark) = echo_mark else {
                        tracing::warn!("redis adapter: a recovery session came before its request came back; not resumed");
                        return None;
                    };
                    if self.shared.subscription() != subscription {
                        tracing::warn!("redis adapter: resubscribed while a recovery session was handed over; not resumed");
                        return None;
                    }
                    return Some(RemoteSession {
                        owner,
                        session,
                        own_mark,
                        echo_mark,
                    });
                }
                Ok(None) => answered += 1,
                Err(()) => {
                    tracing::debug!("redis adapter: ignoring a malformed recovery answer");
                }
            }
        }
        None
    }

    /// Names `request` as this node's (its `uid` and a fresh `requestId`) and waits for its
    /// answers: they reach the returned request's receiver until it is dropped.
    fn register_request(self: &Arc<Self>, request: &mut Value) -> PendingRequest {
        let id = random_id();
        request["uid"] = Value::from(self.shared.uid.as_str());
        request["requestId"] = Value::from(id.as_str());
        let (sender, receiver) = mpsc::unbounded_channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), sender);
        PendingRequest {
            adapter: self.clone(),
            id,
            receiver,
        }
    }

    /// Where the answers to this node's request `id` go, while it waits for them.
    fn waiting_request(&self, id: &str) -> Option<mpsc::UnboundedSender<Response>> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// A response to one of this node's requests.
    pub(crate) fn on_response(&self, payload: &[u8]) {
        let Ok((response, attachments)) = decode_control(payload) else {
            return;
        };
        let Some(id) = response.get("requestId").and_then(Value::as_str) else {
            return;
        };
        if let Some(sender) = self.waiting_request(id) {
            let _ = sender.send((response, attachments));
        }
    }

    /// Runs the handler of an event another server emitted; when it asked for answers, the
    /// handler's first acknowledgement is published back (once, as in Node).
    fn serve_server_side_emit(&self, request: Value) {
        let data = match request.get("data") {
            Some(Value::Array(data)) => data.clone(),
            _ => {
                tracing::debug!("redis adapter: ignoring a SERVER_SIDE_EMIT without data");
                return;
            }
        };
        let ack = match (request.get("requestId"), self.this.upgrade()) {
            (Some(request_id), Some(inner)) => {
                let request_id = request_id.clone();
                let uid = request.get("uid").cloned();
                Some(ServerAck::new(move |value| {
                    let answer = json!({
                        "type": RequestType::ServerSideEmit as u8,
                        "requestId": request_id,
                        "data": value,
                    });
                    inner.respond_json(&json!({ "uid": uid }), answer);
                }))
            }
            _ => None,
        };
        if !self.handlers.dispatch(data, ack) {
            tracing::debug!("redis adapter: no handler for a server-side event");
        }
    }

    /// Serves another node's broadcast asking for acknowledgements: tells it how many clients
    /// were sent the packet here, then forwards each acknowledgement as it comes.
    fn serve_broadcast_with_ack(&self, request: Value, attachments: Vec<Bytes>) {
        let (Some(ident), Some(namespace), Some(inner)) =
            (self.ident(), self.namespace.upgrade(), self.this.upgrade())
        else {
            return;
        };
        let (mut object, attachments) =
            extract(request.get("packet").unwrap_or(&Value::Null), &attachments);
        // The Node adapter publishes the packet before numbering it: give it an id of ours,
        // from a range the namespace's own counter does not reach (still exact in JavaScript).
        if object.get("id").and_then(Value::as_u64).is_none() {
            if let Value::Object(map) = &mut object {
                let id = REMOTE_ACK_IDS.fetch_add(1, Ordering::Relaxed);
                map.insert("id".into(), Value::from(id));
            }
        }
        let packet = match packet_from_object(&object, attachments, &ident.nsp) {
            Ok(packet) => packet,
            Err(error) => {
                tracing::debug!(%error, "redis adapter: ignoring a malformed BROADCAST");
                return;
            }
        };
        let Some(ack_id) = packet.id() else { return };
        let opts = opts_from_json(request.get("opts"));
        let timeout = wire::flags_timeout_ms(request.get("opts"))
            .map(Duration::from_millis)
            .unwrap_or(self.shared.config.requests_timeout);
        let request_id = request.get("requestId").cloned().unwrap_or(Value::Null);
        let ids = self.local.socket_ids(&opts);
        self.respond_json(
            &request,
            json!({
                "type": RequestType::BroadcastClientCount as u8,
                "requestId": request_id,
                "clientCount": ids.len(),
            }),
        );
        if ids.is_empty() {
            return;
        }
        let packet = BroadcastPacket::new(packet);
        tokio::spawn(async move {
            let mut waits: FuturesUnordered<_> = ids
                .into_iter()
                .map(|id| {
                    let namespace = namespace.clone();
                    let packet = packet.clone();
                    async move {
                        namespace
                            .deliver_with_ack(&[id], packet.encoded(), ack_id, timeout)
                            .await
                    }
                })
                .collect();
            while let Some(responses) = waits.next().await {
                for response in responses {
                    let Ok(payload) = response.result else {
                        continue;
                    };
                    let first = payload.args.first().cloned().unwrap_or(Value::Null);
                    // `packet` is what the Node adapter reads (one argument); `args` and
                    // `socket` are Ferrio's additions, ignored by Node.
                    let message = json!({
                        "type": RequestType::BroadcastAck as u8,
                        "requestId": request_id,
                        "packet": first,
                        "args": payload.args,
                        "socket": response.socket.to_string(),
                    });
                    inner.respond(&request, encode_control_mp(&message, &payload.attachments));
                }
            }
        });
    }

    /// Registers a request, publishes it and returns the channel its responses come on, with
    /// how many other nodes listen (0: none, nothing was published).
    async fn send_request(
        self: &Arc<Self>,
        mut request: Value,
        attachments: Option<&[Bytes]>,
    ) -> Option<(PendingRequest, usize)> {
        let ident = self.ident()?;
        let subscribers = self
            .shared
            .num_sub(ident.channels.request.clone())
            .await
            .unwrap_or(0);
        let others = subscribers.saturating_sub(1);
        if others == 0 {
            return None;
        }
        let pending = self.register_request(&mut request);
        let payload = match attachments {
            Some(attachments) => encode_control_mp(&request, attachments),
            None => request.to_string().into_bytes(),
        };
        self.shared.publish(ident.channels.request.clone(), payload);
        Some((pending, others))
    }

    /// How many nodes serve this namespace (PUBSUB NUMSUB of its request channel), this one
    /// included; 1 when Redis cannot say.
    pub(crate) async fn server_count(&self) -> usize {
        let Some(ident) = self.ident() else { return 1 };
        self.shared
            .num_sub(ident.channels.request.clone())
            .await
            .unwrap_or(1)
            .max(1)
    }

    /// Every room with a member on any node (ALL_ROOMS).
    pub(crate) async fn all_rooms(self: Arc<Self>) -> Vec<Room> {
        let mut rooms: std::collections::BTreeSet<Room> = self.local.rooms().into_iter().collect();
        let request = json!({ "type": RequestType::AllRooms as u8 });
        if let Some((mut pending, others)) = self.send_request(request, None).await {
            let deadline = Instant::now() + self.shared.config.requests_timeout;
            let mut answered = 0;
            while answered < others {
                let Ok(Some((response, _))) = timeout_at(deadline, pending.receiver.recv()).await
                else {
                    tracing::warn!(answered, others, "redis adapter: all_rooms timed out");
                    break;
                };
                if response.get("rooms").is_some() {
                    answered += 1;
                    rooms.extend(opts_from_json(Some(&response)).rooms);
                }
            }
        }
        rooms.into_iter().collect()
    }

    /// Publishes a server-side event and waits for one answer from every other node.
    async fn server_side_emit_with_ack(
        self: Arc<Self>,
        data: Vec<Value>,
        timeout: Duration,
    ) -> Result<Vec<Value>, ServerSideEmitError> {
        if !self.shared.is_connected() {
            // Otherwise Redis's silence would read as "no other server".
            return Err(ServerSideEmitError::Unreachable(
                "the link to Redis is down".to_owned(),
            ));
        }
        let request = json!({ "type": RequestType::ServerSideEmit as u8, "data": data });
        let Some((mut pending, others)) = self.send_request(request, None).await else {
            return Ok(Vec::new());
        };
        let deadline = Instant::now() + timeout;
        let mut responses = Vec::new();
        while responses.len() < others {
            let Ok(Some((response, _))) = timeout_at(deadline, pending.receiver.recv()).await
            else {
                return Err(ServerSideEmitError::Timeout {
                    responses,
                    expected: others,
                });
            };
            if response.get("type").and_then(Value::as_u64)
                == Some(RequestType::ServerSideEmit as u64)
            {
                responses.push(response.get("data").cloned().unwrap_or(Value::Null));
            }
        }
        Ok(responses)
    }

    async fn remote_fetch(self: Arc<Self>, opts: BroadcastOptions) -> Vec<SocketInfo> {
        let request = json!({ "type": RequestType::RemoteFetch as u8, "opts": opts_json(&opts) });
        let Some((mut pending, others)) = self.send_request(request, None).await else {
            return Vec::new();
        };
        let deadline = Instant::now() + self.shared.config.requests_timeout;
        let mut infos = Vec::new();
        let mut answered = 0;
        while answered < others {
            let Ok(Some((response, _))) = timeout_at(deadline, pending.receiver.recv()).await
            else {
                tracing::warn!(answered, others, "redis adapter: fetch_sockets timed out");
                break;
            };
            let Some(sockets) = response.get("sockets").and_then(Value::as_array) else {
                continue;
            };
            answered += 1;
            infos.extend(sockets.iter().filter_map(socket_from_json));
        }
        infos
    }

    async fn remote_broadcast_with_ack(
        self: Arc<Self>,
        packet: BroadcastPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> Vec<AckResponse> {
        let Some((object, attachments)) = packet_object(packet.packet()) else {
            return Vec::new();
        };
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let request = json!({
            "type": RequestType::Broadcast as u8,
            "packet": object,
            "opts": broadcast_opts_json(&opts, Some(timeout_ms)),
        });
        let Some((mut pending, others)) = self.send_request(request, Some(attachments)).await
        else {
            return Vec::new();
        };
        let deadline = Instant::now() + timeout;
        let mut counted = 0;
        let mut expected = 0u64;
        let mut acks = Vec::new();
        while counted < others || (acks.len() as u64) < expected {
            let Ok(Some((response, attachments))) =
                timeout_at(deadline, pending.receiver.recv()).await
            else {
                break;
            };
            match response.get("type").and_then(Value::as_u64) {
                Some(8) => {
                    counted += 1;
                    expected += response
                        .get("clientCount")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                }
                Some(9) => {
                    let (args, attachments) = match response.get("args") {
                        Some(args @ Value::Array(_)) => extract(args, &attachments),
                        _ => extract(
                            &Value::Array(vec![response
                                .get("packet")
                                .cloned()
                                .unwrap_or_default()]),
                            &attachments,
                        ),
                    };
                    let Value::Array(args) = args else { continue };
                    let socket = response.get("socket").and_then(Value::as_str).unwrap_or("");
                    acks.push(AckResponse {
                        socket: SocketId::from_string(socket),
                        result: Ok(Payload { args, attachments }),
                    });
                }
                _ => {}
            }
        }
        // The clients other nodes counted that never answered.
        let missing = expected.saturating_sub(acks.len() as u64);
        for _ in 0..missing {
            acks.push(AckResponse {
                socket: SocketId::from_string(""),
                result: Err(AckError::Timeout),
            });
        }
        acks
    }
}

/// A request waiting for responses; forgotten when dropped (so cancelling is safe).
struct PendingRequest {
    adapter: Arc<AdapterInner>,
    id: String,
    receiver: mpsc::UnboundedReceiver<Response>,
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        self.adapter
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

fn close_flag(request: &Value) -> bool {
    request
        .get("close")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// A socket as the Node adapter describes it in a REMOTE_FETCH response.
fn socket_json(info: &SocketInfo) -> Value {
    let rooms: Vec<&str> = info.rooms.iter().map(|r| &**r).collect();
    json!({
        "id": info.id.to_string(),
        "handshake": { "auth": info.auth, "headers": {}, "query": {} },
        "rooms": rooms,
        "data": {},
    })
}

fn socket_from_json(value: &Value) -> Option<SocketInfo> {
    let id = value.get("id")?.as_str()?;
    let rooms = opts_from_json(Some(
        &json!({ "rooms": value.get("rooms").cloned().unwrap_or_default() }),
    ))
    .rooms;
    let auth = value
        .get("handshake")
        .and_then(|h| h.get("auth"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    Some(SocketInfo {
        id: SocketId::from_string(id),
        rooms,
        auth,
    })
}

impl Adapter for RedisAdapter {
    fn add_all(&self, id: &SocketId, rooms: &[Room]) {
        self.inner.ident();
        self.inner.local.add_all(id, rooms);
    }

    fn del(&self, id: &SocketId, room: &str) {
        self.inner.local.del(id, room);
    }

    fn del_all(&self, id: &SocketId) {
        self.inner.local.del_all(id);
    }

    fn socket_rooms(&self, id: &SocketId) -> Vec<Room> {
        self.inner.local.socket_rooms(id)
    }

    fn rooms(&self) -> Vec<Room> {
        self.inner.local.rooms()
    }

    fn socket_ids(&self, opts: &BroadcastOptions) -> Vec<SocketId> {
        self.inner.local.socket_ids(opts)
    }

    fn broadcast(&self, packet: &BroadcastPacket, opts: &BroadcastOptions) {
        self.inner.local.broadcast(packet, opts);
        if opts.local || packet.is_published() {
            return;
        }
        let Some(ident) = self.inner.ident() else {
            return;
        };
        // This node's recovery offset means nothing elsewhere: each receiving node numbers the
        // event in its own log.
        let drop_offset = self
            .inner
            .namespace
            .upgrade()
            .is_some_and(|n| n.broadcast_carries_offset(packet.packet(), opts));
        if let Some(message) = encode_broadcast(
            &self.inner.shared.uid,
            packet.packet(),
            opts,
            drop_offset,
            None,
        ) {
            self.inner
                .shared
                .publish(ident.channels.broadcast_channel(opts), message);
        }
    }

    fn broadcast_with_ack(
        &self,
        packet: BroadcastPacket,
        ack_id: u64,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, Vec<AckResponse>> {
        let local =
            self.inner
                .local
                .broadcast_with_ack(packet.clone(), ack_id, opts.clone(), timeout);
        if opts.local {
            return local;
        }
        let remote = self
            .inner
            .clone()
            .remote_broadcast_with_ack(packet, opts, timeout);
        Box::pin(async move {
            let (mut local, remote) = futures_util::future::join(local, remote).await;
            local.extend(remote);
            local
        })
    }

    fn fetch_sockets(&self, opts: BroadcastOptions) -> BoxFuture<'static, Vec<SocketInfo>> {
        let local = self.inner.local.fetch_sockets(opts.clone());
        if opts.local {
            return local;
        }
        let remote = self.inner.clone().remote_fetch(opts);
        Box::pin(async move {
            let (mut local, remote) = futures_util::future::join(local, remote).await;
            local.extend(remote);
            local
        })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.inner.local.add_sockets(opts, rooms);
        self.publish_request(opts, RequestType::RemoteJoin, Some(rooms), false);
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        self.inner.local.del_sockets(opts, rooms);
        self.publish_request(opts, RequestType::RemoteLeave, Some(rooms), false);
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.inner.local.disconnect_sockets(opts, close);
        self.publish_request(opts, RequestType::RemoteDisconnect, None, close);
    }

    fn server_side_emit(&self, data: Vec<Value>) {
        let Some(ident) = self.inner.ident() else {
            return;
        };
        let request = json!({
            "uid": self.inner.shared.uid,
            "type": RequestType::ServerSideEmit as u8,
            "data": data,
        });
        self.inner.shared.publish(
            ident.channels.request.clone(),
            request.to_string().into_bytes(),
        );
    }

    fn server_side_emit_with_ack(
        &self,
        data: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<Value>, ServerSideEmitError>> {
        Box::pin(self.inner.clone().server_side_emit_with_ack(data, timeout))
    }

    fn server_side_handlers(&self) -> Option<&ServerSideHandlers> {
        // Registering a handler is also when the namespace starts listening for events.
        self.inner.ident();
        Some(&self.inner.handlers)
    }

    fn spans_nodes(&self) -> bool {
        true
    }

    fn publish_recorded(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        seq: u64,
        offset: Option<u64>,
    ) {
        let Some(ident) = self.inner.ident() else {
            return;
        };
        // Another node's store could hand out the same number for a packet of its own,
        // unless offsets come from one store every node shares.
        let offset = offset.filter(|_| self.inner.shared.config.share_assigned_offsets);
        let recorded = Recorded { seq, offset };
        if let Some(message) =
            encode_broadcast(&self.inner.shared.uid, packet, opts, false, Some(recorded))
        {
            self.inner
                .shared
                .publish(ident.channels.broadcast_channel(opts), message);
        }
    }

    fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<'static, Option<RemoteSession>> {
        Box::pin(
            self.inner
                .clone()
                .restore_session(pid.to_owned(), offset.to_owned()),
        )
    }
}

impl RedisAdapter {
    /// Publishes a request no one answers (join, leave, disconnect), unless `opts.local`.
    fn publish_request(
        &self,
        opts: &BroadcastOptions,
        kind: RequestType,
        rooms: Option<&[Room]>,
        close: bool,
    ) {
        if opts.local {
            return;
        }
        let Some(ident) = self.inner.ident() else {
            return;
        };
        let mut request = json!({
            "uid": self.inner.shared.uid,
            "type": kind as u8,
            "opts": opts_json(opts),
        });
        match rooms {
            Some(rooms) => {
                request["rooms"] = Value::Array(rooms.iter().map(|r| Value::from(&**r)).collect());
            }
            None => request["close"] = Value::Bool(close),
        }
        self.inner.shared.publish(
            ident.channels.request.clone(),
            request.to_string().into_bytes(),
        );
    }
}
