//! The bounded queue of packets waiting for a session's transport.

use std::collections::VecDeque;
use std::sync::Mutex;

use ferrio_engineio_proto::Packet;
use tokio::sync::Notify;

use crate::pacing::OutboxPacing;

/// Packets waiting to be written, bounded, with a wake-up for the one reader.
///
/// An empty queue holds no allocation, so an idle session costs only this struct. The single
/// reader (the pending long-poll, or the WebSocket writer) waits on [`Outbox::ready`]; the push
/// that makes the queue non-empty stores a wake-up even when nobody waits yet, so none is lost,
/// and later pushes wake nobody: every reader takes what is queued once woken (a partial take
/// wakes itself again, see [`Outbox::wake`]).
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Mutex<VecDeque<Packet>>,
    capacity: u32,
    /// Its part in fan-out pacing (see [`crate::pacing`]).
    pub(crate) pacing: OutboxPacing,
    ready: Notify,
}

/// The queue already holds its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            pacing: OutboxPacing::default(),
            ready: Notify::new(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Reads the pacing word without taking the lock (see `Socket::warm`).
    pub(crate) fn warm(&self) {
        self.pacing.warm();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Packet>> {
        // A panic while holding this lock cannot leave the queue inconsistent: every critical
        // section is a single push or drain.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a packet unless the queue is full.
    pub(crate) fn push(&self, packet: Packet) -> Result<(), Full> {
        self.push_all(std::iter::once(packet))
    }

    /// Queues several packets at once, all or none.
    ///
    /// Only the push that makes the queue non-empty wakes the reader: one woken earlier and not
    /// run yet takes every packet queued meanwhile.
    pub(crate) fn push_all(
        &self,
        packets: impl ExactSizeIterator<Item = Packet>,
    ) -> Result<(), Full> {
        let woken = {
            let mut queue = self.lock();
            if queue.len() + packets.len() > self.capacity() {
                return Err(Full);
            }
            let woken = queue.is_empty();
            self.pacing.queued(woken);
            queue.extend(packets);
            woken
        };
        if woken {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Queues a packet even past the capacity: for the one farewell packet of a closing session.
    pub(crate) fn force_push(&self, packet: Packet) {
        self.lock().push_back(packet);
        self.ready.notify_one();
    }

    /// Moves every queued packet into `out`; returns how many.
    pub(crate) fn drain_into(&self, out: &mut Vec<Packet>) -> usize {
        let mut queue = self.lock();
        let count = queue.len();
        out.extend(queue.drain(..));
        if queue.capacity() > 64 {
            // A burst grew the queue: give the memory back rather than keep it for an idle session.
            queue.shrink_to(0);
        }
        count
    }

    /// Takes packets from the front while `take` accepts them (it sees each one first, and
    /// returns whether to take it; a packet it refuses stays queued). Returns whether packets
    /// remain. A queue left empty holds no allocation.
    pub(crate) fn take_while(&self, mut take: impl FnMut(&Packet) -> bool) -> bool {
        let mut queue = self.lock();
        while let Some(packet) = queue.front() {
            if !take(packet) {
                break;
            }
            queue.pop_front();
        }
        if queue.is_empty() {
            *queue = VecDeque::new();
            return false;
        }
        true
    }

    /// Waits until a packet may have been queued since the last drain. Cancel-safe: a wake-up
    /// taken by a wait that is dropped unfinished is stored again.
    pub(crate) fn ready(&self) -> tokio::sync::futures::Notified<'_> {
        self.ready.notified()
    }

    /// Wakes the reader without queuing anything (the session is closing).
    pub(crate) fn wake(&self) {
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_but_farewell_always_fits() {
        let outbox = Outbox::new(2);
        assert_eq!(outbox.push(Packet::Noop), Ok(()));
        assert_eq!(outbox.push_all([Packet::Noop].into_iter()), Ok(()));
        assert_eq!(outbox.push(Packet::Noop), Err(Full));
        assert_eq!(outbox.push_all([Packet::Noop].into_iter()), Err(Full));
        outbox.force_push(Packet::Close);
        let mut out = Vec::new();
        assert_eq!(outbox.drain_into(&mut out), 3);
        assert_eq!(out.last(), Some(&Packet::Close));
    }

    #[tokio::test]
    async fn a_push_before_the_wait_is_not_lost() {
        let outbox = Outbox::new(4);
        assert_eq!(outbox.push(Packet::Noop), Ok(()));
        // The wake-up was stored: this returns at once.
        outbox.ready().await;
        let mut out = Vec::new();
        assert_eq!(outbox.drain_into(&mut out), 1);
    }

    #[test]
    fn take_while_stops_where_told_and_frees_an_emptied_queue() {
        let outbox = Outbox::new(8);
        for _ in 0..3 {
            assert_eq!(outbox.push(Packet::Noop), Ok(()));
        }
        let mut taken = 0;
        assert!(outbox.take_while(|_| {
            taken += 1;
            taken <= 2
        }));
        assert_eq!(taken, 3, "the third was seen, not taken");
        assert!(!outbox.take_while(|_| true));
        assert_eq!(outbox.lock().capacity(), 0);
    }
}
