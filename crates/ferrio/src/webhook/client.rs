//! The outbound HTTP client of the gateway: one request on its own connection, `http://` or
//! `https://` (rustls with the Mozilla roots), bounded in time as a whole. Webhooks and the
//! JWKS fetch use it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
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

/// Sends one request and reads the whole answer, all within `timeout`. Cancel-safe: dropping
/// the future drops the connection.
pub(crate) async fn send(
    url: &Url,
    method: Method,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<Response, HttpError> {
    match tokio::time::timeout(timeout, exchange(url, method, headers, body)).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout(timeout)),
    }
}

async fn exchange(
    url: &Url,
    method: Method,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Response, HttpError> {
    let stream = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| HttpError::Connect(format!("{}:{}: {e}", url.host, url.port)))?;
    let _ = stream.set_nodelay(true);
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
    let request = request
        .body(Full::new(body))
        .map_err(|e| HttpError::Exchange(format!("invalid request: {e}")))?;
    if url.tls {
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| HttpError::Tls(format!("{}: {e}", url.host)))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, stream)
            .await
            .map_err(|e| HttpError::Tls(e.to_string()))?;
        over(tls, request).await
    } else {
        over(stream, request).await
    }
}

/// One HTTP/1.1 exchange over an open stream.
async fn over<S>(stream: S, request: Request<Full<Bytes>>) -> Result<Response, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Exchange(format!("HTTP error: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let result = async {
        let response = sender.send_request(request).await.map_err(|e| {
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
    .await;
    driver.abort();
    result
}

/// The client TLS settings: the Mozilla roots, ring, TLS 1.2 and 1.3. Built once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|builder| {
                    builder
                        .with_root_certificates(roots.clone())
                        .with_no_client_auth()
                })
                // The ring provider supports the default versions; this branch is a fallback
                // that keeps the type simple, not a path taken.
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder()
                        .with_root_certificates(roots)
                        .with_no_client_auth()
                });
            Arc::new(config)
        })
        .clone()
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
    fn snippets_are_one_line() {
        assert_eq!(snippet(b" a\nb "), "a b");
    }
}
