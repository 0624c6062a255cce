//! Exponential backoff with jitter, computed exactly as the official JS client does
//! (`socket.io-client`'s `backo2`). Sans-IO: the caller passes the random number in.

use std::time::Duration;

/// The JS client's backoff: attempt `n` (from 0) waits `min * 2^n`, randomized by up to
/// `jitter` of itself, then capped at `max`.
///
/// Randomization, with `r` uniform in `[0, 1)`: `deviation = floor(r * jitter * ms)`, subtracted
/// when `floor(r * 10)` is even and added when it is odd. The cap applies after the
/// randomization, so a delay never exceeds `max`. Milliseconds are whole, as in JS.
///
/// With the client defaults (1 s, 5 s, 0.5) the first delay is in `[0.5 s, 1.5 s]`, the second in
/// `[1 s, 3 s]`, the third in `[2 s, 5 s]`, and later ones in `[4 s, 5 s]` (or exactly 5 s).
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    min_ms: f64,
    max_ms: f64,
    jitter: f64,
    attempts: u32,
}

/// Past this exponent `min * 2^n` is far beyond any sensible maximum; capping it keeps the
/// arithmetic finite (JS reaches `Infinity` and, with a random number of 0, a delay of 0).
const MAX_EXPONENT: i32 = 52;

impl Backoff {
    /// A backoff starting at `min`, capped at `max`. `jitter` outside `(0, 1]` means none, as
    /// in JS.
    pub fn new(min: Duration, max: Duration, jitter: f64) -> Self {
        Self {
            min_ms: min.as_millis() as f64,
            max_ms: max.as_millis() as f64,
            jitter: if jitter > 0.0 && jitter <= 1.0 {
                jitter
            } else {
                0.0
            },
            attempts: 0,
        }
    }

    /// The delay before the next attempt, counting the attempt. `random` is a number in
    /// `[0, 1)` (`Math.random()` in JS); values outside are clamped.
    pub fn duration(&mut self, random: f64) -> Duration {
        let exponent = i32::try_from(self.attempts)
            .unwrap_or(i32::MAX)
            .min(MAX_EXPONENT);
        self.attempts = self.attempts.saturating_add(1);
        let mut ms = self.min_ms * 2f64.powi(exponent);
        if self.jitter > 0.0 {
            let random = if random.is_nan() {
                0.0
            } else {
                random.clamp(0.0, 1.0 - f64::EPSILON)
            };
            let deviation = (random * self.jitter * ms).floor();
            // `floor(r * 10)` is below 10, so the cast is exact.
            ms = if ((random * 10.0).floor() as u8) & 1 == 0 {
                ms - deviation
            } else {
                ms + deviation
            };
        }
        // JS truncates with `| 0`; the value is finite and non-negative here.
        Duration::from_millis(ms.min(self.max_ms).max(0.0) as u64)
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over from the first delay.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js_defaults() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(5), 0.5)
    }

    #[test]
    fn matches_the_js_formula() {
        let mut backoff = js_defaults();
        // r = 0.25: deviation floor(0.25 * 0.5 * 1000) = 125, floor(2.5) = 2 is even: minus.
        assert_eq!(backoff.duration(0.25), Duration::from_millis(875));
        // r = 0.3: deviation floor(0.3 * 0.5 * 2000) = 300, floor(3.0) = 3 is odd: plus.
        assert_eq!(backoff.duration(0.3), Duration::from_millis(2300));
        // 4000 with r = 0.7 (odd): 4000 + 1400 = 5400, capped at 5000.
        assert_eq!(backoff.duration(0.7), Duration::from_millis(5000));
        // 8000 with r = 0.8 (even): 8000 - 3200 = 4800, under the cap.
        assert_eq!(backoff.duration(0.8), Duration::from_millis(4800));
        assert_eq!(backoff.attempts(), 4);
        backoff.reset();
        assert_eq!(backoff.duration(0.0), Duration::from_millis(1000));
    }

    #[test]
    fn default_delays_stay_in_their_ranges() {
        let bounds = [
            (500, 1500),
            (1000, 3000),
            (2000, 5000),
            (4000, 5000),
            (4000, 5000),
        ];
        for step in 0..1000u32 {
            let random = f64::from(step) / 1000.0;
            let mut backoff = js_defaults();
            for (attempt, (low, high)) in bounds.iter().enumerate() {
                let ms = backoff.duration(random).as_millis();
                assert!(
                    (*low..=*high).contains(&ms),
                    "attempt {attempt}, r {random}: {ms} ms"
                );
            }
        }
    }

    #[test]
    fn without_jitter_it_doubles_up_to_the_cap() {
        let mut backoff =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(1000), 0.0);
        let delays: Vec<u128> = (0..6).map(|_| backoff.duration(0.9).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        // A jitter above 1 is ignored, as in JS.
        let mut backoff =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(1000), 1.5);
        assert_eq!(backoff.duration(0.9), Duration::from_millis(100));
    }

    #[test]
    fn many_attempts_stay_finite() {
        let mut backoff = js_defaults();
        for _ in 0..10_000 {
            assert!(backoff.duration(0.0) <= Duration::from_secs(5));
        }
        assert_eq!(backoff.duration(0.0), Duration::from_secs(5));
        assert_eq!(backoff.duration(f64::NAN), Duration::from_secs(5));
    }
}
