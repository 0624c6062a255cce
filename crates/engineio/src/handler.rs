use std::sync::Arc;

use ferrio_engineio_proto::Message;

use crate::{DisconnectReason, Socket};

/// What the application (the Socket.IO layer, or any user of bare Engine.IO) does with sessions.
///
/// Every callback runs on the task that read the packet: keep it short, and spawn for slow work.
/// Messages of one session arrive in order, one callback at a time.
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-session data kept in [`Socket::data`].
    type Data: Default + Send + Sync + 'static;

    /// A session opened. The handshake is already on its way to the client.
    fn on_connect(&self, socket: &Arc<Socket<Self::Data>>);

    /// A message arrived.
    fn on_message(&self, socket: &Arc<Socket<Self::Data>>, message: Message);

    /// A session ended. Called exactly once per session, after which it accepts no more sends.
    fn on_disconnect(&self, socket: &Arc<Socket<Self::Data>>, reason: DisconnectReason);
}
