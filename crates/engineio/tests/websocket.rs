//! WebSocket over real connections: direct sessions, the upgrade from polling (and its
//! failures), binary frames in both revisions, and bad frames, which close only their session.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    config, ws_connect, ws_end, ws_next, ws_send, ws_send_binary, ws_text, TestServer, WsNext, WAIT,
};
use ferrio_engineio::{DisconnectReason, EngineConfig, Message, Sid, TransportKind};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Error as WsError;

#[tokio::test]
async fn v4_direct_websocket_round_trips() {
    let mut server = TestServer::start(EngineConfig {
        max_payload: 4321,
        ..config()
    })
    .await;
    let (mut ws, answer) = server.ws("EIO=4&transport=websocket").await;
    assert_eq!(answer.status(), 101);
    let open = ws_text(&mut ws).await;
    let json: serde_json::Value =
        serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("JSON");
    let sid = common::sid_of(&json);
    assert_eq!(
        open,
        format!(
            r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":30000,"pingTimeout":20000,"maxPayload":4321}}"#
        )
    );
    server.connected(sid).await;
    assert_eq!(server.socket(sid).transport(), TransportKind::WebSocket);

    ws_send(&mut ws, "4hello").await;
    assert_eq!(server.message(sid).await, Message::from("hello"));
    assert_eq!(ws_text(&mut ws).await, "4hello");

    // Binary messages are raw binary frames in revision 4.
    ws_send_binary(&mut ws, &[0, 1, 255]).await;
    assert_eq!(
        server.message(sid).await,
        Message::Binary(Bytes::from_static(&[0, 1, 255]))
    );
    assert_eq!(ws_next(&mut ws).await, WsNext::Binary(vec![0, 1, 255]));

    // Packets queued together arrive in order, one frame each.
    let socket = server.socket(sid);
    socket
        .send_many(vec![
            Message::from("a"),
            Message::Binary(Bytes::from_static(b"b")),
            Message::from("c"),
        ])
        .expect("queued");
    assert_eq!(ws_text(&mut ws).await, "4a");
    assert_eq!(ws_next(&mut ws).await, WsNext::Binary(b"b".to_vec()));
    assert_eq!(ws_text(&mut ws).await, "4c");

    // Polling requests for a WebSocket session are refused without harming it.
    server
        .poll(4, sid)
        .await
        .assert_error(400, 3, "Bad request");
    server
        .post(4, sid, b"4x")
        .await
        .assert_error(400, 3, "Bad request");
    ws_send(&mut ws, "4still").await;
    assert_eq!(ws_text(&mut ws).await, "4still");

    // The client closes.
    timeout(WAIT, ws.close(None))
        .await
        .expect("close in time")
        .expect("close");
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::TransportClose
    );
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn v3_websocket_binary_frames_carry_the_type_byte() {
    let mut server = TestServer::start(config()).await;
    let (mut ws, sid, open) = server.ws_session(3).await;
    assert_eq!(open["upgrades"], serde_json::json!([]));

    ws_send_binary(&mut ws, &[4, 1, 2, 3]).await;
    assert_eq!(
        server.message(sid).await,
        Message::Binary(Bytes::from_static(&[1, 2, 3]))
    );
    assert_eq!(ws_next(&mut ws).await, WsNext::Binary(vec![4, 1, 2, 3]));

    // A v3 client pings and gets a pong.
    ws_send(&mut ws, "2").await;
    assert_eq!(ws_text(&mut ws).await, "3");
    ws_send(&mut ws, "4text").await;
    assert_eq!(ws_text(&mut ws).await, "4text");
    server.assert_exactly_once(&[]);
}

/// Opens a polling session and probes a WebSocket for it up to `3probe`.
async fn probe(server: &mut TestServer, eio: u8, sid: Sid) -> common::Ws {
    let (mut ws, _) = server
        .ws(&format!("EIO={eio}&transport=websocket&sid={sid}"))
        .await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    ws
}

#[tokio::test]
async fn v4_upgrade_from_polling() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let socket = server.socket(sid);
    let poll = server.spawn_poll(4, sid).await;

    let mut ws = probe(&mut server, 4, sid).await;
    // The pending poll is released with a noop so the client can pause polling.
    let released = timeout(WAIT, poll)
        .await
        .expect("released")
        .expect("task")
        .expect("complete");
    assert_eq!((released.status, released.text()), (200, "6".to_owned()));

    // Until `5` the session is still on polling; what is queued now waits for the new transport.
    assert_eq!(socket.transport(), TransportKind::Polling);
    socket.send(Message::from("queued")).expect("queued");
    ws_send(&mut ws, "5").await;
    assert_eq!(ws_text(&mut ws).await, "4queued");
    assert_eq!(socket.transport(), TransportKind::WebSocket);

    ws_send(&mut ws, "4over websocket").await;
    assert_eq!(server.message(sid).await, Message::from("over websocket"));
    assert_eq!(ws_text(&mut ws).await, "4over websocket");

    // Polling is over for this session.
    server
        .poll(4, sid)
        .await
        .assert_error(400, 3, "Bad request");
    server
        .post(4, sid, b"4late")
        .await
        .assert_error(400, 3, "Bad request");
    // A second WebSocket for the session is opened and closed at once.
    let (mut second, _) = server
        .ws(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await;
    assert_eq!(ws_end(&mut second).await, WsNext::Closed);

    // None of that harmed the upgraded session.
    ws_send(&mut ws, "4still").await;
    assert_eq!(ws_text(&mut ws).await, "4still");
    assert!(!server.has_disconnected(sid));

    socket.close();
    assert_eq!(ws_text(&mut ws).await, "1");
    assert_eq!(ws_end(&mut ws).await, WsNext::Closed);
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::ForcedClose
    );
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn v3_upgrade_with_binary_after() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v3(false).await;
    let poll = server.spawn_poll(3, sid).await;
    let mut ws = probe(&mut server, 3, sid).await;
    let released = timeout(WAIT, poll)
        .await
        .expect("released")
        .expect("task")
        .expect("complete");
    assert_eq!(released.text(), "1:6");
    ws_send(&mut ws, "5").await;

    ws_send_binary(&mut ws, &[4, 7, 7]).await;
    assert_eq!(
        server.message(sid).await,
        Message::Binary(Bytes::from_static(&[7, 7]))
    );
    assert_eq!(ws_next(&mut ws).await, WsNext::Binary(vec![4, 7, 7]));
    assert_eq!(server.socket(sid).transport(), TransportKind::WebSocket);
    server
        .poll(3, sid)
        .await
        .assert_error(400, 3, "Bad request");
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn upgrade_without_a_pending_poll() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let mut ws = probe(&mut server, 4, sid).await;
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4first").await;
    assert_eq!(ws_text(&mut ws).await, "4first");
    assert_eq!(server.message(sid).await, Message::from("first"));
    // Nothing was left for polling: no stray noop came over the WebSocket.
    server
        .socket(sid)
        .send(Message::from("next"))
        .expect("queued");
    assert_eq!(ws_text(&mut ws).await, "4next");
}

#[tokio::test]
async fn a_failed_probe_leaves_the_session_on_polling() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;

    // Not a probe: the WebSocket is dropped.
    let (mut ws, _) = server
        .ws(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await;
    ws_send(&mut ws, "4not a probe").await;
    assert!(matches!(
        ws_end(&mut ws).await,
        WsNext::Cut | WsNext::Closed
    ));
    assert_eq!(server.socket(sid).transport(), TransportKind::Polling);
    server.assert_polling_works(4, sid).await;

    // The client may try again, and succeed.
    let mut ws = probe(&mut server, 4, sid).await;
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4upgraded").await;
    assert_eq!(ws_text(&mut ws).await, "4upgraded");
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn an_upgrade_that_never_completes_times_out() {
    let mut server = TestServer::start(EngineConfig {
        upgrade_timeout: Duration::from_millis(200),
        ..config()
    })
    .await;
    let (sid, _) = server.handshake_v4().await;
    let mut ws = probe(&mut server, 4, sid).await;
    // No `5` within the upgrade timeout: the WebSocket is dropped, polling goes on.
    assert!(matches!(
        ws_end(&mut ws).await,
        WsNext::Cut | WsNext::Closed
    ));
    assert_eq!(server.socket(sid).transport(), TransportKind::Polling);
    server.assert_polling_works(4, sid).await;
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn websockets_for_other_sessions_are_refused() {
    let mut server = TestServer::start(EngineConfig {
        allow_upgrades: false,
        ..config()
    })
    .await;
    match ws_connect(
        &server.ws_url("EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA"),
        &[],
    )
    .await
    {
        Err(WsError::Http(answer)) => {
            assert_eq!(answer.status(), 400);
            assert_eq!(
                answer.body().as_deref(),
                Some(&br#"{"code":1,"message":"Session ID unknown"}"#[..])
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }

    // Upgrades are off: the WebSocket opens and is closed at once; polling goes on.
    let (sid, open) = server.handshake_v4().await;
    assert_eq!(open["upgrades"], serde_json::json!([]));
    let (mut ws, _) = server
        .ws(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await;
    assert_eq!(ws_end(&mut ws).await, WsNext::Closed);
    server.assert_polling_works(4, sid).await;

    // A direct WebSocket session cannot be joined by another WebSocket either.
    let (mut direct, direct_sid, _) = server.ws_session(4).await;
    let (mut intruder, _) = server
        .ws(&format!("EIO=4&transport=websocket&sid={direct_sid}"))
        .await;
    assert_eq!(ws_end(&mut intruder).await, WsNext::Closed);
    ws_send(&mut direct, "4fine").await;
    assert_eq!(ws_text(&mut direct).await, "4fine");
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn invalid_frames_close_only_their_session() {
    let cases: [(u8, Result<&str, &[u8]>); 5] = [
        (4, Ok("x")),
        (4, Ok("")),
        (4, Ok("7")),
        (3, Err(&[9, 1])),
        (3, Err(&[])),
    ];
    for (eio, frame) in cases {
        let mut server = TestServer::start(config()).await;
        let (mut victim, victim_sid, _) = server.ws_session(eio).await;
        let (mut bystander, bystander_sid, _) = server.ws_session(eio).await;
        let (polling, _) = server.handshake_v4().await;
        match frame {
            Ok(text) => ws_send(&mut victim, text).await,
            Err(data) => ws_send_binary(&mut victim, data).await,
        }
        assert_eq!(ws_end(&mut victim).await, WsNext::Closed, "{frame:?}");
        assert_eq!(
            server.disconnected(victim_sid).await,
            DisconnectReason::ParseError,
            "{frame:?}"
        );
        ws_send(&mut bystander, "4ok").await;
        assert_eq!(ws_text(&mut bystander).await, "4ok");
        assert!(!server.has_disconnected(bystander_sid));
        server.assert_polling_works(4, polling).await;
        server.assert_exactly_once(&[victim_sid]);
    }
}

#[tokio::test]
async fn an_oversized_message_closes_the_websocket() {
    let mut server = TestServer::start(EngineConfig {
        max_payload: 1000,
        ..config()
    })
    .await;
    let (mut victim, victim_sid, _) = server.ws_session(4).await;
    let (mut bystander, bystander_sid, _) = server.ws_session(4).await;

    // The limit itself is fine (the type byte counts).
    let at_limit = format!("4{}", "a".repeat(999));
    ws_send(&mut victim, &at_limit).await;
    assert_eq!(ws_text(&mut victim).await, at_limit);

    ws_send(&mut victim, &format!("4{}", "a".repeat(1000))).await;
    assert!(matches!(
        ws_end(&mut victim).await,
        WsNext::Closed | WsNext::Cut
    ));
    assert_eq!(
        server.disconnected(victim_sid).await,
        DisconnectReason::TransportError
    );
    // Binary frames are bounded the same way.
    let (mut binary, binary_sid, _) = server.ws_session(4).await;
    ws_send_binary(&mut binary, &[0; 1001]).await;
    assert!(matches!(
        ws_end(&mut binary).await,
        WsNext::Closed | WsNext::Cut
    ));
    assert_eq!(
        server.disconnected(binary_sid).await,
        DisconnectReason::TransportError
    );

    ws_send(&mut bystander, "4ok").await;
    assert_eq!(ws_text(&mut bystander).await, "4ok");
    assert!(!server.has_disconnected(bystander_sid));
    server.assert_exactly_once(&[victim_sid, binary_sid]);
}

#[tokio::test]
async fn client_close_packet_and_dropped_connections_end_sessions() {
    let mut server = TestServer::start(config()).await;

    // The close packet.
    let (mut ws, sid, _) = server.ws_session(4).await;
    ws_send(&mut ws, "1").await;
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::TransportClose
    );

    // The close packet and, at once, the close frame: the session still ends.
    let (mut ws, closed_twice, _) = server.ws_session(4).await;
    {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message as WsMessage;
        // Both frames in one write, so the server reads the close frame before it has written
        // the close packet's answer.
        ws.feed(WsMessage::text("1"))
            .await
            .expect("queue the close packet");
        let _ = timeout(WAIT, ws.close(None)).await;
    }
    assert_eq!(
        server.disconnected(closed_twice).await,
        DisconnectReason::TransportClose
    );
    assert_eq!(server.engine.session_count(), 0);

    // The TCP connection dropped without a close frame.
    let (ws, dropped, _) = server.ws_session(4).await;
    drop(ws);
    assert_eq!(
        server.disconnected(dropped).await,
        DisconnectReason::TransportClose
    );

    // The same after an upgrade.
    let (upgraded, _) = server.handshake_v4().await;
    let mut ws = probe(&mut server, 4, upgraded).await;
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4up").await;
    assert_eq!(ws_text(&mut ws).await, "4up");
    drop(ws);
    assert_eq!(
        server.disconnected(upgraded).await,
        DisconnectReason::TransportClose
    );
    server.assert_exactly_once(&[sid, closed_twice, dropped, upgraded]);
}
