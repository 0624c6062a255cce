//! The engine's limits over real connections: connections in all and per client address, the
//! handshake rate per address, the origin allow-list, slow request bodies and slow headers. Each
//! test checks the exact answer of the refused client and that the others go on unaffected.
//!
//! Client addresses are told apart by connecting from several addresses of the loopback range
//! (127.0.0.2, 127.0.0.3, ...), so the server sees real, distinct peers.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    config, read_response, request, request_from, send_raw, send_request_from, ws_connect,
    ws_connect_from, ws_send, ws_text, TestServer,
};
use ferrio_engineio::{
    AllowOrigin, DisconnectReason, EngineConfig, Message, RateLimit, ServeConfig,
};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Asserts a refused WebSocket handshake: no 101, this status and exact Engine.IO error body.
fn assert_ws_refused<T>(result: Result<T, WsError>, status: u16, code: u8, message: &str) {
    match result {
        Err(WsError::Http(answer)) => {
            let expected = serde_json::json!({ "code": code, "message": message }).to_string();
            assert_eq!(answer.status(), status);
            assert_eq!(
                answer.body().as_deref().map(String::from_utf8_lossy),
                Some(expected.into())
            );
        }
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected an HTTP refusal, the WebSocket opened"),
    }
}

/// The session id in a polling handshake answer.
fn sid_in(response: &common::HttpResponse) -> ferrio_engineio::Sid {
    assert_eq!(response.status, 200, "handshake: {response:?}");
    let open: serde_json::Value =
        serde_json::from_str(response.text().strip_prefix('0').expect("an open packet"))
            .expect("open packet JSON");
    common::sid_of(&open)
}

#[tokio::test]
async fn max_connections_refuses_handshakes_past_it_with_503_until_a_place_frees() {
    let mut server = TestServer::start(EngineConfig {
        max_connections: Some(2),
        ..config()
    })
    .await;
    let (polling, _) = server.handshake_v4().await;
    let (mut ws, ws_sid, _) = server.ws_session(4).await;

    server.get("EIO=4&transport=polling").await.assert_error(
        503,
        6,
        "Too many connections (max 2)",
    );
    server.get("EIO=3&transport=polling").await.assert_error(
        503,
        6,
        "Too many connections (max 2)",
    );
    assert_ws_refused(
        ws_connect(&server.ws_url("EIO=4&transport=websocket"), &[]).await,
        503,
        6,
        "Too many connections (max 2)",
    );
    assert_eq!(server.engine.session_count(), 2);

    // The sessions inside notice nothing, and an upgrade is no new connection.
    server.assert_polling_works(4, polling).await;
    ws_send(&mut ws, "4still here").await;
    assert_eq!(ws_text(&mut ws).await, "4still here");
    let (mut upgraded, _) = server
        .ws(&format!("EIO=4&transport=websocket&sid={polling}"))
        .await;
    ws_send(&mut upgraded, "2probe").await;
    assert_eq!(ws_text(&mut upgraded).await, "3probe");
    ws_send(&mut upgraded, "5").await;
    ws_send(&mut upgraded, "4upgraded").await;
    assert_eq!(ws_text(&mut upgraded).await, "4upgraded");

    // A session that ends gives its place back.
    ws.close(None).await.expect("close frame sent");
    assert_eq!(
        server.disconnected(ws_sid).await,
        DisconnectReason::TransportClose
    );
    let (third, _) = server.handshake_v4().await;
    server.assert_polling_works(4, third).await;
    server.assert_exactly_once(&[ws_sid]);
}

#[tokio::test]
async fn max_connections_per_ip_counts_each_address_apart() {
    let mut server = TestServer::start(EngineConfig {
        max_connections_per_ip: Some(2),
        ..config()
    })
    .await;
    let handshake = TestServer::target("EIO=4&transport=polling");
    let ws_url = server.ws_url("EIO=4&transport=websocket");
    let crowded = loopback(2);

    let first =
        sid_in(&request_from(Some(crowded), server.addr, "GET", &handshake, &[], b"").await);
    server.connected(first).await;
    let (mut ws, _) = ws_connect_from(crowded, server.addr, &ws_url)
        .await
        .expect("the second session of the address");
    let open = ws_text(&mut ws).await;
    let second =
        common::sid_of(&serde_json::from_str(open.strip_prefix('0').expect("open")).expect("JSON"));
    server.connected(second).await;
    assert_eq!(server.engine.sessions_from(crowded), 2);

    request_from(Some(crowded), server.addr, "GET", &handshake, &[], b"")
        .await
        .assert_error(429, 7, "Too many connections from this address (max 2)");
    assert_ws_refused(
        ws_connect_from(crowded, server.addr, &ws_url).await,
        429,
        7,
        "Too many connections from this address (max 2)",
    );

    // Other addresses are not affected, and neither are the crowded address's sessions.
    for other in [loopback(3), loopback(1)] {
        let sid =
            sid_in(&request_from(Some(other), server.addr, "GET", &handshake, &[], b"").await);
        server.connected(sid).await;
        assert_eq!(server.engine.sessions_from(other), 1);
    }
    server.assert_polling_works(4, first).await;
    ws_send(&mut ws, "4ok").await;
    assert_eq!(ws_text(&mut ws).await, "4ok");

    // A session that closes gives the address its place back, as soon as its close packet
    // is taken.
    assert_eq!(server.post(4, first, b"1").await.text(), "ok");
    assert_eq!(server.engine.sessions_from(crowded), 1);
    server
        .assert_gone(4, first, DisconnectReason::TransportClose)
        .await;
    let again =
        sid_in(&request_from(Some(crowded), server.addr, "GET", &handshake, &[], b"").await);
    server.connected(again).await;
    server.assert_exactly_once(&[first]);
}

#[tokio::test]
async fn the_client_ip_hook_decides_the_address_and_ipv6_counts_by_64() {
    let mut server = TestServer::start(EngineConfig {
        max_connections_per_ip: Some(1),
        client_ip: Some(Arc::new(|parts: &http::request::Parts| {
            parts
                .headers
                .get("x-real-ip")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
        })),
        ..config()
    })
    .await;
    let handshake = TestServer::target("EIO=4&transport=polling");
    let from = |ip: &'static str| [("X-Real-IP", ip)];

    let first = request(
        server.addr,
        "GET",
        &handshake,
        &from("2001:db8:0:7::1"),
        b"",
    )
    .await;
    server.connected(sid_in(&first)).await;
    // Another address of the same /64: the same client as far as the limit goes.
    request(
        server.addr,
        "GET",
        &handshake,
        &from("2001:db8:0:7:ffff::2"),
        b"",
    )
    .await
    .assert_error(429, 7, "Too many connections from this address (max 1)");
    let neighbour = request(
        server.addr,
        "GET",
        &handshake,
        &from("2001:db8:0:8::1"),
        b"",
    )
    .await;
    server.connected(sid_in(&neighbour)).await;
    // No address found: no per-address limit applies.
    for _ in 0..3 {
        let response = request(server.addr, "GET", &handshake, &[], b"").await;
        server.connected(sid_in(&response)).await;
    }
    assert_eq!(
        server
            .engine
            .sessions_from("2001:db8:0:7:1234::9".parse().expect("an address")),
        1
    );
}

#[tokio::test]
async fn handshake_rate_per_ip_answers_429_and_spares_other_addresses_and_sessions() {
    let mut server = TestServer::start(EngineConfig {
        handshake_rate_per_ip: Some(RateLimit::new(3, Duration::from_secs(60))),
        ..config()
    })
    .await;
    let handshake = TestServer::target("EIO=4&transport=polling");
    let ws_url = server.ws_url("EIO=4&transport=websocket");
    let eager = loopback(4);

    let mut sessions = Vec::new();
    for _ in 0..2 {
        let sid =
            sid_in(&request_from(Some(eager), server.addr, "GET", &handshake, &[], b"").await);
        server.connected(sid).await;
        sessions.push(sid);
    }
    let (_ws, _) = ws_connect_from(eager, server.addr, &ws_url)
        .await
        .expect("the third handshake");

    let message = "Too many handshakes (max 3 per 60s)";
    request_from(Some(eager), server.addr, "GET", &handshake, &[], b"")
        .await
        .assert_error(429, 7, message);
    assert_ws_refused(
        ws_connect_from(eager, server.addr, &ws_url).await,
        429,
        7,
        message,
    );
    // Requests of a session are not handshakes: they never count.
    let sid = sessions[0];
    let session_target = TestServer::target(&format!("EIO=4&transport=polling&sid={sid}"));
    for i in 0..5 {
        let body = format!("4post {i}");
        let response = request_from(
            Some(eager),
            server.addr,
            "POST",
            &session_target,
            &[],
            body.as_bytes(),
        )
        .await;
        assert_eq!((response.status, response.text()), (200, "ok".to_owned()));
        assert_eq!(
            server.message(sid).await,
            Message::from(format!("post {i}").as_str())
        );
    }
    server.assert_polling_works(4, sessions[1]).await;

    // Another address has its own bucket.
    let other =
        sid_in(&request_from(Some(loopback(5)), server.addr, "GET", &handshake, &[], b"").await);
    server.connected(other).await;
    request_from(Some(eager), server.addr, "GET", &handshake, &[], b"")
        .await
        .assert_error(429, 7, message);
    server.assert_exactly_once(&[]);
}

fn origin_config() -> EngineConfig {
    EngineConfig {
        allowed_origins: Some(AllowOrigin::List(vec!["https://good.example".to_owned()])),
        ..config()
    }
}

#[tokio::test]
async fn origins_outside_the_allow_list_are_refused_on_every_request() {
    let mut server = TestServer::start(origin_config()).await;
    let handshake = TestServer::target("EIO=4&transport=polling");
    let evil = [("Origin", "https://evil.example")];

    for origin in ["https://evil.example", "null", "https://good.example:8443"] {
        request(server.addr, "GET", &handshake, &[("Origin", origin)], b"")
            .await
            .assert_error(403, 4, "Origin not allowed");
    }
    assert_eq!(server.engine.session_count(), 0);

    // Listed, or no Origin at all (not a browser): in.
    let good = request(
        server.addr,
        "GET",
        &handshake,
        &[("Origin", "https://good.example")],
        b"",
    )
    .await;
    let sid = sid_in(&good);
    server.connected(sid).await;
    let (plain, _) = server.handshake_v4().await;

    // A page of another site cannot drive a session whose id it learned.
    let session = TestServer::target(&format!("EIO=4&transport=polling&sid={sid}"));
    request(server.addr, "POST", &session, &evil, b"4from evil")
        .await
        .assert_error(403, 4, "Origin not allowed");
    request(server.addr, "GET", &session, &evil, b"")
        .await
        .assert_error(403, 4, "Origin not allowed");
    server.assert_polling_works(4, sid).await;
    server.assert_polling_works(4, plain).await;

    // WebSockets, which CORS never stops: direct, and as an upgrade of a session.
    assert_ws_refused(
        ws_connect(&server.ws_url("EIO=4&transport=websocket"), &evil).await,
        403,
        4,
        "Origin not allowed",
    );
    assert_ws_refused(
        ws_connect(
            &server.ws_url(&format!("EIO=4&transport=websocket&sid={sid}")),
            &evil,
        )
        .await,
        403,
        4,
        "Origin not allowed",
    );
    let (mut ws, _) = ws_connect(
        &server.ws_url("EIO=4&transport=websocket"),
        &[("Origin", "https://good.example")],
    )
    .await
    .expect("a listed origin opens a WebSocket");
    assert!(ws_text(&mut ws).await.starts_with("0{"));
    let (mut bare, _) = server.ws("EIO=4&transport=websocket").await;
    assert!(ws_text(&mut bare).await.starts_with("0{"));

    // The refused upgrade left the session on polling, working.
    server.assert_polling_works(4, sid).await;
    assert_eq!(server.engine.session_count(), 4);
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn a_polling_body_that_does_not_arrive_in_time_gets_408_and_closes_the_session() {
    let mut server = TestServer::start(EngineConfig {
        polling_body_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let (victim, _) = server.handshake_v4().await;
    let (bystander, _) = server.handshake_v4().await;

    // 10 of the 50 announced bytes, then nothing.
    let target = TestServer::target(&format!("EIO=4&transport=polling&sid={victim}"));
    let started = Instant::now();
    let mut stream = send_request_from(
        None,
        server.addr,
        "POST",
        &target,
        &[("Content-Length", "50")],
        b"4123456789",
    )
    .await;
    let response = read_response(&mut stream).await.expect("an answer");
    assert!(started.elapsed() >= Duration::from_millis(300));
    response.assert_error(408, 8, "Request body not received in time (max 300ms)");
    // Its next poll gets the close packet, then the session is gone.
    assert_eq!(server.poll(4, victim).await.text(), "1");
    server
        .assert_gone(4, victim, DisconnectReason::TransportError)
        .await;

    // A body that arrives in time is taken as ever.
    server.assert_polling_works(4, bystander).await;
    server.assert_exactly_once(&[victim]);
}

#[tokio::test]
async fn slow_headers_are_cut_at_the_header_read_timeout_but_long_polls_wait() {
    let mut server = TestServer::start_serving(
        config(),
        ServeConfig {
            header_read_timeout: Some(Duration::from_millis(300)),
        },
    )
    .await;
    let (sid, _) = server.handshake_v4().await;
    let poll = server.spawn_poll(4, sid).await;

    // Half a request head, then nothing: the server hangs up, without an answer.
    let started = Instant::now();
    let mut slow = send_raw(
        server.addr,
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n",
    )
    .await;
    let answer = read_response(&mut slow).await;
    assert_eq!(answer, Err(Vec::new()), "closed without an answer");
    assert!(started.elapsed() >= Duration::from_millis(290));

    // The long-poll pending all this time is no request head being read: it is answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server
        .socket(sid)
        .send(Message::from("late"))
        .expect("queued");
    let answered = common::answer(poll).await;
    assert_eq!(
        (answered.status, answered.text()),
        (200, "4late".to_owned())
    );
    server.assert_polling_works(4, sid).await;
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn an_oversized_websocket_message_gets_close_code_1009_naming_the_limit() {
    let mut server = TestServer::start(EngineConfig {
        max_payload: 10,
        ..config()
    })
    .await;
    let (mut victim, victim_sid, _) = server.ws_session(4).await;
    let (mut bystander, _, _) = server.ws_session(4).await;

    ws_send(&mut victim, "4 more than ten bytes").await;
    let close = loop {
        match tokio::time::timeout(common::WAIT, victim.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(WsMessage::Close(frame))) => break frame,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (1009, "Message too big (max 10 bytes)")
    );
    assert_eq!(
        server.disconnected(victim_sid).await,
        DisconnectReason::TransportError
    );
    ws_send(&mut bystander, "4short").await;
    assert_eq!(ws_text(&mut bystander).await, "4short");
    server.assert_exactly_once(&[victim_sid]);
}
