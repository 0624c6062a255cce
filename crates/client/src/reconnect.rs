//! When to reconnect: the JS client's `Manager` reconnection rules as a sans-IO state machine.
//!
//! Drive it like this: report what happened to the connection ([`Reconnector::handle_opened`],
//! [`Reconnector::handle_open_failed`], [`Reconnector::handle_closed`]) and act on the
//! [`Decision`]; sleep until [`Reconnector::poll_timeout`], then call
//! [`Reconnector::poll_open`] and open the connection when it returns an attempt number. Time
//! and randomness come from the caller, so tests step both by hand.
//!
//! The rules, as in `socket.io-client`:
//! - a failed first open and a lost connection both start reconnecting; a connection closed by
//!   the client (or after the server disconnected the last namespace) does not;
//! - every attempt counts against [`ReconnectionConfig::attempts`]; when they are spent the
//!   client gives up, and the count starts over;
//! - the count also starts over when a connection opens and when it is lost, so each outage
//!   begins again with the shortest delay.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::{DisconnectReason, ReconnectionConfig};

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Attempt `attempt` (from 1) is scheduled `delay` from now.
    Retry {
        /// The attempt's number.
        attempt: u32,
        /// How long until it.
        delay: Duration,
    },
    /// The allowed attempts are spent.
    GiveUp,
    /// Stay closed: reconnection is off, or the close was not a failure.
    Stop,
}

/// The reconnection decisions of one manager.
#[derive(Debug, Clone)]
pub(crate) struct Reconnector {
    config: ReconnectionConfig,
    backoff: Backoff,
    /// The next attempt: when, and its number.
    scheduled: Option<(Instant, u32)>,
}

impl Reconnector {
    pub(crate) fn new(config: ReconnectionConfig) -> Self {
        Self {
            backoff: Backoff::new(config.delay, config.delay_max, config.randomization_factor),
            config,
            scheduled: None,
        }
    }

    /// A connection opened. Returns the number of attempts it took when it was a
    /// reconnection.
    pub(crate) fn handle_opened(&mut self) -> Option<u32> {
        self.scheduled = None;
        let attempts = self.backoff.attempts();
        self.backoff.reset();
        (attempts > 0).then_some(attempts)
    }

    /// An attempt to open the connection failed at `now`. `random` is uniform in `[0, 1)`.
    pub(crate) fn handle_open_failed(&mut self, now: Instant, random: f64) -> Decision {
        if !self.config.enabled {
            return Decision::Stop;
        }
        self.schedule(now, random)
    }

    /// An open connection closed for `reason` at `now`.
    pub(crate) fn handle_closed(
        &mut self,
        reason: &DisconnectReason,
        now: Instant,
        random: f64,
    ) -> Decision {
        self.backoff.reset();
        if !self.config.enabled || !reason.is_recoverable() {
            self.scheduled = None;
            return Decision::Stop;
        }
        self.schedule(now, random)
    }

    /// The client closed the connection, or is opening it right away (manual reconnect):
    /// forget any scheduled attempt and start the count over.
    pub(crate) fn reset(&mut self) {
        self.scheduled = None;
        self.backoff.reset();
    }

    /// When the scheduled attempt is due, if one is.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.scheduled.map(|(at, _)| at)
    }

    /// The number of the attempt to make now, if one is due at `now`.
    pub(crate) fn poll_open(&mut self, now: Instant) -> Option<u32> {
        match self.scheduled {
            Some((at, attempt)) if now >= at => {
                self.scheduled = None;
                Some(attempt)
            }
            _ => None,
        }
    }

    fn schedule(&mut self, now: Instant, random: f64) -> Decision {
        if self
            .config
            .attempts
            .is_some_and(|max| self.backoff.attempts() >= max)
        {
            self.reset();
            return Decision::GiveUp;
        }
        let delay = self.backoff.duration(random);
        let attempt = self.backoff.attempts();
        self.scheduled = Some((now + delay, attempt));
        Decision::Retry { attempt, delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// `random` 0 gives `floor(0) = 0`: even, deviation 0, so delays are exactly doubling.
    const EXACT: f64 = 0.0;

    fn reconnector(attempts: Option<u32>) -> Reconnector {
        Reconnector::new(ReconnectionConfig {
            attempts,
            ..ReconnectionConfig::default()
        })
    }

    #[test]
    fn an_outage_backs_off_then_starts_over_once_connected() {
        let start = Instant::now();
        let mut r = reconnector(None);
        assert_eq!(r.handle_opened(), None);

        let decision = r.handle_closed(&DisconnectReason::TransportClose, start, EXACT);
        assert_eq!(
            decision,
            Decision::Retry {
                attempt: 1,
                delay: 1000 * MS
            }
        );
        assert_eq!(r.poll_timeout(), Some(start + 1000 * MS));
        assert_eq!(r.poll_open(start + 999 * MS), None);
        let mut now = start + 1000 * MS;
        assert_eq!(r.poll_open(now), Some(1));
        assert_eq!(r.poll_timeout(), None);

        // Each failed attempt doubles the delay, up to the 5 s cap.
        for (attempt, delay) in [(2, 2000), (3, 4000), (4, 5000), (5, 5000)] {
            assert_eq!(
                r.handle_open_failed(now, EXACT),
                Decision::Retry {
                    attempt,
                    delay: delay * MS
                }
            );
            now += delay * MS;
            assert_eq!(r.poll_open(now), Some(attempt));
        }
        assert_eq!(r.handle_opened(), Some(5));

        // The next outage starts again from the first delay.
        assert_eq!(
            r.handle_closed(&DisconnectReason::PingTimeout, now, EXACT),
            Decision::Retry {
                attempt: 1,
                delay: 1000 * MS
            }
        );
    }

    #[test]
    fn a_failed_first_open_reconnects_too() {
        let now = Instant::now();
        let mut r = reconnector(None);
        assert_eq!(
            r.handle_open_failed(now, 0.3),
            Decision::Retry {
                attempt: 1,
                delay: 1150 * MS
            }
        );
    }

    #[test]
    fn gives_up_when_the_attempts_are_spent_and_counts_again_after() {
        let mut now = Instant::now();
        let mut r = reconnector(Some(2));
        let mut decisions = vec![r.handle_closed(&DisconnectReason::TransportClose, now, EXACT)];
        for _ in 0..2 {
            now += Duration::from_secs(10);
            assert!(r.poll_open(now).is_some());
            decisions.push(r.handle_open_failed(now, EXACT));
        }
        assert_eq!(
            decisions,
            [
                Decision::Retry {
                    attempt: 1,
                    delay: 1000 * MS
                },
                Decision::Retry {
                    attempt: 2,
                    delay: 2000 * MS
                },
                Decision::GiveUp,
            ]
        );
        assert_eq!(r.poll_timeout(), None);
        // A manual open after giving up gets the full allowance again.
        r.reset();
        assert!(matches!(
            r.handle_open_failed(now, EXACT),
            Decision::Retry { attempt: 1, .. }
        ));
    }

    #[test]
    fn zero_attempts_gives_up_at_once() {
        let mut r = reconnector(Some(0));
        assert_eq!(
            r.handle_open_failed(Instant::now(), EXACT),
            Decision::GiveUp
        );
    }

    #[test]
    fn terminal_closes_and_disabled_reconnection_stay_closed() {
        let now = Instant::now();
        let mut r = reconnector(None);
        assert_eq!(
            r.handle_closed(&DisconnectReason::ServerDisconnect, now, EXACT),
            Decision::Stop
        );
        assert_eq!(
            r.handle_closed(&DisconnectReason::ClientDisconnect, now, EXACT),
            Decision::Stop
        );
        assert_eq!(r.poll_timeout(), None);

        let mut off = Reconnector::new(ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        });
        assert_eq!(
            off.handle_closed(&DisconnectReason::TransportClose, now, EXACT),
            Decision::Stop
        );
        assert_eq!(off.handle_open_failed(now, EXACT), Decision::Stop);
    }

    #[test]
    fn a_reset_cancels_the_scheduled_attempt() {
        let now = Instant::now();
        let mut r = reconnector(None);
        assert!(matches!(
            r.handle_closed(&DisconnectReason::TransportClose, now, EXACT),
            Decision::Retry { .. }
        ));
        r.reset();
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.poll_open(now + Duration::from_secs(60)), None);
    }

    #[test]
    fn jittered_delays_follow_the_js_ranges_over_an_outage() {
        // A simulated outage of 8 attempts with a spread of random numbers: every delay is in
        // the range the JS client would draw from.
        let bounds = [(500, 1500), (1000, 3000), (2000, 5000)];
        for seed in 0..200u32 {
            let random = f64::from(seed) / 200.0;
            let mut now = Instant::now();
            let mut r = reconnector(None);
            let mut decision = r.handle_closed(&DisconnectReason::TransportClose, now, random);
            for attempt in 1..=8u32 {
                let Decision::Retry { attempt: n, delay } = decision else {
                    panic!("no retry at attempt {attempt}");
                };
                assert_eq!(n, attempt);
                let (low, high) = bounds
                    .get(attempt as usize - 1)
                    .copied()
                    .unwrap_or((4000, 5000));
                assert!(
                    (low..=high).contains(&delay.as_millis()),
                    "attempt {attempt}: {delay:?}"
                );
                now += delay;
                assert_eq!(r.poll_open(now), Some(attempt));
                decision = r.handle_open_failed(now, random);
            }
        }
    }
}
