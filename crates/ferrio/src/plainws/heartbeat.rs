//! The server's heartbeat towards a plain WebSocket client, as stored deadlines: the session
//! asks when to wake ([`Heartbeat::poll_timeout`]) and what to do then
//! ([`Heartbeat::handle_timeout`]); any frame from the client counts as alive.

use std::time::{Duration, Instant};

/// What the session does when the heartbeat's deadline comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Nothing yet: wait for the next deadline.
    Wait,
    /// Send a WebSocket ping.
    Ping,
    /// The client stayed silent past the timeout: close.
    TimedOut,
}

/// Pings every `interval`; gives up when nothing came for `timeout` after a ping.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// When the client was last heard from.
    last_seen: Instant,
    /// When the last unanswered ping was sent.
    pinged_at: Option<Instant>,
}

impl Heartbeat {
    pub(crate) fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            interval,
            timeout,
            last_seen: now,
            pinged_at: None,
        }
    }

    /// A frame (any, pongs included) came from the client.
    pub(crate) fn handle_activity(&mut self, now: Instant) {
        self.last_seen = now;
        self.pinged_at = None;
    }

    /// When [`Heartbeat::handle_timeout`] has something to do next.
    pub(crate) fn poll_timeout(&self) -> Instant {
        match self.pinged_at {
            Some(at) => at + self.timeout,
            None => self.last_seen + self.interval,
        }
    }

    /// What to do at `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Beat {
        if now < self.poll_timeout() {
            return Beat::Wait;
        }
        match self.pinged_at {
            Some(_) => Beat::TimedOut,
            None => {
                self.pinged_at = Some(now);
                Beat::Ping
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_then_timeout_unless_heard() {
        let start = Instant::now();
        let s = Duration::from_secs(1);
        let mut beat = Heartbeat::new(10 * s, 5 * s, start);
        assert_eq!(beat.poll_timeout(), start + 10 * s);
        assert_eq!(beat.handle_timeout(start + 9 * s), Beat::Wait);
        assert_eq!(beat.handle_timeout(start + 10 * s), Beat::Ping);
        assert_eq!(beat.poll_timeout(), start + 15 * s);
        beat.handle_activity(start + 12 * s);
        assert_eq!(beat.poll_timeout(), start + 22 * s);
        assert_eq!(beat.handle_timeout(start + 22 * s), Beat::Ping);
        assert_eq!(beat.handle_timeout(start + 26 * s), Beat::Wait);
        assert_eq!(beat.handle_timeout(start + 27 * s), Beat::TimedOut);
    }
}
