//! How the doctor speaks TLS: rustls's WebPKI verifier against the Mozilla roots and the
//! authorities of `--ca-file`, watched (it keeps the certificate it was shown and its verdict,
//! so that a refused certificate can still be described; with `--insecure` it accepts what it
//! refused), and the stream every probe runs on, plain or TLS.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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

    /// What the verifier saw in the last handshake, forgotten once taken.
    pub(crate) fn take_seen(&self) -> Option<Seen> {
        self.verifier.take()
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
pub(crate) struct Seen {
    /// The leaf certificate, DER.
    pub(crate) leaf: Vec<u8>,
    /// How many intermediate certificates the server sent.
    pub(crate) intermediates: usize,
    /// The WebPKI verifier's verdict.
    pub(crate) verdict: Result<(), rustls::Error>,
}

/// rustls's WebPKI verifier, watched: it records the last certificate and verdict, and with
/// `--insecure` accepts what it refused.
#[derive(Debug)]
struct Inspect {
    webpki: Arc<WebPkiServerVerifier>,
    insecure: bool,
    seen: Mutex<Option<Seen>>,
}

impl Inspect {
    /// The last certificate and verdict, forgotten here.
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
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
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
