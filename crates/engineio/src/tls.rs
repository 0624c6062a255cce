//! TLS for [`crate::serve`]: rustls (ring) from PEM certificate and key files, reloadable while
//! the server runs (enabled by the `tls` cargo feature).
//!
//! [`TlsFiles`] holds the current certificate. [`TlsFiles::reload`] re-reads the files and,
//! only when they load, makes new connections use them; connections already open keep the
//! session they negotiated, so a reload never drops anyone. [`serve_tls`] is [`crate::serve_with`]
//! over TLS.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::net::TcpListener;

use crate::refusal::count_refusal;
use crate::serve::{accept, http_builder, serve_connection};
use crate::ServeConfig;

/// Why a certificate and key could not be loaded. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file is not well-formed PEM.
    #[error("{path} is not valid PEM: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("{path} holds no certificate (a PEM \"BEGIN CERTIFICATE\" section)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key section.
    #[error("{path} holds no private key (a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" section)")]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key is not the key of the certificate (the first one in the chain).
    #[error("the private key in {key} does not match the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the certificate or key for another reason (an unsupported key type, a
    /// malformed certificate).
    #[error("the certificate in {cert} and key in {key} cannot be used: {source}")]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
}

/// A certificate chain and private key loaded from PEM files, which [`TlsFiles::reload`]
/// replaces while the server runs. Cheap to clone: clones share the current certificate.
#[derive(Clone)]
pub struct TlsFiles {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl TlsFiles {
    /// Loads the certificate chain (leaf first, as PEM `CERTIFICATE` sections) and its private
    /// key (PKCS#8, PKCS#1 or SEC1 PEM). Fails, naming the file, when either cannot be read or
    /// parsed, or the key is not the certificate's.
    pub fn load(
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let cert_path = cert_path.into();
        let key_path = key_path.into();
        let config = server_config(&cert_path, &key_path)?;
        Ok(Self {
            cert_path,
            key_path,
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// Re-reads both files. When they load, connections accepted from now on use them; when
    /// they do not, the error is returned and the previous certificate stays in use. Open
    /// connections are never affected.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.cert_path, &self.key_path)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The key file.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The rustls configuration new connections are accepted with.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Checks that a certificate file and key file load and belong together, as [`TlsFiles::load`]
/// would, without keeping them (for configuration checks).
pub fn check_tls_files(cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    server_config(cert_path, key_path).map(drop)
}

/// Builds the rustls configuration: ring, TLS 1.2 and 1.3, no client certificates, ALPN
/// `http/1.1` (the only protocol served).
fn server_config(cert_path: &Path, key_path: &Path) -> Result<ServerConfig, TlsError> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    let rejected = |source: rustls::Error| match source {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            }
        }
        source => TlsError::Rejected {
            cert: cert_path.to_owned(),
            key: key_path.to_owned(),
            source,
        },
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(rejected)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, error: rustls::pki_types::pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey {
            path: path.to_owned(),
        }),
        Err(e) => Err(pem_error(path, e)),
    }
}

/// [`crate::serve_with`] over TLS: every connection `listener` accepts first completes a TLS
/// handshake with the certificate `tls` holds at that moment, then is served as HTTP/1.1
/// (WebSocket upgrades included). Runs until the task is dropped.
///
/// A handshake that does not finish within [`ServeConfig::header_read_timeout`] is abandoned
/// (logged and counted as the refusal `tls_handshake_timeout`), so a client that opens a
/// connection and stays silent holds it no longer than one that trickles its headers. A
/// failed handshake (a plain-HTTP client, an unknown certificate authority) is logged at
/// `debug` and closes the connection.
pub async fn serve_tls<S, B>(
    listener: TcpListener,
    service: S,
    config: ServeConfig,
    tls: TlsFiles,
) -> std::io::Result<()>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = http_builder(&config);
    loop {
        let (stream, peer) = accept(&listener).await;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
        let service = service.clone();
        let builder = builder.clone();
        let timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let handshake = acceptor.accept(stream);
            let stream = match timeout {
                Some(limit) => match tokio::time::timeout(limit, handshake).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::info!(reason = "tls_handshake_timeout", %peer, "refused: TLS handshake not completed in time");
                        count_refusal("tls_handshake_timeout");
                        return;
                    }
                },
                None => handshake.await,
            };
            match stream {
                Ok(stream) => serve_connection(stream, peer, service, builder).await,
                Err(error) => tracing::debug!(%error, %peer, "TLS handshake failed"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh self-signed certificate for `localhost`: (certificate PEM, key PEM).
    fn generate() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn loads_a_matching_pair_and_reloads_only_good_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = generate();
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);
        let files = TlsFiles::load(&cert_path, &key_path).expect("loads");
        assert_eq!(
            files.server_config().alpn_protocols,
            vec![b"http/1.1".to_vec()]
        );

        // The certificate resolver is opaque: a swap shows as a new configuration here, and the
        // served certificate is compared through real handshakes in the gateway's tests.
        let before = files.server_config();
        let (cert2, key2) = generate();
        write(dir.path(), "cert.pem", &cert2);
        write(dir.path(), "key.pem", &key2);
        files.reload().expect("reloads");
        let after = files.server_config();
        assert!(!Arc::ptr_eq(&before, &after));

        // A broken key file: the reload fails, the current configuration stays.
        write(dir.path(), "key.pem", "not a key");
        let error = files.reload().expect_err("bad key");
        assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error}");
        assert!(Arc::ptr_eq(&files.server_config(), &after));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = generate();
        let (_, other_key) = generate();
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);
        let other_path = write(dir.path(), "other.pem", &other_key);
        let empty = write(dir.path(), "empty.pem", "");
        let missing = dir.path().join("missing.pem");

        let error = check_tls_files(&cert_path, &other_path).expect_err("mismatch");
        assert_eq!(
            error.to_string(),
            format!(
                "the private key in {} does not match the certificate in {}",
                other_path.display(),
                cert_path.display()
            )
        );
        let error = check_tls_files(&missing, &key_path).expect_err("missing");
        assert!(matches!(error, TlsError::Read { .. }));
        assert!(error
            .to_string()
            .starts_with(&format!("cannot read {}: ", missing.display())));
        let error = check_tls_files(&empty, &key_path).expect_err("no certificate");
        assert_eq!(
            error.to_string(),
            format!(
                "{} holds no certificate (a PEM \"BEGIN CERTIFICATE\" section)",
                empty.display()
            )
        );
        // A key given as the certificate: no certificate in it.
        let error = check_tls_files(&key_path, &key_path).expect_err("key as cert");
        assert!(matches!(error, TlsError::NoCertificate { .. }));
        let truncated = write(dir.path(), "cut.pem", &cert[..cert.len() / 2]);
        let error = check_tls_files(&truncated, &key_path).expect_err("truncated");
        assert!(matches!(error, TlsError::Pem { .. }), "{error}");
        assert!(check_tls_files(&cert_path, &key_path).is_ok());
    }
}
