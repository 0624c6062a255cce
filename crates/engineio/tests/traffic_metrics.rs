//! The engine's counters move with real connections: handshakes by transport and protocol,
//! upgrades, disconnects by reason, and packets and bytes in and out by transport. A recorder
//! installed for this binary alone counts them; the binary holds a single test, so the counts
//! are exact.

mod common;

use common::{config, ws_send, ws_text, TestServer, WAIT};
use ferrio_engineio::{
    DisconnectReason, BYTES_RECEIVED_TOTAL, BYTES_SENT_TOTAL, DISCONNECTS_TOTAL, HANDSHAKES_TOTAL,
    PACKETS_RECEIVED_TOTAL, PACKETS_SENT_TOTAL, UPGRADES_TOTAL,
};
use ferrio_test_support::CountingRecorder;
use tokio::time::timeout;

fn by_transport(name: &str, transport: &str) -> String {
    format!("{name}{{transport=\"{transport}\"}}")
}

#[tokio::test]
async fn traffic_handshakes_upgrades_and_disconnects_are_counted() {
    let counters = CountingRecorder::install();
    let mut server = TestServer::start(config()).await;
    let handshakes = |transport: &str, protocol: &str| {
        counters.get(&format!(
            "{HANDSHAKES_TOTAL}{{transport=\"{transport}\",protocol=\"{protocol}\"}}"
        ))
    };
    let polling_in = || {
        (
            counters.get(&by_transport(PACKETS_RECEIVED_TOTAL, "polling")),
            counters.get(&by_transport(BYTES_RECEIVED_TOTAL, "polling")),
        )
    };
    let polling_out = || {
        (
            counters.get(&by_transport(PACKETS_SENT_TOTAL, "polling")),
            counters.get(&by_transport(BYTES_SENT_TOTAL, "polling")),
        )
    };
    let ws_in = || {
        (
            counters.get(&by_transport(PACKETS_RECEIVED_TOTAL, "websocket")),
            counters.get(&by_transport(BYTES_RECEIVED_TOTAL, "websocket")),
        )
    };
    let ws_out = || {
        (
            counters.get(&by_transport(PACKETS_SENT_TOTAL, "websocket")),
            counters.get(&by_transport(BYTES_SENT_TOTAL, "websocket")),
        )
    };

    // Polling, revision 4: the open packet is one packet out, its body's bytes.
    let (sid, open) = server.handshake_v4().await;
    assert_eq!(handshakes("polling", "4"), 1);
    let open_len = format!("0{open}").len() as u64;
    assert_eq!(polling_out(), (1, open_len));
    // One POST of two packets; the echoes come back in one poll.
    let response = server.post(4, sid, b"4one\x1e4two").await;
    assert_eq!(response.status, 200);
    assert_eq!(polling_in(), (2, 9));
    server.message(sid).await;
    server.message(sid).await;
    let response = server.poll(4, sid).await;
    assert_eq!(response.text(), "4one\u{1e}4two");
    assert_eq!(polling_out(), (3, open_len + 9));

    // Polling, revision 3.
    server.handshake_v3(false).await;
    assert_eq!(handshakes("polling", "3"), 1);

    // A direct WebSocket: the open packet, then a message each way.
    let (mut ws, ws_sid, _) = server.ws_session(4).await;
    assert_eq!(handshakes("websocket", "4"), 1);
    let (open_packets, open_bytes) = ws_out();
    assert_eq!(open_packets, 1);
    ws_send(&mut ws, "4hello").await;
    assert_eq!(server.message(ws_sid).await, "hello".into());
    assert_eq!(ws_text(&mut ws).await, "4hello");
    assert_eq!(ws_in(), (1, 6));
    assert_eq!(ws_out(), (2, open_bytes + 6));

    // An upgrade from polling.
    let upgrading = server.spawn_poll(4, sid).await;
    let (mut upgraded, _) = server
        .ws(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await;
    ws_send(&mut upgraded, "2probe").await;
    assert_eq!(ws_text(&mut upgraded).await, "3probe");
    let released = timeout(WAIT, upgrading).await.expect("released");
    assert_eq!(released.expect("task").expect("complete").text(), "6");
    ws_send(&mut upgraded, "5").await;
    ws_send(&mut upgraded, "4after").await;
    assert_eq!(server.message(sid).await, "after".into());
    assert_eq!(counters.get(&format!("{UPGRADES_TOTAL}{{}}")), 1);

    // Disconnects, by reason: a close packet from the client.
    ws_send(&mut ws, "1").await;
    assert_eq!(
        server.disconnected(ws_sid).await,
        DisconnectReason::TransportClose
    );
    assert_eq!(
        counters.get(&format!(
            "{DISCONNECTS_TOTAL}{{reason=\"transport_close\"}}"
        )),
        1
    );
    // And one the server forces.
    server.socket(sid).close();
    assert_eq!(
        server.disconnected(sid).await,
        DisconnectReason::ForcedClose
    );
    assert_eq!(
        counters.get(&format!("{DISCONNECTS_TOTAL}{{reason=\"forced_close\"}}")),
        1
    );
}
