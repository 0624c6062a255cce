//! The round trip of acknowledgements the server asked for is recorded in
//! `ferrio_ack_duration_seconds`, and those that never came in `ferrio_ack_timeouts_total`, for
//! a single socket's emit and for a broadcast alike. A recorder installed for this binary alone
//! counts them; the binary holds a single test, so the counts are exact.

mod common;

use std::time::Duration;

use common::{recorder, TestServer, WAIT};
use ferrio_socketio::{AckError, Payload, ACK_DURATION_SECONDS, ACK_TIMEOUTS_TOTAL};
use ferrio_test_support::CountingRecorder;
use tokio::time::timeout;

#[tokio::test]
async fn server_emitted_acks_are_timed_and_timeouts_counted() {
    let counters = CountingRecorder::install();
    let samples = || counters.get(&format!("{ACK_DURATION_SECONDS}{{}}"));
    let timeouts = || counters.get(&format!("{ACK_TIMEOUTS_TOTAL}{{}}"));
    let server = TestServer::start().await;
    let (handler, mut seen) = recorder();
    server.io.ns("/", handler);
    let mut client = server.ws().await;
    client.join("/", None).await;
    let socket = seen.sockets.next().await;

    // One socket, answered.
    let asking = socket.clone();
    let answer =
        tokio::spawn(async move { asking.emit_with_ack("ask", Payload::new(), WAIT).await });
    client.expect(r#"420["ask"]"#).await;
    client.send(r#"430["yes"]"#).await;
    let answered = timeout(WAIT, answer).await.expect("in time").expect("task");
    assert!(answered.is_ok());
    assert_eq!((samples(), timeouts()), (1, 0));

    // One socket, not answered in time.
    let asking = socket.clone();
    let unanswered = tokio::spawn(async move {
        asking
            .emit_with_ack("ask", Payload::new(), Duration::from_millis(50))
            .await
    });
    client.expect(r#"421["ask"]"#).await;
    let result = timeout(WAIT, unanswered)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(result, Err(AckError::Timeout));
    assert_eq!((samples(), timeouts()), (1, 1));

    // A broadcast, answered.
    let io = server.io.clone();
    let broadcast = tokio::spawn(async move {
        io.of("/")
            .broadcast()
            .timeout(WAIT)
            .emit_with_ack("all", Payload::new())
            .await
    });
    let asked = client.recv().await;
    let id = asked
        .strip_prefix("42")
        .and_then(|rest| rest.strip_suffix(r#"["all"]"#))
        .unwrap_or_else(|| panic!("an event asking for an ack: {asked}"));
    client.send(&format!(r#"43{id}["ok"]"#)).await;
    let responses = timeout(WAIT, broadcast)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(responses.expect("sent").len(), 1);
    assert_eq!((samples(), timeouts()), (2, 1));
}
