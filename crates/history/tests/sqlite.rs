//! The SQLite store, on real files.

mod common;

use std::time::Duration;

use ferrio_history::{HistoryStore, ReadQuery, Retention, SqliteConfig, SqliteStore};

fn open(dir: &tempfile::TempDir, retention: Retention) -> SqliteStore {
    SqliteStore::open(SqliteConfig {
        retention,
        ..SqliteConfig::new(dir.path().join("data/history.db"))
    })
    .expect("store opens")
}

#[tokio::test]
async fn appends_and_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::appends_get_growing_offsets_and_read_pages(&open(&dir, Retention::UNLIMITED)).await;
}

#[tokio::test]
async fn retention_by_count_and_age() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(
        &dir,
        Retention {
            max_messages: Some(3),
            max_age: Some(Duration::from_secs(3600)),
        },
    );
    common::retention_drops_the_oldest(&store).await;
}

#[test]
fn recovery_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::recovery_state_round_trips(&open(&dir, Retention::UNLIMITED));
}

#[tokio::test]
async fn packets_at_a_message_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::packets_recorded_at_a_message_offset(&open(&dir, Retention::UNLIMITED)).await;
}

#[tokio::test]
async fn history_survives_reopening_and_offsets_are_never_reused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir, Retention::UNLIMITED);
    let appended = store
        .append("/", "r", common::message("before"))
        .await
        .expect("appended");
    // Handed out, then dropped with the store before a flush was asked for: a crash could lose
    // it, so the next process must not hand out this offset again.
    let handed_out = store.record_packet(
        "/",
        ferrio_history::RecoveryPacket {
            rooms: vec![],
            except: vec![],
            data: b"x".to_vec(),
            at: std::time::SystemTime::now(),
        },
    );
    drop(store);

    let store = open(&dir, Retention::UNLIMITED);
    let page = store
        .read(
            "/",
            "r",
            ReadQuery {
                after: None,
                limit: 10,
            },
        )
        .expect("read");
    assert_eq!(common::texts(&page), ["before"]);
    assert_eq!(page.messages[0].offset, appended);
    let after = store
        .append("/", "r", common::message("after"))
        .await
        .expect("appended");
    // The new process starts after the whole block (2^20 offsets) the first one reserved.
    assert!(after > handed_out, "{after} after {handed_out}");
    assert!(after >= appended + (1 << 20), "{after} after {appended}");
}

#[tokio::test]
async fn many_concurrent_appends_are_all_stored_in_order_of_offset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = std::sync::Arc::new(open(&dir, Retention::UNLIMITED));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..50 {
                let message = common::message(&format!("{task}-{i}"));
                offsets.push(store.append("/", "busy", message).await.expect("appended"));
            }
            offsets
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort_unstable();
    let mut read = Vec::new();
    let mut after = Some(0);
    for _ in 0..10 {
        let page = store
            .read("/", "busy", ReadQuery { after, limit: 100 })
            .expect("read");
        read.extend(page.messages.iter().map(|m| m.offset));
        after = page.next;
        if !page.more {
            break;
        }
    }
    assert_eq!(read, all);
}

#[test]
fn an_unwritable_path_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").expect("write");
    let error = SqliteStore::open(SqliteConfig::new(file.join("history.db"))).expect_err("refused");
    let text = error.to_string();
    assert!(
        text.starts_with("cannot create the history directory"),
        "{text}"
    );
    assert!(text.contains("file"), "{text}");
}

/// A recovery packet for namespace `/`, sent now.
fn packet(data: &[u8]) -> ferrio_history::RecoveryPacket {
    ferrio_history::RecoveryPacket {
        rooms: vec!["news".to_owned()],
        except: vec![],
        data: data.to_vec(),
        at: std::time::SystemTime::now(),
    }
}

/// Every recovery packet of `/`, as a new process loads them.
fn load_all(store: &SqliteStore) -> ferrio_history::RecoveryState {
    store
        .load_recovery("/", std::time::SystemTime::UNIX_EPOCH)
        .expect("loaded")
}

#[tokio::test]
async fn a_new_process_loads_packets_in_the_order_they_were_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open(&dir, Retention::UNLIMITED);
    let offset = store
        .append("/", "news", common::message("durable"))
        .await
        .expect("appended");
    // Its packet is sent by the next process, under an offset smaller than the others'.
    let spare = store
        .append("/", "news", common::message("spare"))
        .await
        .expect("appended");
    // Sent while the message waited for the disk: a larger offset, sent first.
    let newer = store.record_packet("/", packet(b"newer"));
    store.record_packet_at("/", offset, packet(b"durable"));
    let later = store.record_packet("/", packet(b"later"));
    drop(store);

    let store = open(&dir, Retention::UNLIMITED);
    let expected = [
        (newer, b"newer".as_slice()),
        (offset, b"durable"),
        (later, b"later"),
    ];
    assert_eq!(common::offsets_and_data(&load_all(&store)), expected);
    // What the new process sends goes after what the old one sent, whatever its offset.
    store.record_packet_at("/", spare, packet(b"next"));
    store.flush().expect("flushed");
    let state = load_all(&store);
    assert_eq!(common::offsets_and_data(&state)[..3], expected);
    assert_eq!(
        common::offsets_and_data(&state)[3..],
        [(spare, b"next".as_slice())]
    );
}

/// The tables as versions before the sending order wrote them (no `packets.sent`, no
/// `user_version`).
const FIRST_SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE history (
    seq INTEGER PRIMARY KEY, namespace TEXT NOT NULL, room TEXT NOT NULL,
    event TEXT NOT NULL, args TEXT NOT NULL, at INTEGER NOT NULL
);
CREATE INDEX history_by_room ON history (namespace, room, seq);
CREATE INDEX history_by_age ON history (at);
CREATE TABLE packets (
    seq INTEGER PRIMARY KEY, namespace TEXT NOT NULL, rooms TEXT NOT NULL,
    except_rooms TEXT NOT NULL, data BLOB NOT NULL, at INTEGER NOT NULL
);
CREATE INDEX packets_by_namespace ON packets (namespace, at);
CREATE TABLE sessions (
    namespace TEXT NOT NULL, pid TEXT NOT NULL, sid TEXT NOT NULL, rooms TEXT NOT NULL,
    disconnected_at INTEGER, PRIMARY KEY (namespace, pid)
);
";

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .expect("open")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

#[test]
fn a_file_of_the_first_schema_is_upgraded_and_keeps_its_packets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data/history.db");
    std::fs::create_dir_all(dir.path().join("data")).expect("directory");
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis(),
    )
    .expect("millis");
    {
        let conn = rusqlite::Connection::open(&path).expect("create the old file");
        conn.execute_batch(FIRST_SCHEMA).expect("old schema");
        conn.execute(
            "INSERT INTO packets (seq, namespace, rooms, except_rooms, data, at)
             VALUES (5, '/', '[\"news\"]', '[]', x'62', ?1), (3, '/', '[]', '[]', x'61', ?1)",
            [now],
        )
        .expect("old packets");
        conn.execute(
            "INSERT INTO sessions (namespace, pid, sid, rooms, disconnected_at)
             VALUES ('/', 'p1', 's1', '[\"s1\"]', ?1)",
            [now],
        )
        .expect("old session");
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('reserved_offsets_end', 10)",
            [],
        )
        .expect("old reservation");
    }
    assert_eq!(user_version(&path), 0);

    let store = open(&dir, Retention::UNLIMITED);
    // The old file knew no sending order: its packets load by offset, with their contents.
    let state = load_all(&store);
    assert_eq!(
        common::offsets_and_data(&state),
        [(3, b"a".as_slice()), (5, b"b")]
    );
    assert_eq!(state.packets[1].packet.rooms, ["news"]);
    assert_eq!(state.sessions.len(), 1);
    assert_eq!(state.sessions[0].sid, "s1");
    // New packets go after them, in the order they are sent.
    let fresh = store.record_packet("/", packet(b"c"));
    assert!(fresh >= 10, "past the old reservation: {fresh}");
    store.record_packet_at("/", 4, packet(b"d"));
    drop(store);
    assert_eq!(user_version(&path), 1);

    // Opened again, the upgraded file is not upgraded twice and keeps the order.
    let store = open(&dir, Retention::UNLIMITED);
    assert_eq!(
        common::offsets_and_data(&load_all(&store)),
        [(3, b"a".as_slice()), (5, b"b"), (fresh, b"c"), (4, b"d")]
    );
}

#[test]
fn a_file_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open(&dir, Retention::UNLIMITED));
    let path = dir.path().join("data/history.db");
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch("PRAGMA user_version = 2;")
        .expect("set the version");
    let error = SqliteStore::open(SqliteConfig::new(&path)).expect_err("refused");
    assert!(
        matches!(&error, ferrio_history::HistoryError::Corrupt(_)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "history data is not readable: schema version 2 is newer than this version of ferrio \
         knows (1)"
    );
}

/// A shared source of blocks in memory, as a cluster's Redis counter would be: every block it
/// hands out starts past every earlier one and past the floor asked for.
#[derive(Debug, Default)]
struct SharedCounter {
    last: std::sync::Mutex<u64>,
    calls: std::sync::atomic::AtomicUsize,
}

impl ferrio_history::OffsetBlocks for SharedCounter {
    fn reserve(&self, floor: u64, size: u64) -> Result<u64, ferrio_history::HistoryError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut last = self.last.lock().expect("lock");
        *last = (*last).max(floor.saturating_sub(1)) + size;
        Ok(*last - size + 1)
    }
}

#[tokio::test]
async fn offsets_drawn_from_a_shared_source_never_collide_between_stores() {
    let counter = std::sync::Arc::new(SharedCounter::default());
    // Someone else (another node's history) used offsets up to 5000 already.
    *counter.last.lock().expect("lock") = 5000;
    let open_shared = |dir: &tempfile::TempDir| {
        SqliteStore::open(SqliteConfig {
            retention: Retention::UNLIMITED,
            offset_blocks: Some(counter.clone()),
            ..SqliteConfig::new(dir.path().join("history.db"))
        })
        .expect("store opens")
    };
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let (a, b) = (open_shared(&dir_a), open_shared(&dir_b));
    let packet = || common::packet_to(&[], b"x", std::time::SystemTime::now());
    let from_a: Vec<u64> = (0..100).map(|_| a.record_packet("/", packet())).collect();
    let from_b: Vec<u64> = (0..100).map(|_| b.record_packet("/", packet())).collect();
    let appended = a
        .append("/", "r", common::message("m"))
        .await
        .expect("appended");
    assert!(
        from_a.iter().chain(&from_b).all(|o| *o > 5000),
        "{from_a:?}"
    );
    assert!(from_a.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<u64> = from_a.iter().chain(&from_b).copied().collect();
    all.push(appended);
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 201, "no offset twice across the two stores");
    assert_eq!(counter.calls.load(std::sync::atomic::Ordering::SeqCst), 2);

    // A source that lost its state (reset to 0) still never hands out what the file used.
    let last_of_a = *from_a.iter().chain([&appended]).max().expect("some");
    drop(a);
    *counter.last.lock().expect("lock") = 0;
    let a = open_shared(&dir_a);
    let next = a.record_packet("/", packet());
    assert!(next > last_of_a, "{next} after {last_of_a}");
}
