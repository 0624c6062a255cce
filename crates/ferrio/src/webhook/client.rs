//! The outbound HTTP client of the gateway (webhooks, the JWKS fetch): `http://` or `https://`
//! (rustls with the Mozilla roots, and a private CA's when configured), on kept-alive
//! connections ([`Pool`]), each exchange bounded in time as a whole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Largest answer body read, in bytes: an answer is an ack or a key set, never a download.
const MAX_BODY: usize = 1 << 20;

/// Where a request goes, parsed once from a configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    tls: bool,
    host: String,
    port: u16,
    /// `host[:port]`, for the `Host` header.
    authority: String,
    path_and_query: String,
}

impl Url {
    /// Parses `http://host[:port]/path?query` or the `https://` form; the error says what is
    /// wrong for a person reading the configuration.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL ({e})"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => {
                return Err(format!(
                    "{url:?} uses the scheme {other:?}: only http:// and https:// are supported"
                ))
            }
            None => return Err(format!("{url:?} has no scheme: write http://host/path")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "{url:?} carries credentials: put secrets in webhooks.secret instead"
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Self {
            tls,
            host,
            port,
            authority: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.path_and_query)
    }
}

/// Why a request got no answer; an answer of any status is not an error here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpError {
    /// The whole exchange took longer than allowed.
    #[error("timed out after {}", crate::config::duration::format(*.0))]
    Timeout(Duration),
    /// No connection: refused, unresolvable, unreachable.
    #[error("unreachable: {0}")]
    Connect(String),
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The connection broke, or the answer was not HTTP/1.1 or too large.
    #[error("{0}")]
    Exchange(String),
}

/// An answer, read whole.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

/// The request of one exchange.
fn build(
    url: &Url,
    method: Method,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, HttpError> {
    let mut request = Request::builder()
        .method(method)
        .uri(url.path_and_query.as_str())
        .header(http::header::HOST, url.authority.as_str())
        .header(
            http::header::USER_AGENT,
            concat!("ferrio/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    request
        .body(Full::new(body))
        .map_err(|e| HttpError::Exchange(format!("invalid request: {e}")))
}

/// A sender on a new connection (TCP, then TLS for `https://` with `tls`); the connection lives
/// until the sender is dropped or the server closes it.
async fn connect(url: &Url, tls: &Arc<rustls::ClientConfig>) -> Result<Sender, HttpError> {
    let stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| HttpError::Connect(format!("{}:{}: {e}", url.host, url.port)))?;
    let _ = stream.set_nodelay(true);
    if url.tls {
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| HttpError::Tls(format!("{}: {e}", url.host)))?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await
            .map_err(|e| HttpError::Tls(e.to_string()))?;
        handshake(tls).await
    } else {
        handshake(stream).await
    }
}

/// The sending half of an HTTP/1.1 connection.
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn handshake<S>(stream: S) -> Result<Sender, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Exchange(format!("HTTP error: {e}")))?;
    // Ends when the sender is dropped (the connection closes) or the server closes it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Reads a whole answer.
async fn read(
    response: Result<http::Response<hyper::body::Incoming>, hyper::Error>,
) -> Result<Response, HttpError> {
    let response = response.map_err(|e| {
        HttpError::Exchange(if e.is_incomplete_message() {
            "the connection was closed before a complete answer came".to_owned()
        } else {
            format!("HTTP error: {e}")
        })
    })?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| HttpError::Exchange(format!("cannot read the answer: {e}")))?
        .to_bytes();
    Ok(Response { status, body })
}

/// Most idle connections kept per server.
const MAX_IDLE: usize = 32;
/// How long an idle connection is reused: below the shortest keep-alive timeout of common
/// servers (gunicorn's 2 s), so the server rarely closes one just as a request goes out.
const IDLE_LIFETIME: Duration = Duration::from_millis(1500);

/// A connection waiting for its next request.
struct Idle {
    sender: Sender,
    since: Instant,
}

/// Connections kept open between requests (HTTP/1.1 keep-alive), by server: a busy webhook
/// pays the TCP and TLS handshakes once, not per call.
pub(crate) struct Pool {
    idle: Mutex<HashMap<(bool, String, u16), Vec<Idle>>>,
    /// The TLS settings of `https://` connections.
    tls: Arc<rustls::ClientConfig>,
}

impl Default for Pool {
    fn default() -> Self {
        Self::with_tls(tls_config())
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

fn origin(url: &Url) -> (bool, String, u16) {
    (url.tls, url.host.clone(), url.port)
}

impl Pool {
    /// A pool whose `https://` servers may also be vouched for by `extra_roots` (a private CA),
    /// besides the Mozilla roots.
    pub(crate) fn with_roots(extra_roots: Vec<CertificateDer<'static>>) -> Self {
        Self::with_tls(client_config(extra_roots))
    }

    fn with_tls(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            tls,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(bool, String, u16), Vec<Idle>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection to `url`'s server that is still open and fresh.
    fn take(&self, url: &Url) -> Option<Sender> {
        let mut idle = self.lock();
        let list = idle.get_mut(&origin(url))?;
        while let Some(entry) = list.pop() {
            if entry.since.elapsed() < IDLE_LIFETIME
                && !entry.sender.is_closed()
                && entry.sender.is_ready()
            {
                return Some(entry.sender);
            }
        }
        None
    }

    /// Keeps a connection whose exchange completed, unless it is closing or enough are kept.
    fn put(&self, url: &Url, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry(origin(url)).or_default();
        list.retain(|entry| entry.since.elapsed() < IDLE_LIFETIME && !entry.sender.is_closed());
        if list.len() < MAX_IDLE {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Sends one request and reads the whole answer, all within `timeout`: on a kept connection
    /// when one is idle, else on a new one that is kept after. A request a kept connection
    /// refused before sending it (the server had closed it) goes out on the next one; a request
    /// that was sent is never sent twice. Cancel-safe: dropping the future drops the connection
    /// in use.
    pub(crate) async fn send(
        &self,
        url: &Url,
        method: Method,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let exchange = async {
            while let Some(mut sender) = self.take(url) {
                let request = build(url, method.clone(), headers, body.clone())?;
                match sender.try_send_request(request).await {
                    Ok(response) => {
                        let answer = read(Ok(response)).await?;
                        self.put(url, sender);
                        return Ok(answer);
                    }
                    Err(mut error) => {
                        if error.take_message().is_some() {
                            continue;
                        }
                        return read(Err(error.into_error())).await;
                    }
                }
            }
            let mut sender = connect(url, &self.tls).await?;
            let request = build(url, method, headers, body)?;
            let answer = read(sender.send_request(request).await).await?;
            self.put(url, sender);
            Ok(answer)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(timeout)),
        }
    }
}

/// The certificates of a PEM file (a private CA's), for [`Pool::with_roots`]; the error names
/// `setting`.
pub(crate) fn read_roots(
    setting: &str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{setting}: cannot read {path}: {e}"))?;
    let roots = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{setting}: {path} is not PEM ({e})"))?;
    if roots.is_empty() {
        return Err(format!("{setting}: {path} holds no certificate"));
    }
    let mut store = rustls::RootCertStore::empty();
    for root in &roots {
        store
            .add(root.clone())
            .map_err(|e| format!("{setting}: a certificate of {path} cannot be a root ({e})"))?;
    }
    Ok(roots)
}

/// The client TLS settings: the Mozilla roots, ring, TLS 1.2 and 1.3. Built once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| client_config(Vec::new())).clone()
}

/// TLS settings trusting the Mozilla roots and `extra_roots`.
fn client_config(extra_roots: Vec<CertificateDer<'static>>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Checked by `read_roots`: every one is accepted.
    let _ = roots.add_parsable_certificates(extra_roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth()
        })
        // The ring provider supports the default versions; this branch is a fallback that
        // keeps the type simple, not a path taken.
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        });
    Arc::new(config)
}

/// The first 200 characters of a body, on one line, for messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = Url::parse("http://127.0.0.1:8080/hooks/event?x=1").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.tls),
            ("127.0.0.1", 8080, false)
        );
        assert_eq!(url.path_and_query, "/hooks/event?x=1");
        assert_eq!(url.to_string(), "http://127.0.0.1:8080/hooks/event?x=1");
        let url = Url::parse("https://api.example.com").unwrap();
        assert_eq!(
            (url.port, url.tls, url.path_and_query.as_str()),
            (443, true, "/")
        );
        assert_eq!(
            Url::parse("ftp://x/").unwrap_err(),
            "\"ftp://x/\" uses the scheme \"ftp\": only http:// and https:// are supported"
        );
        assert_eq!(
            Url::parse("/hooks").unwrap_err(),
            "\"/hooks\" has no scheme: write http://host/path"
        );
        assert!(Url::parse("http://user:pw@x/")
            .unwrap_err()
            .contains("credentials"));
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let path = path.display().to_string();
        assert_eq!(
            read_roots("webhooks.ca_file", &path).unwrap_err(),
            format!("webhooks.ca_file: {path} holds no certificate")
        );
    }

    #[test]
    fn snippets_are_one_line() {
        assert_eq!(snippet(b" a\nb "), "a b");
    }
}
