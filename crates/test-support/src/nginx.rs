//! A real nginx (Debian's `nginx` package) for proxy tests: run as the test's own user, in the
//! foreground, with its configuration, logs and temporary files in a directory of its own on
//! 127.0.0.1 and a free port. Stopped and cleaned up when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long nginx is given to listen.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A running nginx.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
}

/// Whether the tests run under CI, where a missing tool is a failure rather than a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// The nginx binary, or `None` after a loud message when it is not installed; under CI a
/// missing nginx panics instead, so that the tests cannot pass by not running.
pub fn nginx_binary(what: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !in_ci(),
            "{what} cannot run under CI: nginx is not installed"
        );
        eprintln!(
            "\n************************************************************\n\
             * SKIPPED: {what}\n\
             * nginx is not installed (apt-get install nginx)\n\
             ************************************************************\n"
        );
    }
    found
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// What one nginx serves.
#[derive(Debug, Default)]
pub struct NginxConfig<'a> {
    /// Listen with `ssl` (the `server` block must then name `ssl_certificate` and
    /// `ssl_certificate_key`).
    pub tls: bool,
    /// Files written to nginx's directory before it starts (certificates and keys), by
    /// name. The `server` block refers to them as `{dir}/name`.
    pub files: Vec<(&'a str, Vec<u8>)>,
    /// The lines of the `server` block after its `listen` line. `{dir}` is replaced by
    /// nginx's directory.
    pub server: String,
}

impl Nginx {
    /// Starts nginx with `config`; panics, with nginx's error log, when it does not listen
    /// within 10 s.
    pub fn start(binary: &Path, config: NginxConfig<'_>) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrio-nginx-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("nginx temp dir");
        for (name, contents) in &config.files {
            std::fs::write(dir.join(name), contents).expect("write a file for nginx");
        }
        let port = free_port();
        let d = dir.display().to_string();
        let ssl = if config.tls { " ssl" } else { "" };
        let server = config.server.replace("{dir}", &d);
        let text = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               server {{\n\
                 listen 127.0.0.1:{port}{ssl};\n\
                 {server}\n\
               }}\n\
             }}\n"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, text).expect("write nginx.conf");
        let child = Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let mut nginx = Self { child, dir, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = nginx.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > START_LIMIT {
                panic!(
                    "nginx did not listen on {port} ({exited:?}):\n{}",
                    nginx.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// `scheme://127.0.0.1:port`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
