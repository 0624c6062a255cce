//! Fan-out pacing: a client whose packets make the server queue packets for many sessions gets
//! ahead of the writes by a bounded number of such packets.
//!
//! One packet from one client can queue a packet for every session in a room. If that client
//! sends its next broadcast as soon as the last one is acknowledged, nothing stops it from
//! queuing broadcasts faster than the server can write them: the queues grow, and each delivery
//! waits behind every broadcast queued before it. A single-threaded server writes every frame
//! before it reads the next packet, which paces such a client by itself (and gives up batching:
//! one system call per frame). Here the frames are written by each session's own task, so the
//! pacing is explicit, and bounded by a window rather than strict: a client may have up to
//! [`crate::EngineConfig::fanout_window`] fanned-out packets whose frames are still waiting for
//! their sessions' tasks; past that, the next is handled, then nothing more is read from it or
//! written to it (its acknowledgement included) until the oldest of them has been taken.
//! Meanwhile each session's task takes every frame queued for it in one write, so a system call
//! carries several frames and the deliveries per second stay high, while a delivery waits for
//! about one round of the writes instead of for the whole backlog.
//!
//! What counts as "waiting": a packet queued for a WebSocket session whose task is not in the
//! middle of a write. Frames queued while the task writes (a client slow to read, a full socket)
//! are not counted: a slow client is never waited for; its queue bound deals with it. Nor are
//! the sender's own queue (it is the one waiting) and polling sessions' queues.
//!
//! The bookkeeping is a ring of counters, one per **round**: every packet handled from a
//! client takes the current round number, each other session it wakes (an empty queue given a
//! packet) adds one to that round's counter and keeps the round in its queue, and the session's
//! task subtracts it again when it takes the packets. A packet that queued packets for at least
//! [`FANOUT_MIN`] other sessions has fanned out and closes its round: the next packets get the
//! next number.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::telemetry::{count_pace_timeout, count_paced};

/// Sessions other than its sender's a packet must queue packets for to count as fanned out.
pub(crate) const FANOUT_MIN: u32 = 2;

/// Rounds kept apart; windows are smaller than this.
const RING: usize = 64;

/// The largest window: rounds further back share a counter with current ones.
pub(crate) const MAX_WINDOW: u32 = (RING as u32) / 2;

/// How often paced clients look again in any case (a round's last session closed without
/// being woken again, say).
const RECHECK: Duration = Duration::from_millis(50);

/// The longest a paced client waits: pacing slows a client, it never stops one.
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Bits of an outbox's pacing word (see [`OutboxPacing`]).
const WEBSOCKET: u32 = 1 << 31;
const WRITING: u32 = 1 << 30;
const ROUND_MASK: u32 = WRITING - 1;

/// The rounds of the whole process: every engine's sessions count in them.
static ROUNDS: Rounds = Rounds::new();

/// The packet being handled on one thread.
#[derive(Clone, Copy)]
struct Handling {
    /// Its round; 0 while no packet is handled.
    round: u32,
    /// The address of its sender's queue: the sender's own answers are not counted.
    sender: usize,
    /// Packets it queued for other sessions.
    queued: u32,
}

const IDLE: Handling = Handling {
    round: 0,
    sender: 0,
    queued: 0,
};

thread_local! {
    static HANDLING: Cell<Handling> = const { Cell::new(IDLE) };
}

/// The ring of rounds: for each, how many sessions woken in it still wait for their task.
#[derive(Debug)]
pub(crate) struct Rounds {
    /// The round the next packet handled takes (never 0).
    current: AtomicU32,
    pending: [AtomicU32; RING],
    /// The tasks of the clients waiting in [`Rounds::wait_for`].
    wakers: Mutex<Vec<Waker>>,
    /// How many clients wait.
    waiting: AtomicU32,
    /// Whether a task wakes the waiting clients every [`RECHECK`].
    watching: AtomicBool,
}

impl Rounds {
    const fn new() -> Self {
        Self {
            current: AtomicU32::new(1),
            pending: [const { AtomicU32::new(0) }; RING],
            wakers: Mutex::new(Vec::new()),
            waiting: AtomicU32::new(0),
            watching: AtomicBool::new(false),
        }
    }

    fn slot(&self, round: u32) -> &AtomicU32 {
        &self.pending[round as usize % RING]
    }

    /// A session's task took packets of this round (0: none).
    fn release(&self, round: u32) {
        if round == 0 {
            return;
        }
        if self.slot(round).fetch_sub(1, Ordering::AcqRel) == 1
            && self.waiting.load(Ordering::Acquire) > 0
        {
            self.wake_waiting();
        }
    }

    /// Handling a packet from the client whose queue is `sender` starts on this thread: the
    /// other sessions it wakes count in the current round.
    fn begin(&self, sender: &OutboxPacing) {
        let round = self.current.load(Ordering::Relaxed).max(1);
        HANDLING.with(|h| {
            h.set(Handling {
                round,
                sender: sender.address(),
                queued: 0,
            })
        });
    }

    /// Handling the packet ended: returns its round if it fanned out (and closes that round).
    fn end(&self) -> Option<u32> {
        let Handling { round, queued, .. } = HANDLING.with(|h| h.replace(IDLE));
        if round == 0 || queued < FANOUT_MIN {
            return None;
        }
        // Several clients may close the same round at once: one moves it on.
        let next = ((round + 1) & ROUND_MASK).max(1);
        let _ = self
            .current
            .compare_exchange(round, next, Ordering::Relaxed, Ordering::Relaxed);
        Some(round)
    }

    /// Whether every session woken in `round` has taken its packets.
    fn round_taken(&self, round: u32) -> bool {
        self.slot(round).load(Ordering::Acquire) == 0
    }

    /// Waits until every session woken in `round` took its packets, for [`MAX_WAIT`] at most.
    ///
    /// A hand-written future of 32 bytes: it is awaited in every WebSocket session's task,
    /// whose size is that of its largest state, and an `async` wait on a `Notified` made each
    /// idle session 0.13 KiB larger (measured at 19,000 connections).
    fn wait_for(&'static self, round: u32) -> RoundTaken {
        RoundTaken {
            rounds: self,
            round,
            started: None,
        }
    }

    /// Wakes every waiting client to look again.
    fn wake_waiting(&self) {
        let wakers = std::mem::take(&mut *self.lock_wakers());
        wakers.into_iter().for_each(Waker::wake);
    }

    fn lock_wakers(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // A panic while holding this lock leaves a list of wakers, still usable.
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps one task waking the waiting clients every [`RECHECK`] while any waits.
    fn watch(&'static self) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RECHECK).await;
                self.wake_waiting();
                if self.waiting.load(Ordering::Acquire) == 0 {
                    // A client that starts waiting after this finds the flag down and starts
                    // another watch.
                    self.watching.store(false, Ordering::Release);
                    return;
                }
            }
        });
    }
}

/// Handling a packet from the client whose queue is `sender` starts on this thread.
pub(crate) fn begin(sender: &OutboxPacing) {
    ROUNDS.begin(sender);
}

/// Handling the packet ended: its round if it fanned out.
pub(crate) fn end() -> Option<u32> {
    ROUNDS.end()
}

/// The round `window` rounds before `round`; `None` while there was none (the first rounds).
pub(crate) fn rounds_back(round: u32, window: u32) -> Option<u32> {
    round.checked_sub(window).filter(|&back| back >= 1)
}

/// Waits until every session woken in `round` took its packets, a second at most.
pub(crate) fn wait_for(round: u32) -> RoundTaken {
    ROUNDS.wait_for(round)
}

/// The wait of [`wait_for`].
#[derive(Debug)]
pub(crate) struct RoundTaken {
    rounds: &'static Rounds,
    round: u32,
    /// When it first had to wait.
    started: Option<tokio::time::Instant>,
}

impl Future for RoundTaken {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let rounds = self.rounds;
        if rounds.round_taken(self.round) {
            return self.finish();
        }
        let started = *self.started.get_or_insert_with(|| {
            count_paced();
            rounds.waiting.fetch_add(1, Ordering::AcqRel);
            rounds.watch();
            tokio::time::Instant::now()
        });
        if started.elapsed() >= MAX_WAIT {
            count_pace_timeout();
            return self.finish();
        }
        rounds.lock_wakers().push(cx.waker().clone());
        // Taken between the look and the registration: nobody would wake this task.
        if rounds.round_taken(self.round) {
            return self.finish();
        }
        Poll::Pending
    }
}

impl RoundTaken {
    fn finish(&mut self) -> Poll<()> {
        if self.started.take().is_some() {
            self.rounds.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        Poll::Ready(())
    }
}

impl Drop for RoundTaken {
    fn drop(&mut self) {
        // A wait dropped unfinished (its session's task ended) no longer counts as waiting.
        let _ = self.finish();
    }
}

/// A session queue's part in pacing: whether its reader is a WebSocket task, whether that task
/// is writing, and the round of the packet that woke it while it waited.
#[derive(Debug, Default)]
pub(crate) struct OutboxPacing(AtomicU32);

impl OutboxPacing {
    /// A packet is queued here; `woken` if the queue was empty. Counts it for the packet
    /// being handled, if any and if this is not its sender's queue, and a wake-up in its round.
    pub(crate) fn queued(&self, woken: bool) {
        self.queued_in(&ROUNDS, woken);
    }

    fn address(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    fn queued_in(&self, rounds: &Rounds, woken: bool) {
        let address = self.address();
        let round = HANDLING.with(|h| {
            let mut handling = h.get();
            if handling.round == 0 || handling.sender == address {
                return 0;
            }
            handling.queued += 1;
            h.set(handling);
            handling.round
        });
        if round == 0 || !woken {
            return;
        }
        let word = self.0.load(Ordering::Acquire);
        if word & WEBSOCKET == 0 || word & (WRITING | ROUND_MASK) != 0 {
            return;
        }
        // Counted first, so that a task taking the packet at once never takes it below zero.
        rounds.slot(round).fetch_add(1, Ordering::AcqRel);
        if self
            .0
            .compare_exchange(word, word | round, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            rounds.release(round);
        }
    }

    /// Reads the word (see `Socket::warm`).
    pub(crate) fn warm(&self) {
        std::hint::black_box(self.0.load(Ordering::Relaxed));
    }

    /// A WebSocket task now reads this queue: its waits count.
    pub(crate) fn websocket(&self) {
        self.0.store(WEBSOCKET, Ordering::Release);
    }

    /// The task takes the queued packets to write them: their round is done with, and packets
    /// queued until [`OutboxPacing::written`] are not counted.
    pub(crate) fn taking(&self) {
        self.taking_in(&ROUNDS);
    }

    fn taking_in(&self, rounds: &Rounds) {
        let word = self.0.swap(WEBSOCKET | WRITING, Ordering::AcqRel);
        rounds.release(word & ROUND_MASK);
    }

    /// The task's write completed.
    pub(crate) fn written(&self) {
        self.0.store(WEBSOCKET, Ordering::Release);
    }

    /// The task is gone (the session ended, or its WebSocket did): nothing it held counts.
    pub(crate) fn released(&self) {
        self.released_in(&ROUNDS);
    }

    fn released_in(&self, rounds: &Rounds) {
        let word = self.0.swap(0, Ordering::AcqRel);
        rounds.release(word & ROUND_MASK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` queues read by WebSocket tasks.
    fn websocket_queues(n: usize) -> Vec<OutboxPacing> {
        (0..n)
            .map(|_| {
                let queue = OutboxPacing::default();
                queue.websocket();
                queue
            })
            .collect()
    }

    /// Handles a packet from `sender` that wakes these queues; returns its round if it
    /// fanned out.
    fn handle_from(rounds: &Rounds, sender: &OutboxPacing, woken: &[OutboxPacing]) -> Option<u32> {
        rounds.begin(sender);
        woken.iter().for_each(|queue| queue.queued_in(rounds, true));
        rounds.end()
    }

    /// Handles a packet from a client of its own that wakes these queues.
    fn handle(rounds: &Rounds, woken: &[OutboxPacing]) -> Option<u32> {
        handle_from(rounds, &OutboxPacing::default(), woken)
    }

    #[test]
    fn a_round_is_taken_once_every_session_it_woke_took_its_packets() {
        let rounds = Rounds::new();
        let queues = websocket_queues(3);
        let round = handle(&rounds, &queues).expect("three sessions woken: fanned out");
        assert!(!rounds.round_taken(round));
        queues[0].taking_in(&rounds);
        queues[1].taking_in(&rounds);
        assert!(!rounds.round_taken(round), "one session still waits");
        queues[2].taking_in(&rounds);
        assert!(rounds.round_taken(round));
        // The next packet takes the next round.
        let next = handle(&rounds, &websocket_queues(3)).expect("fanned out");
        assert_eq!(next, round + 1);
    }

    #[test]
    fn one_other_session_is_no_fan_out_and_the_senders_own_queue_never_counts() {
        let rounds = Rounds::new();
        assert_eq!(handle(&rounds, &websocket_queues(1)), None);
        // Its own answer, and one other session.
        let pair = websocket_queues(2);
        assert_eq!(handle_from(&rounds, &pair[0], &pair), None);
        assert_eq!(rounds.current.load(Ordering::Relaxed), 1);
        let rounds = Rounds::new();
        let queues = websocket_queues(3);
        let round = handle_from(&rounds, &queues[0], &queues).expect("two others: fanned out");
        queues[1].taking_in(&rounds);
        queues[2].taking_in(&rounds);
        assert!(
            rounds.round_taken(round),
            "the sender's queue is not waited for: it waits itself"
        );
    }

    #[test]
    fn packets_queued_behind_others_count_for_fan_out_but_wake_nobody() {
        let rounds = Rounds::new();
        let queues = websocket_queues(3);
        rounds.begin(&OutboxPacing::default());
        queues
            .iter()
            .for_each(|queue| queue.queued_in(&rounds, false));
        let round = rounds.end().expect("queued for three: fanned out");
        assert!(rounds.round_taken(round), "nobody was woken in it");
    }

    #[test]
    fn queues_that_are_polled_or_being_written_are_not_waited_for() {
        let rounds = Rounds::new();
        let polled = OutboxPacing::default();
        let writing = websocket_queues(1).pop().expect("one queue");
        writing.taking_in(&rounds);
        let woken_before = websocket_queues(1).pop().expect("one queue");
        woken_before.0.store(WEBSOCKET | 7, Ordering::Relaxed);
        rounds.slot(7).fetch_add(1, Ordering::Relaxed);
        let round = handle(&rounds, &[polled, writing, woken_before]).expect("fanned out");
        assert!(
            rounds.round_taken(round),
            "a polled queue, one being written and one already counted add nothing"
        );
    }

    #[test]
    fn a_session_that_ends_releases_its_round() {
        let rounds = Rounds::new();
        let queues = websocket_queues(3);
        let round = handle(&rounds, &queues).expect("fanned out");
        queues.iter().for_each(|queue| queue.released_in(&rounds));
        assert!(rounds.round_taken(round));
        // A queue released twice, or never woken, takes nothing below zero.
        queues[0].released_in(&rounds);
        assert!(rounds.round_taken(round));
    }

    #[test]
    fn packets_queued_during_a_write_are_not_counted_until_it_completes() {
        let rounds = Rounds::new();
        let queues = websocket_queues(3);
        queues[0].taking_in(&rounds);
        let round = handle(&rounds, &queues).expect("fanned out");
        queues[1].taking_in(&rounds);
        queues[2].taking_in(&rounds);
        assert!(
            rounds.round_taken(round),
            "the queue being written was not counted"
        );
        queues[0].written();
        let next = handle(&rounds, &queues).expect("fanned out");
        assert!(
            !rounds.round_taken(next),
            "written: the next wake-up counts again"
        );
    }

    #[test]
    fn rounds_back_stays_in_range() {
        assert_eq!(rounds_back(20, 4), Some(16));
        assert_eq!(rounds_back(3, 4), None);
        assert_eq!(rounds_back(1, 1), None);
    }

    #[tokio::test]
    async fn a_waiting_client_goes_on_once_the_round_is_taken() {
        static TEST_ROUNDS: Rounds = Rounds::new();
        let queues = websocket_queues(3);
        let round = handle(&TEST_ROUNDS, &queues).expect("fanned out");
        let waiter = tokio::spawn(TEST_ROUNDS.wait_for(round));
        assert!(
            std::mem::size_of::<RoundTaken>() <= 32,
            "kept small for every session's task"
        );
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        queues
            .iter()
            .for_each(|queue| queue.taking_in(&TEST_ROUNDS));
        tokio::time::timeout(Duration::from_millis(500), waiter)
            .await
            .expect("woken as the last session took its packets")
            .expect("the wait does not panic");
    }
}
