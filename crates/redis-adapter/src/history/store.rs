//! [`RedisHistory`]: the rooms' history in Redis, recovery in a store of the node.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferrio_history::{
    Appended, HistoryError, HistoryStore, NewMessage, Offset, Page, ReadQuery, RecoveryPacket,
    RecoverySession, RecoveryState, Retention, StoredMessage,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::durability::{self, Durability};
use super::keys::Keys;
use super::scripts;
use super::sync_pool::SyncPool;
use super::RedisHistoryConfig;

/// How long appends fail at once after a failed attempt to connect.
const RETRY_CONNECT: Duration = Duration::from_millis(100);

/// Why a [`RedisHistory`] (or a [`super::RedisOffsetBlocks`]) could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RedisHistoryError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// There is no Tokio runtime to run the appends on.
    #[error("RedisHistory::new must be called within a Tokio runtime")]
    NoRuntime,
}

/// One append on its way to Redis.
struct AppendOp {
    namespace: String,
    room: String,
    event: String,
    args: String,
    at: i64,
    reply: oneshot::Sender<Result<Offset, HistoryError>>,
}

/// Room history in Redis, shared by every node on the same Redis and key prefix; connection
/// state recovery in `recovery`, a store of this node (see the module's doc).
///
/// **Appends** go to one task, in the order [`HistoryStore::append`] was called: it sends
/// whatever is waiting as one pipeline (one round trip, and one fsync in Redis with
/// `appendfsync always`), and answers each append with its offset once Redis has answered.
/// The script is loaded once per connection and named by its digest (`EVALSHA`); if Redis
/// forgets it (`SCRIPT FLUSH`), that batch fails and the next connection loads it again.
/// Offsets of one node therefore grow in the order of its calls. While Redis is unreachable,
/// appends fail at once with [`HistoryError::Unavailable`] (after the connection attempt,
/// bounded by [`RedisHistoryConfig::connect_timeout`]).
///
/// **Reads** block (the trait's contract) on a connection of a small pool.
///
/// **Offsets.** History offsets and the recovery store's offsets (with
/// [`super::RedisOffsetBlocks`]) come from one counter, so none is ever handed out twice in the
/// cluster. History offsets grow in the order of the appends; recovery offsets grow on each
/// node; but a history offset is not ordered against a node's recovery offsets (the node drew
/// its block earlier). Recovery needs only uniqueness: it resumes by position in its log.
pub struct RedisHistory {
    keys: Keys,
    retention: Retention,
    appends: mpsc::UnboundedSender<AppendOp>,
    pool: SyncPool,
    recovery: Arc<dyn HistoryStore>,
}

impl std::fmt::Debug for RedisHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHistory")
            .field("keys", &self.keys)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisHistory {
    /// The history `config` describes, with recovery kept in `recovery`. Connects lazily:
    /// Redis may be down now. Must be called within a Tokio runtime (the appends' task runs
    /// there).
    pub fn new(
        config: RedisHistoryConfig,
        recovery: Arc<dyn HistoryStore>,
    ) -> Result<Self, RedisHistoryError> {
        let client =
            redis::Client::open(config.url.as_str()).map_err(RedisHistoryError::InvalidUrl)?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RedisHistoryError::NoRuntime)?;
        let keys = Keys::new(&config.key);
        let (appends, queue) = mpsc::unbounded_channel();
        runtime.spawn(write_appends(
            client.clone(),
            config.clone(),
            keys.clone(),
            queue,
        ));
        Ok(Self {
            keys,
            retention: config.retention,
            appends,
            pool: SyncPool::new(client, config.connect_timeout, config.response_timeout),
            recovery,
        })
    }

    /// Whether Redis has an acknowledged append on disk (`CONFIG GET appendonly` and
    /// `appendfsync`). Blocks: call it on a blocking thread. `Err` when Redis is unreachable.
    pub fn durability(&self) -> Result<Durability, HistoryError> {
        durability::check(&self.pool)
    }
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_unix_millis(millis: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// The `ARGV` of the oldest time kept: empty when nothing expires.
fn cutoff_arg(retention: &Retention) -> String {
    retention
        .cutoff(SystemTime::now())
        .map(|cutoff| unix_millis(cutoff).to_string())
        .unwrap_or_default()
}

/// A connection for appends, with the digest of the append script loaded on it; or why not.
///
/// The script is sent once per connection, then named by its digest: each append is then a
/// short command, and more of a pipeline fits in one read (and one fsync) of Redis.
async fn connect(
    client: &redis::Client,
    connection_config: &redis::AsyncConnectionConfig,
    config: &RedisHistoryConfig,
) -> Result<(redis::aio::MultiplexedConnection, String), String> {
    let mut connection = tokio::time::timeout(
        config.connect_timeout,
        client.get_multiplexed_async_connection_with_config(connection_config),
    )
    .await
    .map_err(|_| "connecting timed out".to_owned())?
    .map_err(|error| error.to_string())?;
    let digest = tokio::time::timeout(
        config.response_timeout,
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(scripts::APPEND)
            .query_async::<String>(&mut connection),
    )
    .await
    .map_err(|_| "loading the append script timed out".to_owned())?
    .map_err(|error| error.to_string())?;
    Ok((connection, digest))
}

/// Sends the appends in order, pipelining whatever is waiting, until the store is dropped.
async fn write_appends(
    client: redis::Client,
    config: RedisHistoryConfig,
    keys: Keys,
    mut queue: mpsc::UnboundedReceiver<AppendOp>,
) {
    let connection_config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout));
    let max_messages = config.retention.max_messages.unwrap_or(0);
    let ttl = config
        .retention
        .max_age
        .map_or(0, |age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
    let counter = keys.offsets();
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    // After a failed attempt to connect, appends fail at once until then, so that a burst
    // while Redis is down costs one attempt, not one per batch.
    let mut retry_at = tokio::time::Instant::now();
    let mut append_digest = String::new();
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < config.max_batch.max(1) {
            match queue.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if connection.is_none() && tokio::time::Instant::now() < retry_at {
            fail(batch, "Redis was unreachable a moment ago");
            continue;
        }
        if connection.is_none() {
            match connect(&client, &connection_config, &config).await {
                Ok((new, digest)) => {
                    connection = Some(new);
                    append_digest = digest;
                }
                Err(error) => {
                    retry_at = tokio::time::Instant::now() + RETRY_CONNECT;
                    fail(batch, &error);
                    continue;
                }
            }
        }
        let Some(link) = connection.as_mut() else {
            continue;
        };
        let cutoff = cutoff_arg(&config.retention);
        let mut pipe = redis::pipe();
        // One failing script (a key of another type) must not fail the others' appends.
        pipe.ignore_errors();
        for op in &batch {
            pipe.cmd("EVALSHA")
                .arg(&append_digest)
                .arg(2)
                .arg(&counter)
                .arg(keys.room(&op.namespace, &op.room))
                .arg(&op.event)
                .arg(&op.args)
                .arg(op.at)
                .arg(max_messages)
                .arg(&cutoff)
                .arg(ttl);
        }
        let answer = tokio::time::timeout(
            config.response_timeout,
            pipe.query_async::<Vec<redis::Value>>(link),
        )
        .await;
        match answer {
            Ok(Ok(values)) if values.len() == batch.len() => {
                if values.iter().any(is_noscript) {
                    // Redis forgot the script (SCRIPT FLUSH): the next connection loads it.
                    tracing::warn!("history: Redis forgot the append script, reconnecting");
                    connection = None;
                }
                for (op, value) in batch.into_iter().zip(values) {
                    let _ = op.reply.send(offset_of(value));
                }
            }
            Ok(Ok(values)) => fail(
                batch,
                &format!("{} answers to a pipeline of appends", values.len()),
            ),
            Ok(Err(error)) => {
                tracing::warn!(%error, "history: appending to Redis failed, reconnecting");
                connection = None;
                fail(batch, &error.to_string());
            }
            Err(_) => {
                tracing::warn!("history: Redis did not answer an append in time, reconnecting");
                connection = None;
                fail(batch, "no answer in time");
            }
        }
    }
}

/// Answers every append of `batch` with [`HistoryError::Unavailable`].
fn fail(batch: Vec<AppendOp>, why: &str) {
    for op in batch {
        let _ = op
            .reply
            .send(Err(HistoryError::Unavailable(why.to_owned())));
    }
}

/// Whether an answer says Redis does not know the script's digest.
fn is_noscript(value: &redis::Value) -> bool {
    matches!(value, redis::Value::ServerError(error) if error.code() == "NOSCRIPT")
}

/// The offset the append script returned.
fn offset_of(value: redis::Value) -> Result<Offset, HistoryError> {
    match value {
        redis::Value::Int(offset) => {
            Offset::try_from(offset).map_err(|_| HistoryError::Corrupt(format!("offset {offset}")))
        }
        redis::Value::ServerError(error) => Err(HistoryError::WriteFailed(format!(
            "redis refused the append: {} {}",
            error.code(),
            error.details().unwrap_or_default()
        ))),
        other => Err(HistoryError::Corrupt(format!(
            "the append answered {other:?}"
        ))),
    }
}

/// A text of a read's answer.
fn text(value: &redis::Value) -> Result<String, HistoryError> {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone())
            .map_err(|_| HistoryError::Corrupt("a history value is not UTF-8".to_owned())),
        redis::Value::SimpleString(text) => Ok(text.clone()),
        other => Err(HistoryError::Corrupt(format!(
            "unexpected history value {other:?}"
        ))),
    }
}

/// A read's answer: `more`, then id, event, arguments and time of each message.
fn parse_page(values: &[redis::Value], after: Option<Offset>) -> Result<Page, HistoryError> {
    let (more, rest) = match values.split_first() {
        Some((redis::Value::Int(more), rest)) => (*more == 1, rest),
        _ => return Err(HistoryError::Corrupt("a history read's answer".to_owned())),
    };
    if rest.len() % 4 != 0 {
        return Err(HistoryError::Corrupt("a history read's answer".to_owned()));
    }
    let mut messages = Vec::with_capacity(rest.len() / 4);
    for chunk in rest.chunks_exact(4) {
        let id = text(&chunk[0])?;
        let offset = id
            .split_once('-')
            .and_then(|(offset, _)| offset.parse().ok())
            .ok_or_else(|| HistoryError::Corrupt(format!("history entry id {id}")))?;
        let args: Vec<Value> = serde_json::from_str(&text(&chunk[2])?)
            .map_err(|e| HistoryError::Corrupt(format!("arguments of message {offset}: {e}")))?;
        let at = text(&chunk[3])?.parse().unwrap_or(0);
        messages.push(StoredMessage {
            offset,
            event: text(&chunk[1])?,
            args,
            at: from_unix_millis(at),
        });
    }
    let next = messages.last().map(|m| m.offset).or(after);
    Ok(Page {
        messages,
        next,
        more,
    })
}

impl HistoryStore for RedisHistory {
    fn append(&self, namespace: &str, room: &str, message: NewMessage) -> Appended {
        let args = match serde_json::to_string(&message.args) {
            Ok(args) => args,
            Err(e) => return Appended::ready(Err(HistoryError::Corrupt(e.to_string()))),
        };
        let (reply, receiver) = oneshot::channel();
        let op = AppendOp {
            namespace: namespace.to_owned(),
            room: room.to_owned(),
            event: message.event,
            args,
            at: unix_millis(message.at),
            reply,
        };
        match self.appends.send(op) {
            Ok(()) => Appended::waiting(receiver),
            Err(_) => Appended::ready(Err(HistoryError::Closed)),
        }
    }

    fn read(&self, namespace: &str, room: &str, query: ReadQuery) -> Result<Page, HistoryError> {
        query.validate()?;
        let values: Vec<redis::Value> = self.pool.query(
            redis::cmd("EVAL")
                .arg(scripts::READ)
                .arg(1)
                .arg(self.keys.room(namespace, room))
                .arg(query.after.map(|a| a.to_string()).unwrap_or_default())
                .arg(query.limit)
                .arg(cutoff_arg(&self.retention)),
        )?;
        parse_page(&values, query.after)
    }

    fn record_packet(&self, namespace: &str, packet: RecoveryPacket) -> Offset {
        self.recovery.record_packet(namespace, packet)
    }

    fn record_packet_at(&self, namespace: &str, offset: Offset, packet: RecoveryPacket) {
        self.recovery.record_packet_at(namespace, offset, packet);
    }

    fn save_session(&self, namespace: &str, session: RecoverySession) {
        self.recovery.save_session(namespace, session);
    }

    fn remove_session(&self, namespace: &str, pid: &str) {
        self.recovery.remove_session(namespace, pid);
    }

    fn prune_recovery(&self, namespace: &str, before: SystemTime) {
        self.recovery.prune_recovery(namespace, before);
    }

    fn load_recovery(
        &self,
        namespace: &str,
        since: SystemTime,
    ) -> Result<RecoveryState, HistoryError> {
        self.recovery.load_recovery(namespace, since)
    }

    /// Appends are acknowledged only once Redis has answered: only the recovery store has
    /// anything to flush.
    fn flush(&self) -> Result<(), HistoryError> {
        self.recovery.flush()
    }
}
