//! `ferrio doctor https://...` against a real nginx terminating TLS in front of Ferrio, with
//! certificates made at test time (rcgen): a valid chain trusted with `--ca-file`, an unknown
//! authority, a self-signed certificate, an expired leaf, a leaf for other names, one that
//! expires in days, and the wrong scheme either way. Each asserts the exact diagnosis.

use std::path::PathBuf;

use ferrio_test_support::nginx::{nginx_binary, Nginx, NginxConfig};
use ferrio_test_support::pki::{self, CertifiedPem, TestCa, Validity};
use serde_json::Value;

use super::nginx::NGINX_UPGRADE;
use super::{
    all_green, allow, diagnose, doctor, failed, ferrio, statuses, step, text, Run, ORIGIN,
};

const WHAT: &str = "ferrio doctor over TLS behind nginx";

/// nginx terminating TLS with `leaf` in front of `backend`, and the test CA's file.
struct TlsProxy {
    nginx: Nginx,
    ca_file: PathBuf,
}

impl TlsProxy {
    fn https(&self) -> String {
        self.nginx.url("https")
    }

    fn ca(&self) -> &str {
        self.ca_file.to_str().expect("utf-8 path")
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// Starts nginx with `leaf` (and `ca`'s certificate written where `--ca-file` can read it).
async fn tls_proxy(ca: &TestCa, leaf: &CertifiedPem) -> Option<TlsProxy> {
    let binary = nginx_binary(WHAT)?;
    let backend = ferrio(Some(allow(ORIGIN))).await;
    let backend = backend.trim_start_matches("http://");
    let nginx = Nginx::start(
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
                 ssl_protocols TLSv1.2 TLSv1.3;\n\
                 location /socket.io/ {{\n\
                   proxy_pass http://{backend};\n\
                   {NGINX_UPGRADE}\n\
                 }}"
            ),
        },
    );
    let ca_file = std::env::temp_dir().join(format!(
        "ferrio-doctor-ca-{}-{}.pem",
        std::process::id(),
        nginx.port
    ));
    std::fs::write(&ca_file, ca.cert_pem()).expect("write the CA file");
    Some(TlsProxy { nginx, ca_file })
}

/// The `tls` step of a run that failed there: every later step is skipped.
fn failed_at_tls(run: &Run) -> Value {
    assert_eq!(run.code, 1);
    let report = run.json();
    for (name, status) in statuses(&report) {
        let expected = match name.as_str() {
            "tcp" => "pass",
            "tls" => "fail",
            _ => "skip",
        };
        assert_eq!(status, expected, "step {name}: {}", step(&report, &name));
    }
    step(&report, "tls").clone()
}

fn localhost_leaf(ca: &TestCa, validity: Validity) -> CertifiedPem {
    ca.leaf(&["127.0.0.1", "localhost"], validity)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_chain_trusted_with_ca_file_is_all_green() {
    let ca = TestCa::new("Ferrio test CA");
    let Some(proxy) = tls_proxy(&ca, &localhost_leaf(&ca, Validity::CURRENT)).await else {
        return;
    };
    let report = diagnose(
        &proxy.https(),
        &["--ca-file", proxy.ca(), "--origin", ORIGIN],
        0,
    )
    .await;
    all_green(&report);
    let tls = step(&report, "tls");
    let detail = text(tls, "detail");
    assert!(
        detail.starts_with(
            "TLS 1.3, certificate for 127.0.0.1, localhost issued by CN=Ferrio test CA, \
             valid until "
        ),
        "{detail}"
    );
    assert!(detail.ends_with(" (365 days left)"), "{detail}");
    assert!(tls.get("code").is_none(), "no diagnosis: {tls}");
    // The Socket.IO client went over TLS too, upgrading to wss://.
    assert!(
        text(step(&report, "event"), "detail").ends_with("over websocket"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authority_that_is_not_trusted_is_an_unknown_issuer() {
    let ca = TestCa::new("Ferrio test CA");
    let Some(proxy) = tls_proxy(&ca, &localhost_leaf(&ca, Validity::CURRENT)).await else {
        return;
    };
    let tls = failed_at_tls(&doctor(&[&proxy.https(), "--json", "--timeout", "5s"]).await);
    assert_eq!(tls["code"], "tls-unknown-issuer");
    assert_eq!(
        text(&tls, "detail"),
        "the certificate's issuer (CN=Ferrio test CA) is not a trusted authority, and the \
         server sent 0 intermediate certificate(s): the chain does not lead to a trusted root"
    );
    let fix = text(&tls, "fix");
    assert!(
        fix.starts_with(
            "serve the full chain: nginx `ssl_certificate` must name the file with the \
             certificate followed by its intermediates (Let's Encrypt: fullchain.pem, not \
             cert.pem); if the issuer is a private authority, pass its certificate with --ca-file"
        ),
        "{fix}"
    );
    assert!(fix.ends_with("(--insecure skips this check, for diagnosis only)"));

    // The human report says the same.
    let human = doctor(&[&proxy.https(), "--timeout", "5s"]).await;
    assert!(
        human.stdout.contains(
            "\n✗ tls        the certificate's issuer (CN=Ferrio test CA) is not a trusted \
             authority"
        ),
        "{}",
        human.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_is_named_so_and_insecure_looks_past_it() {
    let ca = TestCa::new("Ferrio test CA");
    let leaf = pki::self_signed(&["127.0.0.1"], Validity::CURRENT);
    let Some(proxy) = tls_proxy(&ca, &leaf).await else {
        return;
    };
    let tls = failed_at_tls(&doctor(&[&proxy.https(), "--json", "--timeout", "5s"]).await);
    assert_eq!(tls["code"], "tls-self-signed");
    assert_eq!(
        text(&tls, "detail"),
        "the certificate is self-signed (CN=127.0.0.1): no client trusts it unless told to"
    );
    assert!(text(&tls, "fix").contains("ferrio doctor --ca-file cert.pem"));

    // --insecure: a warning, and the rest of the deployment is checked.
    let run = doctor(&[&proxy.https(), "--insecure", "--json", "--timeout", "5s"]).await;
    assert_eq!(run.code, 0, "a warning is not a failure");
    let report = run.json();
    let tls = step(&report, "tls");
    assert_eq!(tls["status"], "warn");
    assert_eq!(tls["code"], "tls-self-signed");
    assert_eq!(
        text(tls, "detail"),
        "TLS 1.3; certificate not trusted, ignored because of --insecure: the certificate is \
         self-signed (CN=127.0.0.1): no client trusts it unless told to"
    );
    for (name, status) in statuses(&report) {
        if !matches!(name.as_str(), "tls" | "cors" | "preflight") {
            assert_eq!(status, "pass", "step {name}: {}", step(&report, &name));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_leaf_says_when_it_expired() {
    let ca = TestCa::new("Ferrio test CA");
    let Some(proxy) = tls_proxy(&ca, &localhost_leaf(&ca, Validity::EXPIRED)).await else {
        return;
    };
    let run = doctor(&[&proxy.https(), "--ca-file", proxy.ca(), "--json"]).await;
    let tls = failed_at_tls(&run);
    assert_eq!(tls["code"], "tls-expired");
    let detail = text(&tls, "detail");
    assert!(
        detail.starts_with("the certificate expired on ") && detail.ends_with(" (2 days ago)"),
        "{detail}"
    );
    assert!(text(&tls, "fix").starts_with(
        "renew the certificate (certbot: `certbot renew`) and reload the TLS terminator \
         (nginx: `nginx -s reload`)"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaf_for_other_names_lists_the_names_it_covers() {
    let ca = TestCa::new("Ferrio test CA");
    let leaf = ca.leaf(&["chat.example", "10.9.8.7"], Validity::CURRENT);
    let Some(proxy) = tls_proxy(&ca, &leaf).await else {
        return;
    };
    let run = doctor(&[&proxy.https(), "--ca-file", proxy.ca(), "--json"]).await;
    let tls = failed_at_tls(&run);
    assert_eq!(tls["code"], "tls-name-mismatch");
    assert_eq!(
        text(&tls, "detail"),
        "the certificate covers chat.example, 10.9.8.7, not \"127.0.0.1\""
    );
    assert!(
        text(&tls, "fix").starts_with("use a certificate whose subjectAltName includes 127.0.0.1")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_about_to_expire_is_a_warning() {
    let ca = TestCa::new("Ferrio test CA");
    let soon = Validity {
        from_days: -80,
        until_days: 5,
    };
    let Some(proxy) = tls_proxy(&ca, &localhost_leaf(&ca, soon)).await else {
        return;
    };
    let report = diagnose(&proxy.https(), &["--ca-file", proxy.ca()], 0).await;
    let tls = step(&report, "tls");
    assert_eq!(tls["status"], "warn");
    assert_eq!(tls["code"], "tls-expires-soon");
    assert!(
        text(tls, "detail").ends_with("(5 days left): it expires within 14 days"),
        "{tls}"
    );
    assert_eq!(step(&report, "event")["status"], "pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wrong_scheme_is_diagnosed_both_ways() {
    // https:// to a port that speaks plain HTTP.
    let plain = ferrio(None).await;
    let https = plain.replace("http://", "https://");
    let tls = failed_at_tls(&doctor(&[&https, "--json", "--timeout", "5s"]).await);
    assert_eq!(tls["code"], "tls-plain-http");
    assert!(
        text(&tls, "detail")
            .starts_with("this port speaks plain HTTP, not TLS (it answered \"HTTP/1.1 "),
        "{tls}"
    );
    assert!(text(&tls, "fix").starts_with(&format!(
        "use {plain}/socket.io/ (the URL's scheme is wrong), or enable TLS on this port"
    )));

    // http:// to nginx's TLS port.
    let ca = TestCa::new("Ferrio test CA");
    let Some(proxy) = tls_proxy(&ca, &localhost_leaf(&ca, Validity::CURRENT)).await else {
        return;
    };
    let http = proxy.nginx.url("http");
    let report = diagnose(&http, &[], 1).await;
    let handshake = failed(&report, "handshake", "tls-expected");
    assert!(
        text(handshake, "detail")
            .starts_with("GET /socket.io/?EIO=4&transport=polling answered 400 Bad Request"),
        "{handshake}"
    );
    assert!(
        text(handshake, "detail").ends_with("\nthis port speaks TLS: the URL should be https://"),
        "{handshake}"
    );
    assert!(text(handshake, "fix")
        .starts_with(&format!("use {}/socket.io/ (and --ca-file", proxy.https())));
}

/// A bare TLS endpoint (rustls, as `ferrio serve` with `server.tls_cert`): it completes TLS
/// handshakes, and answers anything else with a TLS alert and a close. Serves until aborted.
async fn bare_tls_port(leaf: &CertifiedPem) -> (String, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert = CertificateDer::from_pem_slice(leaf.cert.as_bytes()).expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A plain HTTP request fails the handshake and the connection is dropped.
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_port_that_closes_plain_http_gets_the_https_hint() {
    let ca = TestCa::new("Ferrio test CA");
    let (url, server) = bare_tls_port(&localhost_leaf(&ca, Validity::CURRENT)).await;
    let run = doctor(&[&url, "--json", "--timeout", "3s"]).await;
    server.abort();
    assert_eq!(run.code, 1);
    let report = run.json();
    let handshake = step(&report, "handshake");
    assert_eq!(handshake["code"], "tls-expected");
    assert_eq!(
        text(handshake, "detail"),
        "GET /socket.io/?EIO=4&transport=polling failed: the answer is not HTTP/1.1: invalid \
         HTTP version parsed\nthis port speaks TLS: the URL should be https://"
    );
    let https = url.replace("http://", "https://");
    assert!(
        text(handshake, "fix").starts_with(&format!("use {https}/socket.io/ (and --ca-file")),
        "{handshake}"
    );
}
