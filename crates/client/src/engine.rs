//! One Engine.IO session: opened over the first configured transport, kept alive by answering
//! the server's pings, watched for missing pings, and upgraded from polling to WebSocket.
//!
//! The upgrade follows the protocol and the JS client: once open over polling, a WebSocket
//! joins the session and sends `2probe`; on `3probe` polling pauses (the poll in flight returns,
//! the server releases it with a noop, and queued packets are posted), then `5` goes over the
//! WebSocket, followed by whatever was sent meanwhile. A failed probe leaves the session on
//! polling.

use std::sync::Arc;
use std::time::Duration;

use ferrio_engineio_proto::{Message, OpenData, Packet};
use http::HeaderMap;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::heartbeat::PingMonitor;
use crate::transport::{polling, websocket, Limits, Transport, TransportError};
use crate::url::EngineUrl;
use crate::{DisconnectReason, HeartbeatStats, TransportKind};

/// How to open sessions, from the client configuration.
#[derive(Debug, Clone)]
pub(crate) struct EngineOptions {
    pub(crate) url: Arc<EngineUrl>,
    pub(crate) headers: Arc<HeaderMap>,
    pub(crate) transports: Vec<TransportKind>,
    pub(crate) upgrade: bool,
    /// Bounds opening a session, probing an upgrade, and pausing polling for it.
    pub(crate) timeout: Duration,
    pub(crate) limits: Limits,
}

/// What happened on the session.
#[derive(Debug)]
pub(crate) enum EngineEvent {
    /// A message for the Socket.IO layer.
    Message(Message),
    /// The session moved to another transport.
    Upgraded(TransportKind),
    /// A ping arrived and was answered.
    Heartbeat(HeartbeatStats),
    /// The session is over.
    Closed(DisconnectReason),
}

/// A spawned task, aborted when dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Upgrade {
    /// Not upgrading (never, done, or failed).
    None,
    /// A WebSocket is being probed.
    Probing(AbortOnDrop<Result<websocket::WsStream, TransportError>>),
    /// The probe succeeded; polling is pausing until this deadline.
    Pausing {
        stream: Box<websocket::WsStream>,
        deadline: Instant,
    },
}

/// An open Engine.IO session.
pub(crate) struct EngineSession {
    options: EngineOptions,
    open: OpenData,
    transport: Transport,
    monitor: PingMonitor,
    upgrade: Upgrade,
    /// Packets sent while polling pauses for the upgrade; they follow the upgrade packet.
    held: Vec<Packet>,
}

impl EngineSession {
    /// Opens a session over the first configured transport, within `options.timeout`.
    /// Starts probing an upgrade when that is polling and the server offers WebSocket.
    pub(crate) async fn open(options: EngineOptions) -> Result<Self, TransportError> {
        let first = options
            .transports
            .first()
            .copied()
            .unwrap_or(TransportKind::Polling);
        let url = options.url.clone();
        let headers = options.headers.clone();
        let opening = async {
            match first {
                TransportKind::Polling => polling::open(url, headers, options.limits).await,
                TransportKind::WebSocket => websocket::open(url, headers, options.limits).await,
            }
        };
        let (open, transport) = tokio::time::timeout(options.timeout, opening)
            .await
            .map_err(|_| TransportError::Timeout("opening the connection"))??;
        tracing::debug!(sid = %open.sid, transport = %first, "engine.io session open");

        let monitor = PingMonitor::new(
            open.ping_interval,
            open.ping_timeout,
            Instant::now().into_std(),
        );
        let upgrade = if first == TransportKind::Polling
            && options.upgrade
            && options.transports.contains(&TransportKind::WebSocket)
            && open.upgrades.iter().any(|name| name == "websocket")
        {
            let (url, headers, sid, limits) = (
                options.url.clone(),
                options.headers.clone(),
                open.sid.clone(),
                options.limits,
            );
            let timeout = options.timeout;
            Upgrade::Probing(AbortOnDrop(tokio::spawn(async move {
                tokio::time::timeout(timeout, websocket::probe(url, headers, sid, limits))
                    .await
                    .map_err(|_| TransportError::Timeout("the upgrade probe"))?
            })))
        } else {
            Upgrade::None
        };
        Ok(Self {
            options,
            open,
            transport,
            monitor,
            upgrade,
            held: Vec::new(),
        })
    }

    /// The transport carrying the session now.
    pub(crate) fn transport(&self) -> TransportKind {
        self.transport.kind()
    }

    /// The heartbeat measurements so far.
    pub(crate) fn heartbeat(&self) -> HeartbeatStats {
        self.monitor.stats()
    }

    /// Queues packets to send, in order.
    pub(crate) fn send(&mut self, packets: impl IntoIterator<Item = Packet>) {
        if matches!(self.upgrade, Upgrade::Pausing { .. }) {
            self.held.extend(packets);
            return;
        }
        for packet in packets {
            // A transport that stopped writing reports why through `next`.
            self.transport.send(packet);
        }
    }

    /// The next thing that happens. Cancel-safe: every await is on a channel, a join handle or
    /// a timer, and state changes only after one completes.
    pub(crate) async fn next(&mut self) -> EngineEvent {
        loop {
            let ping_deadline = self.monitor.poll_timeout().map(Instant::from_std);
            tokio::select! {
                received = self.transport.recv() => match received {
                    Some(Ok(packet)) => {
                        if let Some(event) = self.handle_packet(packet) {
                            return event;
                        }
                    }
                    Some(Err(error)) => return EngineEvent::Closed(error.into_reason()),
                    None => match std::mem::replace(&mut self.upgrade, Upgrade::None) {
                        Upgrade::Pausing { stream, .. } => return self.finish_upgrade(*stream),
                        _ => return EngineEvent::Closed(DisconnectReason::TransportClose),
                    },
                },
                step = upgrade_step(&mut self.upgrade) => match step {
                    UpgradeStep::Probed(Ok(stream)) => {
                        tracing::debug!(sid = %self.open.sid, "upgrade probe answered: pausing polling");
                        self.transport.pause();
                        self.upgrade = Upgrade::Pausing {
                            stream,
                            deadline: Instant::now() + self.options.timeout,
                        };
                    }
                    UpgradeStep::Probed(Err(error)) => {
                        tracing::debug!(sid = %self.open.sid, %error, "upgrade failed: staying on polling");
                        self.upgrade = Upgrade::None;
                    }
                    UpgradeStep::PauseExpired => {
                        return EngineEvent::Closed(DisconnectReason::TransportError(
                            "polling did not pause for the upgrade in time".to_owned(),
                        ));
                    }
                },
                () = sleep_until(ping_deadline) => {
                    if self.monitor.poll_expired(Instant::now().into_std()) {
                        return EngineEvent::Closed(DisconnectReason::PingTimeout);
                    }
                }
            }
        }
    }

    fn handle_packet(&mut self, packet: Packet) -> Option<EngineEvent> {
        match packet {
            Packet::Message(message) => Some(EngineEvent::Message(message)),
            Packet::Ping(data) => {
                let stats = self.monitor.handle_ping(Instant::now().into_std());
                self.send([Packet::Pong(data)]);
                Some(EngineEvent::Heartbeat(stats))
            }
            Packet::Close => Some(EngineEvent::Closed(DisconnectReason::TransportClose)),
            // Noops release polls; the rest has no meaning for a client in an open session.
            Packet::Noop | Packet::Pong(_) | Packet::Open(_) | Packet::Upgrade => None,
        }
    }

    /// Polling has paused: the WebSocket takes over with the upgrade packet, then what was
    /// held back.
    fn finish_upgrade(&mut self, stream: websocket::WsStream) -> EngineEvent {
        let mut first = Vec::with_capacity(self.held.len() + 1);
        first.push(Packet::Upgrade);
        first.append(&mut self.held);
        self.transport = websocket::start(stream, first);
        tracing::debug!(sid = %self.open.sid, "upgraded to websocket");
        EngineEvent::Upgraded(TransportKind::WebSocket)
    }

    /// Closes the session in the background, flushing what is queued for at most the
    /// configured timeout. As the JS client: polling posts a close packet, a WebSocket is
    /// closed with a close frame.
    pub(crate) fn close(mut self) {
        if self.transport.kind() == TransportKind::Polling {
            self.send([Packet::Close]);
        }
        let grace = self.options.timeout;
        tokio::spawn(self.transport.shutdown(grace));
    }
}

/// What the upgrade in progress came to.
enum UpgradeStep {
    /// The probe finished.
    Probed(Result<Box<websocket::WsStream>, TransportError>),
    /// Polling did not pause in time.
    PauseExpired,
}

/// Waits for the upgrade's next step; never completes when there is no upgrade in progress.
async fn upgrade_step(upgrade: &mut Upgrade) -> UpgradeStep {
    match upgrade {
        Upgrade::Probing(task) => UpgradeStep::Probed(match (&mut task.0).await {
            Ok(result) => result.map(Box::new),
            Err(error) => Err(TransportError::Handshake(format!("probe task: {error}"))),
        }),
        Upgrade::Pausing { deadline, .. } => {
            tokio::time::sleep_until(*deadline).await;
            UpgradeStep::PauseExpired
        }
        Upgrade::None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
