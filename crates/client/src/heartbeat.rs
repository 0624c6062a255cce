//! The client side of the Engine.IO v4 heartbeat: expect the server's pings, measure them.
//! Sans-IO, over the shared [`Heartbeat`] state machine.

use std::time::{Duration, Instant};

use ferrio_engineio_proto::{Heartbeat, HeartbeatAction};

use crate::HeartbeatStats;

/// Watches the server's pings on one connection.
///
/// Drive it like this: sleep until [`PingMonitor::poll_timeout`], then call
/// [`PingMonitor::poll_expired`]; call [`PingMonitor::handle_ping`] for every ping (and answer
/// it with a pong).
#[derive(Debug, Clone)]
pub(crate) struct PingMonitor {
    heartbeat: Heartbeat,
    stats: HeartbeatStats,
}

impl PingMonitor {
    /// Starts watching a connection opened at `now` with the server's settings.
    pub(crate) fn new(ping_interval: Duration, ping_timeout: Duration, now: Instant) -> Self {
        Self {
            heartbeat: Heartbeat::receiving_pings(ping_interval, ping_timeout, now),
            stats: HeartbeatStats {
                ping_interval,
                ping_timeout,
                pings: 0,
                last_ping: None,
                last_ping_gap: None,
                round_trip_estimate: None,
                deadline: now + ping_interval + ping_timeout,
            },
        }
    }

    /// A ping arrived at `now`.
    pub(crate) fn handle_ping(&mut self, now: Instant) -> HeartbeatStats {
        self.heartbeat.handle_ping(now);
        let stats = &mut self.stats;
        if let Some(previous) = stats.last_ping {
            let gap = now.saturating_duration_since(previous);
            stats.last_ping_gap = Some(gap);
            stats.round_trip_estimate = Some(gap.saturating_sub(stats.ping_interval));
        }
        stats.pings += 1;
        stats.last_ping = Some(now);
        if let Some(deadline) = self.heartbeat.poll_timeout() {
            stats.deadline = deadline;
        }
        *stats
    }

    /// When [`PingMonitor::poll_expired`] should next be called.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.heartbeat.poll_timeout()
    }

    /// Whether the server missed its ping deadline at `now`.
    pub(crate) fn poll_expired(&mut self, now: Instant) -> bool {
        matches!(
            self.heartbeat.poll_action(now),
            Some(HeartbeatAction::TimedOut)
        ) || self.heartbeat.is_expired()
    }

    /// The measurements so far.
    pub(crate) fn stats(&self) -> HeartbeatStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(1000);
    const TIMEOUT: Duration = Duration::from_millis(500);

    #[test]
    fn measures_the_gap_between_pings() {
        let start = Instant::now();
        let mut monitor = PingMonitor::new(INTERVAL, TIMEOUT, start);
        assert_eq!(monitor.poll_timeout(), Some(start + INTERVAL + TIMEOUT));

        let first = start + INTERVAL;
        let stats = monitor.handle_ping(first);
        assert_eq!(stats.pings, 1);
        assert_eq!(stats.last_ping_gap, None);
        assert_eq!(stats.deadline, first + INTERVAL + TIMEOUT);

        // The next ping comes an interval after our pong reached the server: 40 ms later than
        // the interval means a 40 ms round trip.
        let second = first + INTERVAL + Duration::from_millis(40);
        let stats = monitor.handle_ping(second);
        assert_eq!(
            stats.last_ping_gap,
            Some(INTERVAL + Duration::from_millis(40))
        );
        assert_eq!(stats.round_trip_estimate, Some(Duration::from_millis(40)));
        assert_eq!(monitor.stats(), stats);
        assert!(!monitor.poll_expired(second + INTERVAL));
    }

    #[test]
    fn a_missing_ping_expires_the_connection() {
        let start = Instant::now();
        let mut monitor = PingMonitor::new(INTERVAL, TIMEOUT, start);
        assert!(!monitor.poll_expired(start + INTERVAL));
        assert!(monitor.poll_expired(start + INTERVAL + TIMEOUT));
        // Once expired it stays so, even if a ping straggles in.
        monitor.handle_ping(start + INTERVAL * 2);
        assert!(monitor.poll_expired(start + INTERVAL * 2));
    }
}
