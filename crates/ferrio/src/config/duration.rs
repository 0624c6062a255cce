//! Durations in the configuration.
//!
//! A duration is a number with a unit, `500ms`, `25s`, `2m` or `1h` (a fraction is allowed:
//! `1.5s`), or a bare whole number, which is **milliseconds**, as in the options of the
//! reference Socket.IO server (`pingInterval: 25000`). The lint flags values whose size
//! suggests the other unit was meant (see [`super::lint`]).

use std::time::Duration;

/// How a duration was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// A bare number: milliseconds.
    Bare,
    /// With the unit `ms`.
    Millis,
    /// With the unit `s`.
    Seconds,
    /// With the unit `m` or `h`.
    Longer,
}

/// Parses a duration and says how it was written.
pub(crate) fn parse_written(text: &str) -> Result<(Duration, Written), String> {
    let text = text.trim();
    let invalid = || {
        format!(
            "invalid duration {text:?}: write a number with a unit (500ms, 25s, 2m, 1h) \
             or a bare number of milliseconds"
        )
    };
    let at = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(at);
    if number.is_empty() {
        return Err(invalid());
    }
    if unit.is_empty() {
        let millis: u64 = number.parse().map_err(|_| invalid())?;
        return Ok((Duration::from_millis(millis), Written::Bare));
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let (seconds, written) = match unit.trim() {
        "ms" => (value / 1000.0, Written::Millis),
        "s" => (value, Written::Seconds),
        "m" => (value * 60.0, Written::Longer),
        "h" => (value * 3600.0, Written::Longer),
        _ => return Err(invalid()),
    };
    Duration::try_from_secs_f64(seconds)
        .map(|d| (d, written))
        .map_err(|_| invalid())
}

/// Parses a duration.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    parse_written(text).map(|(d, _)| d)
}

/// Writes a duration in the largest unit that keeps it whole (`2m`, `25s`, `500ms`), minutes
/// only from two minutes on (`60s`, `90s`, `2m`).
pub(crate) fn format(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    const MS: u128 = 1_000_000;
    if nanos == 0 {
        return "0ms".to_owned();
    }
    if nanos % MS != 0 {
        return format!("{duration:?}");
    }
    let millis = nanos / MS;
    if millis % 3_600_000 == 0 {
        format!("{}h", millis / 3_600_000)
    } else if millis % 60_000 == 0 && millis >= 120_000 {
        format!("{}m", millis / 60_000)
    } else if millis % 1000 == 0 {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// Writes a long duration for people: `16h40m`, `1m30s`, `250ms`.
pub(crate) fn human(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs == 0 {
        return format(duration);
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// `#[serde(with = "duration")]`: written as `"25s"`, read from a string with a unit or a bare
/// integer of milliseconds.
pub(crate) mod serde_duration {
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*value))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"25s\" or a whole number of milliseconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_millis(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_millis)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                super::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse(" 10s "), Ok(Duration::from_secs(10)));
    }

    #[test]
    fn a_bare_number_is_milliseconds() {
        assert_eq!(
            parse_written("25000"),
            Ok((Duration::from_secs(25), Written::Bare))
        );
        assert_eq!(parse("25"), Ok(Duration::from_millis(25)));
        assert!(parse("2.5").is_err(), "a bare number is whole milliseconds");
    }

    #[test]
    fn rejects_garbage() {
        for text in ["", "s", "abc", "10 parsecs", "5d", "-1s", "1e3"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn formats_in_the_largest_whole_unit() {
        assert_eq!(format(Duration::from_secs(25)), "25s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_secs(120)), "2m");
        assert_eq!(format(Duration::from_secs(60)), "60s");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::ZERO), "0ms");
        assert_eq!(human(Duration::from_secs(60_000)), "16h40m");
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn format_parses_back() {
        for ms in [1, 999, 1000, 25_000, 60_000, 90_000, 3_600_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
