//! Errors of the socket API.

use thiserror::Error;

/// Why an emit did not reach a client's send queue.
#[derive(Debug, Error)]
pub enum EmitError {
    /// The socket is disconnected.
    #[error("the socket is disconnected")]
    Disconnected,
    /// The client is not reading: its queue holds `max` packets. Non-volatile emits then
    /// disconnect the client, which reconnects.
    #[error("the client's send queue is full ({max} packets)")]
    QueueFull {
        /// The queue's capacity.
        max: usize,
    },
    /// The event name is reserved by the protocol (`connect`, `disconnect`, ...).
    #[error("the event name {0:?} is reserved")]
    ReservedEvent(String),
    /// The data could not be serialized to JSON.
    #[error("the data could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Why [`crate::Socket::try_join`] joined no room.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JoinError {
    /// The socket is disconnected.
    #[error("the socket is disconnected")]
    Disconnected,
    /// Joining would put the socket in `rooms` rooms (its own not counted), over
    /// [`crate::SocketIoConfig::max_rooms_per_socket`].
    #[error("too many rooms: joining would make {rooms}, at most {max} allowed")]
    TooManyRooms {
        /// How many rooms the socket would be in.
        rooms: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Why an acknowledgement did not come.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AckError {
    /// No acknowledgement within the timeout.
    #[error("no acknowledgement within the timeout")]
    Timeout,
    /// The socket disconnected first.
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    /// The emit itself failed.
    #[error("the emit failed: {0}")]
    Emit(String),
}

/// Why a namespace refused a connection: sent to the client as CONNECT_ERROR.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{message}")]
pub struct ConnectError {
    /// The message (`err.message` on the client).
    pub message: String,
    /// Optional details (`err.data` on the client).
    pub data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// A refusal with a message and details.
    pub fn with_data(message: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            message: message.into(),
            data: Some(data),
        }
    }
}
