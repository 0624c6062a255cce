//! How sockets leave, over real connections, and the reason `on_disconnect` sees: namespace
//! disconnection by either side, closing the connection, the client closing its transport,
//! the ping timeout, a packet that cannot be decoded, and a client too slow to read.

mod common;

use std::time::Duration;

use common::{
    assert_nothing_more, join_root, recorded_server, recorded_server_with, Frame, PollingClient,
    TwoNamespaces,
};
use ferrio_socketio::{DisconnectReason, EmitError, SocketIoConfig};
use serde_json::json;

#[tokio::test]
async fn a_client_namespace_disconnect_leaves_the_other_namespaces_connected() {
    let TwoNamespaces {
        server,
        mut client,
        mut root_seen,
        root_socket,
        mut admin_seen,
        admin_socket,
    } = TwoNamespaces::start().await;

    client.send("41/admin,").await;
    assert_eq!(
        admin_seen.disconnects.next().await,
        (
            admin_socket.id().clone(),
            DisconnectReason::ClientNamespaceDisconnect
        )
    );
    assert!(!admin_socket.connected());
    assert!(matches!(
        admin_socket.emit("m", 1),
        Err(EmitError::Disconnected)
    ));
    assert_eq!(server.io.of("/admin").socket_count(), 0);
    // The rest of the connection goes on.
    client.send(r#"421["echo"]"#).await;
    client.expect("431[]").await;
    assert!(root_socket.connected());
    assert_eq!(root_seen.events.next().await.name, "echo");
    admin_seen.events.assert_empty();

    // The client may come back to the namespace on the same connection, as a new socket.
    let again = client.join("/admin", None).await;
    assert_ne!(again, admin_socket.id().as_str());
    assert_eq!(admin_seen.sockets.next().await.id().as_str(), again);
    root_seen.disconnects.assert_empty();
}

#[tokio::test]
async fn a_server_namespace_disconnect_sends_disconnect_and_keeps_the_connection() {
    let (server, mut seen) = recorded_server().await;
    let (mut client, socket) = join_root(&server, &mut seen).await;

    socket.disconnect();
    client.expect("41").await;
    assert_eq!(
        seen.disconnects.next().await,
        (
            socket.id().clone(),
            DisconnectReason::ServerNamespaceDisconnect
        )
    );
    assert!(!socket.connected());
    assert!(matches!(socket.emit("m", 1), Err(EmitError::Disconnected)));
    // A second disconnect does nothing, nor does joining a room.
    socket.disconnect();
    socket.join("late");
    assert!(socket.rooms().is_empty());
    assert!(server.io.of("/").adapter().rooms().is_empty());
    assert_eq!(server.io.connection_count(), 1);

    let again = client.join("/", None).await;
    assert_ne!(again, socket.id().as_str());
    let socket = seen.sockets.next().await;
    assert_nothing_more(&mut client, &socket).await;
    seen.disconnects.assert_empty();
}

#[tokio::test]
async fn disconnect_with_close_disconnects_every_namespace_then_closes_the_connection() {
    let TwoNamespaces {
        server,
        mut client,
        mut root_seen,
        root_socket,
        mut admin_seen,
        admin_socket,
    } = TwoNamespaces::start().await;

    root_socket.disconnect_with(true);
    assert_eq!(client.until_closed().await, ["41", "41/admin,", "1"]);
    // As the reference server: each namespace hears a server namespace disconnect.
    assert_eq!(
        root_seen.disconnects.next().await,
        (
            root_socket.id().clone(),
            DisconnectReason::ServerNamespaceDisconnect
        )
    );
    assert_eq!(
        admin_seen.disconnects.next().await,
        (
            admin_socket.id().clone(),
            DisconnectReason::ServerNamespaceDisconnect
        )
    );
    assert_eq!(server.io.of("/").socket_count(), 0);
    assert_eq!(server.io.of("/admin").socket_count(), 0);
}

#[tokio::test]
async fn the_client_closing_its_transport_is_a_transport_close() {
    let (server, mut seen) = recorded_server().await;

    // A WebSocket close frame.
    let (mut client, socket) = join_root(&server, &mut seen).await;
    client.close().await;
    assert_eq!(
        seen.disconnects.next().await,
        (socket.id().clone(), DisconnectReason::TransportClose)
    );

    // An Engine.IO close packet.
    let (mut client, socket) = join_root(&server, &mut seen).await;
    client.send("1").await;
    assert_eq!(
        seen.disconnects.next().await,
        (socket.id().clone(), DisconnectReason::TransportClose)
    );
    client.until_closed().await;
    assert_eq!(server.io.of("/").socket_count(), 0);
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_times_out() {
    let mut config = SocketIoConfig::default();
    config.engine.ping_interval = Duration::from_millis(100);
    config.engine.ping_timeout = Duration::from_millis(150);
    let (server, mut seen) = recorded_server_with(config).await;
    let mut client = server.ws().await;
    assert_eq!(client.open["pingInterval"], json!(100));
    assert_eq!(client.open["pingTimeout"], json!(150));
    client.join("/", None).await;
    let socket = seen.sockets.next().await;

    // `recv` answers pings: two rounds keep the socket alive.
    for _ in 0..2 {
        assert_eq!(client.frame().await, Frame::Text("2".into()));
        client.send("3").await;
    }
    seen.disconnects.assert_empty();
    // Then the client goes silent.
    assert_eq!(client.frame().await, Frame::Text("2".into()));
    assert_eq!(
        seen.disconnects.next().await,
        (socket.id().clone(), DisconnectReason::PingTimeout)
    );
    assert_eq!(client.until_closed().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_packet_in_an_invalid_state_closes_the_connection() {
    // As the reference server: an event for a namespace the client is not in, or a second
    // CONNECT to one it is in, closes the whole connection.
    let (server, mut seen) = recorded_server().await;
    server.io.ns("/admin", |_socket| {});
    for bad in [r#"42/admin,["not joined"]"#, "40"] {
        let (mut client, socket) = join_root(&server, &mut seen).await;
        client.send(bad).await;
        assert_eq!(
            seen.disconnects.next().await,
            (socket.id().clone(), DisconnectReason::ForcedServerClose),
            "after {bad:?}"
        );
        assert_eq!(client.until_closed().await, ["1"], "after {bad:?}");
    }
}

#[tokio::test]
async fn an_undecodable_packet_closes_only_that_connection() {
    let (server, mut seen) = recorded_server().await;
    let (mut bystander, bystander_socket) = join_root(&server, &mut seen).await;

    for bad in [
        r#"42["unterminated""#,
        r#"42{"not":"an array"}"#,
        "4x",
        r#"42["disconnect"]"#,
        "421-[]",
    ] {
        let (mut client, socket) = join_root(&server, &mut seen).await;
        client.send(bad).await;
        assert_eq!(
            seen.disconnects.next().await,
            (socket.id().clone(), DisconnectReason::ParseError),
            "after {bad:?}"
        );
        assert_eq!(client.until_closed().await, ["1"], "after {bad:?}");
    }
    // An attachment nobody announced.
    let (mut client, socket) = join_root(&server, &mut seen).await;
    client.send_binary(&[1, 2]).await;
    assert_eq!(
        seen.disconnects.next().await,
        (socket.id().clone(), DisconnectReason::ParseError)
    );
    client.until_closed().await;

    // The other client never noticed.
    bystander.send(r#"427["still here"]"#).await;
    bystander.expect("437[]").await;
    assert!(bystander_socket.connected());
    assert_eq!(server.io.of("/").socket_count(), 1);
}

/// A client that stops reading fills its queue: a volatile emit is then dropped, a normal one
/// disconnects it. Long-polling makes "not reading" exact: the client simply sends no `GET`.
#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected_when_its_queue_is_full() {
    let mut config = SocketIoConfig::default();
    config.engine.max_buffered_packets = 4;
    // A closing session with nobody polling is given the ping timeout to take its close packet.
    config.engine.ping_timeout = Duration::from_millis(200);
    let (server, mut seen) = recorded_server_with(config).await;

    let (slow, rest) = PollingClient::handshake(server.addr, 4, "").await;
    assert!(rest.is_empty());
    slow.post(&["40"]).await;
    let reply = slow.get().await;
    assert_eq!(reply.len(), 1);
    assert!(reply[0].starts_with(r#"40{"sid":""#), "{reply:?}");
    let slow_socket = seen.sockets.next().await;
    let (mut fast, _fast_socket) = join_root(&server, &mut seen).await;

    for i in 0..4 {
        slow_socket.emit("fill", i).expect("room in the queue");
    }
    // Full: a volatile packet is dropped for the slow client only, which stays connected.
    server
        .io
        .of("/")
        .broadcast()
        .volatile()
        .emit("volatile", 1)
        .expect("emitted");
    fast.expect(r#"42["volatile",1]"#).await;
    assert!(slow_socket.connected());
    assert_eq!(
        slow.get().await,
        [
            r#"42["fill",0]"#,
            r#"42["fill",1]"#,
            r#"42["fill",2]"#,
            r#"42["fill",3]"#
        ]
    );
    slow_socket.emit("after", 1).expect("room again");
    assert_eq!(slow.get().await, [r#"42["after",1]"#]);
    seen.disconnects.assert_empty();

    // Full again: a normal broadcast disconnects the slow client and still reaches the other.
    for i in 0..4 {
        slow_socket.emit("fill", i).expect("room in the queue");
    }
    server.io.emit("overflow", 2).expect("emitted");
    fast.expect(r#"42["overflow",2]"#).await;
    let (id, reason) = seen.disconnects.next().await;
    assert_eq!(
        (id, reason),
        (slow_socket.id().clone(), DisconnectReason::TransportError)
    );
    assert!(!slow_socket.connected());
    assert!(matches!(
        slow_socket.emit("m", 1),
        Err(EmitError::Disconnected)
    ));

    // A direct emit to a full queue fails with the limit.
    let (slow, _) = PollingClient::handshake(server.addr, 4, "").await;
    slow.post(&["40"]).await;
    slow.get().await;
    let slow_socket = seen.sockets.next().await;
    for i in 0..4 {
        slow_socket.emit("fill", i).expect("room in the queue");
    }
    assert!(matches!(
        slow_socket.emit("overflow", 1),
        Err(EmitError::QueueFull { max: 4 })
    ));
    assert_eq!(
        seen.disconnects.next().await,
        (slow_socket.id().clone(), DisconnectReason::TransportError)
    );
    assert_eq!(server.io.of("/").socket_count(), 1);
}

/// A socket kept after it left its namespace is inert: disconnecting it, even with `close`,
/// must not touch the connection, which may serve other namespaces (the reference server
/// returns at once for a socket that is not connected).
#[tokio::test]
async fn disconnecting_a_socket_that_already_left_leaves_the_connection_alone() {
    let TwoNamespaces {
        server,
        mut client,
        mut root_seen,
        root_socket: stale,
        mut admin_seen,
        admin_socket,
    } = TwoNamespaces::start().await;

    client.send("41").await;
    assert_eq!(
        root_seen.disconnects.next().await,
        (
            stale.id().clone(),
            DisconnectReason::ClientNamespaceDisconnect
        )
    );
    stale.disconnect_with(true);
    stale.disconnect();
    assert!(admin_socket.connected());
    assert_nothing_more(&mut client, &admin_socket).await;
    assert_eq!(server.io.connection_count(), 1);
    admin_seen.disconnects.assert_empty();
}

#[tokio::test]
async fn closing_the_server_disconnects_every_client() {
    let (server, mut seen) = recorded_server().await;
    let mut first = server.ws().await;
    first.join("/", None).await;
    let mut second = server.ws().await;
    second.join("/", None).await;

    server.io.close();
    assert_eq!(first.until_closed().await, ["1"]);
    assert_eq!(second.until_closed().await, ["1"]);
    for _ in 0..2 {
        assert_eq!(
            seen.disconnects.next().await.1,
            DisconnectReason::ServerShuttingDown
        );
    }
    assert_eq!(server.io.of("/").socket_count(), 0);
}
