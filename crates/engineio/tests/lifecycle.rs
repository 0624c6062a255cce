//! How sessions end, over real connections: the heartbeat of both revisions on both transports,
//! `Socket::close`, `Socket::abort` and `Engine::close_all`, each reported exactly once.

mod common;

use std::time::{Duration, Instant};

use common::{config, ws_end, ws_send, ws_text, TestServer, WsNext, WAIT};
use ferrio_engineio::{DisconnectReason, EngineConfig, Message, SendError};
use tokio::time::timeout;

const INTERVAL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(300);

/// Short heartbeat timings: pings every 100 ms, 300 ms to answer.
fn heartbeat_config() -> EngineConfig {
    EngineConfig {
        ping_interval: INTERVAL,
        ping_timeout: TIMEOUT,
        ..config()
    }
}

async fn answered(
    poll: tokio::task::JoinHandle<Result<common::HttpResponse, Vec<u8>>>,
) -> common::HttpResponse {
    timeout(WAIT, poll)
        .await
        .expect("answered")
        .expect("task")
        .expect("a complete answer")
}

#[tokio::test]
async fn v4_polling_heartbeat_pings_and_times_out_without_pongs() {
    let mut server = TestServer::start(heartbeat_config()).await;
    let opened = Instant::now();
    let (sid, open) = server.handshake_v4().await;
    assert_eq!(open["pingInterval"], 100);
    assert_eq!(open["pingTimeout"], 300);

    // Pongs keep the session alive well past interval + timeout.
    for _ in 0..5 {
        assert_eq!(server.poll(4, sid).await.text(), "2");
        assert_eq!(server.post(4, sid, b"3").await.text(), "ok");
    }
    assert!(opened.elapsed() >= INTERVAL * 5);
    assert!(!server.has_disconnected(sid));

    // A last pong, then the client goes silent: a ping, no pong; the pending poll gets the close
    // packet.
    assert_eq!(server.poll(4, sid).await.text(), "2");
    let before_last_pong = Instant::now();
    assert_eq!(server.post(4, sid, b"3").await.text(), "ok");
    assert_eq!(server.poll(4, sid).await.text(), "2");
    let pending = server.spawn_poll(4, sid).await;
    assert_eq!(answered(pending).await.text(), "1");
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::PingTimeout
    );
    // Not before the next ping was due and its timeout had run.
    assert!(before_last_pong.elapsed() >= INTERVAL + TIMEOUT);
    server
        .poll(4, sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn v4_polling_session_without_any_poll_times_out() {
    let mut server = TestServer::start(heartbeat_config()).await;
    let opened = Instant::now();
    let (sid, _) = server.handshake_v4().await;
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::PingTimeout
    );
    assert!(opened.elapsed() >= INTERVAL + TIMEOUT);
    server
        .poll(4, sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn v4_websocket_heartbeat_pings_and_times_out_without_pongs() {
    let mut server = TestServer::start(heartbeat_config()).await;
    let (mut ws, sid, _) = server.ws_session(4).await;
    for _ in 0..5 {
        assert_eq!(ws_text(&mut ws).await, "2");
        ws_send(&mut ws, "3").await;
    }
    assert!(!server.has_disconnected(sid));
    assert_eq!(ws_text(&mut ws).await, "2");
    // No pong: the server closes the WebSocket, without a close packet.
    assert_eq!(ws_end(&mut ws).await, WsNext::Closed);
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::PingTimeout
    );
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid]);
}

/// Revision 3: the client must ping within interval + timeout (200 + 200 ms here).
fn v3_heartbeat_config() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(200),
        ..config()
    }
}

/// How often the tests' v3 clients ping: the client's own schedule, well inside the deadline.
const V3_CLIENT_PING_EVERY: Duration = Duration::from_millis(150);

#[tokio::test]
async fn v3_polling_client_pings_get_pongs_and_silence_times_out() {
    let mut server = TestServer::start(v3_heartbeat_config()).await;
    let opened = Instant::now();
    let (sid, _) = server.handshake_v3(false).await;
    for _ in 0..4 {
        tokio::time::sleep(V3_CLIENT_PING_EVERY).await;
        assert_eq!(server.post(3, sid, b"1:2").await.text(), "ok");
        assert_eq!(server.poll(3, sid).await.text(), "1:3");
    }
    // Pings with data get it echoed.
    assert_eq!(server.post(3, sid, b"5:2data").await.text(), "ok");
    assert_eq!(server.poll(3, sid).await.text(), "5:3data");
    // Alive longer than the deadline would have allowed without pings.
    assert!(opened.elapsed() >= Duration::from_millis(600));
    assert!(!server.has_disconnected(sid));

    // The server never pings in revision 3: a pending poll only ends with the timeout.
    let pending = server.spawn_poll(3, sid).await;
    assert_eq!(answered(pending).await.text(), "1:1");
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::PingTimeout
    );
    server
        .poll(3, sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server
        .assert_no_disconnect_for(Duration::from_millis(400))
        .await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn v3_websocket_client_pings_get_pongs_and_silence_times_out() {
    let mut server = TestServer::start(v3_heartbeat_config()).await;
    let (mut ws, sid, _) = server.ws_session(3).await;
    for _ in 0..4 {
        tokio::time::sleep(V3_CLIENT_PING_EVERY).await;
        ws_send(&mut ws, "2").await;
        assert_eq!(ws_text(&mut ws).await, "3");
    }
    assert!(!server.has_disconnected(sid));
    assert_eq!(ws_end(&mut ws).await, WsNext::Closed);
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::PingTimeout
    );
    server
        .assert_no_disconnect_for(Duration::from_millis(400))
        .await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn close_sends_the_close_packet_to_the_pending_poll() {
    let mut server = TestServer::start(heartbeat_config()).await;
    let (sid, _) = server.handshake_v4().await;
    let socket = server.socket(sid);
    let pending = server.spawn_poll(4, sid).await;
    socket.close();
    assert!(!socket.is_open());
    assert_eq!(socket.send(Message::from("late")), Err(SendError::Closed));
    assert_eq!(answered(pending).await.text(), "1");
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::ForcedClose
    );
    // Closing again does nothing.
    socket.close();
    socket.abort();
    server
        .poll(4, sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn close_without_a_poll_waits_for_the_next_one_then_gives_up() {
    let mut server = TestServer::start(heartbeat_config()).await;

    // Queued messages go first, the close packet last.
    let (sid, _) = server.handshake_v4().await;
    let socket = server.socket(sid);
    socket.send(Message::from("bye")).expect("queued");
    socket.close();
    // The close packet comes with the messages or (as the reference server sends it) on the
    // next poll; nothing comes after it.
    let first = server.poll(4, sid).await.text();
    if first == "4bye" {
        assert_eq!(server.poll(4, sid).await.text(), "1");
    } else {
        assert_eq!(first, "4bye\x1e1");
    }
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::ForcedClose
    );

    // A client that never polls again is given the ping timeout to take the close packet.
    let (silent, _) = server.handshake_v4().await;
    let closed_at = Instant::now();
    server.socket(silent).close();
    assert_eq!(
        server.disconnected(silent).await,
        DisconnectReason::ForcedClose
    );
    assert!(closed_at.elapsed() >= TIMEOUT);
    server
        .poll(4, silent)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid, silent]);
}

#[tokio::test]
async fn close_over_websocket_sends_the_close_packet_then_closes() {
    let mut server = TestServer::start(heartbeat_config()).await;
    let (mut ws, sid, _) = server.ws_session(4).await;
    let socket = server.socket(sid);
    socket.send(Message::from("bye")).expect("queued");
    socket.close();
    assert_eq!(ws_text(&mut ws).await, "4bye");
    assert_eq!(ws_text(&mut ws).await, "1");
    assert_eq!(ws_end(&mut ws).await, WsNext::Closed);
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::ForcedClose
    );
    socket.close();
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn abort_resets_the_pending_poll() {
    let mut server = TestServer::start(heartbeat_config()).await;
    let (sid, _) = server.handshake_v4().await;
    let socket = server.socket(sid);
    socket
        .send(Message::from("never delivered"))
        .expect("queued");
    // Drain it so that the next poll is pending.
    assert_eq!(server.poll(4, sid).await.text(), "4never delivered");
    let pending = server.spawn_poll(4, sid).await;
    socket.abort();
    let cut = timeout(WAIT, pending)
        .await
        .expect("ended")
        .expect("task")
        .expect_err("the connection is cut, not answered");
    // Whatever came before the cut, no packet did.
    let text = String::from_utf8_lossy(&cut);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    assert!(body.is_empty(), "a body before the cut: {text:?}");
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::TransportClose
    );
    socket.close();
    server
        .poll(4, sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn abort_drops_the_websocket_without_a_close_packet() {
    let mut server = TestServer::start(heartbeat_config()).await;
    let (mut ws, sid, _) = server.ws_session(4).await;
    let socket = server.socket(sid);
    socket.abort();
    assert_eq!(ws_end(&mut ws).await, WsNext::Cut);
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::TransportClose
    );
    socket.close();
    server.assert_no_disconnect_for(TIMEOUT * 2).await;
    server.assert_exactly_once(&[sid]);
}

#[tokio::test]
async fn close_all_closes_every_session_on_every_transport() {
    let mut server = TestServer::start(config()).await;
    let (v4, _) = server.handshake_v4().await;
    let (v3, _) = server.handshake_v3(false).await;
    let (mut ws, ws_sid, _) = server.ws_session(4).await;
    let v4_poll = server.spawn_poll(4, v4).await;
    let v3_poll = server.spawn_poll(3, v3).await;

    server.engine.close_all(DisconnectReason::ServerShutdown);
    assert_eq!(answered(v4_poll).await.text(), "1");
    assert_eq!(answered(v3_poll).await.text(), "1:1");
    assert_eq!(ws_text(&mut ws).await, "1");
    assert_eq!(ws_end(&mut ws).await, WsNext::Closed);
    for sid in [v4, v3, ws_sid] {
        assert_eq!(
            server.disconnected(sid).await,
            DisconnectReason::ServerShutdown
        );
    }
    assert_eq!(server.engine.session_count(), 0);
    server.assert_exactly_once(&[v4, v3, ws_sid]);
}
