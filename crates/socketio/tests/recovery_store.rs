//! Connection state recovery kept in a store: a second server on the same store (a restarted
//! process) recovers a client of the first one, with its id, rooms and every packet it missed,
//! before and after the switch; and an event emitted under an offset the store handed out
//! (a history message's) carries it, and is replayed in the order it was sent, by the same
//! process and by a new one on the same SQLite file.

mod common;

use std::sync::Arc;
use std::time::SystemTime;

use common::{recorder, Recorded, TestServer, WsClient};
use ferrio_history::{HistoryStore, MemoryStore, NewMessage, SqliteConfig, SqliteStore};
use ferrio_socketio::{RecoveryConfig, Room, Socket, SocketIoConfig};
use serde_json::{json, Value};

async fn server_on<S: HistoryStore>(store: &Arc<S>) -> (TestServer, Recorded) {
    let store: Arc<dyn HistoryStore> = store.clone();
    let server = TestServer::start_with(SocketIoConfig {
        recovery: Some(RecoveryConfig::default()),
        recovery_store: Some(store),
        ..SocketIoConfig::default()
    })
    .await;
    let (handler, seen) = recorder();
    server.io.ns("/", handler);
    (server, seen)
}

/// Reads an event and splits off its trailing offset.
async fn event(client: &mut WsClient) -> (Vec<Value>, String) {
    let text = client.recv().await;
    let json = text
        .strip_prefix("42")
        .unwrap_or_else(|| panic!("not an event: {text:?}"));
    let mut args: Vec<Value> = serde_json::from_str(json).expect("JSON array");
    let offset = args
        .pop()
        .and_then(|last| last.as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no offset in {text:?}"));
    (args, offset)
}

/// A client in `room1` and its socket: the reply's `sid` and `pid`.
async fn join_room1(
    server: &TestServer,
    seen: &mut Recorded,
) -> (WsClient, String, String, Arc<Socket>) {
    let mut client = server.ws().await;
    let reply = client.connect_nsp("/", None).await;
    let sid = reply["sid"].as_str().expect("sid").to_owned();
    let pid = reply["pid"].as_str().expect("pid").to_owned();
    let socket = seen.sockets.next().await;
    socket.join("room1");
    (client, sid, pid, socket)
}

/// A history message gets its offset, then waits (as for the disk) while a newer packet, with a
/// larger offset of the same sequence, goes out first; the client last sees the newer one. The
/// client is gone when the message fans out under its own (smaller) offset, and after, when
/// `later` is emitted. Returns the message's offset and the newer packet's.
async fn miss_a_message_sent_after_a_newer_one<S: HistoryStore>(
    store: &Arc<S>,
    server: &TestServer,
    client: &mut WsClient,
    socket: &Socket,
    seen: &mut Recorded,
) -> (u64, String) {
    let message = NewMessage {
        event: "m".to_owned(),
        args: vec![json!("durable")],
        at: SystemTime::now(),
    };
    let assigned = store.append("/", "room1", message).await.expect("appended");
    server.io.to("room1").emit("m", "newer").expect("emitted");
    let (args, newer) = event(client).await;
    assert_eq!(args, vec![json!("m"), json!("newer")]);
    assert!(newer.parse::<u64>().expect("a store offset") > assigned);

    socket.abort_transport();
    client.until_closed().await;
    seen.disconnects.next().await;
    server
        .io
        .to("room1")
        .with_offset(assigned)
        .emit("m", "durable")
        .expect("emitted");
    server.io.to("room1").emit("m", "later").expect("emitted");
    (assigned, newer)
}

#[tokio::test]
async fn a_server_on_the_same_store_recovers_the_clients_of_the_first() {
    let store = Arc::new(MemoryStore::default());
    let (first, mut seen) = server_on(&store).await;
    let (mut client, sid, pid, _socket) = join_room1(&first, &mut seen).await;
    first.io.to("room1").emit("m", "seen").expect("emitted");
    let (args, offset) = event(&mut client).await;
    assert_eq!(args, vec![json!("m"), json!("seen")]);
    // Sent by the first server while the client is gone (it never learns of them).
    first.io.to("room1").emit("m", "before").expect("emitted");
    first
        .io
        .to("other")
        .emit("m", "not for it")
        .expect("emitted");

    // The second server starts on the same store; the first never said goodbye.
    let (second, mut seen_again) = server_on(&store).await;
    second.io.to("room1").emit("m", "after").expect("emitted");
    second.io.emit("m", "everyone").expect("emitted");

    let mut client = second.ws().await;
    let auth = json!({ "pid": pid, "offset": offset }).to_string();
    let reply = client.connect_nsp("/", Some(&auth)).await;
    assert_eq!(reply, json!({ "sid": sid, "pid": pid }));
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let (args, _) = event(&mut client).await;
        replayed.push(args[1].clone());
    }
    assert_eq!(
        replayed,
        [json!("before"), json!("after"), json!("everyone")]
    );
    let recovered = seen_again.sockets.next().await;
    assert!(recovered.recovered());
    assert!(recovered.rooms().contains(&Room::from("room1")));

    // Live again in its room, exactly once.
    second.io.to("room1").emit("m", "live").expect("emitted");
    let (args, _) = event(&mut client).await;
    assert_eq!(args, vec![json!("m"), json!("live")]);
    drop(first);
}

#[tokio::test]
async fn an_event_emitted_with_an_offset_of_the_store_carries_it_and_is_replayed_in_order() {
    let store = Arc::new(MemoryStore::default());
    let (server, mut seen) = server_on(&store).await;
    let (mut client, _, pid, socket) = join_room1(&server, &mut seen).await;

    // A history message's packet is missed: a newer one went out first.
    let (assigned, newer) =
        miss_a_message_sent_after_a_newer_one(&store, &server, &mut client, &socket, &mut seen)
            .await;

    // Back after the newer packet: what followed it as sent, the message under its offset.
    let mut client = server.ws().await;
    let auth = json!({ "pid": pid, "offset": newer }).to_string();
    client.connect_nsp("/", Some(&auth)).await;
    let (args, offset) = event(&mut client).await;
    assert_eq!(
        (args, offset),
        (vec![json!("m"), json!("durable")], assigned.to_string())
    );
    let (args, _) = event(&mut client).await;
    assert_eq!(args, vec![json!("m"), json!("later")]);
    let recovered = seen.sockets.next().await;
    assert!(recovered.recovered());

    // Back after the message's offset: only what came after it.
    recovered.abort_transport();
    client.until_closed().await;
    seen.disconnects.next().await;
    let mut client = server.ws().await;
    let auth = json!({ "pid": pid, "offset": assigned.to_string() }).to_string();
    client.connect_nsp("/", Some(&auth)).await;
    let (args, _) = event(&mut client).await;
    assert_eq!(args, vec![json!("m"), json!("later")]);
    assert!(seen.sockets.next().await.recovered());
    server.io.to("room1").emit("m", "live").expect("emitted");
    let (args, _) = event(&mut client).await;
    assert_eq!(
        args,
        vec![json!("m"), json!("live")],
        "nothing else replayed"
    );

    // The store holds the packet under the message's offset, for a restarted process.
    let packets = store
        .load_recovery("/", SystemTime::UNIX_EPOCH)
        .expect("loaded")
        .packets;
    assert!(packets.iter().any(|p| p.offset == assigned));
}

#[tokio::test]
async fn a_new_process_replays_a_message_sent_after_larger_offsets_in_sending_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("recovery.db");
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(&path)).expect("store opens"));
    let (first, mut seen) = server_on(&store).await;
    let (mut client, sid, pid, socket) = join_room1(&first, &mut seen).await;

    // A history message's packet is missed: a newer one went out first.
    let (assigned, newer) =
        miss_a_message_sent_after_a_newer_one(&store, &first, &mut client, &socket, &mut seen)
            .await;
    store.flush().expect("flushed");

    // A new process on the same file, as after a restart.
    let restarted = Arc::new(SqliteStore::open(SqliteConfig::new(&path)).expect("store opens"));
    let (second, mut seen_again) = server_on(&restarted).await;
    let mut client = second.ws().await;
    let auth = json!({ "pid": pid, "offset": newer }).to_string();
    let reply = client.connect_nsp("/", Some(&auth)).await;
    assert_eq!(reply, json!({ "sid": sid, "pid": pid }));
    // What followed the newer packet as sent: the message under its own offset, then the rest.
    let (args, offset) = event(&mut client).await;
    assert_eq!(
        (args, offset),
        (vec![json!("m"), json!("durable")], assigned.to_string())
    );
    let (args, _) = event(&mut client).await;
    assert_eq!(args, vec![json!("m"), json!("later")]);
    assert!(seen_again.sockets.next().await.recovered());
    second.io.to("room1").emit("m", "live").expect("emitted");
    let (args, _) = event(&mut client).await;
    assert_eq!(
        args,
        vec![json!("m"), json!("live")],
        "nothing else replayed"
    );
    drop(first);
}
