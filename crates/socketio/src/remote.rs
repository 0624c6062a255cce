//! Events that other nodes of a cluster broadcast, as a multi-node adapter delivers them here.
//!
//! With connection state recovery on, every event a node sends its sockets must be in that
//! node's recovery log, under an offset of that node: a client's last offset is then always
//! one its node knows, and a session restored there misses nothing, whichever node the events
//! came from. So an adapter publishes events without the sender's offset
//! ([`Namespace::broadcast_carries_offset`] says when there is one to remove), and passes what
//! it receives through [`Namespace::remote_broadcast_packet`], which records it here.

use ferrio_socketio_proto::{Packet, PacketKind};

use crate::{BroadcastOptions, BroadcastPacket, Namespace};

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
    /// its last argument, as a broadcast of this node would.
    pub fn remote_broadcast_packet(
        &self,
        mut packet: Packet,
        opts: &BroadcastOptions,
    ) -> BroadcastPacket {
        if self.broadcast_carries_offset(&packet, opts) {
            if let (Some(log), PacketKind::Event { data, .. }) = (self.recovery(), &mut packet.kind)
            {
                log.record(data, opts, None);
            }
        }
        BroadcastPacket::new(packet)
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
