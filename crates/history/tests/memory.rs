//! The in-memory store.

mod common;

use std::time::Duration;

use ferrio_history::{MemoryStore, Retention};

#[tokio::test]
async fn appends_and_pages() {
    common::appends_get_growing_offsets_and_read_pages(&MemoryStore::default()).await;
}

#[tokio::test]
async fn retention_by_count_and_age() {
    let store = MemoryStore::new(Retention {
        max_messages: Some(3),
        max_age: Some(Duration::from_secs(3600)),
    });
    common::retention_drops_the_oldest(&store).await;
}

#[test]
fn recovery_state() {
    common::recovery_state_round_trips(&MemoryStore::default());
}

#[tokio::test]
async fn packets_at_a_message_offset() {
    common::packets_recorded_at_a_message_offset(&MemoryStore::default()).await;
}
