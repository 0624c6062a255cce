//! The engine's metrics, through the `metrics` facade: handshakes, upgrades, disconnects, and
//! packets and bytes in each direction. The application installs an exporter; without one every
//! count is a no-op. The table of every metric is in `docs/metrics.md`.
//!
//! Per-session events (handshake, upgrade, disconnect) look their counter up by label each time:
//! they are rare next to packets. The traffic counters are taken once per engine and bumped once
//! per frame read and once per batch written, so counting costs an atomic add, not a lookup.

use metrics::Counter;

use crate::{DisconnectReason, ProtocolVersion, TransportKind};

/// Sessions opened: `ferrio_handshakes_total{transport="polling|websocket",protocol="3|4"}`.
pub const HANDSHAKES_TOTAL: &str = "ferrio_handshakes_total";
/// Polling sessions that switched to WebSocket: `ferrio_upgrades_total`.
pub const UPGRADES_TOTAL: &str = "ferrio_upgrades_total";
/// Sessions closed: `ferrio_disconnects_total{reason="..."}`, the reason as in
/// [`DisconnectReason::label`].
pub const DISCONNECTS_TOTAL: &str = "ferrio_disconnects_total";
/// Engine.IO packets received from clients: `ferrio_packets_received_total{transport}`.
pub const PACKETS_RECEIVED_TOTAL: &str = "ferrio_packets_received_total";
/// Engine.IO packets sent to clients: `ferrio_packets_sent_total{transport}`.
pub const PACKETS_SENT_TOTAL: &str = "ferrio_packets_sent_total";
/// Payload bytes received (WebSocket frame payloads, polling bodies):
/// `ferrio_bytes_received_total{transport}`.
pub const BYTES_RECEIVED_TOTAL: &str = "ferrio_bytes_received_total";
/// Payload bytes sent (WebSocket frame payloads, polling bodies):
/// `ferrio_bytes_sent_total{transport}`.
pub const BYTES_SENT_TOTAL: &str = "ferrio_bytes_sent_total";

/// Times a client was paced, its next packet held until the sessions it woke earlier had
/// taken theirs (see [`crate::EngineConfig::fanout_window`]): `ferrio_fanout_paced_total`.
pub const FANOUT_PACED_TOTAL: &str = "ferrio_fanout_paced_total";
/// Paced waits cut short by their one-second bound: `ferrio_fanout_pace_timeouts_total`. Should
/// stay at zero; a rising count means sessions are not taking their packets.
pub const FANOUT_PACE_TIMEOUTS_TOTAL: &str = "ferrio_fanout_pace_timeouts_total";

/// The label of a transport.
fn transport_label(transport: TransportKind) -> &'static str {
    match transport {
        TransportKind::Polling => "polling",
        TransportKind::WebSocket => "websocket",
    }
}

/// Counts a session opened.
pub(crate) fn count_handshake(transport: TransportKind, protocol: ProtocolVersion) {
    let protocol = match protocol {
        ProtocolVersion::V3 => "3",
        ProtocolVersion::V4 => "4",
    };
    metrics::counter!(
        HANDSHAKES_TOTAL,
        "transport" => transport_label(transport),
        "protocol" => protocol
    )
    .increment(1);
}

/// Counts a client paced.
pub(crate) fn count_paced() {
    metrics::counter!(FANOUT_PACED_TOTAL).increment(1);
}

/// Counts a paced wait cut short by its bound.
pub(crate) fn count_pace_timeout() {
    metrics::counter!(FANOUT_PACE_TIMEOUTS_TOTAL).increment(1);
}

/// Counts an upgrade completed.
pub(crate) fn count_upgrade() {
    metrics::counter!(UPGRADES_TOTAL).increment(1);
}

/// Counts a session closed.
pub(crate) fn count_disconnect(reason: DisconnectReason) {
    metrics::counter!(DISCONNECTS_TOTAL, "reason" => reason.label()).increment(1);
}

/// The counters of one direction on one transport.
#[derive(Debug)]
pub(crate) struct Flow {
    packets: Counter,
    bytes: Counter,
}

impl Flow {
    fn new(packets: &'static str, bytes: &'static str, transport: TransportKind) -> Self {
        let transport = transport_label(transport);
        Self {
            packets: metrics::counter!(packets, "transport" => transport),
            bytes: metrics::counter!(bytes, "transport" => transport),
        }
    }

    /// Counts `packets` packets of `bytes` bytes in all.
    pub(crate) fn count(&self, packets: usize, bytes: usize) {
        self.packets.increment(packets as u64);
        self.bytes.increment(bytes as u64);
    }
}

/// The traffic counters of an engine, registered once when it is created.
#[derive(Debug)]
pub(crate) struct Traffic {
    pub(crate) polling_in: Flow,
    pub(crate) polling_out: Flow,
    pub(crate) websocket_in: Flow,
    pub(crate) websocket_out: Flow,
}

impl Traffic {
    pub(crate) fn new() -> Self {
        let inbound = |t| Flow::new(PACKETS_RECEIVED_TOTAL, BYTES_RECEIVED_TOTAL, t);
        let outbound = |t| Flow::new(PACKETS_SENT_TOTAL, BYTES_SENT_TOTAL, t);
        Self {
            polling_in: inbound(TransportKind::Polling),
            polling_out: outbound(TransportKind::Polling),
            websocket_in: inbound(TransportKind::WebSocket),
            websocket_out: outbound(TransportKind::WebSocket),
        }
    }
}
