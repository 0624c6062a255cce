//! The built `ferrio serve` as a child process on a free 127.0.0.1 port, for the TLS, fault and
//! soak tests: a clean environment, logs in a file, signals, and the process's memory.

#![allow(dead_code)] // Each test file uses part of it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `ferrio serve`, killed when dropped.
pub(crate) struct Ferrio {
    child: Child,
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Ferrio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Ferrio {
    /// Starts `ferrio serve` with only `PATH`, the host and port, and `env` in its environment,
    /// and waits (20 s at most) until it accepts connections.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), env)
    }

    /// [`Ferrio::start`] on a given port.
    pub(crate) fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("ferrio.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Plain log lines, which the tests read.
            .env("NO_COLOR", "1")
            .env("FERRIO_SERVER_HOST", "127.0.0.1")
            .env("FERRIO_SERVER_PORT", port.to_string())
            .envs(env.iter().copied())
            .arg("serve")
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("ferrio starts");
        let mut server = Self {
            child,
            port,
            log,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("ferrio exited ({status}):\n{}", server.log_text());
            }
            assert!(Instant::now() < deadline, "ferrio never listened");
            std::thread::sleep(Duration::from_millis(25));
        }
        server
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A directory that lives as long as the server.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server logged so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log contains `needle`; false if it never does.
    pub(crate) fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    }

    /// Sends a signal by name (`HUP`, `KILL`, `TERM`) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The resident memory of the process in KiB (`VmRSS` of `/proc/PID/status`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// `GET path` on a fresh connection: the status code and the body.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// The value of a metric line of `/metrics` (the first whose name and labels start with
    /// `prefix`), or 0 when absent.
    pub(crate) fn metric(&self, prefix: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (bounded) until `ferrio_connections` reads `count`; the last value read.
    pub(crate) fn wait_connections(&self, count: f64, limit: Duration) -> f64 {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.metric("ferrio_connections");
            if now == count || Instant::now() >= deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
