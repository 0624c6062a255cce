//! The session cookie of the built `ferrio serve` (`server.cookie*`): none by default, and with it
//! on, exactly one `Set-Cookie` on the handshake answer (polling, and a direct WebSocket's 101)
//! with the configured attributes, none on the session's later requests, and `Secure` whenever
//! the server speaks TLS.

mod process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use process::Ferrio;

/// The status line and headers of an answer, and its body.
struct Answer {
    head: String,
    body: String,
}

impl Answer {
    /// The values of every header of that name, in order.
    fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// The status code.
    fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The session id of an Engine.IO open packet body (`0{"sid":"...",...}`).
    fn sid(&self) -> String {
        let rest = self
            .body
            .split_once("\"sid\":\"")
            .unwrap_or_else(|| panic!("no sid in {:?}", self.body))
            .1;
        rest.split('"').next().expect("closing quote").to_owned()
    }
}

/// A request on a fresh connection, read to its end (or, for a 101, to the end of the headers,
/// since the connection then stays open).
fn request(server: &Ferrio, method: &str, target: &str, extra: &str, body: &str) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&bytes);
        if text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {answer:?}"));
    Answer {
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The polling handshake of Engine.IO v4.
fn handshake(server: &Ferrio) -> Answer {
    let answer = request(server, "GET", "/socket.io/?EIO=4&transport=polling", "", "");
    assert_eq!(answer.status(), 200, "{}", answer.head);
    answer
}

/// A direct WebSocket handshake: the 101's headers.
fn websocket(server: &Ferrio) -> Answer {
    let answer = request(
        server,
        "GET",
        "/socket.io/?EIO=4&transport=websocket",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "",
    );
    assert_eq!(answer.status(), 101, "{}", answer.head);
    answer
}

#[test]
fn no_cookie_by_default() {
    let server = Ferrio::start(&[]);
    assert_eq!(
        handshake(&server).headers("set-cookie"),
        Vec::<String>::new()
    );
    assert_eq!(
        websocket(&server).headers("set-cookie"),
        Vec::<String>::new()
    );
}

#[test]
fn the_handshake_sets_the_cookie_once() {
    let server = Ferrio::start(&[("FERRIO_SERVER_COOKIE", "true")]);
    let answer = handshake(&server);
    let sid = answer.sid();
    assert_eq!(
        answer.headers("set-cookie"),
        vec![format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")]
    );

    // The session's later requests do not set it again.
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let post = request(&server, "POST", &target, "", "40");
    assert_eq!((post.status(), post.body.as_str()), (200, "ok"));
    assert_eq!(post.headers("set-cookie"), Vec::<String>::new());
    let poll = request(&server, "GET", &target, "", "");
    assert_eq!(poll.status(), 200, "{}", poll.head);
    assert_eq!(poll.headers("set-cookie"), Vec::<String>::new());

    // A client that opens a WebSocket directly gets it on the 101.
    let upgrade = websocket(&server);
    let cookies = upgrade.headers("set-cookie");
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(
        cookies[0].starts_with("io=") && cookies[0].ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{cookies:?}"
    );
}

#[test]
fn every_attribute_is_configurable() {
    // Behind a proxy that ends TLS: Secure without TLS here, and SameSite=None for a page on
    // another site.
    let server = Ferrio::start(&[
        ("FERRIO_SERVER_COOKIE", "on"),
        ("FERRIO_SERVER_COOKIE_NAME", "sticky"),
        ("FERRIO_SERVER_COOKIE_PATH", "/app"),
        ("FERRIO_SERVER_COOKIE_HTTP_ONLY", "false"),
        ("FERRIO_SERVER_COOKIE_SECURE", "true"),
        ("FERRIO_SERVER_COOKIE_SAME_SITE", "None"),
        ("FERRIO_SERVER_TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let answer = handshake(&server);
    let sid = answer.sid();
    assert_eq!(
        answer.headers("set-cookie"),
        vec![format!("sticky={sid}; Path=/app; Secure; SameSite=None")]
    );

    let server = Ferrio::start(&[
        ("FERRIO_SERVER_COOKIE", "true"),
        ("FERRIO_SERVER_COOKIE_SAME_SITE", "strict"),
    ]);
    let answer = handshake(&server);
    let sid = answer.sid();
    assert_eq!(
        answer.headers("set-cookie"),
        vec![format!("io={sid}; Path=/; HttpOnly; SameSite=Strict")]
    );
}

/// With TLS here the cookie is `Secure` without `server.cookie_secure`: every client is on https,
/// where browsers keep it (and `SameSite=None` is then accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_secure_over_tls() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let files = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    let server = Ferrio::start(&[
        ("FERRIO_SERVER_TLS_CERT", cert.to_str().expect("utf-8")),
        ("FERRIO_SERVER_TLS_KEY", key.to_str().expect("utf-8")),
        ("FERRIO_SERVER_COOKIE", "true"),
        ("FERRIO_SERVER_COOKIE_SAME_SITE", "none"),
    ]);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("tcp connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    tls.write_all(
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\
          Connection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let mut bytes = Vec::new();
    // A peer closing TLS without close_notify is an error here; the bytes read are kept.
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut bytes))
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let answer = Answer {
        head: head.to_owned(),
        body: body.to_owned(),
    };
    assert_eq!(answer.status(), 200, "{}", answer.head);
    let sid = answer.sid();
    assert_eq!(
        answer.headers("set-cookie"),
        vec![format!("io={sid}; Path=/; HttpOnly; Secure; SameSite=None")]
    );
}
