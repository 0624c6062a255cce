//! TLS for `https://` and `wss://` servers, over rustls (with ring): which certificates are
//! trusted, and why a server's certificate was refused.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Which server certificates the client trusts on `https://` and `wss://` connections.
///
/// By default the Mozilla root certificates (the `webpki-roots` crate) are trusted, whatever
/// the system's trust store holds. Add a private or test certificate authority with
/// [`add_root_certificates_pem`](Self::add_root_certificates_pem) or
/// [`add_root_certificates_pem_file`](Self::add_root_certificates_pem_file):
///
/// ```no_run
/// use ferrio_client::{ClientConfig, TlsConfig};
///
/// # fn run() -> Result<(), ferrio_client::TlsConfigError> {
/// let mut tls = TlsConfig::default();
/// tls.add_root_certificates_pem_file("/etc/ferrio/ca.pem")?;
/// let config = ClientConfig { tls, ..ClientConfig::new("https://chat.internal:443") };
/// # let _ = config;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    extra_roots: Vec<CertificateDer<'static>>,
    /// Skips every check of the server's certificate: its issuer, its expiry and its names.
    /// Anyone on the network path can then read and change the traffic. Default false; only
    /// for tests and diagnosis. Trust the server's authority with
    /// [`add_root_certificates_pem`](Self::add_root_certificates_pem) instead.
    pub dangerously_accept_any_certificate: bool,
}

impl TlsConfig {
    /// Trusts, in addition to the default roots, every certificate in `pem` (one or more
    /// `-----BEGIN CERTIFICATE-----` blocks; other blocks are ignored). Returns how many were
    /// added; a PEM text without any certificate is an error.
    pub fn add_root_certificates_pem(&mut self, pem: &[u8]) -> Result<usize, TlsConfigError> {
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate.map_err(|e| TlsConfigError::Pem(e.to_string()))?;
            self.extra_roots.push(certificate);
            added += 1;
        }
        if added == 0 {
            return Err(TlsConfigError::NoCertificate);
        }
        Ok(added)
    }

    /// [`add_root_certificates_pem`](Self::add_root_certificates_pem) with the contents of a
    /// file.
    pub fn add_root_certificates_pem_file(
        &mut self,
        path: impl AsRef<Path>,
    ) -> Result<usize, TlsConfigError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| TlsConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.add_root_certificates_pem(&pem)
            .map_err(|e| TlsConfigError::File {
                path: path.display().to_string(),
                error: Box::new(e),
            })
    }

    /// Trusts one DER-encoded certificate authority in addition to the default roots.
    pub fn add_root_certificate_der(&mut self, der: impl Into<Vec<u8>>) {
        self.extra_roots.push(CertificateDer::from(der.into()));
    }

    /// The rustls configuration: the default and extra roots, or no verification at all.
    pub(crate) fn rustls_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
        // The provider is named rather than taken from the process default, so that a program
        // that also links another provider gets no panic here.
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
        let mut config = if self.dangerously_accept_any_certificate {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for certificate in &self.extra_roots {
                roots
                    .add(certificate.clone())
                    .map_err(|e| TlsConfigError::InvalidCertificate(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        // Engine.IO runs over HTTP/1.1 (the WebSocket handshake too).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Why a [`TlsConfig`] could not be built or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What the operating system said.
        message: String,
    },
    /// A PEM file's contents were refused.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: String,
        /// What was wrong with it.
        error: Box<TlsConfigError>,
    },
    /// The PEM text is malformed.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// The PEM text holds no `CERTIFICATE` block.
    #[error("no certificate in the PEM text (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    /// A certificate could not be used as a trust anchor.
    #[error("invalid root certificate: {0}")]
    InvalidCertificate(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

/// Why a server's certificate was refused during the TLS handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The certificate was not issued by a trusted authority: it is self-signed, signed by a
    /// private authority the client was not given
    /// ([`TlsConfig::add_root_certificates_pem`]), or the server does not send the
    /// intermediate certificates of its chain.
    #[error("unknown issuer: the certificate is self-signed, issued by an authority that is not trusted, or served without its intermediate certificates")]
    UnknownIssuer,
    /// The certificate has expired.
    #[error("expired{}", ago(*.not_after, *.now))]
    Expired {
        /// When it expired, when known.
        not_after: Option<SystemTime>,
        /// When it was checked, when known.
        now: Option<SystemTime>,
    },
    /// The certificate is not valid yet.
    #[error("not valid yet")]
    NotValidYet,
    /// The certificate does not name the host that was asked for.
    #[error("not valid for {expected:?}{}", names(.presented))]
    NotValidForName {
        /// The host the client connected to.
        expected: String,
        /// The names the certificate covers, when known.
        presented: Vec<String>,
    },
    /// The certificate has been revoked.
    #[error("revoked")]
    Revoked,
    /// Another problem with the certificate; the text says what.
    #[error("{0}")]
    Other(String),
}

fn ago(not_after: Option<SystemTime>, now: Option<SystemTime>) -> String {
    match (not_after, now) {
        (Some(not_after), Some(now)) => {
            let days = now
                .duration_since(not_after)
                .unwrap_or(Duration::ZERO)
                .as_secs()
                / 86_400;
            format!(" on {} ({days} days ago)", date(not_after))
        }
        (Some(not_after), None) => format!(" on {}", date(not_after)),
        _ => String::new(),
    }
}

/// A UTC date, `YYYY-MM-DD` (the proleptic Gregorian calendar, from days since the epoch).
pub(crate) fn date(time: SystemTime) -> String {
    let days = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    // Howard Hinnant's civil_from_days, for days on or after 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A name as webpki presents it (`DnsName("a.example")`, `IpAddress(127.0.0.1)`), plain.
fn plain_name(presented: &str) -> String {
    let inner = presented
        .strip_prefix("DnsName(")
        .or_else(|| presented.strip_prefix("IpAddress("))
        .and_then(|rest| rest.strip_suffix(')'));
    match inner {
        Some(inner) => inner.trim_matches('"').to_owned(),
        None => presented.to_owned(),
    }
}

fn names(presented: &[String]) -> String {
    if presented.is_empty() {
        String::new()
    } else {
        format!(": it covers {}", presented.join(", "))
    }
}

impl CertificateError {
    /// Reads rustls's verdict on a certificate.
    pub(crate) fn from_rustls(error: &rustls::CertificateError) -> Self {
        use rustls::CertificateError as E;
        let time = |t: &UnixTime| SystemTime::UNIX_EPOCH + Duration::from_secs(t.as_secs());
        match error {
            E::UnknownIssuer => Self::UnknownIssuer,
            E::Expired => Self::Expired {
                not_after: None,
                now: None,
            },
            E::ExpiredContext {
                time: now,
                not_after,
            } => Self::Expired {
                not_after: Some(time(not_after)),
                now: Some(time(now)),
            },
            E::NotValidYet | E::NotValidYetContext { .. } => Self::NotValidYet,
            E::NotValidForNameContext {
                expected,
                presented,
            } => Self::NotValidForName {
                expected: expected.to_str().into_owned(),
                presented: presented.iter().map(|n| plain_name(n)).collect(),
            },
            E::NotValidForName => Self::NotValidForName {
                expected: String::new(),
                presented: Vec::new(),
            },
            E::Revoked => Self::Revoked,
            other => Self::Other(format!("{other:?}")),
        }
    }
}

/// A verifier that accepts any certificate, for
/// [`TlsConfig::dangerously_accept_any_certificate`]. Handshake signatures are still checked,
/// so the connection is at least with the holder of the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a TLS connection needs: the rustls configuration and the name the certificate must
/// carry.
#[derive(Clone)]
pub(crate) struct TlsConnect {
    pub(crate) connector: tokio_rustls::TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

impl fmt::Debug for TlsConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnect")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsConnect {
    /// The connection settings for `host` (a DNS name or an IP address).
    pub(crate) fn new(config: &TlsConfig, host: &str) -> Result<Self, crate::ConfigError> {
        let rustls = config.rustls_config().map_err(crate::ConfigError::Tls)?;
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| crate::ConfigError::InvalidUrl(format!("host {host:?}: {e}")))?;
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(rustls),
            server_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_a_certificate_is_refused() {
        let mut tls = TlsConfig::default();
        assert_eq!(
            tls.add_root_certificates_pem(b"hello"),
            Err(TlsConfigError::NoCertificate)
        );
        let error = tls
            .add_root_certificates_pem_file("/nonexistent/ca.pem")
            .expect_err("missing file");
        assert!(
            matches!(&error, TlsConfigError::Read { path, .. } if path == "/nonexistent/ca.pem"),
            "{error}"
        );
    }

    #[test]
    fn a_root_that_is_not_a_certificate_is_refused_when_built() {
        let mut tls = TlsConfig::default();
        tls.add_root_certificate_der(vec![1, 2, 3]);
        assert!(matches!(
            tls.rustls_config(),
            Err(TlsConfigError::InvalidCertificate(_))
        ));
        assert!(TlsConfig::default().rustls_config().is_ok());
    }

    #[test]
    fn certificate_errors_say_what_the_certificate_covers() {
        let error =
            CertificateError::from_rustls(&rustls::CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("chat.example").expect("name"),
                presented: vec![
                    "DnsName(\"other.example\")".into(),
                    "IpAddress(127.0.0.1)".into(),
                ],
            });
        assert_eq!(
            error.to_string(),
            "not valid for \"chat.example\": it covers other.example, 127.0.0.1"
        );
        let expired = CertificateError::from_rustls(&rustls::CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(10 * 86_400)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(86_400)),
        });
        assert_eq!(expired.to_string(), "expired on 1970-01-02 (9 days ago)");
    }

    #[test]
    fn dates() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(date(at(0)), "1970-01-01");
        assert_eq!(date(at(951_782_400)), "2000-02-29");
        assert_eq!(date(at(1_795_046_400)), "2026-11-19");
    }
}
