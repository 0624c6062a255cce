//! The HTTP error answers of the reference server, and the errors of this crate's API.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use thiserror::Error;

use crate::body::ResponseBody;

/// The error codes of the reference server's `{"code":N,"message":...}` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: the `transport` query parameter is missing, unknown or not enabled.
    UnknownTransport = 0,
    /// 1: the `sid` is not a live session, or belongs to another transport.
    UnknownSid = 1,
    /// 2: a request without `sid` that is not a handshake `GET`.
    BadHandshakeMethod = 2,
    /// 3: anything else wrong with the request.
    BadRequest = 3,
    /// 4: refused by the `allow_request` check or the origin check.
    Forbidden = 4,
    /// 5: the `EIO` query parameter is missing or names a revision not served.
    UnsupportedProtocolVersion = 5,
    /// 6 (Ferrio's, past the reference's 0 to 5): the server holds as many sessions as
    /// [`crate::EngineConfig::max_connections`] allows. HTTP 503.
    TooManyConnections = 6,
    /// 7 (Ferrio's): this client address went over a limit of its own, its number of sessions
    /// or its handshake rate. HTTP 429.
    TooManyRequests = 7,
    /// 8 (Ferrio's): the request's body did not arrive within
    /// [`crate::EngineConfig::polling_body_timeout`]. HTTP 408.
    RequestTimeout = 8,
}

impl ErrorCode {
    /// The reference server's message for this code.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
            Self::TooManyConnections => "Too many connections",
            Self::TooManyRequests => "Too many requests",
            Self::RequestTimeout => "Request timeout",
        }
    }

    /// The HTTP status: 403 for [`ErrorCode::Forbidden`], 503, 429 and 408 for the limits, 400
    /// otherwise.
    ///
    /// Official clients read none of these bodies: any status but 200 (101 for a WebSocket)
    /// fails the transport, and socket.io-client then reports `connect_error` and retries with
    /// its backoff. The statuses are chosen for what the client should do: 503 and 429 mean
    /// "come back later", which that backoff does, rather than "you may never come in".
    pub fn status(self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Builds the JSON error answer for `code`, with an optional message in place of the default.
pub(crate) fn error_response(code: ErrorCode, message: Option<&str>) -> Response<ResponseBody> {
    let body = serde_json::json!({
        "code": code as u8,
        "message": message.unwrap_or(code.message()),
    });
    let mut response = Response::new(ResponseBody::full(body.to_string()));
    *response.status_mut() = code.status();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer with a status and a short plain-text body.
pub(crate) fn status_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    response
}

/// Why a packet could not be queued for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
    /// The session's queue holds `max` packets already: the client is not reading.
    #[error("the session's send queue is full ({max} packets)")]
    Full {
        /// The queue's capacity.
        max: usize,
    },
}
