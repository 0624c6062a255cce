//! The per-socket limits over real connections: rooms per socket (`try_join`, `join`,
//! `sockets_join`) and the event rate with both actions. Each test checks the exact packets the
//! limited client gets and that other sockets go on unaffected.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_nothing_more, recorder, Recorded, TestServer, WsClient};
use ferrio_socketio::{
    DisconnectReason, EventRateLimit, JoinError, OverLimit, RateLimit, Socket, SocketIoConfig,
};
use serde_json::json;

/// A client joined to the main namespace, and its socket.
struct Peer {
    client: WsClient,
    socket: Arc<Socket>,
}

async fn peer(server: &TestServer, seen: &mut Recorded) -> Peer {
    let mut client = server.ws().await;
    let sid = client.join("/", None).await;
    let socket = seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), sid);
    Peer { client, socket }
}

fn sorted_rooms(socket: &Socket) -> Vec<String> {
    let mut rooms: Vec<String> = socket
        .rooms()
        .iter()
        .filter(|r| ***r != *socket.id().as_str())
        .map(|r| r.to_string())
        .collect();
    rooms.sort();
    rooms
}

#[tokio::test]
async fn joins_past_max_rooms_per_socket_are_refused_whole() {
    let server = TestServer::start_with(SocketIoConfig {
        max_rooms_per_socket: Some(2),
        ..SocketIoConfig::default()
    })
    .await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut a = peer(&server, &mut seen).await;
    let mut b = peer(&server, &mut seen).await;

    assert_eq!(a.socket.try_join("r1"), Ok(()));
    assert_eq!(
        a.socket.try_join(["r2", "r3"]),
        Err(JoinError::TooManyRooms { rooms: 3, max: 2 })
    );
    assert_eq!(sorted_rooms(&a.socket), ["r1"], "all or nothing");
    // Rooms the socket is in already, and its own room, do not count again.
    assert_eq!(a.socket.try_join(["r1", "r2", "r2"]), Ok(()));
    assert_eq!(a.socket.try_join(["r2", "r1"]), Ok(()));
    assert_eq!(a.socket.try_join(a.socket.id()), Ok(()));
    assert_eq!(sorted_rooms(&a.socket), ["r1", "r2"]);
    // `join` refuses the same way, silently to the caller.
    a.socket.join("r3");
    assert_eq!(sorted_rooms(&a.socket), ["r1", "r2"]);
    // So does a server-side `socketsJoin`, socket by socket: b has room, a has not.
    server.io.of("/").broadcast().sockets_join("r4");
    assert_eq!(sorted_rooms(&a.socket), ["r1", "r2"]);
    assert_eq!(sorted_rooms(&b.socket), ["r4"]);

    // Leaving makes room.
    a.socket.leave("r1");
    assert_eq!(a.socket.try_join("r3"), Ok(()));
    server.io.to("r3").emit("m", "to r3").expect("emitted");
    a.client.expect(r#"42["m","to r3"]"#).await;
    server.io.to("r4").emit("m", "to r4").expect("emitted");
    b.client.expect(r#"42["m","to r4"]"#).await;
    assert_nothing_more(&mut a.client, &a.socket).await;
    assert_nothing_more(&mut b.client, &b.socket).await;

    // The client is never told about joins.
    a.client.send(r#"42["still","here"]"#).await;
    assert_eq!(seen.events.next().await.name, "still");

    a.socket.disconnect();
    assert_eq!(a.socket.try_join("r5"), Err(JoinError::Disconnected));
}

fn rate_config(action: OverLimit) -> SocketIoConfig {
    SocketIoConfig {
        event_rate: Some(
            EventRateLimit::new(RateLimit::new(3, Duration::from_secs(60))).with_action(action),
        ),
        ..SocketIoConfig::default()
    }
}

const NOTICE: &str = r#"42["error",{"message":"Too many events (max 3 per 60s)"}]"#;

/// Connects `client` to `/other` (which exists, handler-less): the server answers only once it
/// has handled every packet the client sent before, on the same connection.
async fn sync(client: &mut WsClient) {
    client.join("/other", None).await;
}

#[tokio::test]
async fn events_past_the_rate_are_dropped_with_one_notice() {
    let server = TestServer::start_with(rate_config(OverLimit::Drop)).await;
    server.io.of("/other");
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut a = peer(&server, &mut seen).await;
    let mut b = peer(&server, &mut seen).await;

    for i in 1..=5 {
        a.client.send(&format!(r#"42["e",{i}]"#)).await;
    }
    // Asking for an acknowledgement does not get an event through; the ack never comes.
    a.client.send(r#"421["e",6]"#).await;
    // One notice for the whole run of dropped events.
    a.client.expect(NOTICE).await;
    sync(&mut a.client).await;
    for i in 1..=3 {
        let heard = seen.events.next().await;
        assert_eq!(
            (heard.socket, heard.name),
            (a.socket.id().clone(), "e".to_owned())
        );
        assert_eq!(heard.payload.args, [json!(i)]);
    }
    seen.events.assert_empty();
    assert_nothing_more(&mut a.client, &a.socket).await;
    assert!(a.socket.connected());

    // Another socket has its own budget.
    for i in 1..=3 {
        b.client.send(&format!(r#"42["b",{i}]"#)).await;
        let heard = seen.events.next().await;
        assert_eq!(
            (heard.socket, heard.payload.args),
            (b.socket.id().clone(), vec![json!(i)])
        );
    }
    assert_nothing_more(&mut b.client, &b.socket).await;
    seen.disconnects.assert_empty();
}

#[tokio::test]
async fn the_disconnect_action_sends_the_notice_then_a_disconnect() {
    let server = TestServer::start_with(rate_config(OverLimit::Disconnect)).await;
    server.io.of("/other");
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut a = peer(&server, &mut seen).await;
    let mut b = peer(&server, &mut seen).await;

    for i in 1..=4 {
        a.client.send(&format!(r#"42["e",{i}]"#)).await;
    }
    a.client.expect(NOTICE).await;
    a.client.expect("41").await;
    assert_eq!(
        seen.disconnects.next().await,
        (a.socket.id().clone(), DisconnectReason::EventRateExceeded)
    );
    for i in 1..=3 {
        assert_eq!(seen.events.next().await.payload.args, [json!(i)]);
    }
    assert!(!a.socket.connected());
    // The connection itself stays: only the namespace was left.
    sync(&mut a.client).await;
    seen.events.assert_empty();

    b.client.send(r#"42["b",1]"#).await;
    assert_eq!(seen.events.next().await.socket, *b.socket.id());
    assert_nothing_more(&mut b.client, &b.socket).await;
    seen.disconnects.assert_empty();
}

#[tokio::test]
async fn by_default_neither_rooms_nor_events_are_limited() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut a = peer(&server, &mut seen).await;
    let rooms: Vec<String> = (0..300).map(|i| format!("room {i}")).collect();
    assert_eq!(a.socket.try_join(rooms), Ok(()));
    assert_eq!(a.socket.rooms().len(), 301);
    for i in 0..200 {
        a.client.send(&format!(r#"42["e",{i}]"#)).await;
    }
    for i in 0..200 {
        assert_eq!(seen.events.next().await.payload.args, [json!(i)]);
    }
    assert_nothing_more(&mut a.client, &a.socket).await;
}
