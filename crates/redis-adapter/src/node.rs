//! One node's link to Redis: a publishing connection and a subscribing one, each reconnecting by
//! itself, shared by the adapters of every namespace of a server.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use ferrio_socketio::AdapterFactory;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{timeout, Instant};

use crate::adapter::{AdapterInner, RedisAdapter};
use crate::config::RedisAdapterConfig;
use crate::wire::Channels;

/// Messages published to other nodes.
pub(crate) const PUBLISHED_TOTAL: &str = "ferrio_redis_published_total";
/// Messages that could not be published (Redis down or the queue full).
pub(crate) const PUBLISH_DROPPED_TOTAL: &str = "ferrio_redis_publish_dropped_total";
/// Messages received from Redis.
pub(crate) const RECEIVED_TOTAL: &str = "ferrio_redis_received_total";
/// Connections to Redis lost.
pub(crate) const DISCONNECTS_TOTAL: &str = "ferrio_redis_disconnects_total";
/// 1 while both connections to Redis are up, 0 otherwise.
pub(crate) const CONNECTED: &str = "ferrio_redis_connected";

/// Why a [`RedisNode`] could not be created.
#[derive(Debug, thiserror::Error)]
pub enum RedisAdapterError {
    /// The URL is not a Redis URL.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// There is no Tokio runtime to run the connections on.
    #[error("RedisNode::new must be called within a Tokio runtime")]
    NoRuntime,
}

pub(crate) enum Outbound {
    Publish {
        channel: String,
        payload: Vec<u8>,
    },
    NumSub {
        channel: String,
        reply: oneshot::Sender<Option<usize>>,
    },
}

pub(crate) struct Shared {
    pub(crate) uid: String,
    pub(crate) config: RedisAdapterConfig,
    outbound: mpsc::Sender<Outbound>,
    changes: mpsc::UnboundedSender<()>,
    adapters: RwLock<HashMap<String, Weak<AdapterInner>>>,
    sub_up: AtomicBool,
    pub_up: AtomicBool,
    /// Counts the subscriptions made: a node that resubscribed may have missed messages.
    subscriptions_made: AtomicU64,
    closed: watch::Sender<bool>,
    broadcast_prefix: String,
    request_prefix: String,
    response_prefix: String,
}

impl Shared {
    /// Queues a message for Redis; dropped (and counted) when the queue is full.
    pub(crate) fn publish(&self, channel: String, payload: Vec<u8>) {
        if self
            .outbound
            .try_send(Outbound::Publish { channel, payload })
            .is_err()
        {
            metrics::counter!(PUBLISH_DROPPED_TOTAL).increment(1);
        }
    }

    /// How many nodes subscribe to `channel` (PUBSUB NUMSUB), `None` when Redis cannot say.
    pub(crate) async fn num_sub(&self, channel: String) -> Option<usize> {
        let (reply, answer) = oneshot::channel();
        self.outbound
            .try_send(Outbound::NumSub { channel, reply })
            .ok()?;
        answer.await.ok().flatten()
    }

    pub(crate) fn channels(&self, nsp: &str) -> Channels {
        Channels::new(&self.config.key, nsp, &self.uid)
    }

    pub(crate) fn register(&self, nsp: &str, adapter: Weak<AdapterInner>) {
        self.adapters
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(nsp.to_owned(), adapter);
        let _ = self.changes.send(());
    }

    pub(crate) fn adapter(&self, nsp: &str) -> Option<Arc<AdapterInner>> {
        self.adapters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(nsp)
            .and_then(Weak::upgrade)
    }

    /// The channels and patterns every registered namespace needs.
    fn subscriptions(&self) -> (Vec<String>, Vec<String>) {
        let adapters = self.adapters.read().unwrap_or_else(|p| p.into_inner());
        let mut channels = Vec::new();
        let mut patterns = Vec::new();
        for nsp in adapters.keys() {
            let c = self.channels(nsp);
            patterns.push(c.broadcast_pattern());
            channels.extend([c.request, c.response, c.specific_response]);
        }
        (channels, patterns)
    }

    fn set_up(&self, flag: &AtomicBool, up: bool) {
        if flag.swap(up, Ordering::Relaxed) && !up {
            metrics::counter!(DISCONNECTS_TOTAL).increment(1);
        }
        metrics::gauge!(CONNECTED).set(if self.is_connected() { 1.0 } else { 0.0 });
    }

    /// Which subscription is up: it changes each time the subscribing connection is made
    /// again, after which messages published meanwhile are missing.
    pub(crate) fn subscription(&self) -> u64 {
        self.subscriptions_made.load(Ordering::Acquire)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.sub_up.load(Ordering::Relaxed) && self.pub_up.load(Ordering::Relaxed)
    }

    /// Routes one message from Redis to its namespace's adapter.
    fn dispatch(&self, channel: &str, payload: &[u8]) {
        metrics::counter!(RECEIVED_TOTAL).increment(1);
        let (rest, kind) = if let Some(rest) = channel.strip_prefix(&self.broadcast_prefix) {
            (rest, 0)
        } else if let Some(rest) = channel.strip_prefix(&self.request_prefix) {
            (rest, 1)
        } else if let Some(rest) = channel.strip_prefix(&self.response_prefix) {
            (rest, 2)
        } else {
            return;
        };
        let Some((nsp, tail)) = rest.split_once('#') else {
            return;
        };
        let Some(adapter) = self.adapter(nsp) else {
            return;
        };
        match kind {
            0 => adapter.on_broadcast(tail.strip_suffix('#').unwrap_or(tail), payload),
            1 => adapter.on_request(payload),
            _ => adapter.on_response(payload),
        }
    }
}

/// One server's connection to Redis, shared by the adapters of all its namespaces.
///
/// Cheap to clone. Creating it spawns two tasks (publishing and subscribing), each reconnecting
/// by itself with a doubling delay; while Redis is down, broadcasts are still delivered to this
/// node's clients and what should have gone to other nodes is dropped and counted
/// (`ferrio_redis_publish_dropped_total`). The tasks end on [`RedisNode::close`] or when every
/// clone and every adapter is dropped.
#[derive(Clone)]
pub struct RedisNode {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNode")
            .field("uid", &self.shared.uid)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl RedisNode {
    /// Starts the connections to Redis. Must be called within a Tokio runtime; it does not
    /// wait for Redis, which may come up later.
    pub fn new(config: RedisAdapterConfig) -> Result<Self, RedisAdapterError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| RedisAdapterError::NoRuntime)?;
        let client =
            redis::Client::open(config.url.as_str()).map_err(RedisAdapterError::InvalidUrl)?;
        // Down until both connections are up: a scrape before then says so.
        metrics::gauge!(CONNECTED).set(0.0);
        let (outbound, outbound_rx) = mpsc::channel(config.max_queued_publishes.max(1));
        let (changes, changes_rx) = mpsc::unbounded_channel();
        let (closed, closed_rx) = watch::channel(false);
        let key = config.key.clone();
        let shared = Arc::new(Shared {
            uid: random_id(),
            config,
            outbound,
            changes,
            adapters: RwLock::new(HashMap::new()),
            sub_up: AtomicBool::new(false),
            pub_up: AtomicBool::new(false),
            subscriptions_made: AtomicU64::new(0),
            closed,
            broadcast_prefix: format!("{key}#"),
            request_prefix: format!("{key}-request#"),
            response_prefix: format!("{key}-response#"),
        });
        runtime.spawn(publisher(
            Arc::downgrade(&shared),
            client.clone(),
            outbound_rx,
            closed_rx.clone(),
        ));
        runtime.spawn(subscriber(
            Arc::downgrade(&shared),
            client,
            changes_rx,
            closed_rx,
        ));
        Ok(Self { shared })
    }

    /// The factory to put in [`ferrio_socketio::SocketIoConfig::adapter`].
    pub fn factory(&self) -> AdapterFactory {
        let shared = self.shared.clone();
        Arc::new(move |namespace| Arc::new(RedisAdapter::new(namespace, shared.clone())))
    }

    /// This node's id in the cluster (the `uid` of its messages).
    pub fn uid(&self) -> &str {
        &self.shared.uid
    }

    /// Whether both connections to Redis are up; for health checks.
    pub fn is_connected(&self) -> bool {
        self.shared.is_connected()
    }

    /// How many nodes (Ferrio or Node) serve namespace `nsp`, this one included, as Redis
    /// counts the subscribers of its request channel; 0 when this node has no such namespace.
    ///
    /// Cancel-safe.
    pub async fn server_count(&self, nsp: &str) -> usize {
        match self.shared.adapter(nsp) {
            Some(adapter) => adapter.server_count().await,
            None => 0,
        }
    }

    /// Every room of namespace `nsp` with a member on any node (sockets' own rooms included),
    /// asked of the other nodes with [`RedisAdapterConfig::requests_timeout`]; empty when this
    /// node has no such namespace.
    ///
    /// Cancel-safe.
    pub async fn all_rooms(&self, nsp: &str) -> Vec<ferrio_socketio::Room> {
        match self.shared.adapter(nsp) {
            Some(adapter) => adapter.all_rooms().await,
            None => Vec::new(),
        }
    }

    /// Stops both connections; the adapters go on delivering locally.
    pub fn close(&self) {
        let _ = self.shared.closed.send(true);
        self.shared.sub_up.store(false, Ordering::Relaxed);
        self.shared.pub_up.store(false, Ordering::Relaxed);
    }
}

/// Checks that `url` is a Redis URL [`RedisNode::new`] accepts, without connecting.
pub fn check_redis_url(url: &str) -> Result<(), RedisAdapterError> {
    redis::Client::open(url)
        .map(drop)
        .map_err(RedisAdapterError::InvalidUrl)
}

/// Starts a [`RedisNode`] and returns its adapter factory.
pub fn redis_adapter_factory(
    config: RedisAdapterConfig,
) -> Result<AdapterFactory, RedisAdapterError> {
    Ok(RedisNode::new(config)?.factory())
}

pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos as u64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn next_delay(delay: Duration, config: &RedisAdapterConfig) -> Duration {
    (delay * 2).min(config.max_reconnect_delay)
}

/// Publishes queued messages in order, pipelining whatever is waiting.
async fn publisher(
    shared: Weak<Shared>,
    client: redis::Client,
    mut rx: mpsc::Receiver<Outbound>,
    mut closed: watch::Receiver<bool>,
) {
    let Some(config) = shared.upgrade().map(|s| s.config.clone()) else {
        return;
    };
    let connection_config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout));
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut retry_at = Instant::now();
    let mut delay = config.min_reconnect_delay;
    let mut last_use = Instant::now();
    loop {
        // Idle, the connection is checked every `ping_interval`; lost, it is retried when due.
        let wake = match conn {
            Some(_) => last_use + config.ping_interval,
            None => retry_at.max(Instant::now() + config.min_reconnect_delay),
        };
        let first = tokio::select! {
            message = rx.recv() => match message {
                Some(message) => Some(message),
                None => return,
            },
            _ = tokio::time::sleep_until(wake) => None,
            _ = closed.changed() => return,
        };
        let mut batch: Vec<Outbound> = first.into_iter().collect();
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        if conn.is_none() && Instant::now() >= retry_at {
            match timeout(
                config.connect_timeout,
                client.get_multiplexed_async_connection_with_config(&connection_config),
            )
            .await
            {
                Ok(Ok(connection)) => {
                    conn = Some(connection);
                    delay = config.min_reconnect_delay;
                    if let Some(shared) = shared.upgrade() {
                        shared.set_up(&shared.pub_up, true);
                    }
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "redis adapter: publishing connection failed");
                    retry_at = Instant::now() + delay;
                    delay = next_delay(delay, &config);
                }
                Err(_) => {
                    retry_at = Instant::now() + delay;
                    delay = next_delay(delay, &config);
                }
            }
        }
        let Some(connection) = conn.as_mut() else {
            drop_batch(batch);
            continue;
        };
        last_use = Instant::now();
        let mut pipe = redis::pipe();
        if batch.is_empty() {
            pipe.cmd("PING");
        }
        for message in &batch {
            match message {
                Outbound::Publish { channel, payload } => {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload.as_slice());
                }
                Outbound::NumSub { channel, .. } => {
                    pipe.cmd("PUBSUB").arg("NUMSUB").arg(channel);
                }
            }
        }
        let result = timeout(
            config.response_timeout,
            pipe.query_async::<Vec<redis::Value>>(connection),
        )
        .await;
        match result {
            Ok(Ok(values)) => {
                for (message, value) in batch.into_iter().zip(values) {
                    match message {
                        Outbound::Publish { .. } => metrics::counter!(PUBLISHED_TOTAL).increment(1),
                        Outbound::NumSub { reply, .. } => {
                            let _ = reply.send(num_sub_count(&value));
                        }
                    }
                }
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "redis adapter: publishing failed, reconnecting");
                conn = None;
                retry_at = Instant::now();
                if let Some(shared) = shared.upgrade() {
                    shared.set_up(&shared.pub_up, false);
                }
                drop_batch(batch);
            }
            Err(_) => {
                tracing::warn!("redis adapter: Redis did not answer in time, reconnecting");
                conn = None;
                retry_at = Instant::now();
                if let Some(shared) = shared.upgrade() {
                    shared.set_up(&shared.pub_up, false);
                }
                drop_batch(batch);
            }
        }
    }
}

fn drop_batch(batch: Vec<Outbound>) {
    for message in batch {
        match message {
            Outbound::Publish { .. } => metrics::counter!(PUBLISH_DROPPED_TOTAL).increment(1),
            Outbound::NumSub { reply, .. } => {
                let _ = reply.send(None);
            }
        }
    }
}

/// The count of a `PUBSUB NUMSUB channel` answer: `[channel, count]`.
fn num_sub_count(value: &redis::Value) -> Option<usize> {
    match value {
        redis::Value::Array(items) => match items.get(1)? {
            redis::Value::Int(n) => usize::try_from(*n).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Subscribes to every namespace's channels and hands each message to its adapter;
/// reconnects and subscribes again when the connection is lost.
async fn subscriber(
    shared: Weak<Shared>,
    client: redis::Client,
    mut changes: mpsc::UnboundedReceiver<()>,
    mut closed: watch::Receiver<bool>,
) {
    let Some(config) = shared.upgrade().map(|s| s.config.clone()) else {
        return;
    };
    let mut delay = config.min_reconnect_delay;
    loop {
        if let Ok(Ok(pubsub)) = timeout(config.connect_timeout, client.get_async_pubsub()).await {
            let (mut sink, mut stream) = pubsub.split();
            let mut channels = HashSet::new();
            let mut patterns = HashSet::new();
            let Some(ok) = subscribe_new(&shared, &mut sink, &mut channels, &mut patterns).await
            else {
                return;
            };
            if ok {
                delay = config.min_reconnect_delay;
                if let Some(shared) = shared.upgrade() {
                    shared.subscriptions_made.fetch_add(1, Ordering::AcqRel);
                    shared.set_up(&shared.sub_up, true);
                }
                let mut last_seen = Instant::now();
                loop {
                    tokio::select! {
                        // A connection that went silent (half-open) is found by a PING.
                        _ = tokio::time::sleep_until(last_seen + config.ping_interval) => {
                            let pong = timeout(config.response_timeout, sink.ping::<redis::Value>()).await;
                            if !matches!(pong, Ok(Ok(_))) {
                                break;
                            }
                            last_seen = Instant::now();
                        }
                        message = stream.next() => {
                            let Some(message) = message else { break };
                            last_seen = Instant::now();
                            let Some(shared) = shared.upgrade() else { return };
                            shared.dispatch(message.get_channel_name(), message.get_payload_bytes());
                        }
                        change = changes.recv() => {
                            if change.is_none() {
                                return;
                            }
                            match subscribe_new(&shared, &mut sink, &mut channels, &mut patterns).await {
                                None => return,
                                Some(true) => {}
                                Some(false) => break,
                            }
                        }
                        _ = closed.changed() => return,
                    }
                }
                tracing::warn!("redis adapter: subscription connection lost, reconnecting");
                if let Some(shared) = shared.upgrade() {
                    shared.set_up(&shared.sub_up, false);
                }
            }
        }
        let wake = Instant::now() + delay;
        delay = next_delay(delay, &config);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => break,
                change = changes.recv() => if change.is_none() { return },
                _ = closed.changed() => return,
            }
        }
    }
}

/// Subscribes to what is registered and not subscribed yet. `None`: the node is gone;
/// `Some(false)`: the connection failed.
async fn subscribe_new(
    shared: &Weak<Shared>,
    sink: &mut redis::aio::PubSubSink,
    channels: &mut HashSet<String>,
    patterns: &mut HashSet<String>,
) -> Option<bool> {
    let (want_channels, want_patterns) = shared.upgrade()?.subscriptions();
    let new_channels: Vec<String> = want_channels
        .into_iter()
        .filter(|c| !channels.contains(c))
        .collect();
    let new_patterns: Vec<String> = want_patterns
        .into_iter()
        .filter(|p| !patterns.contains(p))
        .collect();
    let limit = Duration::from_secs(5);
    if !new_channels.is_empty() {
        if !matches!(
            timeout(limit, sink.subscribe(&new_channels)).await,
            Ok(Ok(()))
        ) {
            return Some(false);
        }
        channels.extend(new_channels);
    }
    if !new_patterns.is_empty() {
        if !matches!(
            timeout(limit, sink.psubscribe(&new_patterns)).await,
            Ok(Ok(()))
        ) {
            return Some(false);
        }
        patterns.extend(new_patterns);
    }
    Some(true)
}
