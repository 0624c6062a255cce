//! Fan-out pacing, end to end (`EngineConfig::fanout_window`): a client whose broadcasts come
//! faster than the recipients' tasks take them waits, its acknowledgements with it, and nothing
//! is lost or reordered; recipients that stop reading never hold it up.
//!
//! Waits are counted in `ferrio_fanout_paced_total`, waits cut by their one-second bound in
//! `ferrio_fanout_pace_timeouts_total`. A recorder installed for this binary alone counts them,
//! and the binary holds a single test: pacing rounds are shared by the whole process, so no
//! other test's broadcasts may run beside this one's.

mod common;

use std::sync::Arc;

use common::{TestServer, WsClient, WAIT};
use ferrio_socketio::{
    Event, Payload, Socket, SocketIoConfig, FANOUT_PACED_TOTAL, FANOUT_PACE_TIMEOUTS_TOTAL,
};
use ferrio_test_support::CountingRecorder;
use tokio::time::timeout;

const ROOM: &str = "r";

/// Acknowledges with no arguments, if asked to.
fn done(event: Event) {
    if let Some(ack) = event.ack {
        let _ = ack.send(Payload::new());
    }
}

/// `["broadcast", data]`: `bcast` with `data` to the room, then the acknowledgement.
fn broadcast(socket: &Arc<Socket>, event: Event) {
    let _ = socket
        .namespace()
        .to(ROOM)
        .emit_payload("bcast", event.payload.clone());
    done(event);
}

/// A client connected to `/` and joined to the room.
async fn member(server: &TestServer) -> WsClient {
    let mut client = server.ws().await;
    client.join("/", None).await;
    client.send(r#"420["join"]"#).await;
    client.expect("430[]").await;
    client
}

#[tokio::test]
async fn a_broadcaster_ahead_of_the_writes_waits_and_slow_recipients_never_hold_it_up() {
    let counters = CountingRecorder::install();
    let paced = || counters.get(&format!("{FANOUT_PACED_TOTAL}{{}}"));
    let cut_short = || counters.get(&format!("{FANOUT_PACE_TIMEOUTS_TOTAL}{{}}"));
    let mut config = SocketIoConfig::default();
    config.engine.fanout_window = 1;
    let server = TestServer::start_with(config).await;
    let root = server.io.of("/");
    root.on("join", |socket, event| {
        socket.join(ROOM);
        done(event);
    });
    root.on("broadcast", broadcast);

    // Two broadcasts read together: the second is handled before any recipient's task took
    // the first, one broadcast more than the window allows, so the sender waits for them.
    let mut members = Vec::new();
    for _ in 0..4 {
        members.push(member(&server).await);
    }
    let mut sender = server.ws().await;
    sender.join("/", None).await;
    assert_eq!(paced(), 0);
    sender
        .send_together(&[r#"421["broadcast",1]"#, r#"422["broadcast",2]"#])
        .await;
    sender.expect("431[]").await;
    sender.expect("432[]").await;
    for member in &mut members {
        member.expect(r#"42["bcast",1]"#).await;
        member.expect(r#"42["bcast",2]"#).await;
    }
    assert_eq!(
        paced(),
        1,
        "the second broadcast waited for the first's writes"
    );
    assert_eq!(cut_short(), 0, "the recipients took them: no wait ran out");

    // Two members stop reading: their sockets fill up and their tasks stay in the middle of a
    // write. Large broadcasts one after the other, each acknowledged: the sender goes on, no
    // wait runs into its bound, and the members still reading get every broadcast in order.
    let readers: Vec<_> = members
        .drain(..2)
        .map(|mut member| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                while got.len() < BURST {
                    let text = member.recv().await;
                    let number = text
                        .strip_prefix(r#"42["bcast",""#)
                        .and_then(|rest| rest.split_once(':'))
                        .map(|(number, _)| number.to_owned())
                        .unwrap_or_else(|| panic!("not a broadcast: {:.40}", text));
                    got.push(number);
                }
                got
            })
        })
        .collect();
    const BURST: usize = 60;
    // 60 x 200 KB: more than loopback sockets buffer for a client that never reads.
    let filler = "x".repeat(200_000);
    for n in 0..BURST {
        let id = 10 + n;
        sender
            .send(&format!(r#"42{id}["broadcast","{n}:{filler}"]"#))
            .await;
        sender.expect(&format!("43{id}[]")).await;
    }
    let expected: Vec<String> = (0..BURST).map(|n| n.to_string()).collect();
    for reader in readers {
        let got = timeout(WAIT * 4, reader)
            .await
            .expect("every broadcast read in time")
            .expect("the reader does not panic");
        assert_eq!(got, expected);
    }
    assert_eq!(
        cut_short(),
        0,
        "members that stopped reading were never waited for"
    );
    // The members that stopped reading are still connected: nothing was refused.
    assert_eq!(server.io.of("/").sockets().len(), 5);
}
