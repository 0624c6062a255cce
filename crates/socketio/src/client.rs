//! One Engine.IO connection seen from the Socket.IO layer: decoding, and routing packets to the
//! namespaces it joined.

use std::sync::{Arc, Mutex};

use ferrio_engineio::{count_refusal, EngineHandler, Message, ProtocolVersion};
use ferrio_socketio_proto::{DecodeError, Decoder, DecoderConfig, Packet, PacketData, PacketKind};
use serde_json::Value;

use crate::io::IoInner;
use crate::namespace::auth_or_empty;
use crate::outgoing::Outgoing;
use crate::recovery::{Resumption, Take};
use crate::{DisconnectReason, Socket, SocketId};

/// An Engine.IO session carrying Socket.IO.
pub(crate) type Conn = ferrio_engineio::Socket<ClientState>;

/// The Socket.IO state of one connection.
#[derive(Default)]
pub struct ClientState {
    /// Also the connection's packet lock: held while a message is decoded and dispatched, and
    /// while a connection that ran middlewares completes (see `connect`).
    decoder: Mutex<Decoder>,
    /// The namespaces this connection joined or is joining. Usually one or two: a list beats a
    /// map.
    sockets: Mutex<Vec<Arc<Socket>>>,
}

impl std::fmt::Debug for ClientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientState").finish_non_exhaustive()
    }
}

impl ClientState {
    fn lock_sockets(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Socket>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, nsp: &str) -> Option<Arc<Socket>> {
        self.lock_sockets().iter().find(|s| s.nsp() == nsp).cloned()
    }

    fn add(&self, socket: Arc<Socket>) {
        self.lock_sockets().push(socket);
    }

    /// The sockets of this connection.
    pub(crate) fn sockets(&self) -> Vec<Arc<Socket>> {
        self.lock_sockets().clone()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock_sockets().is_empty()
    }

    pub(crate) fn remove(&self, nsp: &str) {
        self.lock_sockets().retain(|s| s.nsp() != nsp);
    }

    /// Takes every socket of the connection out of its namespace.
    pub(crate) fn close_all(&self, reason: DisconnectReason) {
        let sockets = std::mem::take(&mut *self.lock_sockets());
        for socket in sockets {
            socket.close(reason);
        }
    }
}

/// The engine handler of a Socket.IO server.
pub struct SocketIoHandler {
    pub(crate) io: Arc<IoInner>,
}

impl std::fmt::Debug for SocketIoHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoHandler").finish_non_exhaustive()
    }
}

impl EngineHandler for SocketIoHandler {
    type Data = ClientState;

    fn on_connect(&self, conn: &Arc<Conn>) {
        let mut config = DecoderConfig::default();
        config.max_attachments = self.io.config.max_attachments;
        *conn.data.decoder.lock().unwrap_or_else(|p| p.into_inner()) = Decoder::new(config);
        if conn.protocol() == ProtocolVersion::V3 {
            // socket.io-client v2 never sends CONNECT for the main namespace: it is implied.
            connect(&self.io, conn, "/".to_owned(), None, None);
        }
        self.io
            .connect_timeouts
            .watch(conn, self.io.config.connect_timeout);
    }

    fn on_message(&self, conn: &Arc<Conn>, message: Message) {
        // Held through the dispatch: see `connect`.
        let mut decoder = conn.data.decoder.lock().unwrap_or_else(|p| p.into_inner());
        let decoded = match message {
            Message::Text(text) => decoder.handle_text(text.as_str()),
            Message::Binary(data) => decoder.handle_binary(data),
        };
        match decoded {
            Ok(Some(packet)) => dispatch(&self.io, conn, packet),
            Ok(None) => {}
            Err(error @ DecodeError::TooManyAttachments { .. }) => {
                tracing::info!(reason = "max_attachments", sid = %conn.id(), "refused: {error}: closing");
                count_refusal("max_attachments");
                conn.data.close_all(DisconnectReason::ParseError);
                conn.close_with_reason(ferrio_engineio::DisconnectReason::ParseError);
            }
            Err(error) => {
                tracing::debug!(sid = %conn.id(), %error, "undecodable packet: closing");
                conn.data.close_all(DisconnectReason::ParseError);
                conn.close_with_reason(ferrio_engineio::DisconnectReason::ParseError);
            }
        }
    }

    fn on_disconnect(&self, conn: &Arc<Conn>, reason: ferrio_engineio::DisconnectReason) {
        conn.data.close_all(reason.into());
    }
}

fn dispatch(io: &Arc<IoInner>, conn: &Arc<Conn>, packet: Packet) {
    let Packet { nsp, kind } = packet;
    let socket = conn.data.get(&nsp);
    match (kind, socket) {
        (PacketKind::Connect { data, query }, None) => connect(io, conn, nsp, data, query),
        (PacketKind::Disconnect, Some(socket)) => {
            socket.close(DisconnectReason::ClientNamespaceDisconnect);
        }
        (PacketKind::Event { data, id }, Some(socket)) => {
            // Until the middlewares let it in, a socket takes no events: the client was not
            // told it is connected, so it sent none in good faith.
            if socket.connected() && socket.admit_event() {
                socket.handle_event(data, id);
            }
        }
        (PacketKind::Ack { data, id }, Some(socket)) => socket.handle_ack(data, id),
        (_, _) => {
            // A second CONNECT, a packet for a namespace the client is not in, or a
            // CONNECT_ERROR (which only servers send): the reference server closes the
            // connection on such an invalid state.
            tracing::debug!(sid = %conn.id(), nsp, "packet in an invalid state: closing");
            conn.data.close_all(DisconnectReason::ForcedServerClose);
            conn.close();
        }
    }
}

/// Connects the client to a namespace: middlewares, then the reply, then the connect handler.
///
/// A v5 CONNECT with `{pid, offset}` resumes the session when this node's recovery log holds
/// it. When it does not and the adapter spans several nodes, the other nodes are asked first
/// (the only CONNECT that waits for them); the socket is created with the answer.
fn connect(
    io: &Arc<IoInner>,
    conn: &Arc<Conn>,
    nsp: String,
    auth: Option<Value>,
    v2_query: Option<String>,
) {
    if conn.data.get(&nsp).is_some() {
        return;
    }
    let Some(namespace) = io.namespace_for(&nsp) else {
        // The reference server sends this object to every protocol revision.
        let packet = Packet::connect_error(nsp, "Invalid namespace", None);
        let _ = Outgoing::encode(&packet).send_to(conn);
        return;
    };
    if conn.protocol() == ProtocolVersion::V3 {
        let id = SocketId::for_v2_client(&nsp, conn.id());
        let auth = query_to_object(v2_query.as_deref().unwrap_or(""));
        // socket.io-client v2 knows nothing of recovery: no private id.
        let socket = Socket::new(id, namespace.clone(), conn.clone(), auth);
        admit(conn, namespace, socket, None);
        return;
    }
    let auth = auth_or_empty(auth);
    let claim = auth
        .get("pid")
        .and_then(Value::as_str)
        .zip(auth.get("offset").and_then(Value::as_str))
        .map(|(pid, offset)| (pid.to_owned(), offset.to_owned()));
    let mut resumption = None;
    if let (Some(log), Some((pid, offset))) = (namespace.recovery(), claim) {
        match log.take(&pid, &offset) {
            Take::Resume(found) => resumption = Some(found),
            Take::Unknown if namespace.adapter().spans_nodes() => {
                let asked = namespace.adapter().restore_session(&pid, &offset);
                let conn = conn.clone();
                tokio::spawn(async move {
                    let remote = asked.await;
                    // As after the middlewares: complete under the packet lock.
                    let _packets = conn.data.decoder.lock().unwrap_or_else(|p| p.into_inner());
                    if conn.data.get(&nsp).is_some() || !conn.is_open() {
                        // The session, handed over, is lost with the connection: the client
                        // starts a new one when it comes back, never a partial one.
                        return;
                    }
                    let resumption = match (remote, namespace.recovery()) {
                        (Some(remote), Some(log)) => log.resumption_from(Arc::from(pid), remote),
                        _ => None,
                    };
                    let socket = new_v5_socket(&namespace, &conn, auth, resumption.as_ref());
                    admit(&conn, namespace, socket, resumption);
                });
                return;
            }
            Take::Unknown | Take::Refused => {}
        }
    }
    let socket = new_v5_socket(&namespace, conn, auth, resumption.as_ref());
    admit(conn, namespace, socket, resumption);
}

/// A protocol v5 socket: the resumed session's id and private id, or fresh ones.
fn new_v5_socket(
    namespace: &Arc<crate::Namespace>,
    conn: &Arc<Conn>,
    auth: Value,
    resumption: Option<&Resumption>,
) -> Socket {
    let (id, pid) = match resumption {
        Some(session) => (session.sid.clone(), Some(session.pid.clone())),
        None => (
            SocketId::random(),
            namespace
                .recovery()
                .map(|_| Arc::<str>::from(SocketId::random().as_str())),
        ),
    };
    Socket::new(id, namespace.clone(), conn.clone(), auth).with_recovery(pid, resumption.is_some())
}

/// Runs the middlewares (unless a resumed session skips them), then completes the connection.
fn admit(
    conn: &Arc<Conn>,
    namespace: Arc<crate::Namespace>,
    socket: Socket,
    resumption: Option<Resumption>,
) {
    let socket = Arc::new(socket);
    conn.data.add(socket.clone());
    let skip_middlewares = resumption.is_some()
        && namespace
            .recovery()
            .is_some_and(|log| log.config().skip_middlewares);
    if namespace.has_middlewares() && !skip_middlewares {
        let conn = conn.clone();
        tokio::spawn(async move {
            let verdict = namespace.run_middlewares(&socket).await;
            // This task is not the one reading the client's packets. Completing under the
            // packet lock keeps an event the client sends as soon as it has the CONNECT reply
            // from being handled before the connect handler has registered its handlers (in the
            // reference server nothing runs between the reply and the connect handler).
            let _packets = conn.data.decoder.lock().unwrap_or_else(|p| p.into_inner());
            finish_connect(&conn, &socket, verdict, resumption);
        });
    } else {
        finish_connect(conn, &socket, Ok(()), resumption);
    }
}

fn finish_connect(
    conn: &Arc<Conn>,
    socket: &Arc<Socket>,
    verdict: Result<(), crate::ConnectError>,
    resumption: Option<Resumption>,
) {
    let nsp = socket.nsp().to_owned();
    let v2 = conn.protocol() == ProtocolVersion::V3;
    if let Err(error) = verdict {
        conn.data.remove(&nsp);
        socket.discard();
        let packet = if v2 {
            // Protocol v4 carries the error's data alone (or its message when it has none).
            let data = error
                .data
                .clone()
                .unwrap_or_else(|| Value::String(error.message.clone()));
            Packet::new(nsp, PacketKind::ConnectError(data))
        } else {
            Packet::connect_error(nsp, &error.message, error.data.clone())
        };
        let _ = Outgoing::encode(&packet).send_to(conn);
        return;
    }
    let namespace = socket.namespace().clone();
    // Registers the socket, then queues the CONNECT reply and the replay: for a resumed
    // session this runs with the recovery log locked, so no packet is recorded meanwhile, and
    // a live packet reaches the socket after its replay (or not at all if it is in it).
    let enter = |replay: &[PacketData], replayed_through: u64| -> bool {
        socket.set_replayed_through(replayed_through);
        namespace.insert_socket(socket);
        if let Some(session) = &resumption {
            namespace.adapter().add_all(socket.id(), &session.rooms);
        }
        if !socket.mark_connected() {
            // The connection closed while the middlewares ran.
            namespace.remove_socket(socket);
            return false;
        }
        let reply = if v2 {
            Packet::connect(nsp.as_str(), None)
        } else {
            Packet::connect_reply(
                nsp.as_str(),
                socket.id().as_str(),
                socket.pid().map(|pid| &**pid),
            )
        };
        let _ = Outgoing::encode(&reply).send_to(conn);
        for data in replay {
            let packet = Packet::event(nsp.as_str(), data.clone(), None);
            let _ = Outgoing::encode(&packet).send_to(conn);
        }
        true
    };
    let connected = match (&resumption, namespace.recovery()) {
        (Some(session), Some(log)) => log.resume(session, enter),
        _ => enter(&[], 0),
    };
    if connected {
        socket.track_session();
        namespace.run_connect_handler(socket);
    }
}

/// `token=abc&x=1` as `{"token":"abc","x":"1"}`: how socket.io-client v2 sends its auth.
fn query_to_object(query: &str) -> Value {
    let mut object = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        object.insert(
            ferrio_engineio::percent_decode(key),
            Value::String(ferrio_engineio::percent_decode(value)),
        );
    }
    Value::Object(object)
}
