//! `https://` through a real nginx terminating TLS in front of Ferrio, with certificates made
//! at test time (a test authority and a leaf for 127.0.0.1 and localhost).
//!
//! Trusting the test authority, the client connects over polling, over WebSocket (`wss://`)
//! and with the upgrade, and events and acknowledgements go both ways. Without it, or with
//! an expired leaf, or one for other names, the connection fails with the typed certificate
//! error that says why. Without `nginx` the tests are skipped loudly (under `CI=true` they
//! fail).

mod common;

use std::time::Duration;

use common::{bounded, Mode, TestServer};
use ferrio_client::{
    CertificateError, ClientConfig, ConfigError, ConnectError, Manager, OpenError, Payload,
    ReconnectionConfig, TlsConfig, TlsConfigError,
};
use ferrio_test_support::nginx::{nginx_binary, Nginx, NginxConfig};
use ferrio_test_support::pki::{CertifiedPem, TestCa, Validity};
use serde_json::json;

/// nginx terminating TLS with `leaf`, proxying the Engine.IO path to `backend` with the
/// WebSocket upgrade forwarded.
fn tls_proxy(leaf: &CertifiedPem, backend: &str) -> Option<Nginx> {
    let binary = nginx_binary("ferrio-client over TLS behind nginx")?;
    Some(Nginx::start(
        &binary,
        NginxConfig {
            tls: true,
            files: vec![
                ("server.pem", leaf.cert.clone().into_bytes()),
                ("server.key", leaf.key.clone().into_bytes()),
            ],
            server: format!(
                "ssl_certificate {{dir}}/server.pem;\n\
                 ssl_certificate_key {{dir}}/server.key;\n\
                 location /socket.io/ {{\n\
                   proxy_pass http://{backend};\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Upgrade $http_upgrade;\n\
                   proxy_set_header Connection \"upgrade\";\n\
                 }}"
            ),
        },
    ))
}

/// A Ferrio server that acknowledges `ack` with its arguments and greets every socket.
async fn backend() -> TestServer {
    let server = TestServer::start().await;
    server.io.ns("/", |socket| {
        let _ = socket.emit("hello", json!("over TLS"));
        socket.on("ack", |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
    });
    server
}

/// Client settings that try once.
fn once(mode: Mode, url: &str, tls: TlsConfig) -> ClientConfig {
    ClientConfig {
        tls,
        reconnection: ReconnectionConfig {
            attempts: Some(0),
            ..ReconnectionConfig::default()
        },
        ..mode.config(url)
    }
}

/// Connects once and returns the reason the attempt failed.
async fn refusal(config: ClientConfig) -> OpenError {
    let manager = Manager::new(config).expect("valid config");
    let socket = manager.socket("/").expect("namespace");
    let result = bounded("connect", socket.connect()).await;
    match result {
        Err(ConnectError::ReconnectFailed {
            last_error: Some(error),
        }) => error,
        other => panic!("expected a refused connection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trusting_the_test_authority_every_transport_works_over_tls() {
    let ca = TestCa::new("Ferrio test CA");
    let leaf = ca.leaf(&["127.0.0.1", "localhost"], Validity::CURRENT);
    let server = backend().await;
    let Some(proxy) = tls_proxy(&leaf, &server.addr.to_string()) else {
        return;
    };
    let mut tls = TlsConfig::default();
    assert_eq!(
        tls.add_root_certificates_pem(ca.cert_pem().as_bytes()),
        Ok(1)
    );
    for url in [
        proxy.url("https"),
        format!("https://localhost:{}", proxy.port),
    ] {
        for mode in Mode::ALL {
            let manager = Manager::new(once(mode, &url, tls.clone())).expect("valid config");
            let socket = manager.socket("/").expect("namespace");
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            socket.on_typed::<String, _>("hello", move |_socket, text, _ack| {
                let _ = tx.send(text);
            });
            bounded("connect", socket.connect())
                .await
                .unwrap_or_else(|e| panic!("{url} {mode:?}: {e}"));
            let mut state = manager.state();
            common::wait_for("the final transport", &mut state, |s| {
                *s == ferrio_client::ConnectionState::Connected {
                    transport: mode.final_transport(),
                }
            })
            .await;
            assert_eq!(common::next("the greeting", &mut rx).await, "over TLS");
            let answer = bounded(
                "the ack",
                socket.emit_with_ack(
                    "ack",
                    Payload::json(json!({ "mode": format!("{mode:?}") })).expect("json"),
                    Duration::from_secs(5),
                ),
            )
            .await
            .expect("acknowledged");
            assert_eq!(
                answer.get::<serde_json::Value>(0).expect("the argument"),
                json!({ "mode": format!("{mode:?}") }),
                "{url} {mode:?}"
            );
            manager.disconnect();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_authority_is_a_typed_unknown_issuer_error() {
    let ca = TestCa::new("Ferrio test CA");
    let leaf = ca.leaf(&["127.0.0.1", "localhost"], Validity::CURRENT);
    let server = backend().await;
    let Some(proxy) = tls_proxy(&leaf, &server.addr.to_string()) else {
        return;
    };
    for mode in Mode::ALL {
        let error = refusal(once(mode, &proxy.url("https"), TlsConfig::default())).await;
        assert_eq!(
            error,
            OpenError::Certificate(CertificateError::UnknownIssuer),
            "{mode:?}"
        );
        assert_eq!(
            error.to_string(),
            "the server's TLS certificate was refused: unknown issuer: the certificate is \
             self-signed, issued by an authority that is not trusted, or served without its \
             intermediate certificates"
        );
    }
    // Trusting another authority does not help.
    let mut other = TlsConfig::default();
    other
        .add_root_certificates_pem(TestCa::new("Another CA").cert_pem().as_bytes())
        .expect("a certificate");
    let error = refusal(once(Mode::Polling, &proxy.url("https"), other)).await;
    assert_eq!(error.certificate(), Some(&CertificateError::UnknownIssuer));

    // Skipping verification connects, for diagnosis only.
    let mut reckless = TlsConfig::default();
    reckless.dangerously_accept_any_certificate = true;
    let manager =
        Manager::new(once(Mode::Upgrade, &proxy.url("https"), reckless)).expect("valid config");
    let socket = manager.socket("/").expect("namespace");
    bounded("connect", socket.connect())
        .await
        .expect("connects without verification");
    manager.disconnect();
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_misnamed_certificates_say_why() {
    let ca = TestCa::new("Ferrio test CA");
    let mut tls = TlsConfig::default();
    tls.add_root_certificates_pem(ca.cert_pem().as_bytes())
        .expect("a certificate");
    let server = backend().await;

    let expired = ca.leaf(&["127.0.0.1", "localhost"], Validity::EXPIRED);
    let Some(proxy) = tls_proxy(&expired, &server.addr.to_string()) else {
        return;
    };
    let error = refusal(once(Mode::WebSocket, &proxy.url("https"), tls.clone())).await;
    match error.certificate() {
        Some(CertificateError::Expired {
            not_after: Some(not_after),
            now: Some(now),
        }) => {
            let days = now
                .duration_since(*not_after)
                .expect("in the past")
                .as_secs()
                / 86_400;
            assert_eq!(days, 2, "expired two days ago");
        }
        other => panic!("expected an expiry with its dates, got {other:?} ({error})"),
    }
    assert!(error.to_string().ends_with("(2 days ago)"), "{error}");

    let misnamed = ca.leaf(&["chat.example", "10.9.8.7"], Validity::CURRENT);
    let Some(proxy) = tls_proxy(&misnamed, &server.addr.to_string()) else {
        return;
    };
    let error = refusal(once(Mode::Polling, &proxy.url("https"), tls)).await;
    assert_eq!(
        error,
        OpenError::Certificate(CertificateError::NotValidForName {
            expected: "127.0.0.1".into(),
            presented: vec!["chat.example".into(), "10.9.8.7".into()],
        })
    );
    assert_eq!(
        error.to_string(),
        "the server's TLS certificate was refused: not valid for \"127.0.0.1\": it covers \
         chat.example, 10.9.8.7"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_plain_http_port_says_so() {
    let server = backend().await;
    let url = format!("https://{}", server.addr);
    let error = refusal(once(Mode::Polling, &url, TlsConfig::default())).await;
    match &error {
        OpenError::Tls(message) => assert!(
            message
                .starts_with("the server does not speak TLS on this port (is it plain http://?)"),
            "{message}"
        ),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn bad_tls_settings_are_refused_when_the_manager_is_made() {
    let mut tls = TlsConfig::default();
    tls.add_root_certificate_der(b"not a certificate".to_vec());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let error = Manager::new(ClientConfig {
        tls,
        ..ClientConfig::new("https://127.0.0.1:1")
    })
    .expect_err("refused");
    assert!(
        matches!(
            error,
            ConfigError::Tls(TlsConfigError::InvalidCertificate(_))
        ),
        "{error}"
    );
}
