//! `server.trusted_proxies` and `server.allowed_origins` in the built `ferrio serve`: the
//! per-address limits count the forwarded client address only when the connection comes from
//! a trusted proxy, and requests from origins outside the allow-list are refused, WebSockets
//! included.

mod process;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use process::Ferrio;

/// A request with extra headers on a fresh connection: status code and body.
fn request(server: &Ferrio, target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    // Read to the end, except after a 101, where the connection stays open.
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

const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";
const PER_IP_REFUSAL: &str =
    "{\"code\":7,\"message\":\"Too many connections from this address (max 1)\"}";

fn forwarded(address: &str) -> [(&'static str, &str); 1] {
    [("X-Forwarded-For", address)]
}

#[test]
fn the_forwarded_address_counts_only_behind_a_trusted_proxy() {
    let server = Ferrio::start(&[
        ("FERRIO_LIMITS_MAX_CONNECTIONS_PER_IP", "1"),
        ("FERRIO_SERVER_TRUSTED_PROXIES", "127.0.0.0/8"),
    ]);
    // Two clients behind the proxy: two addresses, one session each.
    let (status, body) = request(&server, HANDSHAKE, &forwarded("203.0.113.1"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(&server, HANDSHAKE, &forwarded("203.0.113.2"));
    assert_eq!(status, 200, "{body}");
    // A second session of the first: refused, by its own address, not the proxy's.
    let (status, body) = request(&server, HANDSHAKE, &forwarded("198.51.100.9, 203.0.113.1"));
    assert_eq!((status, body.as_str()), (429, PER_IP_REFUSAL));
    // X-Real-IP when there is no X-Forwarded-For.
    let (status, body) = request(&server, HANDSHAKE, &[("X-Real-IP", "203.0.113.3")]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = request(&server, HANDSHAKE, &[("X-Real-IP", "203.0.113.3")]);
    assert_eq!((status, body.as_str()), (429, PER_IP_REFUSAL));
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // The proxy list does not include the test's own address, 127.0.0.1.
    let server = Ferrio::start(&[
        ("FERRIO_LIMITS_MAX_CONNECTIONS_PER_IP", "1"),
        ("FERRIO_SERVER_TRUSTED_PROXIES", "10.0.0.0/8"),
    ]);
    let (status, body) = request(&server, HANDSHAKE, &forwarded("203.0.113.1"));
    assert_eq!(status, 200, "{body}");
    // A client claiming to be someone else is still counted as 127.0.0.1.
    let (status, body) = request(&server, HANDSHAKE, &forwarded("203.0.113.2"));
    assert_eq!((status, body.as_str()), (429, PER_IP_REFUSAL));
}

#[test]
fn origins_outside_the_allow_list_are_refused_websockets_included() {
    let server = Ferrio::start(&[("FERRIO_SERVER_ALLOWED_ORIGINS", "https://app.example")]);
    let refused = "{\"code\":4,\"message\":\"Origin not allowed\"}";
    let (status, body) = request(&server, HANDSHAKE, &[("Origin", "https://evil.example")]);
    assert_eq!((status, body.as_str()), (403, refused));
    let (status, body) = request(&server, HANDSHAKE, &[("Origin", "https://app.example")]);
    assert_eq!(status, 200, "{body}");
    // No Origin at all: a non-browser client, allowed.
    let (status, body) = request(&server, HANDSHAKE, &[]);
    assert_eq!(status, 200, "{body}");
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    let websocket = "/socket.io/?EIO=4&transport=websocket";
    let mut evil = upgrade.to_vec();
    evil.push(("Origin", "https://evil.example"));
    let (status, body) = request(&server, websocket, &evil);
    assert_eq!((status, body.as_str()), (403, refused));
    let mut good = upgrade.to_vec();
    good.push(("Origin", "https://app.example"));
    let (status, _) = request(&server, websocket, &good);
    assert_eq!(status, 101);
    assert!(
        server.metric("ferrio_refusals_total{reason=\"origin\"}") == 2.0,
        "{}",
        server.log()
    );
}
