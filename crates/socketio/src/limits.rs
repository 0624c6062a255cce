//! The per-socket limits: rooms per socket and the event rate.

use std::time::Instant;

use ferrio_engineio::rate::TokenBucket;
use ferrio_engineio::RateLimit;

/// What happens when a socket sends events faster than [`EventRateLimit::limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// The event is dropped: no handler runs and an acknowledgement it asked for never comes.
    /// The first event dropped in a row gets the client one notice event (see
    /// [`EventRateLimit::notice_event`]); the following ones are dropped silently until an event
    /// is accepted again, so a flood is not answered with a flood. The socket stays connected.
    Drop,
    /// The client gets the notice event, then a DISCONNECT for the namespace: it sees
    /// `disconnect` with "io server disconnect" and does not reconnect by itself. The server's
    /// disconnect handlers get [`crate::DisconnectReason::EventRateExceeded`]. Other namespaces
    /// of the same connection stay.
    Disconnect,
}

/// A limit on how fast one socket may send events (EVENT and BINARY_EVENT packets; the
/// acknowledgements a client sends back are not counted), as a token bucket per socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRateLimit {
    /// The rate and burst allowed.
    pub limit: RateLimit,
    /// What happens to an event over the limit.
    pub action: OverLimit,
    /// The event the client is notified with, its argument
    /// `{"message":"Too many events (max 10 per 1s)"}`; `None` sends nothing. `"error"` by
    /// default, which socket.io-client hands to `socket.on("error", ...)` like any event.
    pub notice_event: Option<String>,
}

impl EventRateLimit {
    /// A limit that drops events over `limit` and notifies with `"error"`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            action: OverLimit::Drop,
            notice_event: Some("error".to_owned()),
        }
    }

    /// The same limit with another action.
    pub fn with_action(self, action: OverLimit) -> Self {
        Self { action, ..self }
    }

    /// What the client is told: the limit by value.
    pub(crate) fn message(&self) -> String {
        format!("Too many events (max {})", self.limit)
    }
}

/// The limits every socket of a server gets, from [`crate::SocketIoConfig`].
#[derive(Debug, Clone, Default)]
pub(crate) struct SocketLimits {
    pub(crate) max_rooms: Option<usize>,
    pub(crate) event_rate: Option<EventRateLimit>,
}

/// One socket's event budget: its token bucket and whether it is dropping events now.
#[derive(Debug, Default)]
pub(crate) struct EventBudget {
    bucket: TokenBucket,
    dropping: bool,
}

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit: handle it.
    Accept,
    /// Over the limit. `first` is set for the first event refused since one was accepted.
    Refuse { first: bool },
}

impl EventBudget {
    /// Decides on one event arriving at `now`.
    pub(crate) fn admit(&mut self, limit: &RateLimit, now: Instant) -> Verdict {
        if self.bucket.try_take(limit, now).is_ok() {
            self.dropping = false;
            return Verdict::Accept;
        }
        let first = !self.dropping;
        self.dropping = true;
        Verdict::Refuse { first }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_notice_per_run_of_refused_events() {
        let limit = RateLimit::new(2, Duration::from_secs(1));
        let mut budget = EventBudget::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(budget.admit(&limit, at(0)), Verdict::Accept);
        assert_eq!(budget.admit(&limit, at(0)), Verdict::Accept);
        assert_eq!(budget.admit(&limit, at(1)), Verdict::Refuse { first: true });
        assert_eq!(
            budget.admit(&limit, at(2)),
            Verdict::Refuse { first: false }
        );
        assert_eq!(
            budget.admit(&limit, at(499)),
            Verdict::Refuse { first: false }
        );
        // A token is back after 500 ms: accepted, and the next refusal is a new run.
        assert_eq!(budget.admit(&limit, at(500)), Verdict::Accept);
        assert_eq!(
            budget.admit(&limit, at(501)),
            Verdict::Refuse { first: true }
        );
    }

    #[test]
    fn the_message_names_the_limit() {
        let limit = EventRateLimit::new(RateLimit::new(10, Duration::from_secs(1)));
        assert_eq!(limit.message(), "Too many events (max 10 per 1s)");
        let bursty =
            EventRateLimit::new(RateLimit::new(1, Duration::from_millis(500)).with_burst(5));
        assert_eq!(
            bursty.message(),
            "Too many events (max 1 per 500ms, burst 5)"
        );
    }
}
