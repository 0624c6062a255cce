//! A packet encoded once, ready for any number of recipients.

use ferrio_engineio::{Message, Text};
use ferrio_socketio_proto::{encode_text_into, Packet};

/// The Engine.IO messages of one Socket.IO packet: its text, then one binary message per
/// attachment. Cloning shares the buffers; a broadcast encodes once and clones per recipient.
#[derive(Debug, Clone)]
pub struct Outgoing {
    messages: Vec<Message>,
}

impl Outgoing {
    /// Encodes a packet.
    pub fn encode(packet: &Packet) -> Self {
        let mut text = String::with_capacity(64);
        text.push('4');
        encode_text_into(packet, &mut text);
        // The buffer starts with the message type written just above.
        let text = Text::from_packet_string(text).unwrap_or_else(|_| Text::new(""));
        let mut messages = Vec::with_capacity(1 + packet.attachments().len());
        messages.push(Message::Text(text));
        messages.extend(packet.attachments().iter().cloned().map(Message::Binary));
        Self { messages }
    }

    /// The Engine.IO messages, text first.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Queues the messages on one connection, all or none.
    pub(crate) fn send_to<D>(
        &self,
        conn: &ferrio_engineio::Socket<D>,
    ) -> Result<(), ferrio_engineio::SendError> {
        match self.messages.as_slice() {
            [single] => conn.send(single.clone()),
            many => conn.send_many(many.to_vec()),
        }
    }
}

/// A packet on its way to many sockets: the packet itself, for adapters that forward it to other
/// nodes in their own format, and its encoding, queued as is on every local recipient.
#[derive(Debug, Clone)]
pub struct BroadcastPacket {
    packet: Packet,
    encoded: Outgoing,
    /// Its position in the namespace's recovery log, when it was recorded there.
    recorded_at: Option<u64>,
    /// Whether it was published to the other nodes as it was recorded.
    published: bool,
}

impl BroadcastPacket {
    /// Encodes a packet once for every recipient.
    pub fn new(packet: Packet) -> Self {
        let encoded = Outgoing::encode(&packet);
        Self {
            packet,
            encoded,
            recorded_at: None,
            published: false,
        }
    }

    pub(crate) fn with_record(mut self, recorded_at: Option<u64>, published: bool) -> Self {
        self.recorded_at = recorded_at;
        self.published = published;
        self
    }

    pub(crate) fn recorded_at(&self) -> Option<u64> {
        self.recorded_at
    }

    /// Whether the packet was already published to the other nodes when it was recorded for
    /// connection state recovery ([`crate::Adapter::publish_recorded`]): an adapter's
    /// [`crate::Adapter::broadcast`] then delivers it to this node's sockets only.
    pub fn is_published(&self) -> bool {
        self.published
    }

    /// The packet (binary attachments in `attachments`, placeholders in the arguments).
    pub fn packet(&self) -> &Packet {
        &self.packet
    }

    /// The Engine.IO messages every local recipient is sent.
    pub fn encoded(&self) -> &Outgoing {
        &self.encoded
    }
}
