//! The transports: how Engine.IO packets reach the server and come back.
//!
//! Each open transport is a [`Transport`]: tasks that read and write the wire, a channel of
//! received packets, and a channel of packets to send. [`polling`] and [`websocket`] build
//! them; [`http`] is the HTTP/1.1 connection polling runs on. Nothing here knows about
//! sessions, heartbeats or Socket.IO.
//!
//! Every connection is opened by [`stream::connect`]: plain TCP, or TLS over TCP for
//! `https://` and `wss://` servers.

pub(crate) mod http;
pub(crate) mod polling;
pub(crate) mod stream;
pub(crate) mod websocket;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrio_engineio_proto::{DecodeError, Packet};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{DisconnectReason, OpenError, TransportKind};
use stream::TlsFailure;

/// How many received packets wait for the session before the reader stops reading.
const INCOMING_CAPACITY: usize = 64;

/// What went wrong on a transport.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// The TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with the server failed: {0}")]
    Tls(TlsFailure),
    /// An HTTP request failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The server answered an HTTP request with an error status.
    #[error("HTTP status {status}: {body}")]
    Status {
        status: ::http::StatusCode,
        body: String,
    },
    /// A response body or message was larger than allowed.
    #[error("message larger than {max} bytes")]
    TooLarge { max: usize },
    /// The WebSocket failed.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server sent bytes that are not Engine.IO.
    #[error("invalid Engine.IO data: {0}")]
    Decode(#[from] DecodeError),
    /// The handshake did not go as the protocol says.
    #[error("handshake: {0}")]
    Handshake(String),
    /// A step did not finish in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The server closed the transport.
    #[error("closed by the server")]
    Closed,
}

impl TransportError {
    /// The disconnect reason this failure gives the session.
    pub(crate) fn into_reason(self) -> DisconnectReason {
        match self {
            Self::Closed => DisconnectReason::TransportClose,
            Self::Decode(error) => DisconnectReason::ParseError(error.to_string()),
            other => DisconnectReason::TransportError(other.to_string()),
        }
    }

    /// What this failure tells the user of a connection that could not be opened.
    pub(crate) fn into_open_error(self) -> OpenError {
        match self {
            Self::Tls(TlsFailure::Certificate(error)) => OpenError::Certificate(error),
            Self::Tls(TlsFailure::Other(message)) => OpenError::Tls(message),
            other => OpenError::Transport(other.to_string()),
        }
    }
}

/// A packet from the server, or the failure that ended the transport.
pub(crate) type Incoming = Result<Packet, TransportError>;

/// Limits that apply to every transport.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest response body or WebSocket message accepted.
    pub(crate) max_message_size: usize,
    /// Largest polling request body the server accepts (its `maxPayload`).
    pub(crate) max_payload: usize,
    /// How long one HTTP request that is not a long-poll may take.
    pub(crate) request_timeout: Duration,
}

/// An open transport: its tasks and their channels. Dropping it stops the tasks at once.
#[derive(Debug)]
pub(crate) struct Transport {
    kind: TransportKind,
    incoming: mpsc::Receiver<Incoming>,
    outgoing: Option<mpsc::UnboundedSender<Packet>>,
    /// Polling only: set to stop polling after the request in flight.
    pause: Option<Arc<AtomicBool>>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

/// The channel ends a transport's tasks use.
pub(crate) struct TaskChannels {
    /// Where received packets go (the writer reports its failures here too).
    pub(crate) incoming: mpsc::Sender<Incoming>,
    /// Packets to send.
    pub(crate) outgoing: mpsc::UnboundedReceiver<Packet>,
}

impl Transport {
    /// Makes the channels of a new transport; `spawn` starts its reader and writer with them.
    pub(crate) fn start(
        kind: TransportKind,
        pause: Option<Arc<AtomicBool>>,
        spawn: impl FnOnce(TaskChannels) -> (JoinHandle<()>, JoinHandle<()>),
    ) -> Self {
        let (incoming_tx, incoming) = mpsc::channel(INCOMING_CAPACITY);
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let (reader, writer) = spawn(TaskChannels {
            incoming: incoming_tx,
            outgoing: outgoing_rx,
        });
        Self {
            kind,
            incoming,
            outgoing: Some(outgoing),
            pause,
            reader,
            writer,
        }
    }

    /// Which transport this is.
    pub(crate) fn kind(&self) -> TransportKind {
        self.kind
    }

    /// The next packet from the server, or the failure that ended the transport; `None` once
    /// both tasks have ended (after a pause, or after a failure was reported). Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Option<Incoming> {
        self.incoming.recv().await
    }

    /// Queues a packet. Returns false when writing has stopped (paused, or failed: the failure
    /// is reported through [`Transport::recv`]).
    pub(crate) fn send(&self, packet: Packet) -> bool {
        self.outgoing
            .as_ref()
            .is_some_and(|outgoing| outgoing.send(packet).is_ok())
    }

    /// Polling only: stops polling once the request in flight returns, and stops writing once
    /// what is queued is sent. [`Transport::recv`] then returns `None` after the last packet.
    pub(crate) fn pause(&mut self) {
        if let Some(pause) = &self.pause {
            pause.store(true, Ordering::Release);
        }
        self.outgoing = None;
    }

    /// Sends what is queued (at most for `grace`), then stops.
    pub(crate) async fn shutdown(mut self, grace: Duration) {
        self.outgoing = None;
        let _ = tokio::time::timeout(grace, &mut self.writer).await;
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}
