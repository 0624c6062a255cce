//! Every refusal of the Socket.IO layer is counted in `ferrio_refusals_total{reason}` through
//! the `metrics` facade. A recorder installed for this binary alone counts them; the binary
//! holds a single test, so the counts are exact.

mod common;

use std::time::Duration;

use common::{recorder, PollingClient, TestServer};
use ferrio_socketio::{
    DisconnectReason, EventRateLimit, RateLimit, SocketIoConfig, REFUSALS_TOTAL,
};
use ferrio_test_support::CountingRecorder;

fn refusals(counters: &CountingRecorder, reason: &str) -> u64 {
    counters.get(&format!("{REFUSALS_TOTAL}{{reason=\"{reason}\"}}"))
}

#[tokio::test]
async fn every_refusal_is_counted_once_by_reason() {
    let counters = CountingRecorder::install();

    let mut config = SocketIoConfig {
        max_rooms_per_socket: Some(1),
        max_attachments: 1,
        event_rate: Some(EventRateLimit::new(RateLimit::new(
            2,
            Duration::from_secs(60),
        ))),
        ..SocketIoConfig::default()
    };
    config.engine.max_buffered_packets = 4;
    config.engine.ping_timeout = Duration::from_millis(200);
    let server = TestServer::start_with(config).await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);

    // Rooms: one refused `try_join`, one refused `join`.
    let mut client = server.ws().await;
    client.join("/", None).await;
    let socket = seen.sockets.next().await;
    socket.join("a");
    assert!(socket.try_join("b").is_err());
    socket.join(["b", "c"]);
    assert_eq!(refusals(counters, "max_rooms"), 2);

    // Events: three over the rate, each counted (one notice only).
    for i in 0..5 {
        client.send(&format!(r#"42["e",{i}]"#)).await;
    }
    client
        .expect(r#"42["error",{"message":"Too many events (max 2 per 60s)"}]"#)
        .await;
    for _ in 0..2 {
        seen.events.next().await;
    }
    // The reply to a CONNECT sent after them proves they were all handled.
    server.io.of("/other");
    client.join("/other", None).await;
    assert_eq!(refusals(counters, "event_rate"), 3);

    // Too many attachments: counted, and the connection closes.
    client
        .send(&format!(
            r#"452-["bin",{},{}]"#,
            common::placeholder(0),
            common::placeholder(1)
        ))
        .await;
    client.until_closed().await;
    assert_eq!(
        seen.disconnects.next().await,
        (socket.id().clone(), DisconnectReason::ParseError)
    );
    assert_eq!(refusals(counters, "max_attachments"), 1);

    // A client that does not read: disconnected once, counted once, however many emits follow.
    let (slow, _) = PollingClient::handshake(server.addr, 4, "").await;
    slow.post(&["40"]).await;
    assert_eq!(slow.get().await.len(), 1);
    let slow_socket = seen.sockets.next().await;
    for i in 0..10 {
        let _ = slow_socket.emit("fill", i);
    }
    assert_eq!(
        seen.disconnects.next().await,
        (slow_socket.id().clone(), DisconnectReason::TransportError)
    );
    assert_eq!(refusals(counters, "slow_consumer"), 1);

    assert_eq!(counters.sum_prefixed(REFUSALS_TOTAL), 7);
}
