//! Every refusal of the engine is counted in `ferrio_refusals_total{reason}` through the
//! `metrics` facade. A recorder installed for this binary alone counts them; the binary holds a
//! single test, so the counts are exact.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, read_response, request, send_raw, send_request_from, ws_end};
use ferrio_engineio::{
    AllowOrigin, EngineConfig, RateLimit, RequestRefused, ServeConfig, REFUSALS_TOTAL,
};
use ferrio_test_support::CountingRecorder;
use tokio::io::AsyncReadExt;

fn refusals(counters: &CountingRecorder, reason: &str) -> u64 {
    counters.get(&format!("{REFUSALS_TOTAL}{{reason=\"{reason}\"}}"))
}

#[tokio::test]
async fn every_refusal_is_counted_once_by_reason() {
    let counters = CountingRecorder::install();
    let handshake = common::TestServer::target("EIO=4&transport=polling");

    // Connections, the handshake rate, the origin check and the application's check.
    let mut server = common::TestServer::start(EngineConfig {
        max_connections: Some(1),
        allowed_origins: Some(AllowOrigin::List(vec!["https://good.example".to_owned()])),
        allow_request: Some(Arc::new(|parts: &http::request::Parts| {
            if parts.headers.contains_key("x-refuse") {
                Err(RequestRefused::default())
            } else {
                Ok(())
            }
        })),
        ..config()
    })
    .await;
    let (sid, _) = server.handshake_v4().await;
    server.get("EIO=4&transport=polling").await.assert_error(
        503,
        6,
        "Too many connections (max 1)",
    );
    request(
        server.addr,
        "GET",
        &handshake,
        &[("Origin", "https://evil.example")],
        b"",
    )
    .await
    .assert_error(403, 4, "Origin not allowed");
    request(server.addr, "GET", &handshake, &[("X-Refuse", "1")], b"")
        .await
        .assert_error(403, 4, "Forbidden");
    assert_eq!(refusals(counters, "max_connections"), 1);
    assert_eq!(refusals(counters, "origin"), 1);
    assert_eq!(refusals(counters, "not_allowed"), 1);
    server.assert_polling_works(4, sid).await;

    let per_ip = common::TestServer::start(EngineConfig {
        max_connections_per_ip: Some(0),
        ..config()
    })
    .await;
    per_ip.get("EIO=4&transport=polling").await.assert_error(
        429,
        7,
        "Too many connections from this address (max 0)",
    );
    assert_eq!(refusals(counters, "max_connections_per_ip"), 1);

    let rate = common::TestServer::start(EngineConfig {
        handshake_rate_per_ip: Some(RateLimit::new(1, Duration::from_secs(60))),
        ..config()
    })
    .await;
    assert_eq!(rate.get("EIO=4&transport=polling").await.status, 200);
    for _ in 0..3 {
        rate.get("EIO=4&transport=polling").await.assert_error(
            429,
            7,
            "Too many handshakes (max 1 per 60s)",
        );
    }
    assert_eq!(refusals(counters, "handshake_rate"), 3);

    // Oversized messages on both transports, a body too slow.
    let mut small = common::TestServer::start(EngineConfig {
        max_payload: 10,
        polling_body_timeout: Duration::from_millis(100),
        ..config()
    })
    .await;
    let (polling, _) = small.handshake_v4().await;
    let response = small.post(4, polling, b"4 too long for ten").await;
    assert_eq!(response.status, 413);
    let (mut ws, _, _) = small.ws_session(4).await;
    common::ws_send(&mut ws, "4 too long for ten").await;
    ws_end(&mut ws).await;
    let (slow, _) = small.handshake_v4().await;
    let target = common::TestServer::target(&format!("EIO=4&transport=polling&sid={slow}"));
    let mut stream = send_request_from(
        None,
        small.addr,
        "POST",
        &target,
        &[("Content-Length", "5")],
        b"4",
    )
    .await;
    assert_eq!(
        read_response(&mut stream).await.expect("an answer").status,
        408
    );
    assert_eq!(small.poll(4, slow).await.text(), "1");
    assert_eq!(refusals(counters, "payload_too_large"), 2);
    assert_eq!(refusals(counters, "body_timeout"), 1);

    // Slow headers count; an idle connection timing out does not, kept alive or fresh.
    let timed = common::TestServer::start_serving(
        config(),
        ServeConfig {
            header_read_timeout: Some(Duration::from_millis(100)),
        },
    )
    .await;
    let mut slow_head = send_raw(timed.addr, b"GET /engine.io/?EIO=4 HTTP/1.1\r\n").await;
    let mut kept_alive = send_raw(
        timed.addr,
        format!("GET {handshake} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await;
    let mut silent = send_raw(timed.addr, b"").await;
    assert_eq!(read_response(&mut slow_head).await, Err(Vec::new()));
    let answer = read_response(&mut kept_alive).await.expect("an answer");
    assert_eq!(answer.status, 200);
    for stream in [&mut kept_alive, &mut silent] {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(common::WAIT, stream.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "closed: {read:?} {rest:?}");
    }
    // The server counts after the connection is gone, so the client may learn of it first.
    tokio::time::timeout(common::WAIT, async {
        while refusals(counters, "header_timeout") == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the slow head counted");
    assert_eq!(refusals(counters, "header_timeout"), 1);

    // Nothing else was counted.
    assert_eq!(counters.sum_prefixed(REFUSALS_TOTAL), 11);
}
