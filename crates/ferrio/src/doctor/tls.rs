//! `tls`: for https URLs, the TLS handshake a client makes, with the protocol version, the
//! names the certificate covers, its issuer and expiry; when the certificate is refused, why
//! (unknown issuer or self-signed, expired, not for this host) and how to fix it; and a port
//! that speaks plain HTTP where TLS was expected, or TLS where plain HTTP was.
//!
//! How the certificate is verified is in [`super::tls_client`]; what it says is read in
//! [`super::certificate`]. With `--insecure` the verdict is reported as a warning and every
//! later step goes on.

use std::io;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::certificate::{count_days, date, Leaf};
use super::report::Outcome;
use super::target::Target;
use super::tls_client::{Seen, Stream, TlsClient};

/// A certificate that expires within this many days is a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// The TLS step: a handshake on a new connection, judged.
pub(crate) async fn check(target: &Target, client: &TlsClient) -> Outcome {
    let tcp = match TcpStream::connect((target.host.as_str(), target.port)).await {
        Ok(tcp) => tcp,
        Err(error) => {
            return Outcome::fail(
                format!("cannot connect: {error}"),
                "check that the server is up",
            )
        }
    };
    client.take_seen();
    let handshake = client.connect(tcp).await;
    let seen = client.take_seen();
    match handshake {
        Ok(Stream::Tls(stream)) => {
            let version = stream
                .get_ref()
                .1
                .protocol_version()
                .map_or_else(|| "TLS".to_owned(), version_text);
            let mut stream = stream;
            let _ = stream.shutdown().await;
            match seen {
                Some(seen) => accepted(target, &version, &seen),
                None => Outcome::pass(format!("{version}, session resumed")),
            }
        }
        Ok(Stream::Plain(_)) => Outcome::fail("no TLS", "report this as a bug of ferrio doctor"),
        Err(error) => refused(target, &error, seen).await,
    }
}

fn version_text(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The verdict on a completed handshake (with `--insecure`, the certificate may still have
/// been refused).
fn accepted(target: &Target, version: &str, seen: &Seen) -> Outcome {
    let Some(leaf) = Leaf::parse(&seen.leaf) else {
        return Outcome::warn(
            format!("{version}, but the certificate could not be read"),
            "check the certificate with `openssl x509 -text`",
        );
    };
    if let Err(error) = &seen.verdict {
        let (why, fix) = certificate_diagnosis(target, error, &leaf, seen.intermediates);
        return Outcome::warn(
            format!("{version}; certificate not trusted, ignored because of --insecure: {why}"),
            fix,
        )
        .code(certificate_code(error, &leaf));
    }
    let days = leaf.days_left();
    let summary = format!(
        "{version}, certificate for {} issued by {}, valid until {} ({} left)",
        leaf.covers(),
        leaf.issuer,
        date(leaf.not_after),
        count_days(days)
    );
    if days < EXPIRY_WARNING_DAYS {
        return Outcome::warn(
            format!("{summary}: it expires within {EXPIRY_WARNING_DAYS} days"),
            "renew the certificate now (certbot: `certbot renew`; check that its timer runs), \
             then reload the TLS terminator (nginx: `nginx -s reload`)",
        )
        .code("tls-expires-soon");
    }
    Outcome::pass(summary)
}

/// A stable name for a certificate problem, for `--json` readers.
fn certificate_code(error: &rustls::Error, leaf: &Leaf) -> &'static str {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(E::UnknownIssuer) if leaf.self_signed() => {
            "tls-self-signed"
        }
        rustls::Error::InvalidCertificate(E::UnknownIssuer) => "tls-unknown-issuer",
        rustls::Error::InvalidCertificate(E::Expired | E::ExpiredContext { .. }) => "tls-expired",
        rustls::Error::InvalidCertificate(
            E::NotValidForName | E::NotValidForNameContext { .. },
        ) => "tls-name-mismatch",
        rustls::Error::InvalidCertificate(E::NotValidYet | E::NotValidYetContext { .. }) => {
            "tls-not-yet-valid"
        }
        _ => "tls-certificate",
    }
}

/// Why a certificate was refused, and the fix.
fn certificate_diagnosis(
    target: &Target,
    error: &rustls::Error,
    leaf: &Leaf,
    intermediates: usize,
) -> (String, String) {
    use rustls::CertificateError as E;
    let host = &target.host;
    let rustls::Error::InvalidCertificate(error) = error else {
        return (
            format!("the certificate was refused: {error}"),
            "check the certificate with `openssl s_client`".to_owned(),
        );
    };
    match error {
        E::UnknownIssuer if leaf.self_signed() => (
            format!(
                "the certificate is self-signed ({}): no client trusts it unless told to",
                leaf.subject
            ),
            "use a certificate from a public authority (Let's Encrypt), or make every client \
             trust this one: ferrio doctor --ca-file cert.pem, ferrio-client \
             TlsConfig::add_root_certificates_pem_file, Node NODE_EXTRA_CA_CERTS=cert.pem, \
             browsers: the system's trust store"
                .to_owned(),
        ),
        E::UnknownIssuer => (
            format!(
                "the certificate's issuer ({}) is not a trusted authority, and the server sent \
                 {intermediates} intermediate certificate(s): the chain does not lead to a \
                 trusted root",
                leaf.issuer
            ),
            "serve the full chain: nginx `ssl_certificate` must name the file with the \
             certificate followed by its intermediates (Let's Encrypt: fullchain.pem, not \
             cert.pem); if the issuer is a private authority, pass its certificate with \
             --ca-file (and give it to every client)"
                .to_owned(),
        ),
        E::Expired | E::ExpiredContext { .. } => (
            format!(
                "the certificate expired on {} ({} ago)",
                date(leaf.not_after),
                count_days(-leaf.days_left())
            ),
            "renew the certificate (certbot: `certbot renew`) and reload the TLS terminator \
             (nginx: `nginx -s reload`); clients refuse an expired certificate"
                .to_owned(),
        ),
        E::NotValidYet | E::NotValidYetContext { .. } => (
            "the certificate is not valid yet".to_owned(),
            "check the clocks of this machine and of the authority that issued it".to_owned(),
        ),
        E::NotValidForName | E::NotValidForNameContext { .. } => (
            format!("the certificate covers {}, not {host:?}", leaf.covers()),
            format!(
                "use a certificate whose subjectAltName includes {host} (or a matching \
                 wildcard), or connect with a name it covers; behind nginx check that the \
                 server block answering this name has the right ssl_certificate"
            ),
        ),
        other => (
            format!("the certificate was refused: {other:?}"),
            "check the certificate with `openssl s_client -showcerts`".to_owned(),
        ),
    }
}

/// The verdict on a failed handshake.
async fn refused(target: &Target, error: &io::Error, seen: Option<Seen>) -> Outcome {
    let rustls_error = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    if let (Some(error @ rustls::Error::InvalidCertificate(_)), Some(seen)) = (rustls_error, &seen)
    {
        let Some(leaf) = Leaf::parse(&seen.leaf) else {
            return Outcome::fail(
                format!("the certificate was refused and cannot be read: {error}"),
                "check the certificate with `openssl x509 -text`",
            );
        };
        let (why, fix) = certificate_diagnosis(target, error, &leaf, seen.intermediates);
        return Outcome::fail(
            why,
            format!("{fix}\n(--insecure skips this check, for diagnosis only)"),
        )
        .code(certificate_code(error, &leaf));
    }
    match rustls_error {
        Some(rustls::Error::InvalidMessage(_)) => {
            let plain = speaks_plain_http(target).await;
            let detail = match plain {
                Some(status_line) => {
                    format!("this port speaks plain HTTP, not TLS (it answered {status_line:?})")
                }
                None => "the server answered the TLS handshake with something that is not TLS"
                    .to_owned(),
            };
            Outcome::fail(
                detail,
                format!(
                    "use http://{}{} (the URL's scheme is wrong), or enable TLS on this port \
                     (nginx: `listen {} ssl;` with ssl_certificate and ssl_certificate_key)",
                    target.authority, target.path, target.port
                ),
            )
            .code("tls-plain-http")
        }
        Some(rustls::Error::AlertReceived(alert)) => Outcome::fail(
            format!("the server refused the TLS handshake (alert {alert:?})"),
            "the server and this client share no TLS version or cipher suite, or the server \
             has no certificate for this name (SNI): check its ssl_protocols, ssl_ciphers and \
             server_name",
        ),
        Some(other) => Outcome::fail(
            format!("the TLS handshake failed: {other}"),
            "check the server's TLS settings with `openssl s_client`",
        ),
        None => Outcome::fail(
            format!("the TLS handshake failed: {error}"),
            "the server closed the connection during the handshake: it may not speak TLS on \
             this port, or refuses this name (SNI)",
        ),
    }
}

/// Sends a plain HTTP request; the status line of the answer, when one comes.
async fn speaks_plain_http(target: &Target) -> Option<String> {
    let probe = async {
        let mut tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .ok()?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            target.path, target.authority
        );
        tcp.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf)
                .await
                .ok()?;
            if n == 0 || answer.len() > 4096 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.contains(&b'\n') {
                break;
            }
        }
        let line = String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .map(str::to_owned)?;
        line.starts_with("HTTP/").then_some(line)
    };
    tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .ok()
        .flatten()
}

/// For an http URL whose handshake failed: whether the port speaks TLS instead (a TLS
/// handshake gets as far as a certificate, trusted or not).
pub(crate) async fn speaks_tls(target: &Target) -> bool {
    let Ok(client) = TlsClient::new(&target.host, None, true) else {
        return false;
    };
    let attempt = async {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .ok()?;
        client.connect(tcp).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), attempt).await,
        Ok(Some(_))
    )
}
