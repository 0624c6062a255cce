//! Token buckets: a sans-IO rate limiter, for one subject ([`TokenBucket`]) or many
//! ([`KeyedLimiter`]).
//!
//! Nothing here reads the clock: every call takes the current [`Instant`], so tests step time by
//! hand and the limiter behaves the same under any runtime.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How often something may happen: `rate` times per `per` on average, with bursts of up to
/// `burst` at once.
///
/// As a token bucket: the bucket holds `burst` tokens and starts full; each event takes one; a
/// token comes back every `per / rate`. `RateLimit::new(10, Duration::from_secs(1))` allows 10
/// events at once, then one every 100 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Events refilled per `per`. Zero refuses everything.
    pub rate: u32,
    /// The period `rate` is counted over. Zero never limits.
    pub per: Duration,
    /// Most events at once (the bucket's size). Zero refuses everything.
    pub burst: u32,
}

impl RateLimit {
    /// `rate` events per `per`, with bursts of up to `rate`.
    pub fn new(rate: u32, per: Duration) -> Self {
        Self {
            rate,
            per,
            burst: rate,
        }
    }

    /// The same rate with another burst size.
    pub fn with_burst(self, burst: u32) -> Self {
        Self { burst, ..self }
    }

    /// Time for one token to come back; `None` when the rate is zero.
    fn interval(&self) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        Some(self.per / self.rate)
    }

    /// How long a full bucket's worth of tokens takes to come back: after this long without
    /// events, any bucket is full again. `None` when the rate is zero.
    pub fn refill_time(&self) -> Option<Duration> {
        self.interval()?.checked_mul(self.burst)
    }
}

impl fmt::Display for RateLimit {
    /// `10 per 1s`, or `10 per 1s, burst 20` when the burst differs from the rate.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {:?}", self.rate, self.per)?;
        if self.burst != self.rate {
            write!(f, ", burst {}", self.burst)?;
        }
        Ok(())
    }
}

/// An event refused by a [`TokenBucket`]: the bucket is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// How long until a token is back; `None` when it never will (a zero rate or burst).
    pub retry_after: Option<Duration>,
}

/// One token bucket. It stores only the instant at which it will be full again, so it is as
/// small as an `Option<Instant>`, and the [`RateLimit`] is passed to each call rather than
/// stored (a keyed limiter keeps one for all its buckets).
///
/// The arithmetic is exact (integer nanoseconds): the generic cell rate algorithm, which is a
/// token bucket seen from the time side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenBucket {
    /// When the bucket is full again; `None` while it is full.
    full_at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one token at `now`, or says how long until one is back. A refused event takes
    /// nothing, so a client that keeps trying is not pushed further back.
    pub fn try_take(&mut self, limit: &RateLimit, now: Instant) -> Result<(), RateLimited> {
        let Some(interval) = limit.interval().filter(|_| limit.burst > 0) else {
            return Err(RateLimited { retry_after: None });
        };
        let window = interval.saturating_mul(limit.burst);
        // Tokens missing now, as time: how long until the bucket is full again.
        let missing = self.full_at.map_or(Duration::ZERO, |full_at| {
            full_at.saturating_duration_since(now)
        });
        let after = missing.saturating_add(interval);
        if after > window {
            return Err(RateLimited {
                retry_after: Some(after - window),
            });
        }
        let Some(full_at) = now.checked_add(after) else {
            // A period of centuries: as good as never refilling.
            return Err(RateLimited { retry_after: None });
        };
        self.full_at = Some(full_at);
        Ok(())
    }

    /// Whether the bucket is full at `now`: it then behaves exactly as a new one, so a keyed
    /// limiter may forget it.
    pub fn is_full(&self, now: Instant) -> bool {
        self.full_at.is_none_or(|full_at| full_at <= now)
    }
}

/// Token buckets by key (a client address, a user id), sharing one [`RateLimit`].
///
/// Memory stays bounded: a bucket that has refilled completely is forgotten (a new one would
/// behave the same), which [`KeyedLimiter::check`] does by itself once per refill time, so the
/// limiter holds only the keys seen within about two refill times. Beyond `max_keys` keys even
/// after pruning, new keys are let through without being tracked: under a flood from that many
/// sources a per-source limit no longer protects anything, and refusing everyone would lock out
/// the clients the limit is meant to protect. (Other limits, such as a global connection limit,
/// still apply.)
#[derive(Debug, Clone)]
pub struct KeyedLimiter<K> {
    limit: RateLimit,
    max_keys: usize,
    buckets: HashMap<K, TokenBucket>,
    next_prune: Option<Instant>,
}

impl<K: Hash + Eq> KeyedLimiter<K> {
    /// A limiter applying `limit` to each key, tracking at most `max_keys` keys.
    pub fn new(limit: RateLimit, max_keys: usize) -> Self {
        Self {
            limit,
            max_keys,
            buckets: HashMap::new(),
            next_prune: None,
        }
    }

    /// The limit applied to each key.
    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Takes one token from `key`'s bucket at `now`.
    pub fn check(&mut self, key: K, now: Instant) -> Result<(), RateLimited> {
        let prune_due = self.next_prune.is_none_or(|at| at <= now);
        if prune_due || (self.buckets.len() >= self.max_keys && !self.buckets.contains_key(&key)) {
            self.prune(now);
        }
        if let Some(bucket) = self.buckets.get_mut(&key) {
            return bucket.try_take(&self.limit, now);
        }
        let mut bucket = TokenBucket::new();
        bucket.try_take(&self.limit, now)?;
        if self.buckets.len() < self.max_keys {
            self.buckets.insert(key, bucket);
        }
        Ok(())
    }

    /// Forgets every bucket that is full at `now`.
    pub fn prune(&mut self, now: Instant) {
        self.buckets.retain(|_, bucket| !bucket.is_full(now));
        // Buckets grow full within one refill time of their last event, so pruning that often
        // keeps at most two refill times' worth of keys.
        let period = self
            .limit
            .refill_time()
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_millis(100));
        self.next_prune = Some(now + period);
        if self.buckets.capacity() > 64 && self.buckets.capacity() > 4 * self.buckets.len() {
            // A burst of keys grew the table: give the memory back.
            self.buckets.shrink_to(2 * self.buckets.len());
        }
    }

    /// How many keys are tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn take(bucket: &mut TokenBucket, limit: &RateLimit, at: Instant) -> bool {
        bucket.try_take(limit, at).is_ok()
    }

    #[test]
    fn a_full_bucket_allows_a_burst_then_one_per_interval() {
        let limit = RateLimit::new(10, Duration::from_secs(1));
        let start = Instant::now();
        let mut bucket = TokenBucket::new();
        for _ in 0..10 {
            assert!(take(&mut bucket, &limit, start));
        }
        assert_eq!(
            bucket.try_take(&limit, start),
            Err(RateLimited {
                retry_after: Some(100 * MS)
            })
        );
        // A refused attempt takes nothing: the wait does not grow.
        assert_eq!(
            bucket.try_take(&limit, start + 40 * MS),
            Err(RateLimited {
                retry_after: Some(60 * MS)
            })
        );
        assert!(!take(&mut bucket, &limit, start + 99 * MS));
        assert!(take(&mut bucket, &limit, start + 100 * MS));
        assert!(!take(&mut bucket, &limit, start + 100 * MS));
        // After a second of silence the whole burst is back, and no more.
        let later = start + 1100 * MS;
        assert!(bucket.is_full(later));
        for _ in 0..10 {
            assert!(take(&mut bucket, &limit, later));
        }
        assert!(!take(&mut bucket, &limit, later));
    }

    #[test]
    fn steady_traffic_at_the_rate_is_never_refused() {
        let limit = RateLimit::new(5, Duration::from_secs(1)).with_burst(1);
        let start = Instant::now();
        let mut bucket = TokenBucket::new();
        for i in 0..100 {
            assert!(take(&mut bucket, &limit, start + i * 200 * MS), "event {i}");
        }
        // Faster than the rate, with no burst: every other one is refused.
        let fast = start + 100 * 200 * MS;
        let accepted = (0..10)
            .filter(|i| take(&mut bucket, &limit, fast + i * 100 * MS))
            .count();
        assert_eq!(accepted, 5);
    }

    #[test]
    fn a_burst_larger_than_the_rate_is_allowed_once_per_refill() {
        let limit = RateLimit::new(1, Duration::from_secs(1)).with_burst(3);
        assert_eq!(limit.refill_time(), Some(Duration::from_secs(3)));
        assert_eq!(limit.to_string(), "1 per 1s, burst 3");
        let start = Instant::now();
        let mut bucket = TokenBucket::new();
        assert!((0..3).all(|_| take(&mut bucket, &limit, start)));
        assert!(!take(&mut bucket, &limit, start));
        assert!(!bucket.is_full(start + 2999 * MS));
        assert!(bucket.is_full(start + 3000 * MS));
    }

    #[test]
    fn zero_rate_or_burst_refuses_all_and_zero_period_never_limits() {
        let start = Instant::now();
        let refused = Err(RateLimited { retry_after: None });
        let no_rate = RateLimit::new(0, Duration::from_secs(1)).with_burst(2);
        assert_eq!(TokenBucket::new().try_take(&no_rate, start), refused);
        let no_burst = RateLimit::new(10, Duration::from_secs(1)).with_burst(0);
        assert_eq!(TokenBucket::new().try_take(&no_burst, start), refused);
        let mut limiter = KeyedLimiter::new(no_rate, 10);
        assert_eq!(limiter.check("a", start), refused);
        assert!(limiter.is_empty(), "a refused new key is not stored");

        let unlimited = RateLimit::new(1, Duration::ZERO);
        let mut bucket = TokenBucket::new();
        assert!((0..1000).all(|_| take(&mut bucket, &unlimited, start)));
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let limit = RateLimit::new(1, Duration::from_secs(1));
        let start = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new();
        assert!(take(&mut bucket, &limit, start));
        assert!(!take(&mut bucket, &limit, start - Duration::from_secs(5)));
        assert!(take(&mut bucket, &limit, start + Duration::from_secs(1)));
    }

    #[test]
    fn keys_are_limited_separately() {
        let mut limiter = KeyedLimiter::new(RateLimit::new(2, Duration::from_secs(1)), 100);
        let now = Instant::now();
        assert!(limiter.check("a", now).is_ok());
        assert!(limiter.check("a", now).is_ok());
        assert!(limiter.check("a", now).is_err());
        assert!(limiter.check("b", now).is_ok());
        assert!(limiter.check("b", now).is_ok());
        assert!(limiter.check("a", now + 500 * MS).is_ok());
        assert!(limiter.check("a", now + 500 * MS).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten_so_memory_stays_bounded() {
        let limit = RateLimit::new(1, Duration::from_secs(1));
        let mut limiter = KeyedLimiter::new(limit, 1_000_000);
        let start = Instant::now();
        // A thousand sources, one second each: never more than two seconds' worth are kept.
        for second in 0..1000u32 {
            let now = start + Duration::from_secs(u64::from(second));
            for i in 0..100u32 {
                assert!(limiter.check(second * 1000 + i, now).is_ok());
            }
            assert!(limiter.len() <= 200, "second {second}: {}", limiter.len());
        }
        limiter.prune(start + Duration::from_secs(2000));
        assert!(limiter.is_empty());
    }

    #[test]
    fn past_max_keys_new_keys_pass_untracked() {
        let limit = RateLimit::new(1, Duration::from_secs(60));
        let mut limiter = KeyedLimiter::new(limit, 2);
        let now = Instant::now();
        assert!(limiter.check(1, now).is_ok());
        assert!(limiter.check(2, now).is_ok());
        assert_eq!(limiter.len(), 2);
        // Key 3 does not fit: let through, not remembered, so never refused.
        assert!(limiter.check(3, now).is_ok());
        assert!(limiter.check(3, now).is_ok());
        assert_eq!(limiter.len(), 2);
        // Tracked keys keep their limit.
        assert!(limiter.check(1, now).is_err());
        // Once the old buckets refill they are pruned, and key 3 gets tracked.
        let later = now + Duration::from_secs(60);
        assert!(limiter.check(3, later).is_ok());
        assert!(limiter.check(3, later).is_err());
        assert_eq!(limiter.len(), 1);
    }
}
