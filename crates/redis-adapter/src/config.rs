//! The settings of the Redis adapter.

use std::time::Duration;

/// Settings of a [`crate::RedisNode`]. Defaults match `@socket.io/redis-adapter`.
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// The Redis URL, e.g. `redis://127.0.0.1:6379/`.
    pub url: String,
    /// The channel prefix (`key` in the Node adapter). `socket.io`.
    pub key: String,
    /// How long a request to the other nodes (fetch sockets) waits for their answers. 5 s.
    pub requests_timeout: Duration,
    /// How long connecting to Redis may take before the attempt counts as failed. 2 s.
    pub connect_timeout: Duration,
    /// How long a command may wait for Redis's answer. 2 s.
    pub response_timeout: Duration,
    /// The first wait after a lost connection; it doubles up to `max_reconnect_delay`. 100 ms.
    pub min_reconnect_delay: Duration,
    /// The longest wait between two connection attempts. 2 s.
    pub max_reconnect_delay: Duration,
    /// How often an idle publishing connection is checked with a PING, so that a lost Redis
    /// shows in [`crate::RedisNode::is_connected`] without waiting for traffic. 5 s.
    pub ping_interval: Duration,
    /// Most messages waiting to be published. Past it, broadcasts to other nodes are dropped
    /// (local delivery is unaffected) and counted. 65 536.
    pub max_queued_publishes: usize,
    /// Whether an event recorded for connection state recovery under an assigned offset
    /// ([`ferrio_socketio::BroadcastOperator::with_offset`]) carries that offset to the other
    /// nodes, which then record it under the same one. Turn it on only when assigned offsets
    /// are unique across the cluster (they come from one store every node shares, such as
    /// [`crate::history::RedisHistory`]): a node's own store could hand out another node's
    /// offset for a packet of its own. Off: every node records it under an offset of its own.
    pub share_assigned_offsets: bool,
}

impl RedisAdapterConfig {
    /// Defaults with this Redis URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379/".to_owned(),
            key: "socket.io".to_owned(),
            requests_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            min_reconnect_delay: Duration::from_millis(100),
            max_reconnect_delay: Duration::from_secs(2),
            ping_interval: Duration::from_secs(5),
            max_queued_publishes: 65_536,
            share_assigned_offsets: false,
        }
    }
}
