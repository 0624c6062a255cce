//! Server and load-generator resource use, read from `/proc`.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on every Linux ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` of `pid` in KiB, or `None` when it cannot be read (no such process).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU seconds used so far by every thread of `pid` (`None`: the process's own).
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After ')': state is field 3 of the man page, utime field 14 and stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// CPU use of the server and of the load generator between two points in time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMark {
    at: Instant,
    server: Option<f64>,
    own: Option<f64>,
}

impl CpuMark {
    /// Reads both counters now.
    pub(crate) fn now(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server: server_pid.and_then(|pid| cpu_seconds(Some(pid))),
            own: cpu_seconds(None),
        }
    }

    /// (server, load generator) CPU seconds per wall second since `earlier`; `None` when unknown.
    pub(crate) fn since(&self, earlier: &CpuMark) -> (Option<f64>, Option<f64>) {
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        if wall <= 0.0 {
            return (None, None);
        }
        let per_wall = |now: Option<f64>, then: Option<f64>| Some((now? - then?) / wall);
        (
            per_wall(self.server, earlier.server),
            per_wall(self.own, earlier.own),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_seconds(Some(pid)).unwrap() >= 0.0);
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
