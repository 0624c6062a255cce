//! What a multi-node adapter needs from a namespace for connection state recovery: recording
//! the events other nodes broadcast, and handing sessions over between nodes.
//!
//! With recovery on, every event a node sends its sockets is in that node's recovery log, under
//! an offset of that node: a client's last offset is then always one its node knows, and a
//! session restored there misses nothing, whichever node the events came from. So an adapter
//! publishes events without the sender's offset ([`Adapter::publish_recorded`] gets them so),
//! with the sender's sequence number and assigned offset, and passes what it receives through
//! [`Namespace::remote_broadcast_packet_from`], which records it here.
//!
//! A client may come back through another node. That node asks the others
//! ([`Adapter::restore_session`]); the one holding the session answers with
//! [`Namespace::export_session`], and the asking node resumes it exactly (every missed packet
//! once, in each sender's order) from that answer and its own log: see
//! [`crate::RemoteSession`] for the marks this takes.
//!
//! [`Adapter::publish_recorded`]: crate::Adapter::publish_recorded
//! [`Adapter::restore_session`]: crate::Adapter::restore_session

use ferrio_socketio_proto::{Packet, PacketKind};

use crate::recovery::{ExportedSession, RecordSource};
use crate::{BroadcastOptions, BroadcastPacket, Namespace};

/// Who published an event another node (or an emitter) broadcast, as its message says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteOrigin {
    /// The publisher's uid (a node's, or an emitter's), when the message carries one.
    pub node: Option<String>,
    /// The event's sequence number at a Ferrio publisher
    /// ([`crate::Adapter::publish_recorded`]).
    pub seq: Option<u64>,
    /// The offset it was assigned ([`crate::BroadcastOperator::with_offset`]): recorded here
    /// under it too, so a durable message has the same offset on every node.
    pub offset: Option<u64>,
}

impl Namespace {
    /// Whether this namespace's broadcast `packet` with `opts` carries a recovery offset as its
    /// last argument: recovery is on, and the event is neither volatile nor waiting for
    /// acknowledgements (those are never replayed).
    pub fn broadcast_carries_offset(&self, packet: &Packet, opts: &BroadcastOptions) -> bool {
        self.recovery().is_some()
            && !opts.volatile
            && matches!(packet.kind, PacketKind::Event { id: None, .. })
    }

    /// An event another node (or an emitter) broadcast, made ready for this node's sockets:
    /// with recovery on, it is kept in this node's recovery log and gets this node's offset as
    /// its last argument, as a broadcast of this node would. The same as
    /// [`Namespace::remote_broadcast_packet_from`] an unknown publisher.
    pub fn remote_broadcast_packet(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
    ) -> BroadcastPacket {
        self.remote_broadcast_packet_from(packet, opts, &RemoteOrigin::default())
    }

    /// [`Namespace::remote_broadcast_packet`] from a known publisher: the log keeps who sent
    /// it (so that a session recovered through this node from another gets it exactly once),
    /// and an assigned offset is recorded as is.
    pub fn remote_broadcast_packet_from(
        &self,
        mut packet: Packet,
        opts: &BroadcastOptions,
        origin: &RemoteOrigin,
    ) -> BroadcastPacket {
        let mut recorded = None;
        if self.broadcast_carries_offset(&packet, opts) {
            if let (Some(log), PacketKind::Event { data, .. }) = (self.recovery(), &mut packet.kind)
            {
                let source = RecordSource::Remote {
                    node: origin.node.as_deref().map(std::sync::Arc::from),
                    seq: origin.seq,
                };
                recorded = Some(log.record_from(data, opts, origin.offset, source));
            }
        }
        BroadcastPacket::new(packet).with_record(recorded, false)
    }

    /// Hands over to another node the recovery session `pid` and what it missed since
    /// `offset`: it is no longer held here. `None` when recovery is off, or this node would
    /// not resume it itself (unknown, expired, offset not in the log, too much missed).
    pub fn export_session(&self, pid: &str, offset: &str) -> Option<ExportedSession> {
        self.recovery()?.export(pid, offset)
    }

    /// Runs `f` (which publishes a request for a session) with the recovery log locked, and
    /// returns the log's position then ([`crate::RemoteSession::own_mark`]): this node's
    /// packets recorded later are published after the request. `None` with recovery off.
    pub fn recovery_mark_with<R>(&self, f: impl FnOnce() -> R) -> (Option<u64>, R) {
        match self.recovery() {
            Some(log) => {
                let (mark, result) = log.mark_with(f);
                (Some(mark), result)
            }
            None => (None, f()),
        }
    }

    /// The recovery log's position now ([`crate::RemoteSession::echo_mark`], when a request
    /// comes back to the node that published it). `None` with recovery off.
    pub fn recovery_mark(&self) -> Option<u64> {
        self.recovery().map(|log| log.mark_with(|| ()).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RecoveryConfig, SocketIo, SocketIoConfig};
    use ferrio_socketio_proto::PacketData;
    use serde_json::Value;

    fn event(id: Option<u64>) -> Packet {
        Packet::event(
            "/",
            PacketData::new(vec![Value::from("ev"), Value::from(1)]),
            id,
        )
    }

    fn args(packet: &BroadcastPacket) -> Vec<Value> {
        match &packet.packet().kind {
            PacketKind::Event { data, .. } => data.args.clone(),
            other => panic!("not an event: {other:?}"),
        }
    }

    #[tokio::test]
    async fn remote_events_get_a_local_offset_only_with_recovery_on() {
        let (_service, io) = SocketIo::new(SocketIoConfig {
            recovery: Some(RecoveryConfig::default()),
            ..SocketIoConfig::default()
        });
        let nsp = io.of("/");
        let opts = BroadcastOptions::default();
        assert!(nsp.broadcast_carries_offset(&event(None), &opts));
        let kept = nsp.remote_broadcast_packet(event(None), &opts);
        let kept = args(&kept);
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(kept[2].is_string(), "an offset: {kept:?}");
        // Asking for acks, or volatile: not kept, not numbered.
        assert!(!nsp.broadcast_carries_offset(&event(Some(7)), &opts));
        assert_eq!(
            args(&nsp.remote_broadcast_packet(event(Some(7)), &opts)).len(),
            2
        );
        let volatile = BroadcastOptions {
            volatile: true,
            ..BroadcastOptions::default()
        };
        assert_eq!(
            args(&nsp.remote_broadcast_packet(event(None), &volatile)).len(),
            2
        );

        let (_service, plain) = SocketIo::new(SocketIoConfig::default());
        let nsp = plain.of("/");
        assert!(!nsp.broadcast_carries_offset(&event(None), &opts));
        assert_eq!(
            args(&nsp.remote_broadcast_packet(event(None), &opts)).len(),
            2
        );
    }
}
