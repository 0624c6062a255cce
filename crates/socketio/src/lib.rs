//! A Socket.IO server (protocol v5, and v4 for socket.io-client v2) on top of
//! `ferrio-engineio`: namespaces, rooms, acknowledgements, binary payloads, broadcasts and
//! connect middlewares, with an API that follows the Node server's.
//!
//! - [`SocketIo`] is `io`: create namespaces with [`SocketIo::ns`] / [`SocketIo::of`], mount the
//!   [`SocketIoService`] it returns.
//! - [`Socket`] is a client's connection to one namespace: register event handlers with
//!   [`Socket::on`], emit, join rooms.
//! - [`BroadcastOperator`] targets sockets by room (`io.to("room").except("b").emit(...)`);
//!   broadcasts are encoded once and the same buffer is queued for every recipient.
//! - Rooms live behind the [`Adapter`] trait; [`LocalAdapter`] serves a single process.
//!
//! Metrics (through the `metrics` facade; the application installs the exporter): the engine's
//! counters, re-exported here ([`HANDSHAKES_TOTAL`], [`DISCONNECTS_TOTAL`], ...), plus the round
//! trip of server-emitted acknowledgements ([`ACK_DURATION_SECONDS`], [`ACK_TIMEOUTS_TOTAL`]).
//! The table is `docs/metrics.md`.
//!
//! Event handlers run on the connection's reading task, in order, like Node's listeners: keep
//! them short and spawn asynchronous work.

mod ack;
pub mod adapter;
mod client;
mod connect_timeout;
mod errors;
mod handlers;
mod ids;
mod io;
mod limits;
mod namespace;
mod operators;
mod outgoing;
mod reason;
mod recovery;
mod remote;
mod server_emit;
mod small_set;
mod socket;

pub use ack::{AckResponse, AckSender, ACK_DURATION_SECONDS, ACK_TIMEOUTS_TOTAL};
pub use adapter::{Adapter, AdapterFactory, BroadcastOptions, LocalAdapter, SocketInfo};
pub use client::{ClientState, SocketIoHandler};
pub use errors::{AckError, ConnectError, EmitError, JoinError};
pub use ferrio_engineio::{
    count_refusal, serve, serve_with, Handshake, ProtocolVersion, RateLimit, ServeConfig,
    TransportKind, BYTES_RECEIVED_TOTAL, BYTES_SENT_TOTAL, DISCONNECTS_TOTAL, FANOUT_PACED_TOTAL,
    FANOUT_PACE_TIMEOUTS_TOTAL, HANDSHAKES_TOTAL, PACKETS_RECEIVED_TOTAL, PACKETS_SENT_TOTAL,
    REFUSALS_TOTAL, UPGRADES_TOTAL,
};
pub use ferrio_socketio_proto::{ArgError, Payload};
pub use ids::{IntoRooms, Room, SocketId};
pub use io::{SocketIo, SocketIoConfig, SocketIoService};
pub use limits::{EventRateLimit, OverLimit};
pub use namespace::{ConnectHandler, DynamicNamespace, Middleware, Namespace};
pub use operators::{BroadcastOperator, DEFAULT_ACK_TIMEOUT};
pub use outgoing::{BroadcastPacket, Outgoing};
pub use reason::DisconnectReason;
pub use recovery::{ExportedPacket, ExportedSession, RecoveryConfig, RemoteSession};
pub use remote::RemoteOrigin;
pub use server_emit::{
    ServerAck, ServerEvent, ServerEventHandler, ServerSideEmitError, ServerSideHandlers,
};
pub use socket::{DisconnectHandler, Event, EventHandler, Socket};

/// The README's Rust snippets, compiled as doc tests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
