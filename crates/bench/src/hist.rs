//! A log-linear latency histogram: exact below 128, within 1/128 (0.8 %) above.

/// Sub-buckets per power of two (2^7 = 128): the relative error bound of a recorded value.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

/// Latency samples (any unit; the benchmark records microseconds) grouped in log-linear buckets.
///
/// Values below 128 are kept exactly; larger ones fall in buckets 1/128 of their power of two
/// wide, and read back as the bucket's midpoint. The minimum, maximum and count are exact.
/// Memory grows with the largest value recorded (128 counters per power of two), not with the
/// number of samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    min: u64,
}

fn bucket_of(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let exp = 63 - value.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let top = value >> shift; // in [SUB, 2 * SUB)
    ((u64::from(shift) + 1) * SUB + (top - SUB)) as usize
}

/// The smallest value and the width of bucket `index`.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, 1);
    }
    let shift = index / SUB - 1;
    let top = SUB + index % SUB;
    (top << shift, 1 << shift)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one sample.
    pub fn record(&mut self, value: u64) {
        let bucket = bucket_of(value);
        if bucket >= self.counts.len() {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
        if self.total == 0 || value < self.min {
            self.min = value;
        }
        self.max = self.max.max(value);
        self.total += 1;
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        if self.total == 0 || other.min < self.min {
            self.min = other.min;
        }
        self.max = self.max.max(other.max);
        self.total += other.total;
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether no sample was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest sample (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The smallest sample (0 when empty).
    pub fn min(&self) -> u64 {
        self.min
    }

    /// The value at quantile `q` (0.0..=1.0): the smallest recorded value such that at least
    /// `q` of the samples are at or below it (nearest rank), to the bucket's precision and
    /// clamped to the exact minimum and maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, width) = bucket_range(index);
                return (low + width / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once_and_in_order() {
        let mut previous = None;
        for value in (0..5000).chain([u64::MAX / 3, u64::MAX]) {
            let bucket = bucket_of(value);
            let (low, width) = bucket_range(bucket);
            assert!(
                low <= value && value - low < width,
                "{value} in {low}+{width}"
            );
            if let Some(previous) = previous {
                assert!(bucket >= previous);
            }
            previous = Some(bucket);
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut hist = Histogram::new();
        for value in 1..=100 {
            hist.record(value);
        }
        assert_eq!(hist.len(), 100);
        assert_eq!(hist.quantile(0.5), 50);
        assert_eq!(hist.quantile(0.9), 90);
        assert_eq!(hist.quantile(0.99), 99);
        assert_eq!(hist.quantile(1.0), 100);
        assert_eq!(hist.quantile(0.0), 1);
        assert_eq!((hist.min(), hist.max()), (1, 100));
    }

    #[test]
    fn large_values_are_within_one_percent() {
        let mut hist = Histogram::new();
        for value in 1..=100_000u64 {
            hist.record(value * 10);
        }
        for (q, exact) in [
            (0.5, 500_000.0),
            (0.9, 900_000.0),
            (0.99, 990_000.0),
            (0.999, 999_000.0),
        ] {
            let got = hist.quantile(q) as f64;
            assert!((got - exact).abs() / exact < 0.01, "q{q}: {got} vs {exact}");
        }
        assert_eq!(hist.max(), 1_000_000);
        assert_eq!(hist.quantile(1.0), 1_000_000);
    }

    #[test]
    fn a_single_outlier_is_the_max_and_not_the_p99() {
        let mut hist = Histogram::new();
        for _ in 0..999 {
            hist.record(40);
        }
        hist.record(1_000_000);
        assert_eq!(hist.quantile(0.99), 40);
        assert_eq!(hist.quantile(0.999), 40);
        assert_eq!(hist.max(), 1_000_000);
    }

    #[test]
    fn merging_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for value in 0..3000u64 {
            let value = value * value % 77_777;
            if value % 3 == 0 {
                a.record(value)
            } else {
                b.record(value)
            }
            all.record(value);
        }
        let mut merged = Histogram::new();
        merged.merge(&a);
        merged.merge(&b);
        merged.merge(&Histogram::new());
        assert_eq!(merged.len(), all.len());
        assert_eq!((merged.min(), merged.max()), (all.min(), all.max()));
        for q in [0.5, 0.9, 0.99, 0.999] {
            assert_eq!(merged.quantile(q), all.quantile(q));
        }
    }

    #[test]
    fn empty_reads_as_zero() {
        let hist = Histogram::new();
        assert!(hist.is_empty());
        assert_eq!(hist.quantile(0.99), 0);
        assert_eq!(hist.max(), 0);
    }
}
