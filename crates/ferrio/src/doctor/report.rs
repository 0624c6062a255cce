//! The outcome of each step, and the report printed from them: text or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Works.
    Pass,
    /// Works, but something will bite some clients.
    Warn,
    /// Broken: clients fail here.
    Fail,
    /// Neither good nor bad; worth knowing (an optional feature that is off).
    Info,
    /// Not run: an earlier step failed, or an option it needs was not given.
    Skip,
}

impl Status {
    fn symbol(self) -> &'static str {
        match self {
            Self::Pass => "✓",
            Self::Warn => "⚠",
            Self::Fail => "✗",
            Self::Info => "ℹ",
            Self::Skip => "-",
        }
    }
}

/// What a step found: its status, what happened, and how to fix it when it is not a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) detail: String,
    pub(crate) fix: Option<String>,
    /// A stable name for the diagnosis (`tls-expired`, `cors-preflight-no-origin`, ...), for
    /// programs reading `--json`; not every outcome has one.
    pub(crate) code: Option<&'static str>,
}

impl Outcome {
    pub(crate) fn pass(detail: impl Into<String>) -> Self {
        Self::new(Status::Pass, detail, None::<String>)
    }

    pub(crate) fn info(detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(Status::Info, detail, Some(fix))
    }

    pub(crate) fn warn(detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(Status::Warn, detail, Some(fix))
    }

    pub(crate) fn fail(detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(Status::Fail, detail, Some(fix))
    }

    pub(crate) fn skip(detail: impl Into<String>) -> Self {
        Self::new(Status::Skip, detail, None::<String>)
    }

    /// Names the diagnosis (see [`Outcome::code`]).
    pub(crate) fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn new(status: Status, detail: impl Into<String>, fix: Option<impl Into<String>>) -> Self {
        Self {
            status,
            detail: detail.into(),
            fix: fix.map(Into::into),
            code: None,
        }
    }
}

/// One step of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Step {
    /// A stable name: `tcp`, `handshake`, `cors`, ...
    pub(crate) name: &'static str,
    pub(crate) status: Status,
    pub(crate) detail: String,
    pub(crate) fix: Option<String>,
    /// See [`Outcome::code`]; absent from the JSON when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<&'static str>,
    pub(crate) duration_ms: u64,
}

impl Step {
    pub(crate) fn new(name: &'static str, outcome: Outcome, took: Duration) -> Self {
        Self {
            name,
            status: outcome.status,
            detail: outcome.detail,
            fix: outcome.fix,
            code: outcome.code,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Every step, in order.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) url: String,
    pub(crate) path: String,
    pub(crate) namespace: String,
    /// Whether no step failed.
    pub(crate) ok: bool,
    pub(crate) steps: Vec<Step>,
}

impl Report {
    /// The report as text: one line per step, then the why and the fix, indented.
    pub(crate) fn to_text(&self) -> String {
        let mut out = format!(
            "ferrio doctor {} (path {}, namespace {})\n",
            self.url, self.path, self.namespace
        );
        for step in &self.steps {
            let _ = writeln!(
                out,
                "{} {:<10} {} ({} ms)",
                step.status.symbol(),
                step.name,
                first_line(&step.detail),
                step.duration_ms
            );
            for line in step.detail.lines().skip(1) {
                let _ = writeln!(out, "      {line}");
            }
            if let Some(fix) = &step.fix {
                let mut lines = fix.lines();
                if let Some(first) = lines.next() {
                    let _ = writeln!(out, "    fix: {first}");
                }
                for line in lines {
                    let _ = writeln!(out, "         {line}");
                }
            }
        }
        let count = |status| self.steps.iter().filter(|s| s.status == status).count();
        let _ = writeln!(
            out,
            "{}: {} passed, {} warnings, {} failed, {} skipped",
            if self.ok { "OK" } else { "FAILED" },
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        );
        out
    }

    /// The report as one JSON document.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_report_indents_why_and_fix() {
        let report = Report {
            url: "http://h:1".into(),
            path: "/socket.io/".into(),
            namespace: "/".into(),
            ok: false,
            steps: vec![
                Step::new("tcp", Outcome::pass("connected"), Duration::from_millis(2)),
                Step::new(
                    "upgrade",
                    Outcome::fail("refused\nwith 400", "line one\nline two"),
                    Duration::ZERO,
                ),
            ],
        };
        assert_eq!(
            report.to_text(),
            "ferrio doctor http://h:1 (path /socket.io/, namespace /)\n\
             ✓ tcp        connected (2 ms)\n\
             ✗ upgrade    refused (0 ms)\n      with 400\n    fix: line one\n         line two\n\
             FAILED: 1 passed, 0 warnings, 1 failed, 0 skipped\n"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_eq!(json["steps"][1]["status"], "fail");
        assert_eq!(json["steps"][0]["fix"], serde_json::Value::Null);
    }
}
