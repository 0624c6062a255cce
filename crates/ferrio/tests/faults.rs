//! Clients that die badly, against the built `ferrio serve`: killed in the middle of a long-poll,
//! in the middle of a WebSocket frame, and by a TCP reset. Each time the server ends the session
//! with a reason that says what happened, its connection count returns to what it was,
//! and a client connected all along goes on exchanging messages. The long-poll case runs once
//! more through a real nginx, which must pass the client's going away on to the server.

mod process;

use std::time::Duration;

use ferrio_test_support::nginx::{nginx_binary, Nginx, NginxConfig};
use process::{join_lobby, socketio_websocket, Ferrio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the server gets to notice a dead client. Far below the heartbeat (25 s + 20 s), so
/// a session ended by the heartbeat instead of by the fault fails the test.
const NOTICE: Duration = Duration::from_secs(10);

fn serve() -> Ferrio {
    Ferrio::start(&[
        ("FERRIO_LOG_CONNECTIONS", "true"),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
    ])
}

/// The `sid` of an open packet (`0{"sid":"...",...}`).
fn session_id(open: &str) -> String {
    let start = open.find("\"sid\":\"").expect("a sid") + 7;
    let end = open[start..].find('"').expect("sid end") + start;
    open[start..end].to_owned()
}

/// One HTTP/1.1 request on a fresh connection; the body of the answer.
async fn request(port: u16, method: &str, target: &str, body: &str) -> String {
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Waits (bounded) until the log holds `count` disconnection lines with `reason` (as clients
/// word it; `log.connections` writes it quoted).
fn wait_disconnections(server: &Ferrio, reason: &str, count: usize) -> bool {
    let reason = format!("reason={reason:?}");
    let deadline = std::time::Instant::now() + NOTICE;
    while std::time::Instant::now() < deadline {
        let found = server
            .log()
            .lines()
            .filter(|line| line.contains("disconnected id=") && line.contains(&reason))
            .count();
        if found >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A polling client connected to `/` through `port` (the server's or a proxy's) dies while its
/// long-poll is pending; the server ends the session at once and serves the bystander.
async fn long_poll_killed(server: &Ferrio, port: u16) {
    let (mut bystander, _) = socketio_websocket(server.port).await;
    assert_eq!(server.wait_connections(1.0, NOTICE), 1.0);

    let base = "/socket.io/?EIO=4&transport=polling";
    let open = request(port, "GET", base, "").await;
    let sid = session_id(&open);
    let session = format!("{base}&sid={sid}");
    assert_eq!(request(port, "POST", &session, "40").await, "ok");
    let connected = request(port, "GET", &session, "").await;
    assert!(connected.starts_with("40{\"sid\":"), "{connected}");
    assert_eq!(server.wait_connections(2.0, NOTICE), 2.0);

    // A long-poll that waits for packets; the client dies while it is pending.
    let mut tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!("GET {session} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(tcp);

    assert!(
        wait_disconnections(server, "transport error", 1),
        "{}",
        server.log()
    );
    assert_eq!(server.wait_connections(1.0, NOTICE), 1.0);
    // The session is gone: its id is unknown now.
    let gone = request(port, "GET", &session, "").await;
    assert_eq!(gone, "{\"code\":1,\"message\":\"Session ID unknown\"}");
    join_lobby(&mut bystander, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_during_a_long_poll_is_cleaned_up() {
    let server = serve();
    long_poll_killed(&server, server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_during_a_long_poll_through_nginx_is_cleaned_up() {
    let Some(binary) = nginx_binary("the long-poll fault test through nginx") else {
        return;
    };
    let server = serve();
    let nginx = Nginx::start(
        &binary,
        NginxConfig {
            server: format!(
                "location / {{\n\
                   proxy_pass http://127.0.0.1:{};\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n\
                   proxy_read_timeout 60s;\n\
                 }}",
                server.port
            ),
            ..NginxConfig::default()
        },
    );
    long_poll_killed(&server, nginx.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_in_the_middle_of_a_websocket_frame_is_cleaned_up() {
    let server = serve();
    let (mut bystander, _) = socketio_websocket(server.port).await;
    let (mut victim, _) = socketio_websocket(server.port).await;
    assert_eq!(server.wait_connections(2.0, NOTICE), 2.0);

    // The head of a masked text frame announcing 100 bytes, and 10 of them; then nothing.
    let mut partial = vec![0x81, 0x80 | 100, 1, 2, 3, 4];
    partial.extend_from_slice(b"42[\"join\",");
    victim.get_mut().write_all(&partial).await.expect("write");
    victim.get_mut().flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(victim);

    assert!(
        wait_disconnections(&server, "transport close", 1),
        "{}",
        server.log()
    );
    assert_eq!(server.wait_connections(1.0, NOTICE), 1.0);
    join_lobby(&mut bystander, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_reset_is_cleaned_up() {
    let server = serve();
    let (mut bystander, _) = socketio_websocket(server.port).await;
    let (victim, _) = socketio_websocket(server.port).await;
    assert_eq!(server.wait_connections(2.0, NOTICE), 2.0);

    // SO_LINGER 0: closing sends RST instead of FIN. A reset is a network failure, which the
    // server reports as "transport error" (a clean close would be "transport close").
    let tcp = victim.into_inner();
    // Deprecated because a non-zero linger blocks the thread on drop; zero resets at once.
    #[allow(deprecated)]
    tcp.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(tcp);

    assert!(
        wait_disconnections(&server, "transport error", 1),
        "{}",
        server.log()
    );
    assert_eq!(server.wait_connections(1.0, NOTICE), 1.0);
    join_lobby(&mut bystander, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hangup_without_tls_is_logged_and_the_server_stays() {
    let server = serve();
    let (mut client, _) = socketio_websocket(server.port).await;
    server.signal("HUP");
    assert!(
        server.wait_for_log(
            "SIGHUP received: no TLS files to reload (server.tls_cert is not set)",
            NOTICE
        ),
        "{}",
        server.log()
    );
    join_lobby(&mut client, 1).await;
    assert_eq!(server.get("/health"), (200, "ok".to_owned()));
}
