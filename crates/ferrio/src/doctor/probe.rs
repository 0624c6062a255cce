//! Raw probes: one HTTP/1.1 request on its own connection, and one WebSocket handshake, with
//! every status, header and body byte visible to the checks.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::WebSocketStream;

use super::target::Target;
use super::tls_client::Stream;

/// Largest response body read, in bytes.
const MAX_BODY: usize = 1 << 20;

/// An HTTP response, read whole.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Response {
    /// A header's value as text, if present and readable.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The start of the body, for messages.
    pub(crate) fn body_start(&self) -> String {
        snippet(&self.body)
    }
}

/// Whether nginx wrote this answer itself (its error page), rather than passing on the
/// server's.
pub(crate) fn from_nginx(response: &Response) -> bool {
    let server = response
        .header("server")
        .is_some_and(|s| s.starts_with("nginx"));
    server && String::from_utf8_lossy(&response.body).contains("<center>nginx")
}

/// Whether the answer came through nginx (its `Server` header), from the server behind it.
pub(crate) fn through_nginx(response: &Response) -> bool {
    response
        .header("server")
        .is_some_and(|s| s.starts_with("nginx"))
        && !from_nginx(response)
}

/// The first 120 characters of a body, on one line.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .take(120)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 120 {
        out.push('…');
    }
    out
}

/// Sends one request on a new connection and reads the whole answer. Not bounded in time:
/// the caller bounds it.
pub(crate) async fn http(
    target: &Target,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response, String> {
    let stream = target.connect().await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP error: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", &target.authority);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !body.is_empty() {
        request = request.header("content-type", "text/plain;charset=UTF-8");
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .map_err(|e| format!("invalid request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| describe_hyper(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("cannot read the response body: {e}"))?
            .to_bytes();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
    .await;
    driver.abort();
    result
}

fn describe_hyper(error: &hyper::Error) -> String {
    if error.is_incomplete_message() {
        "the connection was closed before a complete answer came".to_owned()
    } else if error.is_parse() {
        format!("the answer is not HTTP/1.1: {error}")
    } else {
        format!("HTTP error: {error}")
    }
}

/// A client WebSocket over TCP or TLS.
pub(crate) type WsStream = WebSocketStream<Stream>;

/// Why a WebSocket could not be opened.
#[derive(Debug)]
pub(crate) enum WsError {
    /// No TCP connection.
    Connect(String),
    /// The server (or the proxy) answered the handshake with something other than 101.
    Status { status: StatusCode, body: String },
    /// Anything else: a reset connection, a malformed 101.
    Other(String),
}

/// Opens a WebSocket to `uri` (a `ws://` URI on the target). Not bounded in time.
pub(crate) async fn websocket(target: &Target, uri: &str) -> Result<WsStream, WsError> {
    let stream = target.connect().await.map_err(WsError::Connect)?;
    let request = uri
        .into_client_request()
        .map_err(|e| WsError::Other(format!("invalid request: {e}")))?;
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((stream, _)) => Ok(stream),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(WsError::Status {
            status: response.status(),
            body: response.body().as_deref().map(snippet).unwrap_or_default(),
        }),
        Err(error) => Err(WsError::Other(error.to_string())),
    }
}

/// The nginx lines that let WebSocket upgrades through.
pub(crate) const NGINX_UPGRADE_FIX: &str = "behind nginx, forward the upgrade in the location that proxies the Socket.IO path:\n\
    proxy_http_version 1.1;\n\
    proxy_set_header Upgrade $http_upgrade;\n\
    proxy_set_header Connection \"upgrade\";\n\
(other proxies: enable WebSocket support, e.g. Apache mod_proxy_wstunnel, an AWS ALB passes it by default)";

/// A stable name for a failed WebSocket handshake, for `--json` readers.
pub(crate) fn ws_code(error: &WsError) -> &'static str {
    match error {
        WsError::Status { status, .. } if status.as_u16() == 400 => {
            "websocket-upgrade-not-forwarded"
        }
        WsError::Status { status, .. } if status.as_u16() == 502 => "websocket-bad-gateway",
        WsError::Status { status, .. } if status.as_u16() == 404 => "websocket-not-found",
        WsError::Status { .. } => "websocket-status",
        WsError::Connect(_) | WsError::Other(_) => "websocket-failed",
    }
}

/// What a failed WebSocket handshake means, and its fix.
pub(crate) fn diagnose_ws(error: &WsError) -> (String, String) {
    match error {
        WsError::Connect(e) => (
            format!("cannot connect: {e}"),
            "check that the server is up".to_owned(),
        ),
        WsError::Status { status, body } => {
            let why = match status.as_u16() {
                400 => {
                    "the WebSocket request reached the server without its Upgrade and \
                        Connection headers (a proxy in front dropped them), or as HTTP/1.0 (a \
                        proxy speaking HTTP/1.0 to the server: nginx's default without \
                        proxy_http_version 1.1), or the server refused the session"
                }
                502 => "the proxy could not pass the upgrade to the server",
                404 => "nothing serves WebSockets at this path",
                _ => "the WebSocket handshake was not switched to the WebSocket protocol",
            };
            let body = if body.is_empty() {
                String::new()
            } else {
                format!(" {body}")
            };
            (
                format!("answered {status}{body}: {why}"),
                NGINX_UPGRADE_FIX.to_owned(),
            )
        }
        WsError::Other(e) => (
            format!("the WebSocket handshake failed: {e}"),
            NGINX_UPGRADE_FIX.to_owned(),
        ),
    }
}
