//! `ferrio serve` with TLS, run as the built binary with certificates generated for the test:
//! an Engine.IO handshake over https, Socket.IO over wss, a certificate reload on SIGHUP that
//! new connections see while an open WebSocket goes on, a bad reload that keeps the old
//! certificate, and the lints on bad TLS settings.

mod process;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use process::{join_lobby, socketio_connect, Ferrio};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `localhost`: its DER, and its certificate and key as PEM.
struct Generated {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn generate() -> Generated {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    Generated {
        der: made.cert.der().clone(),
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
    }
}

fn install(dir: &Path, certificate: &Generated) {
    std::fs::write(dir.join("cert.pem"), &certificate.cert_pem).expect("write cert");
    std::fs::write(dir.join("key.pem"), &certificate.key_pem).expect("write key");
}

/// A client trusting exactly the given certificates.
fn connector(trusted: &[&Generated]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in trusted {
        roots.add(certificate.der.clone()).expect("a root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A TLS connection to the server, verified as `localhost`, and the leaf it presented.
async fn connect(
    port: u16,
    connector: &tokio_rustls::TlsConnector,
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].clone();
    (tls, leaf)
}

/// An HTTP/1.1 `GET` over `stream` (closing it): status line and body.
async fn get(mut stream: TlsStream<TcpStream>, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .ok();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

type Wss = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

/// Socket.IO over wss to the main namespace: the open packet, then the CONNECT answer.
async fn socketio_over_wss(
    port: u16,
    connector: &tokio_rustls::TlsConnector,
) -> (Wss, CertificateDer<'static>) {
    let (tls, leaf) = connect(port, connector).await;
    let (ws, _) =
        socketio_connect(tls, "wss://localhost/socket.io/?EIO=4&transport=websocket").await;
    (ws, leaf)
}

fn serve_tls(dir: &Path) -> Ferrio {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    Ferrio::start(&[
        ("FERRIO_SERVER_TLS_CERT", cert.to_str().expect("utf-8")),
        ("FERRIO_SERVER_TLS_KEY", key.to_str().expect("utf-8")),
        ("FERRIO_ROOMS_PUBLIC_JOIN", "^lobby$"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_work_and_a_reload_swaps_the_certificate_for_new_connections_only() {
    let files = tempfile::tempdir().expect("temp dir");
    let first = generate();
    let second = generate();
    install(files.path(), &first);
    let server = serve_tls(files.path());
    let both = connector(&[&first, &second]);

    // An Engine.IO handshake over https.
    let (tls, leaf) = connect(server.port, &both).await;
    assert_eq!(leaf, first.der);
    let (status, body) = get(tls, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.starts_with("0{\"sid\":\""), "{body}");
    assert!(server
        .log()
        .contains("ferrio listening on https://127.0.0.1:"));

    // Socket.IO over wss, left open across the reload.
    let (mut before, leaf) = socketio_over_wss(server.port, &both).await;
    assert_eq!(leaf, first.der);
    join_lobby(&mut before, 1).await;

    install(files.path(), &second);
    server.signal("HUP");
    assert!(
        server.wait_for_log("TLS certificate reloaded", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let (_, leaf) = connect(server.port, &both).await;
    assert_eq!(
        leaf, second.der,
        "a new connection gets the new certificate"
    );
    let (mut after, leaf) = socketio_over_wss(server.port, &both).await;
    assert_eq!(leaf, second.der);
    join_lobby(&mut after, 1).await;

    // The WebSocket opened before the reload still exchanges messages.
    join_lobby(&mut before, 2).await;
    // A client trusting only the old certificate can no longer connect.
    let only_first = connector(&[&first]);
    let tcp = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("tcp");
    let refused = only_first
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await;
    assert!(refused.is_err(), "the old certificate is no longer served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_is_logged_and_the_old_certificate_stays() {
    let files = tempfile::tempdir().expect("temp dir");
    let first = generate();
    let other = generate();
    install(files.path(), &first);
    let server = serve_tls(files.path());
    let trusting = connector(&[&first]);

    // A key that is not the certificate's.
    std::fs::write(files.path().join("key.pem"), &other.key_pem).expect("write");
    server.signal("HUP");
    let expected = format!(
        "TLS reload failed; the previous certificate stays in use error=the private key in {} does not match the certificate in {}",
        files.path().join("key.pem").display(),
        files.path().join("cert.pem").display()
    );
    assert!(
        server.wait_for_log(&expected, Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let (_, leaf) = connect(server.port, &trusting).await;
    assert_eq!(leaf, first.der);

    // A missing file: the same.
    std::fs::remove_file(files.path().join("cert.pem")).expect("remove");
    server.signal("HUP");
    let expected = format!(
        "error=cannot read {}: No such file or directory",
        files.path().join("cert.pem").display()
    );
    assert!(
        server.wait_for_log(&expected, Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let (tls, leaf) = connect(server.port, &trusting).await;
    assert_eq!(leaf, first.der);
    let (status, _) = get(tls, "/health").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

/// `ferrio config check` with the given variables: exit code and output.
fn config_check(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied())
        .args(["config", "check"])
        .output()
        .expect("ferrio runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn config_check_names_what_is_wrong_with_the_tls_files() {
    let files = tempfile::tempdir().expect("temp dir");
    let first = generate();
    let other = generate();
    install(files.path(), &first);
    let cert = files.path().join("cert.pem");
    let key = files.path().join("key.pem");
    let other_key = files.path().join("other.pem");
    std::fs::write(&other_key, &other.key_pem).expect("write");
    let (cert_s, key_s, other_s) = (
        cert.to_str().expect("utf-8"),
        key.to_str().expect("utf-8"),
        other_key.to_str().expect("utf-8"),
    );

    let (code, out) = config_check(&[
        ("FERRIO_SERVER_TLS_CERT", cert_s),
        ("FERRIO_SERVER_TLS_KEY", key_s),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("tls-"), "{out}");

    let (code, out) = config_check(&[("FERRIO_SERVER_TLS_CERT", cert_s)]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "error[tls-incomplete]: server.tls_cert is set but server.tls_key is not: TLS needs both the certificate and its key\n  fix: set server.tls_key too, or unset server.tls_cert to serve plain HTTP"
        ),
        "{out}"
    );

    let (code, out) = config_check(&[
        ("FERRIO_SERVER_TLS_CERT", cert_s),
        ("FERRIO_SERVER_TLS_KEY", other_s),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "error[tls-files-invalid]: server.tls_cert / server.tls_key: the private key in {other_s} does not match the certificate in {cert_s}"
        )),
        "{out}"
    );

    let missing = files.path().join("missing.pem");
    let (code, out) = config_check(&[
        ("FERRIO_SERVER_TLS_CERT", missing.to_str().expect("utf-8")),
        ("FERRIO_SERVER_TLS_KEY", key_s),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "error[tls-files-invalid]: server.tls_cert / server.tls_key: cannot read {}: No such file or directory",
            missing.display()
        )),
        "{out}"
    );
}

#[test]
fn serve_refuses_to_start_with_a_mismatched_key() {
    let files = tempfile::tempdir().expect("temp dir");
    let first = generate();
    let other = generate();
    install(files.path(), &first);
    std::fs::write(files.path().join("key.pem"), &other.key_pem).expect("write");
    let port = process::free_port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(files.path())
        .env_clear()
        .env("FERRIO_SERVER_HOST", "127.0.0.1")
        .env("FERRIO_SERVER_PORT", &port)
        .env("FERRIO_SERVER_TLS_CERT", files.path().join("cert.pem"))
        .env("FERRIO_SERVER_TLS_KEY", files.path().join("key.pem"))
        .arg("serve")
        .output()
        .expect("ferrio runs");
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("tls-files-invalid"), "{text}");
    // The process has exited: nothing listens.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port"))).is_err()
    );
}
