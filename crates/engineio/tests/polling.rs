//! HTTP long-polling over real connections: round trips in both revisions and every payload
//! encoding, the bounded send queue, and bad input, which closes only the offending session.

mod common;

use bytes::Bytes;
use common::{answer, config, read_response, send_raw, TestServer};
use ferrio_engineio::{DisconnectReason, EngineConfig, Message, SendError};

#[tokio::test]
async fn v4_text_round_trip() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let response = server.post(4, sid, "4héllo".as_bytes()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(server.message(sid).await, Message::from("héllo"));

    let response = server.poll(4, sid).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "4héllo");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );

    // An empty message is a message.
    assert_eq!(server.post(4, sid, b"4").await.text(), "ok");
    assert_eq!(server.message(sid).await, Message::from(""));
    assert_eq!(server.poll(4, sid).await.text(), "4");
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn v4_several_packets_and_binary_in_one_body() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let response = server
        .post(4, sid, b"4one\x1ebAQIDBA==\x1e4two\x1eb\x1e4three")
        .await;
    assert_eq!(response.text(), "ok");
    assert_eq!(server.message(sid).await, Message::from("one"));
    assert_eq!(
        server.message(sid).await,
        Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))
    );
    assert_eq!(server.message(sid).await, Message::from("two"));
    assert_eq!(server.message(sid).await, Message::Binary(Bytes::new()));
    assert_eq!(server.message(sid).await, Message::from("three"));

    // The five echoes were queued before the POST was answered: one GET takes them all.
    let response = server.poll(4, sid).await;
    assert_eq!(response.text(), "4one\x1ebAQIDBA==\x1e4two\x1eb\x1e4three");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );

    // A lone binary message is a lone `b` packet.
    let socket = server.socket(sid);
    socket
        .send(Message::Binary(Bytes::from_static(b"\xff\x00")))
        .expect("queued");
    assert_eq!(server.poll(4, sid).await.text(), "b/wA=");
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn a_pending_poll_is_answered_when_a_message_is_queued() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let poll = server.spawn_poll(4, sid).await;
    assert!(!poll.is_finished(), "nothing to send: the poll waits");
    server
        .socket(sid)
        .send(Message::from("late"))
        .expect("queued");
    let response = answer(poll).await;
    assert_eq!(response.text(), "4late");
}

#[tokio::test]
async fn v3_text_payload_counts_utf16_units() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v3(false).await;
    // "€" is one UTF-16 unit in three bytes; "😀" two units in four bytes.
    let body = "4:4€😀6:4hello5:4😀😀1:4";
    assert_eq!(server.post(3, sid, body.as_bytes()).await.text(), "ok");
    assert_eq!(server.message(sid).await, Message::from("€😀"));
    assert_eq!(server.message(sid).await, Message::from("hello"));
    assert_eq!(server.message(sid).await, Message::from("😀😀"));
    assert_eq!(server.message(sid).await, Message::from(""));
    let response = server.poll(3, sid).await;
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(response.text(), body);
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn v3_binary_payloads_in_both_directions() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v3(false).await;
    // `0` text packet "4hi" (3 bytes), then `1` binary packet 0x04 + [1, 2, 3, 4] (5 bytes),
    // then a text packet whose length has two digits.
    let mut body = vec![
        0, 3, 0xff, b'4', b'h', b'i', 1, 5, 0xff, 4, 1, 2, 3, 4, 0, 1, 1, 0xff,
    ];
    body.extend_from_slice(b"4abcdefghij");
    let response = server
        .post_with(
            3,
            sid,
            &[("Content-Type", "application/octet-stream")],
            &body,
        )
        .await;
    assert_eq!((response.status, response.text()), (200, "ok".to_owned()));
    assert_eq!(server.message(sid).await, Message::from("hi"));
    assert_eq!(
        server.message(sid).await,
        Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))
    );
    assert_eq!(server.message(sid).await, Message::from("abcdefghij"));

    // A binary message is queued and the client takes binary: the whole answer is framed.
    let response = server.poll(3, sid).await;
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.body, body);

    // Text alone still goes as a text payload.
    server.socket(sid).send(Message::from("t")).expect("queued");
    let response = server.poll(3, sid).await;
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(response.text(), "2:4t");
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn v3_base64_clients_get_b4_packets() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v3(true).await;
    let body = "3:4hi10:b4AQIDBA==";
    assert_eq!(server.post(3, sid, body.as_bytes()).await.text(), "ok");
    assert_eq!(server.message(sid).await, Message::from("hi"));
    assert_eq!(
        server.message(sid).await,
        Message::Binary(Bytes::from_static(&[1, 2, 3, 4]))
    );
    let response = server.poll(3, sid).await;
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(response.text(), body);

    // Such a client may still post the binary framing.
    let response = server
        .post_with(
            3,
            sid,
            &[("Content-Type", "application/octet-stream")],
            &[1, 3, 0xff, 4, 9, 8],
        )
        .await;
    assert_eq!(response.text(), "ok");
    assert_eq!(
        server.message(sid).await,
        Message::Binary(Bytes::from_static(&[9, 8]))
    );
    assert_eq!(server.poll(3, sid).await.text(), "6:b4CQg=");
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn a_full_queue_refuses_sends_until_a_poll_drains_it() {
    let mut server = TestServer::start(EngineConfig {
        max_buffered_packets: 3,
        ..config()
    })
    .await;
    let (sid, _) = server.handshake_v4().await;
    let socket = server.socket(sid);
    for i in 0..3 {
        socket
            .send(Message::from(format!("m{i}").as_str()))
            .expect("room in the queue");
    }
    assert_eq!(
        socket.send(Message::from("overflow")),
        Err(SendError::Full { max: 3 })
    );
    assert_eq!(
        socket.send_many(vec![Message::from("a")]),
        Err(SendError::Full { max: 3 })
    );
    assert!(socket.is_open(), "a full queue does not close the session");

    assert_eq!(server.poll(4, sid).await.text(), "4m0\x1e4m1\x1e4m2");
    socket.send(Message::from("again")).expect("drained");
    // `send_many` is all or nothing.
    assert_eq!(
        socket.send_many(vec![
            Message::from("x"),
            Message::from("y"),
            Message::from("z")
        ]),
        Err(SendError::Full { max: 3 })
    );
    socket
        .send_many(vec![Message::from("x"), Message::from("y")])
        .expect("fits");
    assert_eq!(server.poll(4, sid).await.text(), "4again\x1e4x\x1e4y");
    server.assert_polling_works(4, sid).await;

    socket.close();
    assert_eq!(socket.send(Message::from("late")), Err(SendError::Closed));
    assert_eq!(server.poll(4, sid).await.text(), "1");
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::ForcedClose
    );
    server.assert_exactly_once(&[sid]);
}

/// Opens a session to break and a bystander that must keep working.
async fn two_sessions(server: &mut TestServer) -> (ferrio_engineio::Sid, ferrio_engineio::Sid) {
    let (victim, _) = server.handshake_v4().await;
    let (bystander, _) = server.handshake_v4().await;
    (victim, bystander)
}

#[tokio::test]
async fn invalid_packets_close_only_their_session() {
    let bodies: [&[u8]; 6] = [b"x", b"9", b"", b"4ok\x1e", b"b!!!", b"4\xff\xfe"];
    for body in bodies {
        let mut server = TestServer::start(config()).await;
        let (victim, bystander) = two_sessions(&mut server).await;
        server
            .post(4, victim, body)
            .await
            .assert_error(400, 3, "Bad request");
        assert_eq!(
            server.disconnected(victim).await,
            DisconnectReason::ParseError,
            "{body:?}"
        );
        server
            .poll(4, victim)
            .await
            .assert_error(400, 1, "Session ID unknown");
        server.assert_polling_works(4, bystander).await;
        server.assert_exactly_once(&[victim]);
    }
}

#[tokio::test]
async fn invalid_v3_payloads_close_only_their_session() {
    let cases: [(&[u8], bool); 5] = [
        (b"5:4\xe2\x82\xac\xf0\x9f\x98\x80", false), // the length counts UTF-16 units: 4, not 5
        (b"x:4hi", false),
        (b"4hi", false),
        (&[0, 9, 0xff, b'4'], true),
        (&[1, 2, 0xff, 7, 1], true),
    ];
    for (body, binary) in cases {
        let mut server = TestServer::start(config()).await;
        let (victim, _) = server.handshake_v3(false).await;
        let (bystander, _) = server.handshake_v3(false).await;
        let content_type = if binary {
            "application/octet-stream"
        } else {
            "text/plain;charset=UTF-8"
        };
        server
            .post_with(3, victim, &[("Content-Type", content_type)], body)
            .await
            .assert_error(400, 3, "Bad request");
        assert_eq!(
            server.disconnected(victim).await,
            DisconnectReason::ParseError,
            "{body:?}"
        );
        server
            .poll(3, victim)
            .await
            .assert_error(400, 1, "Session ID unknown");
        server.assert_polling_works(3, bystander).await;
        server.assert_exactly_once(&[victim]);
    }
}

#[tokio::test]
async fn a_parse_error_releases_the_pending_poll() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let poll = server.spawn_poll(4, sid).await;
    server
        .post(4, sid, b"garbage")
        .await
        .assert_error(400, 3, "Bad request");
    let response = answer(poll).await;
    assert_eq!(response.text(), "1");
    assert_eq!(server.disconnected(sid).await, DisconnectReason::ParseError);
    server.assert_exactly_once(&[sid]);
}

fn small_payload() -> EngineConfig {
    EngineConfig {
        max_payload: 100,
        ..config()
    }
}

#[tokio::test]
async fn an_oversized_declared_body_is_refused_before_it_is_sent() {
    let mut server = TestServer::start(small_payload()).await;
    let (victim, bystander) = two_sessions(&mut server).await;
    // Exactly the limit is fine.
    let body = format!("4{}", "a".repeat(99));
    assert_eq!(server.post(4, victim, body.as_bytes()).await.text(), "ok");
    assert_eq!(
        server.message(victim).await,
        Message::from("a".repeat(99).as_str())
    );
    assert_eq!(server.poll(4, victim).await.text(), body);

    // The head alone announces 101 bytes; the body is never sent.
    let target = TestServer::target(&format!("EIO=4&transport=polling&sid={victim}"));
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 101\r\n\r\n"
    );
    let mut stream = send_raw(server.addr, head.as_bytes()).await;
    let response = read_response(&mut stream).await.expect("an answer");
    assert_eq!(response.status, 413);
    assert_eq!(response.text(), "Payload Too Large (max 100 bytes)");

    // The session is closing: its pending or next poll gets the close packet, then it is gone.
    assert_eq!(server.poll(4, victim).await.text(), "1");
    server
        .assert_gone(4, victim, DisconnectReason::TransportError)
        .await;
    server.assert_polling_works(4, bystander).await;
    server.assert_exactly_once(&[victim]);
}

#[tokio::test]
async fn an_oversized_chunked_body_is_refused_while_it_is_read() {
    let mut server = TestServer::start(small_payload()).await;
    let (victim, bystander) = two_sessions(&mut server).await;
    let poll = server.spawn_poll(4, victim).await;

    // No Content-Length: the size is only known by reading. 150 bytes are sent in two chunks
    // and the body is never finished, so only a check while reading can answer.
    let target = TestServer::target(&format!("EIO=4&transport=polling&sid={victim}"));
    let mut raw = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..2 {
        raw.extend_from_slice(format!("4b\r\n4{}\r\n", "z".repeat(74)).as_bytes());
    }
    let mut stream = send_raw(server.addr, &raw).await;
    let response = read_response(&mut stream).await.expect("an answer");
    assert_eq!(response.status, 413);
    assert_eq!(response.text(), "Payload Too Large (max 100 bytes)");

    // The pending poll gets the close packet.
    let released = answer(poll).await;
    assert_eq!(released.text(), "1");
    server
        .assert_gone(4, victim, DisconnectReason::TransportError)
        .await;

    // A Content-Length that understates a chunked body changes nothing: the chunked framing
    // wins, and the body is still counted as it is read.
    let (liar, _) = server.handshake_v4().await;
    let target = TestServer::target(&format!("EIO=4&transport=polling&sid={liar}"));
    let mut raw = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..2 {
        raw.extend_from_slice(format!("4b\r\n4{}\r\n", "z".repeat(74)).as_bytes());
    }
    let mut stream = send_raw(server.addr, &raw).await;
    let response = read_response(&mut stream).await.expect("an answer");
    assert_eq!(response.status, 413);
    assert_eq!(server.poll(4, liar).await.text(), "1");
    assert_eq!(
        server.disconnected(liar).await,
        DisconnectReason::TransportError
    );

    // A chunked body within the limit is fine.
    let target = TestServer::target(&format!("EIO=4&transport=polling&sid={bystander}"));
    let raw = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n4ch\r\n4\r\nunks\r\n0\r\n\r\n"
    );
    let mut stream = send_raw(server.addr, raw.as_bytes()).await;
    assert_eq!(
        read_response(&mut stream).await.expect("an answer").text(),
        "ok"
    );
    assert_eq!(server.message(bystander).await, Message::from("chunks"));
    assert_eq!(server.poll(4, bystander).await.text(), "4chunks");
    server.assert_exactly_once(&[victim, liar]);
}

#[tokio::test]
async fn concurrent_polls_close_the_session() {
    let mut server = TestServer::start(config()).await;
    let (victim, bystander) = two_sessions(&mut server).await;
    let first = server.spawn_poll(4, victim).await;
    // The first poll is pending: a second one is the violation.
    server
        .poll(4, victim)
        .await
        .assert_error(400, 3, "Bad request");
    // The pending one gets the close packet.
    let first = answer(first).await;
    assert_eq!((first.status, first.text()), (200, "1".to_owned()));
    server
        .assert_gone(4, victim, DisconnectReason::TransportError)
        .await;
    server.assert_polling_works(4, bystander).await;
    server.assert_exactly_once(&[victim]);
}

#[tokio::test]
async fn concurrent_posts_close_the_session() {
    let mut server = TestServer::start(config()).await;
    let (victim, bystander) = two_sessions(&mut server).await;
    // A POST whose body is still arriving...
    let target = TestServer::target(&format!("EIO=4&transport=polling&sid={victim}"));
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n4ab\r\n"
    );
    let mut slow = send_raw(server.addr, head.as_bytes()).await;
    server.wait_parked("POST", &target).await;
    // ...and a second one at the same time.
    let second = server.post(4, victim, b"4second").await;
    second.assert_error(400, 3, "Bad request");
    // The first one may finish; the session is closing, so its packet is not delivered (the
    // recorder fails the test on a message of a session that is not open).
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"0\r\n\r\n")
        .await
        .expect("finish the body");
    let first = read_response(&mut slow).await.expect("an answer");
    assert_eq!((first.status, first.text()), (200, "ok".to_owned()));
    assert_eq!(server.poll(4, victim).await.text(), "1");
    assert_eq!(
        server.disconnected(victim).await,
        DisconnectReason::TransportError
    );
    server.assert_polling_works(4, bystander).await;
    server.assert_exactly_once(&[victim]);
}

#[tokio::test]
async fn a_client_close_packet_ends_the_session() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let poll = server.spawn_poll(4, sid).await;
    assert_eq!(server.post(4, sid, b"1").await.text(), "ok");
    // Ended before the POST was answered, not when the poll is.
    assert!(server.has_disconnected(sid));
    // The pending poll is released with a noop.
    let released = answer(poll).await;
    assert_eq!(released.text(), "6");
    server
        .assert_gone(4, sid, DisconnectReason::TransportClose)
        .await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn a_client_close_packet_without_a_pending_poll_ends_the_session_at_once() {
    let mut server = TestServer::start(config()).await;
    let (victim, bystander) = two_sessions(&mut server).await;
    // The packets before the close are delivered; the one after it is not (the recorder fails
    // the test on a message of a session that is not open).
    let response = server.post(4, victim, b"4bye\x1e1\x1e4after").await;
    assert_eq!((response.status, response.text()), (200, "ok".to_owned()));
    assert_eq!(server.message(victim).await, Message::from("bye"));
    // Ended while the POST was handled: no poll, no heartbeat needed.
    assert!(server.has_disconnected(victim));
    assert_eq!(server.engine.session_count(), 1);
    server
        .assert_gone(4, victim, DisconnectReason::TransportClose)
        .await;
    server
        .post(4, victim, b"4late")
        .await
        .assert_error(400, 1, "Session ID unknown");
    server.assert_polling_works(4, bystander).await;
    server.assert_exactly_once(&[victim]);
}

#[tokio::test]
async fn a_v3_client_close_packet_ends_the_session_at_once() {
    let mut server = TestServer::start(config()).await;
    let (victim, _) = server.handshake_v3(false).await;
    let (bystander, _) = server.handshake_v3(false).await;
    let poll = server.spawn_poll(3, victim).await;
    assert_eq!(server.post(3, victim, b"1:1").await.text(), "ok");
    assert!(server.has_disconnected(victim));
    // The pending poll is released with a noop.
    let released = answer(poll).await;
    assert_eq!(released.text(), "1:6");
    server
        .assert_gone(3, victim, DisconnectReason::TransportClose)
        .await;
    server.assert_polling_works(3, bystander).await;
    server.assert_exactly_once(&[victim]);
}
