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
