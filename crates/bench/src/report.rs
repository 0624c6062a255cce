//! The result of one run: one JSON line for machines, one table for people.

use std::fmt::Write as _;

use serde_json::Value;

use crate::hist::Histogram;

/// The result of one scenario run: named fields in the order they were added.
///
/// [`Report::to_json_line`] is the contract's result line; [`Report::to_table`] the summary.
#[derive(Debug, Clone, Default)]
pub struct Report {
    fields: Vec<(String, Value)>,
}

impl Report {
    /// Sets `key` to `value` (replacing an earlier value of the same key).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(name, _)| name == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.to_owned(), value)),
        }
    }

    /// Sets `key` to a number rounded to `decimals` places, or `null` when unknown.
    pub fn set_f64(&mut self, key: &str, value: Option<f64>, decimals: i32) {
        let value = value.filter(|v| v.is_finite()).map(|v| {
            let scale = 10f64.powi(decimals);
            (v * scale).round() / scale
        });
        self.set(key, value.map_or(Value::Null, Value::from));
    }

    /// Sets `<prefix>_p50_us`, `_p90_us`, `_p99_us`, `_p999_us`, `_max_us` and `_samples`.
    pub fn set_latency(&mut self, prefix: &str, hist: &Histogram) {
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            self.set(&format!("{prefix}_{name}_us"), hist.quantile(q));
        }
        self.set(&format!("{prefix}_max_us"), hist.max());
        self.set(&format!("{prefix}_samples"), hist.len());
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// Every field, in order.
    pub fn fields(&self) -> &[(String, Value)] {
        &self.fields
    }

    /// One compact JSON object, fields in order, no trailing newline.
    pub fn to_json_line(&self) -> String {
        let mut out = String::from("{");
        for (index, (key, value)) in self.fields.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(&Value::from(key.as_str()).to_string());
            out.push(':');
            out.push_str(&value.to_string());
        }
        out.push('}');
        out
    }

    /// A two-column table for a terminal.
    pub fn to_table(&self) -> String {
        let width = self
            .fields
            .iter()
            .map(|(key, _)| key.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &self.fields {
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "  {key:<width$}  {shown}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_replaces_in_place() {
        let mut report = Report::default();
        report.set("scenario", "echo");
        report.set("acks", 3);
        report.set_f64("cpu", Some(0.123456), 3);
        report.set_f64("missing", None, 3);
        report.set("acks", 4);
        assert_eq!(
            report.to_json_line(),
            r#"{"scenario":"echo","acks":4,"cpu":0.123,"missing":null}"#
        );
        assert!(report.to_table().contains("scenario  echo"));
    }

    #[test]
    fn latency_fields_follow_the_contract_names() {
        let mut hist = Histogram::new();
        hist.record(10);
        let mut report = Report::default();
        report.set_latency("rtt", &hist);
        let names: Vec<_> = report.fields().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "rtt_p50_us",
                "rtt_p90_us",
                "rtt_p99_us",
                "rtt_p999_us",
                "rtt_max_us",
                "rtt_samples"
            ]
        );
    }
}
