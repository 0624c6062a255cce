//! The built `ferrio serve` as a child process on a free 127.0.0.1 port, configured by
//! environment variables alone, for the webhook, plain WebSocket and JWKS tests.

#![allow(dead_code)] // Each test file uses part of it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

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
    /// (no configuration file, no `.env`), and waits (20 s at most) until it listens.
    pub(crate) fn start(env: &[(&str, &str)]) -> Self {
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
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("ferrio exited ({status}):\n{}", server.log_text());
            }
            assert!(Instant::now() < deadline, "ferrio never listened");
            std::thread::sleep(Duration::from_millis(25));
        }
        server
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
