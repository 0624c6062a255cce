//! The server's address and the Engine.IO request URIs built from it.

use std::fmt::Write as _;

use http::Uri;

use crate::tls::TlsConnect;
use crate::{ClientConfig, ConfigError, TransportKind};

/// Query keys the protocol owns.
const RESERVED_KEYS: [&str; 4] = ["EIO", "transport", "sid", "t"];

/// Where the Engine.IO endpoint is, checked once.
#[derive(Debug, Clone)]
pub(crate) struct EngineUrl {
    /// Host to open a TCP connection to.
    pub(crate) host: String,
    /// Port to open a TCP connection to.
    pub(crate) port: u16,
    /// The `Host` header: host and port as given.
    pub(crate) authority: String,
    /// The Engine.IO path, with leading and trailing `/`.
    pub(crate) path: String,
    /// The user's query parameters, encoded, each preceded by `&`.
    pub(crate) extra_query: String,
    /// For `https://` and `wss://`: how to open TLS.
    pub(crate) tls: Option<TlsConnect>,
}

impl EngineUrl {
    /// Checks the URL, path and query of `config`.
    pub(crate) fn from_config(config: &ClientConfig) -> Result<Self, ConfigError> {
        let uri: Uri = config
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ConfigError::InvalidUrl(e.to_string()))?;
        let secure = match uri.scheme_str() {
            Some("http" | "ws") => false,
            Some("https" | "wss") => true,
            Some(other) => return Err(ConfigError::UnsupportedScheme(other.to_owned())),
            None => return Err(ConfigError::InvalidUrl("no scheme".to_owned())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| ConfigError::InvalidUrl("no host".to_owned()))?;
        if authority.as_str().contains('@') {
            return Err(ConfigError::InvalidUrl(
                "credentials in the URL are not supported; use a header".to_owned(),
            ));
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(ConfigError::UrlPath(uri.path().to_owned()));
        }
        if uri.query().is_some() {
            return Err(ConfigError::UrlQuery);
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(ConfigError::InvalidUrl("no host".to_owned()));
        }

        let mut path = config.path.clone();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        if !path.ends_with('/') {
            path.push('/');
        }
        if path.contains(['?', '#']) {
            return Err(ConfigError::InvalidPath(config.path.clone()));
        }

        let mut extra_query = String::new();
        for (key, value) in &config.query {
            if RESERVED_KEYS.contains(&key.as_str()) {
                return Err(ConfigError::ReservedQueryKey(key.clone()));
            }
            extra_query.push('&');
            percent_encode(key, &mut extra_query);
            extra_query.push('=');
            percent_encode(value, &mut extra_query);
        }

        let tls = if secure {
            Some(TlsConnect::new(&config.tls, &host)?)
        } else {
            None
        };
        Ok(Self {
            port: authority
                .port_u16()
                .unwrap_or(if secure { 443 } else { 80 }),
            host,
            authority: authority.as_str().to_owned(),
            path,
            extra_query,
            tls,
        })
    }

    /// Path and query of an Engine.IO request: `/socket.io/?EIO=4&transport=...`.
    pub(crate) fn path_and_query(
        &self,
        transport: TransportKind,
        sid: Option<&str>,
        cache_buster: Option<u64>,
    ) -> String {
        let mut out = format!("{}?EIO=4&transport={}", self.path, transport.as_str());
        if let Some(t) = cache_buster {
            let _ = write!(out, "&t={t}");
        }
        if let Some(sid) = sid {
            out.push_str("&sid=");
            percent_encode(sid, &mut out);
        }
        out.push_str(&self.extra_query);
        out
    }

    /// The full `ws://` (or `wss://`) URI of a WebSocket request.
    pub(crate) fn websocket_uri(&self, sid: Option<&str>) -> String {
        format!(
            "{}://{}{}",
            if self.tls.is_some() { "wss" } else { "ws" },
            self.authority,
            self.path_and_query(TransportKind::WebSocket, sid, None)
        )
    }
}

/// Appends `text` percent-encoded: everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(config: ClientConfig) -> Result<EngineUrl, ConfigError> {
        EngineUrl::from_config(&config)
    }

    #[test]
    fn builds_request_uris() {
        let config = ClientConfig {
            path: "engine".into(),
            query: vec![("token".into(), "a b&c/é".into())],
            ..ClientConfig::new("http://127.0.0.1:3000")
        };
        let url = url(config).expect("valid");
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 3000));
        assert_eq!(url.authority, "127.0.0.1:3000");
        assert_eq!(
            url.path_and_query(TransportKind::Polling, Some("ab-_c"), Some(7)),
            "/engine/?EIO=4&transport=polling&t=7&sid=ab-_c&token=a%20b%26c%2F%C3%A9"
        );
        assert_eq!(
            url.websocket_uri(None),
            "ws://127.0.0.1:3000/engine/?EIO=4&transport=websocket&token=a%20b%26c%2F%C3%A9"
        );
    }

    #[test]
    fn defaults_and_ipv6() {
        let url = url(ClientConfig::new("ws://[::1]/")).expect("valid");
        assert_eq!((url.host.as_str(), url.port), ("::1", 80));
        assert_eq!(url.authority, "[::1]");
        assert_eq!(url.path, "/socket.io/");
    }

    #[test]
    fn https_and_wss_use_tls_on_443() {
        let url = url(ClientConfig::new("https://chat.example")).expect("valid");
        assert_eq!((url.host.as_str(), url.port), ("chat.example", 443));
        assert!(url.tls.is_some());
        assert_eq!(
            url.websocket_uri(None),
            "wss://chat.example/socket.io/?EIO=4&transport=websocket"
        );
        let url = url_of("wss://127.0.0.1:8443");
        assert_eq!(url.port, 8443);
        assert!(url.tls.is_some());
        assert!(url_of("http://127.0.0.1:8443").tls.is_none());
    }

    fn url_of(text: &str) -> EngineUrl {
        url(ClientConfig::new(text)).expect("valid")
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(matches!(
            url(ClientConfig::new("ftp://example.com")),
            Err(ConfigError::UnsupportedScheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            url(ClientConfig::new("http://example.com/chat")),
            Err(ConfigError::UrlPath(_))
        ));
        assert!(matches!(
            url(ClientConfig::new("http://example.com/?a=1")),
            Err(ConfigError::UrlQuery)
        ));
        assert!(matches!(
            url(ClientConfig::new("not a url")),
            Err(ConfigError::InvalidUrl(_))
        ));
        assert!(matches!(
            url(ClientConfig::new("example.com")),
            Err(ConfigError::InvalidUrl(_))
        ));
        assert!(matches!(
            url(ClientConfig {
                query: vec![("sid".into(), "x".into())],
                ..ClientConfig::new("http://example.com")
            }),
            Err(ConfigError::ReservedQueryKey(k)) if k == "sid"
        ));
    }
}
