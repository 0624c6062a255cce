//! Behaviour every store must have, run against each of them.

use std::time::{Duration, SystemTime};

use ferrio_history::{
    HistoryError, HistoryStore, NewMessage, ReadQuery, RecoveryPacket, RecoverySession,
};
use serde_json::json;

/// A chat message with this text, published now.
pub(crate) fn message(text: &str) -> NewMessage {
    NewMessage {
        event: "chat".to_owned(),
        args: vec![json!({ "text": text })],
        at: SystemTime::now(),
    }
}

/// A recovery packet to the rooms `rooms`, with these bytes, sent at `at`.
pub(crate) fn packet_to(rooms: &[&str], data: &[u8], at: SystemTime) -> RecoveryPacket {
    RecoveryPacket {
        rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
        except: vec![],
        data: data.to_vec(),
        at,
    }
}

/// The texts of a page's messages.
pub(crate) fn texts(page: &ferrio_history::Page) -> Vec<String> {
    page.messages
        .iter()
        .map(|m| m.args[0]["text"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Offsets grow; pages follow `after` and `limit`; bad limits are refused.
pub(crate) async fn appends_get_growing_offsets_and_read_pages(store: &dyn HistoryStore) {
    let mut offsets = Vec::new();
    for i in 0..5 {
        offsets.push(
            store
                .append("/", "news", message(&format!("m{i}")))
                .await
                .expect("appended"),
        );
    }
    store
        .append("/", "other", message("elsewhere"))
        .await
        .expect("appended");
    store
        .append("/chat", "news", message("other namespace"))
        .await
        .expect("appended");
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");

    let page = store
        .read(
            "/",
            "news",
            ReadQuery {
                after: Some(offsets[1]),
                limit: 2,
            },
        )
        .expect("read");
    assert_eq!(texts(&page), ["m2", "m3"]);
    assert_eq!(page.next, Some(offsets[3]));
    assert!(page.more);
    assert_eq!(page.messages[0].event, "chat");
    assert_eq!(page.messages[0].offset, offsets[2]);

    let rest = store
        .read(
            "/",
            "news",
            ReadQuery {
                after: page.next,
                limit: 10,
            },
        )
        .expect("read");
    assert_eq!(texts(&rest), ["m4"]);
    assert!(!rest.more);

    let empty = store
        .read(
            "/",
            "news",
            ReadQuery {
                after: rest.next,
                limit: 10,
            },
        )
        .expect("read");
    assert!(empty.messages.is_empty());
    assert_eq!(empty.next, rest.next, "an empty page keeps the cursor");

    let newest = store
        .read(
            "/",
            "news",
            ReadQuery {
                after: None,
                limit: 2,
            },
        )
        .expect("read");
    assert_eq!(
        texts(&newest),
        ["m3", "m4"],
        "without after: the newest, oldest first"
    );

    let unknown = store
        .read(
            "/",
            "nobody",
            ReadQuery {
                after: None,
                limit: 2,
            },
        )
        .expect("read");
    assert!(unknown.messages.is_empty());
    assert_eq!(unknown.next, None);

    let error = store
        .read(
            "/",
            "news",
            ReadQuery {
                after: None,
                limit: 0,
            },
        )
        .expect_err("limit 0 is refused");
    assert!(matches!(
        error,
        HistoryError::LimitOutOfRange {
            limit: 0,
            max: 1000
        }
    ));
    assert_eq!(error.to_string(), "limit 0 is out of range: 1 to 1000");
    assert!(store
        .read(
            "/",
            "news",
            ReadQuery {
                after: None,
                limit: 1001
            }
        )
        .is_err());
}

/// Expects a store whose retention keeps 3 messages per room for 1 hour.
pub(crate) async fn retention_drops_the_oldest(store: &dyn HistoryStore) {
    for i in 0..5 {
        store
            .append("/", "capped", message(&format!("m{i}")))
            .await
            .expect("appended");
    }
    store
        .append("/", "small", message("kept"))
        .await
        .expect("appended");
    let page = store
        .read(
            "/",
            "capped",
            ReadQuery {
                after: Some(0),
                limit: 10,
            },
        )
        .expect("read");
    assert_eq!(
        texts(&page),
        ["m2", "m3", "m4"],
        "count: the oldest went first"
    );
    let page = store
        .read(
            "/",
            "small",
            ReadQuery {
                after: None,
                limit: 10,
            },
        )
        .expect("read");
    assert_eq!(texts(&page), ["kept"], "each room has its own count");

    let old = NewMessage {
        at: SystemTime::now() - Duration::from_secs(2 * 3600),
        ..message("two hours old")
    };
    store.append("/", "aged", old).await.expect("appended");
    store
        .append("/", "aged", message("fresh"))
        .await
        .expect("appended");
    let page = store
        .read(
            "/",
            "aged",
            ReadQuery {
                after: None,
                limit: 10,
            },
        )
        .expect("read");
    assert_eq!(texts(&page), ["fresh"], "age: older than max_age is gone");
}

/// Packets and sessions come back as recorded; pruning forgets the old ones.
pub(crate) fn recovery_state_round_trips(store: &dyn HistoryStore) {
    let now = SystemTime::now();
    let packet = |data: &[u8], at: SystemTime| RecoveryPacket {
        rooms: vec!["a".to_owned()],
        except: vec!["x".to_owned()],
        data: data.to_vec(),
        at,
    };
    let old = store.record_packet("/", packet(b"old", now - Duration::from_secs(600)));
    let first = store.record_packet("/", packet(b"first", now));
    let second = store.record_packet("/", packet(b"second", now));
    store.record_packet("/chat", packet(b"elsewhere", now));
    assert!(old < first && first < second);
    store.save_session(
        "/",
        RecoverySession {
            pid: "p1".to_owned(),
            sid: "s1".to_owned(),
            rooms: vec!["s1".to_owned(), "a".to_owned()],
            disconnected_at: None,
        },
    );
    let gone = RecoverySession {
        pid: "p2".to_owned(),
        sid: "s2".to_owned(),
        rooms: vec![],
        disconnected_at: Some(now),
    };
    store.save_session("/", gone.clone());
    store.save_session(
        "/",
        RecoverySession {
            pid: "p3".to_owned(),
            ..gone.clone()
        },
    );
    store.remove_session("/", "p3");
    store.flush().expect("flushed");

    let state = store
        .load_recovery("/", now - Duration::from_secs(60))
        .expect("loaded");
    let datas: Vec<&[u8]> = state
        .packets
        .iter()
        .map(|p| p.packet.data.as_slice())
        .collect();
    assert_eq!(datas, [b"first".as_slice(), b"second"]);
    assert_eq!(state.packets[0].offset, first);
    assert_eq!(state.packets[0].packet.rooms, ["a"]);
    assert_eq!(state.packets[0].packet.except, ["x"]);
    let mut pids: Vec<&str> = state.sessions.iter().map(|s| s.pid.as_str()).collect();
    pids.sort();
    assert_eq!(pids, ["p1", "p2"]);
    let live = state.sessions.iter().find(|s| s.pid == "p1").expect("p1");
    assert_eq!(live.rooms, ["s1", "a"]);
    assert_eq!(live.disconnected_at, None);

    // Pruning forgets old packets and old disconnected sessions, never connected ones.
    store.prune_recovery("/", now + Duration::from_secs(1));
    store.flush().expect("flushed");
    let state = store
        .load_recovery("/", SystemTime::UNIX_EPOCH)
        .expect("loaded");
    assert!(state.packets.is_empty());
    let pids: Vec<&str> = state.sessions.iter().map(|s| s.pid.as_str()).collect();
    assert_eq!(pids, ["p1"]);
}

/// A packet recorded under a history message's offset is stored under it, once (a second
/// recording replaces the first), offsets handed out later are still larger, and packets load
/// in the order they were recorded (sent), not by offset.
pub(crate) async fn packets_recorded_at_a_message_offset(store: &dyn HistoryStore) {
    let now = SystemTime::now();
    let packet = |data: &[u8]| packet_to(&["news"], data, now);
    let offset = store
        .append("/", "news", message("durable"))
        .await
        .expect("appended");
    let newer = store.record_packet("/", packet(b"newer"));
    store.record_packet_at("/", offset, packet(b"first try"));
    store.record_packet_at("/", offset, packet(b"durable"));
    let later = store.record_packet("/", packet(b"later"));
    assert!(offset < newer && newer < later);
    store.flush().expect("flushed");

    let state = store
        .load_recovery("/", now - Duration::from_secs(60))
        .expect("loaded");
    assert_eq!(
        offsets_and_data(&state),
        [
            (newer, b"newer".as_slice()),
            (offset, b"durable"),
            (later, b"later")
        ]
    );
}

/// The offset and data of each loaded packet, in the order loaded.
pub(crate) fn offsets_and_data(state: &ferrio_history::RecoveryState) -> Vec<(u64, &[u8])> {
    state
        .packets
        .iter()
        .map(|p| (p.offset, p.packet.data.as_slice()))
        .collect()
}
