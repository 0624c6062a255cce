//! Helpers shared by the client's integration tests: servers on 127.0.0.1, client settings for
//! each transport mode, bounded waits.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use ferrio_client::{ClientConfig, ConnectionState, ReconnectionConfig, TransportKind};
use ferrio_socketio::{SocketIo, SocketIoConfig};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Long-polling only.
    Polling,
    /// WebSocket from the start.
    WebSocket,
    /// Polling, upgraded to WebSocket.
    Upgrade,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Polling, Mode::WebSocket, Mode::Upgrade];

    /// Client settings for this mode, with quick reconnections.
    pub fn config(self, url: &str) -> ClientConfig {
        let transports = match self {
            Mode::Polling => vec![TransportKind::Polling],
            Mode::WebSocket => vec![TransportKind::WebSocket],
            Mode::Upgrade => vec![TransportKind::Polling, TransportKind::WebSocket],
        };
        ClientConfig {
            transports,
            upgrade: self == Mode::Upgrade,
            timeout: Duration::from_secs(5),
            reconnection: ReconnectionConfig {
                delay: Duration::from_millis(100),
                delay_max: Duration::from_millis(400),
                ..ReconnectionConfig::default()
            },
            ..ClientConfig::new(url)
        }
    }

    /// The transport the connection settles on.
    pub fn final_transport(self) -> TransportKind {
        match self {
            Mode::Polling => TransportKind::Polling,
            Mode::WebSocket | Mode::Upgrade => TransportKind::WebSocket,
        }
    }

    /// The same, as the server names it.
    pub fn server_transport(self) -> ferrio_socketio::TransportKind {
        match self {
            Mode::Polling => ferrio_socketio::TransportKind::Polling,
            Mode::WebSocket | Mode::Upgrade => ferrio_socketio::TransportKind::WebSocket,
        }
    }
}

/// A Ferrio server on 127.0.0.1, stopped when dropped.
pub struct TestServer {
    pub io: SocketIo,
    pub addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(SocketIoConfig::default()).await
    }

    pub async fn with_config(config: SocketIoConfig) -> Self {
        let (service, io) = SocketIo::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(ferrio_socketio::serve(listener, service));
        Self { io, addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.io.close();
        self.task.abort();
    }
}

/// A URL where nothing listens.
pub async fn closed_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

/// `future`, or a panic naming `what` after [`WAIT`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits until the watched value satisfies `predicate`, and returns it.
pub async fn wait_for<T: Clone + std::fmt::Debug>(
    what: &str,
    receiver: &mut watch::Receiver<T>,
    predicate: impl Fn(&T) -> bool,
) -> T {
    let seen = bounded(what, receiver.wait_for(|value| predicate(value))).await;
    match seen {
        Ok(value) => value.clone(),
        Err(_) => panic!("{what}: the sender is gone"),
    }
}

/// Polls `condition` every 10 ms until it holds.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    bounded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Receives the next item of a channel, bounded.
pub async fn next<T>(what: &str, receiver: &mut mpsc::UnboundedReceiver<T>) -> T {
    match bounded(what, receiver.recv()).await {
        Some(value) => value,
        None => panic!("{what}: the channel closed"),
    }
}

/// Records every state the manager goes through, from now on.
pub fn record_states(
    mut receiver: watch::Receiver<ConnectionState>,
) -> mpsc::UnboundedReceiver<ConnectionState> {
    let (tx, rx) = mpsc::unbounded_channel();
    receiver.mark_unchanged();
    tokio::spawn(async move {
        while receiver.changed().await.is_ok() {
            let state = receiver.borrow_and_update().clone();
            if tx.send(state).is_err() {
                return;
            }
        }
    });
    rx
}

/// Receives recorded states until one satisfies `predicate`; returns everything seen.
pub async fn states_until(
    what: &str,
    states: &mut mpsc::UnboundedReceiver<ConnectionState>,
    predicate: impl Fn(&ConnectionState) -> bool,
) -> Vec<ConnectionState> {
    let mut seen = Vec::new();
    bounded(what, async {
        while let Some(state) = states.recv().await {
            let done = predicate(&state);
            seen.push(state);
            if done {
                return;
            }
        }
        panic!("{what}: the manager stopped; saw {seen:?}");
    })
    .await;
    seen
}
