//! Broadcast operators: choose sockets by room, then emit to them or act on them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::adapter::{BroadcastOptions, SocketInfo};
use crate::namespace::Namespace;
use crate::{AckResponse, EmitError, IntoRooms, Payload, Socket};

/// How long [`BroadcastOperator::emit_with_ack`] waits when no timeout was set.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A set of target sockets in one namespace, narrowed step by step as in Node
/// (`io.to("a").except("b").volatile().emit(...)`).
#[derive(Debug, Clone)]
pub struct BroadcastOperator {
    namespace: Arc<Namespace>,
    opts: BroadcastOptions,
    timeout: Option<Duration>,
    /// The recovery offset to record the event under, instead of a fresh one.
    offset: Option<u64>,
}

impl BroadcastOperator {
    pub(crate) fn new(namespace: Arc<Namespace>) -> Self {
        Self {
            namespace,
            opts: BroadcastOptions::default(),
            timeout: None,
            offset: None,
        }
    }

    /// Adds rooms to target: sockets in any of them.
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        for room in rooms.into_rooms() {
            if !self.opts.rooms.contains(&room) {
                self.opts.rooms.push(room);
            }
        }
        self
    }

    /// Leaves out the sockets in these rooms.
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    /// This node only, when the adapter spans several.
    pub fn local(mut self) -> Self {
        self.opts.local = true;
        self
    }

    /// Drops the packet for clients that are not keeping up instead of disconnecting them.
    pub fn volatile(mut self) -> Self {
        self.opts.volatile = true;
        self
    }

    /// How long [`BroadcastOperator::emit_with_ack`] waits for acknowledgements.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Records the event for connection state recovery under `offset` instead of a fresh one,
    /// so that the offset a client receives as the event's last argument is `offset`.
    ///
    /// For an event that already has an offset in the recovery store's sequence: the history
    /// offset of a durable room message (the gateway does this), so that one number is both
    /// what a live client sees and a valid `after` for the room's history. The offset must come
    /// from that store (it is never handed out twice), and each offset is emitted once: a client
    /// reconnecting with an offset resumes after the first packet carrying it. Without recovery,
    /// for volatile events and for [`BroadcastOperator::emit_with_ack`] (none of which are
    /// recorded), it changes nothing.
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// The options built so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Sends event `name` with one JSON argument to every target. The packet is encoded once.
    pub fn emit(self, name: &str, data: impl Serialize) -> Result<(), EmitError> {
        self.emit_payload(name, Payload::json(data)?)
    }

    /// Sends event `name` with any arguments to every target.
    pub fn emit_payload(self, name: &str, payload: Payload) -> Result<(), EmitError> {
        let packet =
            self.namespace
                .event_outgoing(name, payload, None, &self.opts, self.offset, true)?;
        self.namespace.adapter().broadcast(&packet, &self.opts);
        Ok(())
    }

    /// Sends event `name` asking every target for an acknowledgement, and returns every answer
    /// (or its absence) once all came or the timeout passed.
    pub async fn emit_with_ack(
        self,
        name: &str,
        payload: Payload,
    ) -> Result<Vec<AckResponse>, EmitError> {
        // One id for every recipient, so the packet is still encoded once.
        let ack_id = self.namespace.next_ack_id();
        let packet =
            self.namespace
                .event_outgoing(name, payload, Some(ack_id), &self.opts, None, true)?;
        let timeout = self.timeout.unwrap_or(DEFAULT_ACK_TIMEOUT);
        Ok(self
            .namespace
            .adapter()
            .broadcast_with_ack(packet, ack_id, self.opts, timeout)
            .await)
    }

    /// The targeted sockets of this node.
    pub fn sockets(&self) -> Vec<Arc<Socket>> {
        self.namespace
            .adapter()
            .socket_ids(&self.opts)
            .iter()
            .filter_map(|id| self.namespace.socket(id))
            .collect()
    }

    /// Describes every targeted socket, on every node.
    pub async fn fetch_sockets(self) -> Vec<SocketInfo> {
        self.namespace.adapter().fetch_sockets(self.opts).await
    }

    /// Makes every targeted socket join `rooms`.
    pub fn sockets_join(self, rooms: impl IntoRooms) {
        self.namespace
            .adapter()
            .add_sockets(&self.opts, &rooms.into_rooms());
    }

    /// Makes every targeted socket leave `rooms`.
    pub fn sockets_leave(self, rooms: impl IntoRooms) {
        self.namespace
            .adapter()
            .del_sockets(&self.opts, &rooms.into_rooms());
    }

    /// Disconnects every targeted socket; with `close`, closes their connections too.
    pub fn disconnect_sockets(self, close: bool) {
        self.namespace
            .adapter()
            .disconnect_sockets(&self.opts, close);
    }
}
