//! Rooms and broadcasts over real connections: join/leave, `io.to`, `socket.to` (sender left
//! out), `except`, unions without duplicates, namespaces kept apart, broadcast acks with a
//! timeout, and the operators acting on remote-capable socket sets (`fetch_sockets`,
//! `sockets_join`, `sockets_leave`, `disconnect_sockets`).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_nothing_more, recorder, Recorded, TestServer, WsClient};
use ferrio_socketio::{AckError, DisconnectReason, Payload, Room, Socket};
use serde_json::json;
use tokio::time::timeout;

const WAIT: Duration = common::WAIT;

/// A client joined to the main namespace, and its socket.
struct Peer {
    client: WsClient,
    socket: Arc<Socket>,
}

async fn peer(server: &TestServer, seen: &mut Recorded, auth: Option<&str>) -> Peer {
    let mut client = server.ws().await;
    let sid = client.join("/", auth).await;
    let socket = seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), sid);
    Peer { client, socket }
}

impl Peer {
    async fn expect(&mut self, text: &str) {
        self.client.expect(text).await;
    }

    /// Asserts nothing was sent to this client so far.
    async fn nothing_more(&mut self) {
        assert_nothing_more(&mut self.client, &self.socket).await;
    }
}

fn sorted_rooms(socket: &Socket) -> Vec<String> {
    let mut rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    rooms.sort();
    rooms
}

#[tokio::test]
async fn broadcasts_reach_exactly_the_targeted_rooms() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut a = peer(&server, &mut seen, None).await;
    let mut b = peer(&server, &mut seen, None).await;
    let mut c = peer(&server, &mut seen, None).await;
    a.socket.join("r1");
    b.socket.join(["r1", "r2"]);
    c.socket.join(vec!["r2".to_owned()]);
    let mut expected = vec![b.socket.id().to_string(), "r1".into(), "r2".into()];
    expected.sort();
    assert_eq!(sorted_rooms(&b.socket), expected);

    server.io.to("r1").emit("m", "r1").expect("emitted");
    a.expect(r#"42["m","r1"]"#).await;
    b.expect(r#"42["m","r1"]"#).await;
    c.nothing_more().await;

    // `socket.to` leaves the sender out, even though it is in the room.
    a.socket.to("r1").emit("m", "from a").expect("emitted");
    b.expect(r#"42["m","from a"]"#).await;
    a.nothing_more().await;
    c.nothing_more().await;

    // `socket.broadcast`: everyone but the sender.
    a.socket.broadcast().emit("m", "not a").expect("emitted");
    b.expect(r#"42["m","not a"]"#).await;
    c.expect(r#"42["m","not a"]"#).await;
    a.nothing_more().await;

    // A union of rooms reaches a socket in several of them once.
    server
        .io
        .to(["r1", "r2"])
        .emit("m", "union")
        .expect("emitted");
    server
        .io
        .to("r1")
        .to("r2")
        .to("r1")
        .emit("m", "chained")
        .expect("emitted");
    for peer in [&mut a, &mut b, &mut c] {
        peer.expect(r#"42["m","union"]"#).await;
        peer.expect(r#"42["m","chained"]"#).await;
        peer.nothing_more().await;
    }

    // `except` removes every socket in the excluded rooms.
    server
        .io
        .to("r2")
        .except("r1")
        .emit("m", "r2 not r1")
        .expect("emitted");
    c.expect(r#"42["m","r2 not r1"]"#).await;
    a.nothing_more().await;
    b.nothing_more().await;
    server
        .io
        .of("/")
        .broadcast()
        .except([b.socket.id().room(), c.socket.id().room()])
        .emit("m", "only a")
        .expect("emitted");
    a.expect(r#"42["m","only a"]"#).await;
    b.nothing_more().await;
    c.nothing_more().await;

    // A room a socket left no longer reaches it; an empty room reaches nobody.
    b.socket.leave("r1");
    server
        .io
        .to("r1")
        .emit("m", "after leave")
        .expect("emitted");
    a.expect(r#"42["m","after leave"]"#).await;
    b.nothing_more().await;
    server.io.to("nobody").emit("m", "void").expect("emitted");
    server.io.emit("m", "all").expect("emitted");
    for peer in [&mut a, &mut b, &mut c] {
        peer.expect(r#"42["m","all"]"#).await;
    }

    // A disconnected socket leaves all its rooms.
    c.client.send("41").await;
    assert_eq!(
        seen.disconnects.next().await,
        (
            c.socket.id().clone(),
            DisconnectReason::ClientNamespaceDisconnect
        )
    );
    let in_r2: Vec<_> = server
        .io
        .to("r2")
        .sockets()
        .iter()
        .map(|s| s.id().clone())
        .collect();
    assert_eq!(in_r2, vec![b.socket.id().clone()]);
    let rooms = server.io.of("/").adapter().rooms();
    assert!(!rooms.contains(&c.socket.id().room()));
    assert!(rooms.contains(&Room::from("r2")));
}

#[tokio::test]
async fn broadcasts_never_cross_namespaces() {
    let server = TestServer::start().await;
    let (root, mut root_seen) = recorder();
    server.io.ns("/", root);
    let (admin, mut admin_seen) = recorder();
    server.io.ns("/admin", admin);

    // One connection in both namespaces, both sockets in a room of the same name.
    let mut both = server.ws().await;
    both.join("/", None).await;
    let root_socket = root_seen.sockets.next().await;
    both.join("/admin", None).await;
    let admin_socket = admin_seen.sockets.next().await;
    root_socket.join("r");
    admin_socket.join("r");
    // Another connection only in /admin.
    let mut admin_only = server.ws().await;
    admin_only.join("/admin", None).await;
    let other_admin = admin_seen.sockets.next().await;
    other_admin.join("r");

    server.io.to("r").emit("m", "root").expect("emitted");
    both.expect(r#"42["m","root"]"#).await;
    assert_nothing_more(&mut both, &admin_socket).await;
    assert_nothing_more(&mut admin_only, &other_admin).await;

    server
        .io
        .of("/admin")
        .to("r")
        .emit("m", "admin")
        .expect("emitted");
    both.expect(r#"42/admin,["m","admin"]"#).await;
    admin_only.expect(r#"42/admin,["m","admin"]"#).await;
    assert_nothing_more(&mut both, &root_socket).await;

    server.io.emit("m", "all of /").expect("emitted");
    both.expect(r#"42["m","all of /"]"#).await;
    assert_nothing_more(&mut admin_only, &other_admin).await;

    // `socket.to` stays in the socket's namespace and leaves out only that socket.
    admin_socket.to("r").emit("m", "peer").expect("emitted");
    admin_only.expect(r#"42/admin,["m","peer"]"#).await;
    assert_nothing_more(&mut both, &admin_socket).await;
    assert_nothing_more(&mut both, &root_socket).await;
}

#[tokio::test]
async fn a_broadcast_ack_collects_every_answer_or_its_timeout() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut a = peer(&server, &mut seen, None).await;
    let mut b = peer(&server, &mut seen, None).await;
    let mut c = peer(&server, &mut seen, None).await;
    a.socket.join("r");
    b.socket.join("r");

    let ack_timeout = Duration::from_millis(300);
    let operator = server.io.to("r").timeout(ack_timeout);
    let started = Instant::now();
    let asked = tokio::spawn(operator.emit_with_ack("q", Payload::json(1).expect("JSON")));
    // One packet, one id, for every recipient.
    a.expect(r#"420["q",1]"#).await;
    b.expect(r#"420["q",1]"#).await;
    a.client.send(r#"430["a",true]"#).await;
    let mut answers = timeout(WAIT, asked)
        .await
        .expect("in time")
        .expect("task")
        .expect("emitted");
    assert!(started.elapsed() >= ack_timeout);
    answers.sort_by_key(|answer| answer.socket.as_str() != a.socket.id().as_str());
    assert_eq!(answers.len(), 2);
    assert_eq!(&answers[0].socket, a.socket.id());
    assert_eq!(
        answers[0].result.as_ref().map(|p| p.args.clone()),
        Ok(vec![json!("a"), json!(true)])
    );
    assert_eq!(&answers[1].socket, b.socket.id());
    assert_eq!(answers[1].result, Err(AckError::Timeout));
    c.nothing_more().await;

    // When every target answers, the broadcast returns without waiting for the timeout.
    let started = Instant::now();
    let asked = tokio::spawn(
        server
            .io
            .to("r")
            .timeout(WAIT)
            .emit_with_ack("q", Payload::new()),
    );
    a.expect(r#"421["q"]"#).await;
    b.expect(r#"421["q"]"#).await;
    a.client.send("431[1]").await;
    b.client.send("431[2]").await;
    let answers = timeout(WAIT, asked)
        .await
        .expect("in time")
        .expect("task")
        .expect("emitted");
    assert!(started.elapsed() < WAIT);
    let mut values: Vec<_> = answers
        .into_iter()
        .map(|answer| answer.result.expect("answered").args)
        .collect();
    values.sort_by_key(|args| args[0].as_i64());
    assert_eq!(values, vec![vec![json!(1)], vec![json!(2)]]);
}

#[tokio::test]
async fn fetch_join_leave_and_disconnect_targeted_sockets() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut a = peer(&server, &mut seen, Some(r#"{"name":"a"}"#)).await;
    let mut b = peer(&server, &mut seen, Some(r#"{"name":"b"}"#)).await;
    let mut c = peer(&server, &mut seen, None).await;
    a.socket.join("team");
    b.socket.join("team");

    let mut infos = server.io.to("team").fetch_sockets().await;
    infos.sort_by_key(|info| info.auth["name"].as_str().map(str::to_owned));
    assert_eq!(infos.len(), 2);
    assert_eq!(&infos[0].id, a.socket.id());
    assert_eq!(infos[0].auth, json!({"name": "a"}));
    assert!(infos[0].rooms.contains(&Room::from("team")));
    assert!(infos[0].rooms.contains(&a.socket.id().room()));
    assert_eq!(&infos[1].id, b.socket.id());
    assert_eq!(server.io.of("/").broadcast().fetch_sockets().await.len(), 3);
    assert_eq!(server.io.to("team").sockets().len(), 2);

    // Every socket of "team" joins "vip".
    server.io.to("team").sockets_join("vip");
    assert!(a.socket.rooms().contains(&Room::from("vip")));
    assert!(b.socket.rooms().contains(&Room::from("vip")));
    assert!(!c.socket.rooms().contains(&Room::from("vip")));
    server.io.to("vip").emit("m", "vip").expect("emitted");
    a.expect(r#"42["m","vip"]"#).await;
    b.expect(r#"42["m","vip"]"#).await;
    c.nothing_more().await;

    // Every socket of "vip" but a leaves "team".
    server
        .io
        .to("vip")
        .except(a.socket.id())
        .sockets_leave("team");
    let team: Vec<_> = server
        .io
        .to("team")
        .fetch_sockets()
        .await
        .into_iter()
        .map(|info| info.id)
        .collect();
    assert_eq!(team, vec![a.socket.id().clone()]);

    // Namespace disconnection: DISCONNECT packets, the connections stay.
    server.io.to("vip").disconnect_sockets(false);
    a.expect("41").await;
    b.expect("41").await;
    let mut reasons = vec![seen.disconnects.next().await, seen.disconnects.next().await];
    reasons.sort_by_key(|(id, _)| id != a.socket.id());
    assert_eq!(
        reasons,
        vec![
            (
                a.socket.id().clone(),
                DisconnectReason::ServerNamespaceDisconnect
            ),
            (
                b.socket.id().clone(),
                DisconnectReason::ServerNamespaceDisconnect
            ),
        ]
    );
    assert!(!a.socket.connected());
    assert_eq!(server.io.of("/").socket_count(), 1);
    assert!(server.io.to("vip").fetch_sockets().await.is_empty());
    let again = a.client.join("/", None).await;
    assert_ne!(again, a.socket.id().as_str());
    let a_again = seen.sockets.next().await;
    c.nothing_more().await;

    // Closing disconnection: every namespace of the connection, then the connection itself.
    server.io.to(c.socket.id()).disconnect_sockets(true);
    assert_eq!(c.client.until_closed().await, ["41", "1"]);
    assert_eq!(
        seen.disconnects.next().await,
        (
            c.socket.id().clone(),
            DisconnectReason::ServerNamespaceDisconnect
        )
    );
    assert_nothing_more(&mut a.client, &a_again).await;
    assert_eq!(server.io.of("/").socket_count(), 1);
}
