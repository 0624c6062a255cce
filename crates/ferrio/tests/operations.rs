//! `ferrio serve`'s operational endpoints, `/ready` and `/metrics`, run as the built binary
//! with a clean environment on a free 127.0.0.1 port.

mod process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use process::Ferrio;

/// An HTTP/1.1 connection kept alive across requests.
struct Connection(BufReader<TcpStream>);

/// An answer: status code, headers (names in lower case) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Connection {
    fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Self(BufReader::new(stream))
    }

    fn request(&mut self, method: &str, target: &str, body: &str) -> std::io::Result<Answer> {
        write!(
            self.0.get_mut(),
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut line = String::new();
        if self.0.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.0.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').expect("a header");
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .expect("answers carry a Content-Length");
        let mut body = vec![0; length];
        self.0.read_exact(&mut body)?;
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        })
    }

    fn get(&mut self, target: &str) -> Answer {
        self.request("GET", target, "").unwrap()
    }
}

/// One GET on a fresh connection.
fn get(port: u16, target: &str) -> Answer {
    Connection::open(port).get(target)
}

/// The value of the sample named exactly `series` (name and labels) in a Prometheus rendering.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.trim().parse().unwrap())
    })
}

/// A polling handshake: the session id.
fn handshake(port: u16) -> String {
    let answer = get(port, "/socket.io/?EIO=4&transport=polling");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let open = &answer.body[answer.body.find('{').expect("an open packet")..];
    let open: serde_json::Value = serde_json::from_str(open).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

#[test]
fn ready_and_health_answer_while_serving() {
    let server = Ferrio::start(&[]);
    let ready = get(server.port, "/ready");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
    let health = get(server.port, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
}

#[test]
fn metrics_count_connections_sockets_and_refusals() {
    let server = Ferrio::start(&[("FERRIO_LIMITS_MAX_CONNECTIONS", "1")]);
    let port = server.port;
    let metrics = get(port, "/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    assert_eq!(sample(&metrics.body, "ferrio_connections"), Some(0.0));
    assert!(metrics.body.contains("# TYPE ferrio_connections gauge\n"));
    assert_eq!(
        sample(
            &metrics.body,
            "ferrio_refusals_total{reason=\"max_connections\"}"
        ),
        None
    );

    // A polling session, open for the whole test (the ping interval is 25 s).
    let sid = handshake(port);
    let metrics = get(port, "/metrics").body;
    assert_eq!(
        sample(&metrics, "ferrio_connections"),
        Some(1.0),
        "{metrics}"
    );

    // The session joins the main namespace.
    let connect = Connection::open(port)
        .request(
            "POST",
            &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
            "40",
        )
        .unwrap();
    assert_eq!((connect.status, connect.body.as_str()), (200, "ok"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = get(port, "/metrics").body;
        if sample(&metrics, "ferrio_sockets{namespace=\"/\"}") == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no socket in /:\n{metrics}");
        std::thread::sleep(Duration::from_millis(20));
    }

    // A second session is over `limits.max_connections`.
    let refused = get(port, "/socket.io/?EIO=4&transport=polling");
    assert_eq!(refused.status, 503, "{}", refused.body);
    let metrics = get(port, "/metrics").body;
    assert_eq!(
        sample(
            &metrics,
            "ferrio_refusals_total{reason=\"max_connections\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "ferrio_connections"),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn metrics_can_be_turned_off() {
    let server = Ferrio::start(&[("FERRIO_SERVER_METRICS", "false")]);
    assert_eq!(get(server.port, "/metrics").status, 404);
    assert_eq!(get(server.port, "/ready").status, 200);
}

#[test]
fn ready_answers_503_once_a_shutdown_began() {
    let mut server = Ferrio::start(&[("FERRIO_SERVER_SHUTDOWN_TIMEOUT", "3s")]);
    // A polling session that never polls again keeps the drain waiting until the deadline.
    handshake(server.port);
    let mut connection = Connection::open(server.port);
    assert_eq!(connection.get("/ready").status, 200);
    server.terminate();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ready = connection
            .request("GET", "/ready", "")
            .expect("still answered while draining");
        if ready.status == 503 {
            assert_eq!(ready.body, "shutting down");
            break;
        }
        assert_eq!(ready.status, 200);
        assert!(Instant::now() < deadline, "/ready never turned 503");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The process then exits by itself, successfully.
    assert!(server.child.wait().unwrap().success());
}

#[test]
fn the_admin_page_is_served_with_a_policy_that_runs_no_inline_script() {
    let server = Ferrio::start(&[]);
    let mut connection = Connection::open(server.port);
    let page = connection.get("/admin");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let policy = page
        .header("content-security-policy")
        .expect("a Content-Security-Policy");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page
        .body
        .contains(r#"<script src="/admin/app.js" defer></script>"#));
    assert!(
        !page.body.contains("<script>"),
        "no inline script: the policy would block it"
    );

    for (path, content_type, marker) in [
        ("/admin/app.js", "text/javascript; charset=utf-8", "/api/v1"),
        ("/admin/admin.css", "text/css; charset=utf-8", "[hidden]"),
    ] {
        let asset = connection.get(path);
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("content-type"), Some(content_type), "{path}");
        assert!(asset.body.contains(marker), "{path}");
    }
    assert_eq!(connection.get("/admin/missing.js").status, 404);
}
