//! Sans-IO implementation of the Engine.IO protocol, revisions 3 and 4.
//!
//! Nothing in this crate opens a socket, spawns a task or reads the clock: callers pass bytes and
//! [`std::time::Instant`]s in and get bytes, deadlines and actions out. The `ferrio-engineio`
//! crate drives these pieces over HTTP long-polling and WebSocket.
//!
//! - [`Packet`] and [`Message`]: one Engine.IO packet and the application data it carries.
//! - [`payload`]: the long-polling body codecs (v4 `\x1e`-separated, v3 length-prefixed).
//! - [`ws`]: one packet per WebSocket frame.
//! - [`wsframe`]: RFC 6455 framing for the server end of a WebSocket.
//! - [`Heartbeat`]: the ping/pong state machine for both revisions.
//! - [`OpenPacket`]: the handshake a server sends; [`OpenData`]: the handshake as a client reads it.

mod error;
mod heartbeat;
mod open;
mod packet;
pub mod payload;
mod sid;
mod text;
mod transport;
mod version;
pub mod ws;
pub mod wsframe;

pub use error::DecodeError;
pub use heartbeat::{Heartbeat, HeartbeatAction};
pub use open::{InvalidOpenPacket, OpenData, OpenPacket};
pub use packet::{Message, Packet, PacketType};
pub use sid::Sid;
pub use text::Text;
pub use transport::TransportKind;
pub use version::ProtocolVersion;
