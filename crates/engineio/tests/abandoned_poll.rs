//! A long-poll whose client goes away while it is pending (the TCP connection closed under the
//! `GET`) ends its session at once with "transport error", as the reference server does, rather
//! than after the heartbeat; other sessions are untouched.

mod common;

use common::{config, send_request, TestServer};
use ferrio_engineio::DisconnectReason;

#[tokio::test]
async fn a_poll_abandoned_by_its_client_ends_the_session_with_transport_error() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    let (other, _) = server.handshake_v4().await;

    let target = TestServer::target(&format!("EIO=4&transport=polling&sid={sid}"));
    let stream = send_request(server.addr, "GET", &target, &[], b"").await;
    server.wait_parked("GET", &target).await;
    drop(stream);

    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::TransportError
    );
    server
        .poll(4, sid)
        .await
        .assert_error(400, 1, "Session ID unknown");
    server.assert_polling_works(4, other).await;
    server.assert_callbacks_once();
}

#[tokio::test]
async fn an_answered_poll_leaves_the_session_open() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;
    // Polls answered one after another, each on a connection closed after its answer.
    for _ in 0..3 {
        server.assert_polling_works(4, sid).await;
    }
    assert!(!server.has_disconnected(sid));
}
