//! Events and acknowledgements over real connections: typed arguments, `on_any`, acks in both
//! directions (answered, timed out, cut by a disconnection), binary events and binary acks with
//! their exact attachment framing, and reserved event names.

mod common;

use std::time::Duration;

use common::{assert_nothing_more, inbox, placeholder, recorder, TestServer};
use ferrio_socketio::{AckError, ArgError, DisconnectReason, EmitError, Payload};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::time::timeout;

const WAIT: Duration = common::WAIT;

#[derive(Debug, Deserialize, PartialEq)]
struct Chat {
    user: String,
    n: u32,
}

/// What the typed handler made of one `chat` event.
#[derive(Debug, PartialEq)]
enum Seen {
    Chat(Chat, Vec<i64>, bool),
    BadChat { index: Option<usize> },
    Any(String, Vec<Value>),
}

#[tokio::test]
async fn events_with_typed_arguments_and_a_catch_all_handler() {
    let server = TestServer::start().await;
    let (seen, mut heard) = inbox::<Seen>();
    server.io.ns("/", move |socket| {
        let chat = seen.clone();
        socket.on("chat", move |_, event| {
            let report = match event.payload.get::<Chat>(0) {
                Ok(message) => Seen::Chat(
                    message,
                    event.payload.get::<Vec<i64>>(1).unwrap_or_default(),
                    matches!(
                        event.payload.get::<String>(2),
                        Err(ArgError::Missing { index: 2 })
                    ),
                ),
                Err(ArgError::Invalid { index, .. }) => Seen::BadChat { index },
                Err(other) => panic!("unexpected {other}"),
            };
            let _ = chat.send(report);
        });
        let any = seen.clone();
        socket.on_any(move |_, event| {
            let _ = any.send(Seen::Any(event.name, event.payload.args));
        });
    });

    let mut client = server.ws().await;
    client.join("/", None).await;
    client
        .send(r#"42["chat",{"user":"ann","n":3},[1,-2]]"#)
        .await;
    client.send(r#"42["other","x",{"y":null}]"#).await;
    client.send(r#"42["chat",{"user":1}]"#).await;
    client.send(r#"42["bare"]"#).await;
    assert_eq!(
        heard.next().await,
        Seen::Chat(
            Chat {
                user: "ann".into(),
                n: 3
            },
            vec![1, -2],
            true
        )
    );
    assert_eq!(
        heard.next().await,
        Seen::Any("other".into(), vec![json!("x"), json!({"y": null})])
    );
    assert_eq!(heard.next().await, Seen::BadChat { index: Some(0) });
    assert_eq!(heard.next().await, Seen::Any("bare".into(), vec![]));
    heard.assert_empty();
}

#[tokio::test]
async fn typed_handlers_get_the_first_argument_or_refuse_it() {
    let server = TestServer::start().await;
    server.io.ns("/", |socket| {
        socket.on_typed("chat", |_socket, chat: Chat, ack| {
            if let Some(ack) = ack {
                let _ = ack.send_json(json!({ "from": chat.user, "n": chat.n + 1 }));
            }
        });
    });
    let mut client = server.ws().await;
    client.join("/", None).await;
    client.send(r#"421["chat",{"user":"ann","n":1}]"#).await;
    client.expect(r#"431[{"from":"ann","n":2}]"#).await;
    // The wrong shape never reaches the handler; the client hears why.
    client.send(r#"422["chat",{"user":"ann"}]"#).await;
    client
        .expect(r#"432[{"error":"invalid argument: argument 0 has an unexpected shape: missing field `n`"}]"#)
        .await;
    client.send(r#"423["chat"]"#).await;
    client
        .expect(r#"433[{"error":"invalid argument: no argument at position 0"}]"#)
        .await;
}

#[tokio::test]
async fn the_server_acknowledges_client_events() {
    let server = TestServer::start().await;
    let (handler, _seen) = recorder();
    server.io.ns("/admin", handler);
    server.io.ns("/", |socket| {
        socket.on("sum", |_, event| {
            let a: i64 = event.payload.get(0).expect("a number");
            let b: i64 = event.payload.get(1).expect("a number");
            let ack = event.ack.expect("asked for an ack");
            ack.send_json(json!({ "sum": a + b })).expect("acked");
        });
        socket.on("empty", |_, event| {
            let ack = event.ack.expect("asked for an ack");
            ack.send(Payload::new()).expect("acked");
        });
        // An ack dropped unanswered sends nothing.
        socket.on("ignored", |_, _| {});
    });

    let mut client = server.ws().await;
    client.join("/", None).await;
    client.join("/admin", None).await;
    client.send(r#"421["sum",1,2]"#).await;
    client.expect(r#"431[{"sum":3}]"#).await;
    client.send(r#"4212["empty"]"#).await;
    client.expect("4312[]").await;
    client.send(r#"425["ignored"]"#).await;
    client
        .send(r#"42/admin,7["echo",{"a":[1,"two"]},null]"#)
        .await;
    client.expect(r#"43/admin,7[{"a":[1,"two"]},null]"#).await;
}

#[tokio::test]
async fn server_acks_are_answered_time_out_or_fail_on_disconnect() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut client = server.ws().await;
    client.join("/", None).await;
    let socket = seen.sockets.next().await;

    // Answered.
    let asking = socket.clone();
    let answer = tokio::spawn(async move {
        let mut payload = Payload::json("question").expect("JSON");
        payload.push(7).expect("JSON");
        asking.emit_with_ack("ask", payload, WAIT).await
    });
    client.expect(r#"420["ask","question",7]"#).await;
    client.send(r#"430["answer",{"n":2}]"#).await;
    let answered = timeout(WAIT, answer).await.expect("in time").expect("task");
    assert_eq!(
        answered.expect("answered").args,
        vec![json!("answer"), json!({"n": 2})]
    );

    // Not answered in time.
    let asking = socket.clone();
    let unanswered = tokio::spawn(async move {
        asking
            .emit_with_ack("ask", Payload::new(), Duration::from_millis(100))
            .await
    });
    client.expect(r#"421["ask"]"#).await;
    let result = timeout(WAIT, unanswered)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(result, Err(AckError::Timeout));
    // A late answer, or one for an id never used, is ignored.
    client.send(r#"431["late"]"#).await;
    client.send(r#"4399["forged"]"#).await;

    // Cut by a disconnection.
    let asking = socket.clone();
    let cut = tokio::spawn(async move { asking.emit_with_ack("ask", Payload::new(), WAIT).await });
    client.expect(r#"422["ask"]"#).await;
    client.send("41").await;
    let result = timeout(WAIT, cut).await.expect("in time").expect("task");
    assert_eq!(result, Err(AckError::Disconnected));
    assert_eq!(
        seen.disconnects.next().await,
        (
            socket.id().clone(),
            DisconnectReason::ClientNamespaceDisconnect
        )
    );

    // Ack ids are per namespace; the packets carry the namespace.
    let (admin, mut admin_seen) = recorder();
    server.io.ns("/admin", admin);
    client.join("/admin", None).await;
    let admin_socket = admin_seen.sockets.next().await;
    let asking = admin_socket.clone();
    let answer =
        tokio::spawn(async move { asking.emit_with_ack("ask", Payload::new(), WAIT).await });
    client.expect(r#"42/admin,0["ask"]"#).await;
    client.send(r#"43/admin,0["yes"]"#).await;
    let answered = timeout(WAIT, answer).await.expect("in time").expect("task");
    assert_eq!(answered.expect("answered").args, vec![json!("yes")]);

    // Once disconnected, an ack cannot even be asked for.
    let result = socket.emit_with_ack("ask", Payload::new(), WAIT).await;
    assert!(matches!(result, Err(AckError::Emit(_))), "{result:?}");
}

#[tokio::test]
async fn binary_events_from_the_client_keep_their_attachments_in_order() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let (admin, mut admin_seen) = recorder();
    server.io.ns("/admin", admin);
    let mut client = server.ws().await;
    client.join("/", None).await;
    client.join("/admin", None).await;

    client
        .send(&format!(r#"451-["upload",{}]"#, placeholder(0)))
        .await;
    client.send_binary(&[1, 2, 3]).await;
    let heard = seen.events.next().await;
    assert_eq!(heard.name, "upload");
    assert_eq!(
        heard.payload.args,
        vec![json!({"_placeholder": true, "num": 0})]
    );
    assert_eq!(
        heard
            .payload
            .binary_of(&heard.payload.args[0])
            .map(|b| b.to_vec()),
        Some(vec![1, 2, 3])
    );

    // Two attachments, one nested, placeholders out of order: attachments stay in frame order.
    client
        .send(&format!(
            r#"452-/admin,["files",{{"inner":{}}},{},"text"]"#,
            placeholder(1),
            placeholder(0)
        ))
        .await;
    client.send_binary(b"first").await;
    client.send_binary(b"second").await;
    let heard = admin_seen.events.next().await;
    let payload = heard.payload;
    assert_eq!(payload.attachments, vec![&b"first"[..], &b"second"[..]]);
    assert_eq!(
        payload
            .binary_of(&payload.args[0]["inner"])
            .map(|b| b.to_vec()),
        Some(b"second".to_vec())
    );
    assert_eq!(
        payload.binary_of(&payload.args[1]).map(|b| b.to_vec()),
        Some(b"first".to_vec())
    );
    assert_eq!(payload.args[2], json!("text"));
}

#[tokio::test]
async fn binary_acks_from_the_server_to_client_events() {
    let server = TestServer::start().await;
    let (handler, _seen) = recorder();
    server.io.ns("/", handler);
    let (admin, _admin_seen) = recorder();
    server.io.ns("/admin", admin);
    let mut client = server.ws().await;
    client.join("/", None).await;
    client.join("/admin", None).await;

    // The recorder acknowledges with the event's own arguments, binary included.
    client
        .send(&format!(r#"451-5["echo",{},"tag"]"#, placeholder(0)))
        .await;
    client.send_binary(&[9, 9]).await;
    client
        .expect(&format!(r#"461-5[{},"tag"]"#, placeholder(0)))
        .await;
    assert_eq!(client.recv_binary().await, [9, 9]);

    client
        .send(&format!(
            r#"452-/admin,6["echo",{},{}]"#,
            placeholder(0),
            placeholder(1)
        ))
        .await;
    client.send_binary(b"a").await;
    client.send_binary(b"b").await;
    client
        .expect(&format!(
            r#"462-/admin,6[{},{}]"#,
            placeholder(0),
            placeholder(1)
        ))
        .await;
    assert_eq!(client.recv_binary().await, b"a");
    assert_eq!(client.recv_binary().await, b"b");
}

#[tokio::test]
async fn binary_events_and_acks_from_the_server() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut first = server.ws().await;
    first.join("/", None).await;
    let socket = seen.sockets.next().await;
    let mut second = server.ws().await;
    second.join("/", None).await;

    let mut payload = Payload::json("meta").expect("JSON");
    payload.push_binary(vec![1u8]);
    let nested = payload.attach(vec![2u8, 2]);
    payload.push(json!({ "x": nested })).expect("JSON");
    socket
        .emit_payload("file", payload.clone())
        .expect("emitted");
    let text = format!(
        r#"452-["file","meta",{},{{"x":{}}}]"#,
        placeholder(0),
        placeholder(1)
    );
    first.expect(&text).await;
    assert_eq!(first.recv_binary().await, [1]);
    assert_eq!(first.recv_binary().await, [2, 2]);

    // A broadcast carries the same frames to every socket.
    server
        .io
        .of("/")
        .broadcast()
        .emit_payload("file", payload)
        .expect("emitted");
    for client in [&mut first, &mut second] {
        client.expect(&text).await;
        assert_eq!(client.recv_binary().await, [1]);
        assert_eq!(client.recv_binary().await, [2, 2]);
    }

    // A binary answer to the server's ack request.
    let asking = socket.clone();
    let answer = tokio::spawn(async move {
        let mut payload = Payload::new();
        payload.push_binary(vec![5u8]);
        asking.emit_with_ack("bin", payload, WAIT).await
    });
    first
        .expect(&format!(r#"451-0["bin",{}]"#, placeholder(0)))
        .await;
    assert_eq!(first.recv_binary().await, [5]);
    first
        .send(&format!(r#"461-0[{},"ok"]"#, placeholder(0)))
        .await;
    first.send_binary(&[7, 8]).await;
    let answered = timeout(WAIT, answer)
        .await
        .expect("in time")
        .expect("task")
        .expect("answered");
    assert_eq!(
        answered.args,
        vec![json!({"_placeholder": true, "num": 0}), json!("ok")]
    );
    assert_eq!(answered.attachments, vec![&[7u8, 8][..]]);
    let second_socket = seen.sockets.next().await;
    assert_nothing_more(&mut second, &second_socket).await;
}

#[tokio::test]
async fn reserved_event_names_are_refused_by_every_emit() {
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut client = server.ws().await;
    client.join("/", None).await;
    let socket = seen.sockets.next().await;
    socket.join("room");

    for name in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
    ] {
        let refused = |result: Result<(), EmitError>| {
            assert!(
                matches!(&result, Err(EmitError::ReservedEvent(n)) if n == name),
                "{name}: {result:?}"
            );
        };
        refused(socket.emit(name, 1));
        refused(socket.emit_payload(name, Payload::new()));
        refused(server.io.emit(name, 1));
        refused(server.io.to("room").emit(name, 1));
        refused(socket.broadcast().emit_payload(name, Payload::new()));
        let broadcast = server
            .io
            .to("room")
            .emit_with_ack(name, Payload::new())
            .await;
        assert!(
            matches!(&broadcast, Err(EmitError::ReservedEvent(n)) if n == name),
            "{name}: {broadcast:?}"
        );
        let ack = socket.emit_with_ack(name, Payload::new(), WAIT).await;
        assert!(matches!(ack, Err(AckError::Emit(_))), "{name}: {ack:?}");
    }
    // Nothing reached the client, and the socket is still connected.
    assert_nothing_more(&mut client, &socket).await;
    assert!(socket.connected());
    // Names that merely look alike are fine.
    socket.emit("Connect", 1).expect("not reserved");
    client.expect(r#"42["Connect",1]"#).await;
}

#[tokio::test]
async fn namespace_handlers_serve_every_socket_after_its_own_and_before_its_catch_all() {
    let server = TestServer::start().await;
    let (heard, mut inbox) = inbox::<(String, String)>();
    let root = server.io.of("/");
    let shared = heard.clone();
    root.on("hello", move |socket, event| {
        let _ = shared.send(("shared".to_owned(), socket.id().to_string()));
        if let Some(ack) = event.ack {
            let _ = ack.send_json(json!("from the namespace"));
        }
    });
    let own = heard.clone();
    root.on_connection(move |socket| {
        // The first socket to connect has a handler of its own for `hello`, and every socket
        // a catch-all.
        if socket.auth().get("own").is_some() {
            let own = own.clone();
            socket.on("hello", move |socket, _| {
                let _ = own.send(("own".to_owned(), socket.id().to_string()));
            });
        }
        let any = own.clone();
        socket.on_any(move |_, event| {
            let _ = any.send(("any".to_owned(), event.name));
        });
    });
    let dynamic = server
        .io
        .dynamic_namespace(|name| name.starts_with("/team-"));
    let team = heard.clone();
    dynamic.on("hello", move |socket, _| {
        let _ = team.send(("team".to_owned(), socket.nsp().to_owned()));
    });

    let mut plain = server.ws().await;
    let plain_id = plain.join("/", None).await;
    let mut special = server.ws().await;
    let special_id = special.join("/", Some(r#"{"own":true}"#)).await;

    plain.send(r#"421["hello"]"#).await;
    plain.expect(r#"431["from the namespace"]"#).await;
    assert_eq!(inbox.next().await, ("shared".to_owned(), plain_id));
    special.send(r#"42["hello"]"#).await;
    assert_eq!(inbox.next().await, ("own".to_owned(), special_id));
    // An event nobody handles by name reaches the catch-all.
    plain.send(r#"42["other"]"#).await;
    assert_eq!(inbox.next().await, ("any".to_owned(), "other".to_owned()));

    // A dynamic namespace's handler serves each child's sockets.
    let mut member = server.ws().await;
    member.join("/team-a", None).await;
    member.send(r#"42/team-a,["hello"]"#).await;
    assert_eq!(
        inbox.next().await,
        ("team".to_owned(), "/team-a".to_owned())
    );
    inbox.assert_empty();
}
