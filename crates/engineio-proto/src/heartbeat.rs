use std::time::{Duration, Instant};

use crate::ProtocolVersion;

/// The heartbeat of one session, as a state machine over caller-supplied time.
///
/// Revision 4: the server pings every `interval`; a pong must come within `timeout`, and the next
/// ping is due `interval` after the pong. Revision 3: the client pings; the session expires when
/// no ping came for `interval + timeout`, and the server answers each ping with a pong.
///
/// Drive it like this: sleep until [`Heartbeat::poll_timeout`], then call
/// [`Heartbeat::poll_action`] and act on what it returns; feed [`Heartbeat::handle_pong`] and
/// [`Heartbeat::handle_ping`] as packets arrive. Waking early or late is harmless.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// v4: the next ping is due at this time.
    PingDue(Instant),
    /// v4: a ping was sent; the pong must arrive by this time.
    AwaitingPong(Instant),
    /// v3: the client's next ping must arrive by this time.
    AwaitingPing(Instant),
    /// The session missed its deadline.
    Expired,
}

/// What the session must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatAction {
    /// Send a ping packet to the client.
    SendPing,
    /// The peer missed its deadline: close the session with reason "ping timeout".
    TimedOut,
}

impl Heartbeat {
    /// Starts the heartbeat of a session opened at `now`.
    pub fn new(
        version: ProtocolVersion,
        interval: Duration,
        timeout: Duration,
        now: Instant,
    ) -> Self {
        let state = match version {
            ProtocolVersion::V4 => State::PingDue(now + interval),
            ProtocolVersion::V3 => State::AwaitingPing(now + interval + timeout),
        };
        Self {
            interval,
            timeout,
            state,
        }
    }

    /// The heartbeat of the side that receives pings: a revision 4 client (or, equally, a
    /// revision 3 server). Opened at `now`, it expects a ping within `interval + timeout`, and
    /// again within that long of every ping passed to [`Heartbeat::handle_ping`];
    /// [`Heartbeat::poll_action`] returns [`HeartbeatAction::TimedOut`] when one is late. It
    /// never returns [`HeartbeatAction::SendPing`]: this side answers pings, it does not send them.
    pub fn receiving_pings(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self::new(ProtocolVersion::V3, interval, timeout, now)
    }

    /// When [`Heartbeat::poll_action`] next has something to do; `None` once expired.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::PingDue(at) | State::AwaitingPong(at) | State::AwaitingPing(at) => Some(at),
            State::Expired => None,
        }
    }

    /// Advances to `now` and says what to do, if anything.
    pub fn poll_action(&mut self, now: Instant) -> Option<HeartbeatAction> {
        match self.state {
            State::PingDue(at) if now >= at => {
                // Counted from when the ping was due, not from a late wake-up, so the session
                // expires when the peer expects it to.
                self.state = State::AwaitingPong(at + self.timeout);
                Some(HeartbeatAction::SendPing)
            }
            State::AwaitingPong(at) | State::AwaitingPing(at) if now >= at => {
                self.state = State::Expired;
                Some(HeartbeatAction::TimedOut)
            }
            _ => None,
        }
    }

    /// A pong arrived (v4). Schedules the next ping.
    pub fn handle_pong(&mut self, now: Instant) {
        if let State::AwaitingPong(_) = self.state {
            self.state = State::PingDue(now + self.interval);
        }
    }

    /// A ping arrived (v3). Moves the deadline; the caller answers with a pong.
    pub fn handle_ping(&mut self, now: Instant) {
        if let State::AwaitingPing(_) = self.state {
            self.state = State::AwaitingPing(now + self.interval + self.timeout);
        }
    }

    /// Whether the peer's deadline has passed at `now`, even if [`Heartbeat::poll_action`] has
    /// not been called yet: a request arriving after the deadline must not revive the session.
    pub fn is_overdue(&self, now: Instant) -> bool {
        match self.state {
            State::AwaitingPong(at) | State::AwaitingPing(at) => now >= at,
            State::Expired => true,
            State::PingDue(_) => false,
        }
    }

    /// Whether the session missed a deadline.
    pub fn is_expired(&self) -> bool {
        self.state == State::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(300);
    const TIMEOUT: Duration = Duration::from_millis(200);

    #[test]
    fn v4_pings_then_waits_for_the_pong() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, INTERVAL, TIMEOUT, start);
        assert_eq!(hb.poll_timeout(), Some(start + INTERVAL));
        assert_eq!(hb.poll_action(start + INTERVAL / 2), None);
        assert_eq!(
            hb.poll_action(start + INTERVAL),
            Some(HeartbeatAction::SendPing)
        );
        assert_eq!(hb.poll_timeout(), Some(start + INTERVAL + TIMEOUT));
        let pong_at = start + INTERVAL + TIMEOUT / 2;
        hb.handle_pong(pong_at);
        assert_eq!(hb.poll_timeout(), Some(pong_at + INTERVAL));
        // Waking at the old deadline does nothing: the pong moved it.
        assert_eq!(hb.poll_action(start + INTERVAL + TIMEOUT), None);
    }

    #[test]
    fn v4_counts_the_pong_deadline_from_when_the_ping_was_due() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, INTERVAL, TIMEOUT, start);
        let late = start + INTERVAL + Duration::from_millis(5);
        assert_eq!(hb.poll_action(late), Some(HeartbeatAction::SendPing));
        assert_eq!(hb.poll_timeout(), Some(start + INTERVAL + TIMEOUT));
        assert!(!hb.is_overdue(start + INTERVAL + TIMEOUT / 2));
        assert!(hb.is_overdue(start + INTERVAL + TIMEOUT));
    }

    #[test]
    fn v4_times_out_without_a_pong() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V4, INTERVAL, TIMEOUT, start);
        assert_eq!(
            hb.poll_action(start + INTERVAL),
            Some(HeartbeatAction::SendPing)
        );
        assert_eq!(
            hb.poll_action(start + INTERVAL + TIMEOUT),
            Some(HeartbeatAction::TimedOut)
        );
        assert!(hb.is_expired());
        assert!(hb.is_overdue(start));
        assert_eq!(hb.poll_timeout(), None);
        // A late pong does not revive it.
        hb.handle_pong(start + INTERVAL * 3);
        assert!(hb.is_expired());
    }

    #[test]
    fn a_v4_client_expects_server_pings() {
        let start = Instant::now();
        let mut hb = Heartbeat::receiving_pings(INTERVAL, TIMEOUT, start);
        assert_eq!(hb.poll_timeout(), Some(start + INTERVAL + TIMEOUT));
        assert_eq!(hb.poll_action(start + INTERVAL), None);
        let ping_at = start + INTERVAL + TIMEOUT / 2;
        hb.handle_ping(ping_at);
        assert_eq!(hb.poll_timeout(), Some(ping_at + INTERVAL + TIMEOUT));
        assert!(!hb.is_overdue(ping_at + INTERVAL));
        assert_eq!(
            hb.poll_action(ping_at + INTERVAL + TIMEOUT),
            Some(HeartbeatAction::TimedOut)
        );
        assert!(hb.is_expired());
    }

    #[test]
    fn v3_expects_client_pings() {
        let start = Instant::now();
        let mut hb = Heartbeat::new(ProtocolVersion::V3, INTERVAL, TIMEOUT, start);
        assert_eq!(hb.poll_timeout(), Some(start + INTERVAL + TIMEOUT));
        hb.handle_ping(start + INTERVAL);
        assert_eq!(hb.poll_action(start + INTERVAL + TIMEOUT), None);
        assert_eq!(
            hb.poll_action(start + INTERVAL * 2 + TIMEOUT),
            Some(HeartbeatAction::TimedOut)
        );
    }
}
