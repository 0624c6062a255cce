//! Connecting to namespaces over real connections: the main and custom namespaces with auth,
//! unknown namespaces, middlewares (v5 and v3 error shapes, order, refusal), dynamic namespaces,
//! socket.io-client v2's implicit connection over Engine.IO v3 polling, and the connect timeout.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    assert_nothing_more, inbox, join_root, recorded_server, recorded_server_with, recorder,
    PollingClient, TestServer, WsClient,
};
use ferrio_socketio::{ConnectError, ProtocolVersion, SocketIoConfig, TransportKind};
use serde_json::json;

#[tokio::test]
async fn connects_to_the_main_and_a_custom_namespace_with_auth() {
    let (server, mut root_seen) = recorded_server().await;
    let (admin, mut admin_seen) = recorder();
    server.io.ns("/admin", admin);

    let mut client = server.ws().await;
    let sid = client.join("/", None).await;
    let socket = root_seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), sid);
    // Protocol v5: the socket id is not the Engine.IO session id.
    assert_ne!(sid, client.sid);
    assert_eq!(socket.nsp(), "/");
    assert_eq!(socket.auth(), &json!({}));
    assert!(socket.connected());
    assert!(!socket.recovered());
    assert_eq!(socket.protocol(), ProtocolVersion::V4);
    assert_eq!(socket.transport(), TransportKind::WebSocket);
    assert_eq!(socket.rooms(), vec![Arc::<str>::from(sid.as_str())]);

    // A second namespace over the same connection, with an auth payload.
    let admin_sid = client.join("/admin", Some(r#"{"token":"abc"}"#)).await;
    let admin_socket = admin_seen.sockets.next().await;
    assert_eq!(admin_socket.id().as_str(), admin_sid);
    assert_ne!(admin_sid, sid);
    assert_eq!(admin_socket.nsp(), "/admin");
    assert_eq!(admin_socket.auth(), &json!({"token": "abc"}));
    assert_eq!(server.io.connection_count(), 1);
    assert_eq!(server.io.of("/").socket_count(), 1);
    assert_eq!(server.io.of("/admin").socket_count(), 1);

    // Packets are routed by namespace.
    client.send(r#"42/admin,["hi",1]"#).await;
    client.send(r#"42["hi",2]"#).await;
    let heard = admin_seen.events.next().await;
    assert_eq!((heard.nsp.as_str(), heard.name.as_str()), ("/admin", "hi"));
    assert_eq!(heard.payload.args, vec![json!(1)]);
    let heard = root_seen.events.next().await;
    assert_eq!((heard.nsp.as_str(), heard.name.as_str()), ("/", "hi"));
    assert_eq!(heard.payload.args, vec![json!(2)]);

    // A second CONNECT to a namespace already joined changes nothing.
    client.send("40/admin,").await;
    assert_nothing_more(&mut client, &admin_socket).await;
    assert_eq!(server.io.of("/admin").socket_count(), 1);
    admin_seen.sockets.assert_empty();
}

#[tokio::test]
async fn an_unknown_namespace_is_refused_and_the_connection_stays() {
    let (server, mut seen) = recorded_server().await;

    let mut client = server.ws().await;
    client.send("40/x,").await;
    client
        .expect(r#"44/x,{"message":"Invalid namespace"}"#)
        .await;
    client.send(r#"40/nope,{"token":"1"}"#).await;
    client
        .expect(r#"44/nope,{"message":"Invalid namespace"}"#)
        .await;
    assert!(server.io.namespace("/x").is_none());

    // The same connection still joins a namespace that exists.
    let sid = client.join("/", None).await;
    assert_eq!(seen.sockets.next().await.id().as_str(), sid);
}

#[tokio::test]
async fn a_middleware_refusal_is_a_connect_error_with_message_and_data() {
    let server = TestServer::start().await;
    let (root, mut seen) = recorder();
    let namespace = server.io.ns("/", root);
    namespace.use_middleware(|socket| async move {
        match socket.auth()["token"].as_str() {
            Some("ok") => Ok(()),
            Some(_) => Err(ConnectError::with_data(
                "not authorized",
                json!({"code": 42, "retry": false}),
            )),
            None => Err(ConnectError::new("no token")),
        }
    });

    let mut client = server.ws().await;
    client.send(r#"40{"token":"bad"}"#).await;
    client
        .expect_json(
            "44",
            json!({"message": "not authorized", "data": {"code": 42, "retry": false}}),
        )
        .await;
    client.send("40").await;
    client.expect(r#"44{"message":"no token"}"#).await;
    assert_eq!(namespace.socket_count(), 0);

    // The client may try again on the same connection.
    let sid = client.join("/", Some(r#"{"token":"ok"}"#)).await;
    let socket = seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), sid);
    assert_eq!(socket.auth(), &json!({"token": "ok"}));
    seen.sockets.assert_empty();
    assert_eq!(namespace.socket_count(), 1);
}

#[tokio::test]
async fn middlewares_run_in_order_and_a_refused_socket_never_reaches_the_handler() {
    let server = TestServer::start().await;
    let (log, mut logged) = inbox::<String>();
    let namespace = server.io.of("/");
    let token = |socket: &ferrio_socketio::Socket| {
        socket.auth()["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let first = log.clone();
    namespace.use_middleware(move |socket| {
        let _ = first.send(format!("m1:{}", token(&socket)));
        async { Ok(()) }
    });
    let second = log.clone();
    namespace.use_middleware(move |socket| {
        let second = second.clone();
        async move {
            // Asynchronous work in a middleware still keeps the order.
            tokio::task::yield_now().await;
            let token = token(&socket);
            let _ = second.send(format!("m2:{token}"));
            if token == "bad" {
                Err(ConnectError::new("refused by m2"))
            } else {
                Ok(())
            }
        }
    });
    let third = log.clone();
    namespace.use_middleware(move |socket| {
        let _ = third.send(format!("m3:{}", token(&socket)));
        async { Ok(()) }
    });
    let connected = log.clone();
    let disconnected = log.clone();
    namespace.on_connection(move |socket| {
        let _ = connected.send(format!("connect:{}", token(socket)));
        let disconnected = disconnected.clone();
        socket.on_disconnect(move |socket, reason| {
            let _ = disconnected.send(format!("disconnect:{}:{reason}", token(socket)));
        });
    });

    let mut refused = server.ws().await;
    refused.send(r#"40{"token":"bad"}"#).await;
    refused.expect(r#"44{"message":"refused by m2"}"#).await;
    assert_eq!(logged.next().await, "m1:bad");
    assert_eq!(logged.next().await, "m2:bad");

    let mut accepted = server.ws().await;
    accepted.join("/", Some(r#"{"token":"good"}"#)).await;
    for expected in ["m1:good", "m2:good", "m3:good", "connect:good"] {
        assert_eq!(logged.next().await, expected);
    }
    // The refused client closing its connection tells no disconnect handler either.
    refused.close().await;
    accepted.send("41").await;
    assert_eq!(
        logged.next().await,
        "disconnect:good:client namespace disconnect"
    );
    logged.assert_empty();
}

#[tokio::test]
async fn dynamic_namespaces_are_created_on_first_use_with_the_template_handlers() {
    let server = TestServer::start().await;
    let dynamic = server
        .io
        .dynamic_namespace(|name| name.starts_with("/room-"));
    let (handler, mut seen) = recorder();
    dynamic.on_connection(handler);
    dynamic.use_middleware(|socket| async move {
        if socket.auth().get("token").is_some() {
            Ok(())
        } else {
            Err(ConnectError::with_data("no token", json!(["token"])))
        }
    });
    assert!(server.io.namespace("/room-1").is_none());

    let mut first = server.ws().await;
    let sid = first.join("/room-1", Some(r#"{"token":1}"#)).await;
    let socket = seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), sid);
    assert_eq!(socket.nsp(), "/room-1");
    let namespace = server.io.namespace("/room-1").expect("created");
    assert_eq!(namespace.socket_count(), 1);

    // The template's middleware applies to every child.
    first.send("40/room-2,").await;
    first
        .expect_json(
            "44/room-2,",
            json!({"message": "no token", "data": ["token"]}),
        )
        .await;
    // Names the predicate refuses are unknown namespaces.
    first.send(r#"40/lobby,{"token":1}"#).await;
    first
        .expect(r#"44/lobby,{"message":"Invalid namespace"}"#)
        .await;
    assert!(server.io.namespace("/lobby").is_none());

    // A second client lands in the same child namespace.
    let mut second = server.ws().await;
    second.join("/room-1", Some(r#"{"token":2}"#)).await;
    let _second_socket = seen.sockets.next().await;
    assert_eq!(namespace.socket_count(), 2);
    server.io.of("/room-1").emit("hello", 1).expect("emitted");
    first.expect(r#"42/room-1,["hello",1]"#).await;
    second.expect(r#"42/room-1,["hello",1]"#).await;

    second.send(r#"42/room-1,["said",2]"#).await;
    let heard = seen.events.next().await;
    assert_eq!(
        (heard.nsp.as_str(), heard.name.as_str()),
        ("/room-1", "said")
    );
}

/// socket.io-client v2 over Engine.IO v3: the main namespace is joined implicitly, its socket
/// id is the session id, namespaces carry their auth in a query, and errors carry data alone.
#[tokio::test]
async fn a_v2_client_over_eio3_polling() {
    let (server, mut root_seen) = recorded_server().await;
    let (admin, mut admin_seen) = recorder();
    server.io.ns("/admin", admin);
    server
        .io
        .of("/secure")
        .use_middleware(|_| async { Err(ConnectError::with_data("denied", json!({"code": 42}))) });
    server
        .io
        .of("/plain")
        .use_middleware(|_| async { Err(ConnectError::new("nope")) });

    let (client, rest) = PollingClient::handshake(server.addr, 3, "").await;
    assert_eq!(client.open["upgrades"], json!(["websocket"]));
    let packets = if rest.is_empty() {
        client.get().await
    } else {
        rest
    };
    assert_eq!(packets, ["40"]);
    let socket = root_seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), client.sid);
    assert_eq!(socket.protocol(), ProtocolVersion::V3);
    assert_eq!(socket.transport(), TransportKind::Polling);
    assert_eq!(socket.auth(), &json!({}));

    client.post(&["40/admin?token=abc%20d&x=1,"]).await;
    assert_eq!(client.get().await, ["40/admin,"]);
    let admin_socket = admin_seen.sockets.next().await;
    assert_eq!(admin_socket.id().as_str(), format!("/admin#{}", client.sid));
    assert_eq!(admin_socket.auth(), &json!({"token": "abc d", "x": "1"}));

    client.post(&["40/secure,"]).await;
    assert_eq!(client.get().await, [r#"44/secure,{"code":42}"#]);
    client.post(&["40/plain,"]).await;
    assert_eq!(client.get().await, [r#"44/plain,"nope""#]);
    client.post(&["40/x,"]).await;
    assert_eq!(
        client.get().await,
        [r#"44/x,{"message":"Invalid namespace"}"#]
    );

    // Events and acknowledgements, several packets per request.
    client
        .post(&[r#"42["hi","v2"]"#, r#"42/admin,3["echo",{"a":1}]"#])
        .await;
    let heard = root_seen.events.next().await;
    assert_eq!(heard.name, "hi");
    assert_eq!(heard.payload.args, vec![json!("v2")]);
    assert_eq!(client.get().await, [r#"43/admin,3[{"a":1}]"#]);
    socket.emit("news", "from v5 server").expect("emitted");
    admin_socket.emit("news", 2).expect("emitted");
    assert_eq!(
        client.get().await,
        [r#"42["news","from v5 server"]"#, r#"42/admin,["news",2]"#]
    );
}

/// socket.io-client v2 straight over WebSocket: the implicit CONNECT follows the open packet,
/// the client pings, and binary messages carry the Engine.IO v3 type byte.
#[tokio::test]
async fn a_v2_client_over_eio3_websocket_with_binary() {
    let (server, mut seen) = recorded_server().await;

    let mut client = WsClient::connect(server.addr, 3, "").await;
    client.expect("40").await;
    let socket = seen.sockets.next().await;
    assert_eq!(socket.id().as_str(), client.sid);
    assert_eq!(socket.protocol(), ProtocolVersion::V3);

    // v3 clients ping, the server answers.
    client.send("2").await;
    client.expect("3").await;

    client
        .send(&format!(r#"451-4["echo",{}]"#, common::placeholder(0)))
        .await;
    client.send_binary(&[0xde, 0xad]).await;
    client
        .expect(&format!(r#"461-4[{}]"#, common::placeholder(0)))
        .await;
    assert_eq!(client.recv_binary().await, [0xde, 0xad]);
    let heard = seen.events.next().await;
    assert_eq!(heard.payload.attachments, vec![&[0xde, 0xad][..]]);

    let mut payload = ferrio_socketio::Payload::new();
    payload.push_binary(vec![1u8, 2, 3]);
    socket.emit_payload("bin", payload).expect("emitted");
    client
        .expect(&format!(r#"451-["bin",{}]"#, common::placeholder(0)))
        .await;
    assert_eq!(client.recv_binary().await, [1, 2, 3]);
}

#[tokio::test]
async fn a_connection_that_joins_no_namespace_is_closed_after_the_connect_timeout() {
    let connect_timeout = Duration::from_millis(300);
    let (server, mut seen) = recorded_server_with(SocketIoConfig {
        connect_timeout,
        ..SocketIoConfig::default()
    })
    .await;

    // A client that joins in time stays; it opens first, so its timer is checked first.
    let (mut joined, joined_socket) = join_root(&server, &mut seen).await;

    let opened = Instant::now();
    let mut idle = server.ws().await;
    assert_eq!(idle.until_closed().await, ["1"]);
    assert!(opened.elapsed() >= connect_timeout - Duration::from_millis(20));

    // The client that joined is still served after the timeout.
    joined.send(r#"421["still",true]"#).await;
    joined.expect("431[true]").await;
    assert!(joined_socket.connected());
    assert_eq!(server.io.connection_count(), 1);
}

/// A refused socket is cleaned up as in the reference server: rooms a middleware joined are
/// left, and a socket a middleware kept can send nothing.
#[tokio::test]
async fn a_refused_socket_leaves_no_trace() {
    let server = TestServer::start().await;
    let (kept, mut kept_sockets) = inbox::<Arc<ferrio_socketio::Socket>>();
    let namespace = server.io.of("/");
    namespace.use_middleware(move |socket| {
        socket.join(["pending", "lobby"]);
        let _ = kept.send(socket.clone());
        async { Ok(()) }
    });
    namespace.use_middleware(|socket| async move {
        if socket.auth()["token"] == "ok" {
            Ok(())
        } else {
            Err(ConnectError::new("refused"))
        }
    });

    let mut client = server.ws().await;
    client.send("40").await;
    client.expect(r#"44{"message":"refused"}"#).await;
    let refused = kept_sockets.next().await;
    assert!(!refused.connected());
    assert!(refused.rooms().is_empty(), "{:?}", refused.rooms());
    assert!(namespace.adapter().rooms().is_empty());
    assert!(refused.emit("m", 1).is_err());

    // The same client, accepted, is in the rooms the middleware chose.
    let sid = client.join("/", Some(r#"{"token":"ok"}"#)).await;
    let accepted = kept_sockets.next().await;
    assert_eq!(accepted.id().as_str(), sid);
    let mut rooms: Vec<String> = namespace
        .adapter()
        .rooms()
        .iter()
        .map(|r| r.to_string())
        .collect();
    rooms.sort();
    let mut expected = vec![String::from("lobby"), "pending".into(), sid];
    expected.sort();
    assert_eq!(rooms, expected);
    server.io.to("pending").emit("m", 2).expect("emitted");
    client.expect(r#"42["m",2]"#).await;
}

/// With middlewares, the connection completes on another task than the one reading the
/// client's packets. An event the client sends as soon as it has the CONNECT reply must still
/// find the handlers the connect handler registers, as in the reference server where nothing
/// runs between the reply and the connect handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_right_after_the_connect_reply_reaches_the_connect_handlers() {
    let server = TestServer::start().await;
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let (events, mut heard) = inbox::<String>();
    let namespace = server.io.of("/");
    namespace.use_middleware(|_| async {
        tokio::task::yield_now().await;
        Ok(())
    });
    namespace.on_connection(move |socket| {
        // A slow connect handler: it registers its handlers once the test says so, or after
        // 300 ms. `block_in_place` keeps the rest of the runtime running meanwhile.
        tokio::task::block_in_place(|| {
            let _ = wait
                .lock()
                .expect("lock")
                .recv_timeout(Duration::from_millis(300));
        });
        let events = events.clone();
        socket.on("early", move |_, event| {
            let _ = events.send(format!("early {}", event.payload.args[0]));
        });
    });
    server.io.of("/other");

    let mut client = server.ws().await;
    client.send("40").await;
    assert!(client.recv().await.starts_with(r#"40{"sid":"#));
    client.send(r#"42["early",1]"#).await;
    client.send("40/other,").await;
    // The reply for /other proves the server is past the early event. Only then may the
    // connect handler go on (if it still waits): the event must not have been lost meanwhile.
    let reply = client.recv().await;
    assert!(reply.starts_with(r#"40/other,{"sid":"#), "{reply}");
    let _ = go.send(());
    assert_eq!(heard.next().await, "early 1");
}
