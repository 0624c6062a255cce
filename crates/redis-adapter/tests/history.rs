//! The Redis history store against a real `redis-server`: the same behaviour tests as every
//! store of `ferrio-history` (its `tests/common`), then what only a shared store has: two nodes'
//! stores on one Redis with one sequence of offsets, recovery offsets drawn from that same
//! sequence, Redis unreachable, and the durability check.

mod common;
#[path = "../../history/tests/common/mod.rs"]
#[allow(dead_code)] // Its test of a store with one sequence does not apply: see below.
mod conformance;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::RedisServer;
use ferrio_history::{
    HistoryError, HistoryStore, MemoryStore, ReadQuery, Retention, SqliteConfig, SqliteStore,
};
use ferrio_redis_adapter::history::{
    Durability, RedisHistory, RedisHistoryConfig, RedisOffsetBlocks,
};

fn config(redis: &RedisServer, retention: Retention) -> RedisHistoryConfig {
    RedisHistoryConfig {
        retention,
        ..RedisHistoryConfig::new(redis.url())
    }
}

/// A node's history: in Redis, with recovery in memory.
fn store(redis: &RedisServer, retention: Retention) -> RedisHistory {
    RedisHistory::new(config(redis, retention), Arc::new(MemoryStore::default()))
        .expect("history created")
}

#[tokio::test]
async fn appends_and_pages() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    conformance::appends_get_growing_offsets_and_read_pages(&store(&redis, Retention::UNLIMITED))
        .await;
}

#[tokio::test]
async fn retention_by_count_and_age() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let retention = Retention {
        max_messages: Some(3),
        max_age: Some(Duration::from_secs(3600)),
    };
    conformance::retention_drops_the_oldest(&store(&redis, retention)).await;
}

#[tokio::test]
async fn recovery_is_kept_by_the_nodes_own_store() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let local = SqliteStore::open(SqliteConfig {
        offset_blocks: Some(Arc::new(
            RedisOffsetBlocks::new(&config(&redis, Retention::UNLIMITED)).expect("blocks"),
        )),
        ..SqliteConfig::new(dir.path().join("recovery.db"))
    })
    .expect("store opens");
    let history = RedisHistory::new(config(&redis, Retention::UNLIMITED), Arc::new(local))
        .expect("history created");
    conformance::recovery_state_round_trips(&history);

    // A live packet recorded under its message's history offset, between packets with offsets
    // of the node's own blocks: loaded once, in the order sent. Unlike a store alone (its
    // common test), a history offset is not ordered against the node's recovery offsets (the
    // node drew its block before the append): they only never collide, which is all that
    // recovery needs (it resumes by position in the log, not by comparing offsets).
    let now = SystemTime::now();
    let packet = |data: &[u8]| conformance::packet_to(&["news"], data, now);
    let offset = history
        .append("/", "news", conformance::message("durable"))
        .await
        .expect("appended");
    let newer = history.record_packet("/", packet(b"newer"));
    history.record_packet_at("/", offset, packet(b"first try"));
    history.record_packet_at("/", offset, packet(b"durable"));
    let later = history.record_packet("/", packet(b"later"));
    assert!(newer < later && offset != newer && offset != later);
    history.flush().expect("flushed");
    let state = history
        .load_recovery("/", now - Duration::from_secs(60))
        .expect("loaded");
    assert_eq!(
        conformance::offsets_and_data(&state),
        [
            (newer, b"newer".as_slice()),
            (offset, b"durable"),
            (later, b"later")
        ]
    );
}

#[tokio::test]
async fn two_nodes_share_one_history_and_one_sequence() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let (a, b) = (
        store(&redis, Retention::UNLIMITED),
        store(&redis, Retention::UNLIMITED),
    );
    let mut offsets = Vec::new();
    for i in 0..10 {
        let node = if i % 2 == 0 { &a } else { &b };
        let offset = node
            .append("/", "news", conformance::message(&format!("m{i}")))
            .await
            .expect("appended");
        offsets.push(offset);
    }
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    let everything = ReadQuery {
        after: Some(0),
        limit: 100,
    };
    let (on_a, on_b) = (
        a.read("/", "news", everything).expect("read"),
        b.read("/", "news", everything).expect("read"),
    );
    assert_eq!(on_a, on_b, "every node reads the same history");
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(conformance::texts(&on_a), expected);
    let read_offsets: Vec<u64> = on_a.messages.iter().map(|m| m.offset).collect();
    assert_eq!(read_offsets, offsets);

    // Many appends at once from both nodes: every offset once, each room in offset order.
    let appends: Vec<_> = (0..200)
        .map(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            node.append("/", "burst", conformance::message(&i.to_string()))
        })
        .collect();
    let mut burst = Vec::new();
    for append in appends {
        burst.push(append.await.expect("appended"));
    }
    let page = a
        .read(
            "/",
            "burst",
            ReadQuery {
                after: None,
                limit: 1000,
            },
        )
        .expect("read");
    let stored: Vec<u64> = page.messages.iter().map(|m| m.offset).collect();
    burst.sort_unstable();
    assert_eq!(stored, burst);
    assert!(stored.iter().all(|o| *o > offsets[9]));
}

#[tokio::test]
async fn recovery_offsets_of_every_node_never_equal_a_history_offset() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let history = store(&redis, Retention::UNLIMITED);
    // History offsets handed out before the nodes open their stores, and after.
    let mut taken = Vec::new();
    for i in 0..5 {
        taken.push(
            history
                .append("/", "news", conformance::message(&i.to_string()))
                .await
                .expect("appended"),
        );
    }
    let blocks = config(&redis, Retention::UNLIMITED);
    let open = |dir: &tempfile::TempDir| {
        SqliteStore::open(SqliteConfig {
            offset_blocks: Some(Arc::new(RedisOffsetBlocks::new(&blocks).expect("blocks"))),
            ..SqliteConfig::new(dir.path().join("recovery.db"))
        })
        .expect("store opens")
    };
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let nodes = [open(&dirs[0]), open(&dirs[1])];
    let packet = || conformance::packet_to(&[], b"p", SystemTime::now());
    let mut of_first_node = Vec::new();
    for round in 0..50 {
        for node in &nodes {
            taken.push(node.record_packet("/", packet()));
        }
        of_first_node.push(taken[taken.len() - 2]);
        taken.push(
            history
                .append("/", "news", conformance::message(&round.to_string()))
                .await
                .expect("appended"),
        );
    }
    let count = taken.len();
    taken.sort_unstable();
    taken.dedup();
    assert_eq!(taken.len(), count, "an offset was handed out twice");

    // A node restarted against a Redis that lost its counter (restarted empty) still goes
    // past everything its own file handed out.
    let last_of_node = *of_first_node.iter().max().expect("offsets");
    drop(nodes);
    let mut redis = redis;
    redis.restart().await;
    let restarted = open(&dirs[0]);
    let next = restarted.record_packet("/", packet());
    assert!(next > last_of_node, "{next} after {last_of_node}");
    // ... and it pushed the cluster's counter past its block, for the history's appends.
    let appended = store(&redis, Retention::UNLIMITED)
        .append("/", "news", conformance::message("after the restart"))
        .await
        .expect("appended");
    assert!(appended > next, "{appended} after {next}");
}

#[tokio::test]
async fn redis_unreachable_fails_appends_and_reads_then_heals() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let history = store(&redis, Retention::UNLIMITED);
    let before = history
        .append("/", "news", conformance::message("before"))
        .await
        .expect("appended");
    redis.kill();
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        history.append("/", "news", conformance::message("lost")),
    )
    .await
    .expect("answered in time")
    .expect_err("Redis is down");
    assert!(matches!(error, HistoryError::Unavailable(_)), "{error:?}");
    let error = history
        .read(
            "/",
            "news",
            ReadQuery {
                after: None,
                limit: 10,
            },
        )
        .expect_err("Redis is down");
    assert!(matches!(error, HistoryError::Unavailable(_)), "{error:?}");
    assert!(error
        .to_string()
        .starts_with("the history store is unreachable: "));
    assert!(history.durability().is_err());

    // Back (empty: the test's Redis keeps nothing): appends and reads work again.
    redis.restart().await;
    let mut healed = None;
    for _ in 0..50 {
        match history
            .append("/", "news", conformance::message("after"))
            .await
        {
            Ok(offset) => {
                healed = Some(offset);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(healed.is_some(), "appends work again once Redis is back");
    let page = history
        .read(
            "/",
            "news",
            ReadQuery {
                after: None,
                limit: 10,
            },
        )
        .expect("read");
    assert_eq!(conformance::texts(&page), ["after"]);
    let _ = before;
}

#[tokio::test]
async fn a_flushed_script_costs_at_most_one_failed_append() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let history = store(&redis, Retention::UNLIMITED);
    history
        .append("/", "news", conformance::message("before"))
        .await
        .expect("appended");
    let client = redis::Client::open(redis.url()).expect("url");
    let mut connection = client.get_connection().expect("connected");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut connection)
        .expect("SCRIPT FLUSH");
    let first = history
        .append("/", "news", conformance::message("maybe"))
        .await;
    if let Err(error) = &first {
        assert!(error.to_string().contains("NOSCRIPT"), "{error}");
    }
    history
        .append("/", "news", conformance::message("after"))
        .await
        .expect("the script is loaded again");
}

#[tokio::test]
async fn durability_says_whether_redis_fsyncs_before_answering() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let history = store(&redis, Retention::UNLIMITED);
    let durability = history.durability().expect("answered");
    assert_eq!(
        durability,
        Durability::NotFsynced {
            appendonly: "no".to_owned(),
            appendfsync: "everysec".to_owned()
        }
    );
    assert_eq!(
        durability.to_string(),
        "appendonly no, appendfsync everysec"
    );
    drop(history);
    drop(redis);

    let durable = DurableRedis::start();
    let history = RedisHistory::new(
        RedisHistoryConfig::new(durable.url()),
        Arc::new(MemoryStore::default()),
    )
    .expect("history created");
    let durability = history.durability().expect("answered");
    assert!(durability.is_fsynced(), "{durability:?}");
}

/// A `redis-server` with `appendonly yes` (and `appendfsync always` unless told) in a
/// directory of its own, killed when dropped.
struct DurableRedis {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl DurableRedis {
    fn start() -> Self {
        Self::start_with("always")
    }

    /// With `appendfsync` set to `fsync` (`always`, `everysec`, `no`).
    fn start_with(fsync: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "yes", "--appendfsync", fsync])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = Self {
            port,
            child,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + common::WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for DurableRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends per second through one node's store, with 1 and 64 appends in flight, for each
/// `appendfsync` setting. A measurement, not a check: run it on purpose with
/// `cargo test -p ferrio-redis-adapter --test history -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run on purpose"]
async fn measure_appends_per_second() {
    for fsync in ["always", "everysec"] {
        let redis = DurableRedis::start_with(fsync);
        let history = Arc::new(
            RedisHistory::new(
                RedisHistoryConfig::new(redis.url()),
                Arc::new(MemoryStore::default()),
            )
            .expect("history created"),
        );
        for in_flight in [1usize, 64] {
            let until = std::time::Instant::now() + Duration::from_secs(2);
            let tasks: Vec<_> = (0..in_flight)
                .map(|task| {
                    let history = history.clone();
                    tokio::spawn(async move {
                        let mut done = 0u64;
                        while std::time::Instant::now() < until {
                            history
                                .append("/", "bench", conformance::message(&task.to_string()))
                                .await
                                .expect("appended");
                            done += 1;
                        }
                        done
                    })
                })
                .collect();
            let mut total = 0;
            for task in tasks {
                total += task.await.expect("task");
            }
            println!(
                "appendfsync {fsync}, {in_flight} in flight: {} appends/s",
                total / 2
            );
        }
    }
}
