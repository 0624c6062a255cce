//! `tls`: for https URLs, the TLS handshake a client makes, with the protocol version, the
//! names the certificate covers, its issuer and expiry; when the certificate is refused, why
//! (unknown issuer or self-signed, expired, not for this host) and how to fix it; and a port
//! that speaks plain HTTP where TLS was expected, or TLS where plain HTTP was.
//!
//! The certificate is verified by rustls's WebPKI verifier against the Mozilla roots and the
//! authorities of `--ca-file`; the verifier here only watches: it keeps the certificate it
//! was shown and the verdict, so that a refused certificate can still be described.
//! With `--insecure` the verdict is reported as a warning and every later step goes on.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::report::Outcome;
use super::target::Target;

/// A certificate that expires within this many days is a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

/// How the doctor speaks TLS to one host: the verifying configuration and the name to check.
#[derive(Clone)]
pub(crate) struct TlsClient {
    verifier: Arc<Inspect>,
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// `--insecure`: a refused certificate is a warning, and the steps after go on.
    pub(crate) insecure: bool,
    /// `--ca-file`, for the Socket.IO client of the later steps.
    pub(crate) ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// The TLS settings for `host`: the Mozilla roots plus the authorities in `ca_file`.
    pub(crate) fn new(host: &str, ca_file: Option<&Path>, insecure: bool) -> Result<Self, String> {
        let provider = Arc::new(crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read --ca-file {}: {e}", path.display()))?;
            let mut added = 0;
            for certificate in CertificateDer::pem_slice_iter(&pem) {
                let certificate = certificate
                    .map_err(|e| format!("--ca-file {}: invalid PEM: {e}", path.display()))?;
                roots.add(certificate).map_err(|e| {
                    format!(
                        "--ca-file {}: not a usable certificate: {e}",
                        path.display()
                    )
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(format!(
                    "--ca-file {}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("TLS settings: {e}"))?;
        let verifier = Arc::new(Inspect {
            webpki,
            provider: provider.clone(),
            insecure,
            seen: Mutex::new(None),
        });
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS settings: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("invalid host {host:?}: {e}"))?;
        Ok(Self {
            verifier,
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            insecure,
            ca_file: ca_file.map(Path::to_path_buf),
        })
    }

    /// A TLS handshake over `tcp`.
    pub(crate) async fn connect(&self, tcp: TcpStream) -> io::Result<Stream> {
        let stream = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// What the verifier was shown and what it concluded, for the `tls` step.
#[derive(Debug, Clone)]
struct Seen {
    leaf: Vec<u8>,
    intermediates: usize,
    verdict: Result<(), rustls::Error>,
}

/// rustls's WebPKI verifier, watched: it records the last certificate and verdict, and with
/// `--insecure` accepts what it refused.
#[derive(Debug)]
struct Inspect {
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    insecure: bool,
    seen: Mutex<Option<Seen>>,
}

impl Inspect {
    fn take(&self) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl ServerCertVerifier for Inspect {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(Seen {
            leaf: end_entity.to_vec(),
            intermediates: intermediates.len(),
            verdict: verdict.as_ref().map(drop).map_err(Clone::clone),
        });
        match verdict {
            Err(_) if self.insecure => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// What the leaf certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// The subjectAltName DNS names and IP addresses, in order.
    pub(crate) names: Vec<String>,
    /// The subject, `CN=...`.
    pub(crate) subject: String,
    /// The issuer, `CN=...`.
    pub(crate) issuer: String,
    /// The end of validity, seconds since the Unix epoch.
    pub(crate) not_after: i64,
}

impl Leaf {
    /// Reads a DER certificate; `None` when it cannot be parsed.
    pub(crate) fn parse(der: &[u8]) -> Option<Self> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => names.push(ip_text(bytes)),
                    _ => {}
                }
            }
        }
        Some(Self {
            names,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// The names for a message: the subjectAltNames, or the subject when there are none.
    fn covers(&self) -> String {
        if self.names.is_empty() {
            format!("no subjectAltName (subject {})", self.subject)
        } else {
            self.names.join(", ")
        }
    }

    fn self_signed(&self) -> bool {
        self.subject == self.issuer
    }

    /// Days from now to the end of validity, to the nearest whole day (negative once
    /// expired).
    fn days_left(&self) -> i64 {
        (self.not_after - unix_now() + 43_200).div_euclid(86_400)
    }
}

/// `1 day`, `3 days`.
fn count_days(days: i64) -> String {
    if days.abs() == 1 {
        format!("{days} day")
    } else {
        format!("{days} days")
    }
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => format!("{bytes:02x?}"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A UTC date, `YYYY-MM-DD`, from seconds since the Unix epoch.
pub(crate) fn date(unix: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

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
    client.verifier.take();
    let handshake = client.connect(tcp).await;
    let seen = client.verifier.take();
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

/// A connection to the target: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`; boxed because a TLS session is large.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_795_046_400), "2026-11-19");
        assert_eq!(date(-86_400), "1969-12-31");
    }

    #[test]
    fn addresses() {
        assert_eq!(ip_text(&[127, 0, 0, 1]), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_text(&v6), "::1");
    }
}
