//! The event rate of the gateway (`rate_limit.*`) against the built `ferrio serve`, with its two
//! actions: what a client sending too fast receives, exactly.

mod process;

use std::time::Duration;

use futures_util::SinkExt;
use process::{next_text, socketio_websocket, Ferrio};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

const NOTICE: &str = "42[\"error\",{\"message\":\"Too many events (max 2 per 1s)\"}]";

/// Three events at once, against a limit of two per second; then a join with an ack.
async fn flood(ws: &mut Ws) {
    for _ in 0..3 {
        ws.send(Message::text("42[\"chat\",\"hi\"]"))
            .await
            .expect("emit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_events_are_dropped_with_one_notice() {
    let server = Ferrio::start(&[
        ("FERRIO_RATE_LIMIT_ENABLED", "true"),
        ("FERRIO_RATE_LIMIT_EVENTS_PER_SECOND", "2"),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
    ]);
    let (mut ws, _) = socketio_websocket(server.port).await;
    flood(&mut ws).await;
    assert_eq!(next_text(&mut ws).await, NOTICE);
    // Still connected: once the bucket has refilled, an event is answered.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ws.send(Message::text("421[\"join\",{\"room\":\"lobby\"}]"))
        .await
        .expect("emit");
    assert_eq!(
        next_text(&mut ws).await,
        "431[{\"ok\":true,\"room\":\"lobby\"}]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_over_limit_disconnect_the_client_is_told_then_disconnected() {
    let server = Ferrio::start(&[
        ("FERRIO_RATE_LIMIT_ENABLED", "true"),
        ("FERRIO_RATE_LIMIT_EVENTS_PER_SECOND", "2"),
        ("FERRIO_RATE_LIMIT_OVER_LIMIT", "disconnect"),
    ]);
    let (mut ws, _) = socketio_websocket(server.port).await;
    flood(&mut ws).await;
    assert_eq!(next_text(&mut ws).await, NOTICE);
    assert_eq!(next_text(&mut ws).await, "41");
    assert_eq!(
        server.metric("ferrio_refusals_total{reason=\"event_rate\"}"),
        1.0
    );
}

#[test]
fn a_bad_action_is_refused_with_the_key_and_value_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir.path())
        .env_clear()
        .env("FERRIO_RATE_LIMIT_OVER_LIMIT", "kick")
        .args(["config", "check"])
        .output()
        .expect("ferrio runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "rate_limit.over_limit = \"kick\" from env FERRIO_RATE_LIMIT_OVER_LIMIT: unknown variant `kick`, expected `drop` or `disconnect`"
        ),
        "{text}"
    );
}
