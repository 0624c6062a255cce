//! The built `ferrio serve` as a child process on a free 127.0.0.1 port, configured by
//! environment variables alone, for the webhook, plain WebSocket and JWKS tests.

#![allow(dead_code)] // Each test file uses part of it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Whether `GET /health` on the port answers 200 `ok`, as `ferrio serve` does.
fn health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok")
}

/// A port free on 127.0.0.1 now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `ferrio serve`, killed when dropped (its log printed if the test failed).
pub(crate) struct Ferrio {
    child: Child,
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Ferrio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("ferrio log:\n{}", self.log_text());
        }
    }
}

impl Ferrio {
    /// Starts `ferrio serve` with only `PATH`, the host and port, and `env` in its environment
    /// (no configuration file, no `.env`), and waits (20 s at most) until it logged that it
    /// listens and its `/health` answers. A port taken by another test between its choice and
    /// the server's bind is seen (the server exits) and another port is tried.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
        for _ in 0..5 {
            if let Some(server) = Self::try_start(env) {
                return server;
            }
        }
        panic!("ferrio never came up on a free port");
    }

    fn try_start(env: &[(&str, &str)]) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = dir.path().join("ferrio.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FERRIO_SERVER_HOST", "127.0.0.1")
            .env("FERRIO_SERVER_PORT", port.to_string())
            .env("FERRIO_LOG_LEVEL", "info,ferrio=debug")
            .envs(env.iter().copied())
            .args(["serve", "--no-env-file"])
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("ferrio starts");
        let mut server = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log_text();
                if log.contains("cannot listen") {
                    return None; // The port was taken meanwhile: try another.
                }
                panic!("ferrio exited ({status}):\n{log}");
            }
            // Its own log says it bound the port; /health then says it serves.
            if server.log_text().contains("ferrio listening on") && health(port) {
                return Some(server);
            }
            assert!(Instant::now() < deadline, "ferrio never answered /health");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends a signal by name (`TERM`, `INT`) with the `kill` command.
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Everything the server logged so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
