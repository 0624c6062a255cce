//! A Socket.IO adapter over Redis pub/sub for Ferrio: many nodes, one set of rooms.
//!
//! Every node keeps the rooms of its own sockets; broadcasts, joins, leaves and disconnects are
//! applied locally and published for the other nodes, and `fetch_sockets` and broadcasts with
//! acknowledgements ask the other nodes and wait for their answers (with a timeout).
//!
//! The channels and messages are those of the official `@socket.io/redis-adapter` (classic
//! pub/sub flavour) and `@socket.io/redis-emitter`, so Ferrio and Node Socket.IO nodes can share
//! one cluster and existing backends that emit through Redis reach Ferrio clients.
//!
//! ```no_run
//! use ferrio_redis_adapter::{RedisAdapterConfig, RedisNode};
//! use ferrio_socketio::{SocketIo, SocketIoConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = RedisNode::new(RedisAdapterConfig::new("redis://127.0.0.1:6379/"))?;
//! let (service, io) = SocketIo::new(SocketIoConfig {
//!     adapter: node.factory(),
//!     ..SocketIoConfig::default()
//! });
//! # let _ = (service, io);
//! # Ok(())
//! # }
//! ```
//!
//! With connection state recovery on, a node publishes its events without its recovery offset
//! (with its sequence number, and the offset of a durable message, in a fourth item of the
//! message that the Node adapter ignores), and each receiving node records them in its own log
//! under its own offset ([`ferrio_socketio::Namespace::remote_broadcast_packet_from`]): a
//! client that reconnects to its node recovers every event it missed, whichever node published
//! it. A client that reconnects through another node is recovered there: that node asks the
//! others for the session (request type 100, which Node nodes ignore), the node holding it
//! hands it over ([`ferrio_socketio::Namespace::export_session`]) and the asking node adds the
//! events its owner had not seen ([`ferrio_socketio::RemoteSession`] says how that is exact).
//!
//! [`history`] keeps durable rooms' history in Redis, for every node ([`history::RedisHistory`]).
//!
//! Connections to Redis are re-established by themselves (doubling delay, up to
//! [`RedisAdapterConfig::max_reconnect_delay`]); meanwhile local delivery goes on,
//! [`RedisNode::is_connected`] is false and the metrics `ferrio_redis_connected`,
//! `ferrio_redis_disconnects_total` and `ferrio_redis_publish_dropped_total` say so.
//!
//! # Compatibility with the Node packages
//!
//! Checked by `tests/interop_node.rs` against `socket.io` 4.8, `@socket.io/redis-adapter` 8.3
//! (classic, not sharded) and `@socket.io/redis-emitter` 5.1 (`tests/redis/package.json`):
//! broadcasts both ways (rooms, except, binary as msgpack `bin`), REMOTE_FETCH, ALL_ROOMS,
//! REMOTE_JOIN / REMOTE_LEAVE / REMOTE_DISCONNECT, BROADCAST with acknowledgements both ways,
//! SERVER_SIDE_EMIT with and without acknowledgements both ways
//! ([`ferrio_socketio::Namespace::server_side_emit`], JSON arguments only, as Node sends them),
//! PUBSUB NUMSUB as the server count, and the emitter (uid `emitter`).
//!
//! Not supported: the sharded adapter
//! (`SPUBLISH`), the custom `parser` option (msgpack only) and `publishOnSpecificResponseChannel`
//! is implied (Ferrio answers on the requester's own response channel, where Node listens).
//! An acknowledgement from a Node node carries only the first argument and no socket id
//! ([`ferrio_socketio::AckResponse::socket`] is then empty), as in the Node adapter.

mod adapter;
mod config;
pub mod history;
mod node;
mod restore;
mod wire;

pub use adapter::RedisAdapter;
pub use config::RedisAdapterConfig;
pub use node::{check_redis_url, redis_adapter_factory, RedisAdapterError, RedisNode};
