//! The deployment under examination: where it is and how its requests are addressed.

use std::fmt::Write as _;

use http::Uri;
use tokio::net::TcpStream;

use super::tls_client::{Stream, TlsClient};

/// A checked `http://host[:port]` (or https, ws, wss) and the Engine.IO path.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The URL as given.
    pub(crate) url: String,
    /// Host to connect to (IPv6 without brackets).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host[:port]` as given, for the `Host` header and URLs.
    pub(crate) authority: String,
    /// The Engine.IO path, with leading and trailing `/`.
    pub(crate) path: String,
    /// Whether the URL asks for TLS (https or wss).
    pub(crate) tls: bool,
    /// How TLS is spoken, set for https URLs before the steps run.
    pub(crate) tls_client: Option<TlsClient>,
}

impl Target {
    /// Parses the URL. A path in it is the Engine.IO path unless `path` is given.
    pub(crate) fn parse(url: &str, path: Option<&str>) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("http" | "ws") => false,
            Some("https" | "wss") => true,
            Some(other) => {
                return Err(format!(
                    "unsupported scheme {other:?}: use http:// or https://"
                ))
            }
            None => {
                return Err(format!(
                    "invalid URL {url:?}: no scheme (use http://host:port)"
                ))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("invalid URL {url:?}: no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let url_path = match uri.path() {
            "" | "/" => None,
            other => Some(other),
        };
        let mut path = path.or(url_path).unwrap_or("/socket.io/").to_owned();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        Ok(Self {
            url: url.to_owned(),
            host,
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path,
            tls,
            tls_client: None,
        })
    }

    /// The path and query of an Engine.IO request.
    pub(crate) fn query(&self, eio: u8, transport: &str, sid: Option<&str>) -> String {
        let mut out = format!("{}?EIO={eio}&transport={transport}", self.path);
        if let Some(sid) = sid {
            let _ = write!(out, "&sid={}", encode(sid));
        }
        out
    }

    /// The `ws://` (or `wss://`) URI of a WebSocket request.
    pub(crate) fn websocket_uri(&self, sid: Option<&str>) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!(
            "{scheme}://{}{}",
            self.authority,
            self.query(4, "websocket", sid)
        )
    }

    /// The `http://host:port` (or `https://`) the Socket.IO client is given.
    pub(crate) fn client_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// Opens a connection to the target: TCP, then TLS for https URLs. Not bounded in time.
    pub(crate) async fn connect(&self) -> Result<Stream, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls_client {
            None => Ok(Stream::Plain(tcp)),
            Some(client) => client
                .connect(tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}")),
        }
    }
}

/// Percent-encodes what a session id from any server may hold.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let target = Target::parse("http://127.0.0.1:3000", None).expect("valid");
        assert_eq!((target.host.as_str(), target.port), ("127.0.0.1", 3000));
        assert_eq!(target.path, "/socket.io/");
        assert_eq!(
            target.query(4, "polling", Some("a+b")),
            "/socket.io/?EIO=4&transport=polling&sid=a%2Bb"
        );
        let target = Target::parse("https://example.com/chat", None).expect("valid");
        assert!(target.tls);
        assert_eq!((target.port, target.path.as_str()), (443, "/chat/"));
        let target = Target::parse("http://[::1]/x/", Some("engine")).expect("valid");
        assert_eq!((target.host.as_str(), target.port), ("::1", 80));
        assert_eq!(target.path, "/engine/");
        assert_eq!(
            target.websocket_uri(None),
            "ws://[::1]/engine/?EIO=4&transport=websocket"
        );
        assert!(Target::parse("ftp://x", None).is_err());
        assert!(Target::parse("localhost", None).is_err());
    }
}
