use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// A `metrics` recorder that keeps every counter, by `name{label="value",...}`, so a test can
/// read exact counts. A histogram counts its samples under its name (their values are not
/// kept); gauges are ignored.
///
/// Install it once per test binary (the global recorder cannot be replaced); a binary holding a
/// single test then sees exact counts:
///
/// ```
/// let counters = ferrio_test_support::CountingRecorder::install();
/// metrics::counter!("hits_total", "reason" => "x").increment(2);
/// assert_eq!(counters.get(r#"hits_total{reason="x"}"#), 2);
/// ```
#[derive(Debug, Default)]
pub struct CountingRecorder(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

impl CountingRecorder {
    /// Installs a new recorder as this process's global one and returns it.
    ///
    /// Panics if a global recorder is installed already: a test binary gets one.
    pub fn install() -> &'static CountingRecorder {
        let counters: &'static CountingRecorder = Box::leak(Box::default());
        metrics::set_global_recorder(counters).expect("the only recorder of this test binary");
        counters
    }

    /// The count of counter `name`, labels included as `name{label="value"}`; 0 if never touched.
    pub fn get(&self, name: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The sum of every counter whose name (labels included) starts with `prefix`.
    pub fn sum_prefixed(&self, prefix: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }
}

impl CountingRecorder {
    /// The count kept for `key`, created at zero.
    fn slot(&self, key: &Key) -> Arc<AtomicU64> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name)
            .or_default()
            .clone()
    }
}

/// A histogram that counts its samples.
struct SampleCount(Arc<AtomicU64>);

impl metrics::HistogramFn for SampleCount {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder for &'static CountingRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.slot(key))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(SampleCount(self.slot(key))))
    }
}
