//! `serve_tls` (feature `tls`) over real sockets: an Engine.IO handshake over TLS, a connection
//! that never starts its TLS handshake closed after the header timeout and counted as
//! `tls_handshake_timeout`, and a plain-HTTP client on the TLS port closed without an answer.
//! The binary holds a single test, so the counts of its recorder are exact.
#![cfg(feature = "tls")]

use std::sync::Arc;
use std::time::Duration;

use ferrio_engineio::{
    serve_tls, DisconnectReason, Engine, EngineConfig, EngineHandler, EngineService, Message,
    ServeConfig, Socket, TlsFiles, REFUSALS_TOTAL,
};
use ferrio_test_support::CountingRecorder;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Echo;

impl EngineHandler for Echo {
    type Data = ();
    fn on_connect(&self, _socket: &Arc<Socket<()>>) {}
    fn on_message(&self, socket: &Arc<Socket<()>>, message: Message) {
        let _ = socket.send(message);
    }
    fn on_disconnect(&self, _socket: &Arc<Socket<()>>, _reason: DisconnectReason) {}
}

/// Reads until the peer closes (10 s at most); what arrived.
async fn read_to_close(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the server closed the connection in time");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_tls_answers_over_tls_and_drops_silent_and_plain_clients() {
    let counters = CountingRecorder::install();
    let dir = tempfile::tempdir().expect("temp dir");
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).expect("write");
    std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).expect("write");
    let tls = TlsFiles::load(dir.path().join("cert.pem"), dir.path().join("key.pem"))
        .expect("the files load");

    let engine = Engine::new(EngineConfig::default(), Echo);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let serve = ServeConfig {
        header_read_timeout: Some(Duration::from_millis(300)),
    };
    let server = tokio::spawn(serve_tls(listener, EngineService::new(engine), serve, tls));

    // A real client: TLS, then an Engine.IO handshake.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("root");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut tls_stream = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    // Only HTTP/1.1 is served, and said so.
    assert_eq!(
        tls_stream.get_ref().1.alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    tls_stream
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let answer = String::from_utf8(read_to_close(&mut tls_stream).await).expect("text");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\n\r\n0{\"sid\":\""), "{answer}");

    // A WebSocket over TLS (the session's connection is then hyper's boxed one, not a bare
    // TCP stream): the open packet, then a masked text frame echoed.
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut wss = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    wss.write_all(
        b"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n\
          Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 4096, "answer head too long");
        head.push(wss.read_u8().await.expect("the answer"));
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let mut frame_head = [0u8; 2];
    wss.read_exact(&mut frame_head).await.expect("a frame");
    assert_eq!(frame_head[0], 0x81, "the open packet, a text frame");
    let mut open = vec![0; usize::from(frame_head[1] & 0x7f)];
    wss.read_exact(&mut open).await.expect("the open packet");
    assert!(open.starts_with(b"0{\"sid\":\""), "{open:?}");
    let key = [1u8, 2, 3, 4];
    let mut text = vec![0x81, 0x80 | 3];
    text.extend_from_slice(&key);
    text.extend(b"4hi".iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    wss.write_all(&text).await.expect("write a frame");
    let mut echo = [0u8; 5];
    wss.read_exact(&mut echo).await.expect("the echo");
    assert_eq!(&echo, b"\x81\x034hi");

    // A client that connects and says nothing: closed after the timeout, and counted.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(read_to_close(&mut silent).await, b"");
    let timeouts = format!("{REFUSALS_TOTAL}{{reason=\"tls_handshake_timeout\"}}");
    assert_eq!(counters.get(&timeouts), 1);

    // Plain HTTP on the TLS port: not a TLS hello, so the connection closes with no HTTP answer.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = read_to_close(&mut plain).await;
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    assert_eq!(
        counters.get(&timeouts),
        1,
        "a failed handshake is not a timeout"
    );
    server.abort();
}
