//! The API key check, a layer over every API route: `Authorization: Bearer <key>` or
//! `X-API-Key: <key>`, compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The header a key may also come in.
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// The configured key; `None` when `api.key` is empty, which turns the API off.
#[derive(Clone)]
pub(crate) struct ApiKey(Option<Arc<[u8]>>);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself: it may end up in a log.
        f.write_str(if self.0.is_some() {
            "ApiKey(set)"
        } else {
            "ApiKey(unset)"
        })
    }
}

impl ApiKey {
    /// The key of `api.key`; empty means no key.
    pub(crate) fn new(key: &str) -> Self {
        Self((!key.is_empty()).then(|| Arc::from(key.as_bytes())))
    }

    /// Whether a request presenting these headers may use the API.
    pub(crate) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(key) = &self.0 else {
            return Err(ApiError::Disabled);
        };
        let presented = presented(headers).ok_or_else(|| {
            ApiError::Unauthorized(
                "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>"
                    .to_owned(),
            )
        })?;
        if constant_time_eq(presented, key) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("the API key is wrong".to_owned()))
        }
    }
}

/// The key a request presents: the bearer token first, then `X-API-Key`.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let bytes = value.as_bytes();
        let scheme = b"bearer ";
        if bytes.len() > scheme.len() && bytes[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(trim(&bytes[scheme.len()..]));
        }
    }
    headers
        .get(API_KEY_HEADER)
        .map(|value| trim(value.as_bytes()))
        .filter(|key| !key.is_empty())
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Whether `a` equals `b`, taking a time that depends on their lengths only, never on where
/// they first differ, so that the key cannot be guessed byte by byte from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = u8::from(a.len() != b.len());
    // Every byte of the presented key is compared (against the key, cycled), whatever matches.
    for (i, byte) in a.iter().enumerate() {
        let other = b.get(i % b.len().max(1)).copied().unwrap_or(0);
        difference |= byte ^ other;
    }
    std::hint::black_box(difference) == 0
}

/// The middleware: answers 401 (or 404 when the API is off) before any route runs.
pub(crate) async fn require_key(
    State(key): State<ApiKey>,
    request: Request,
    next: Next,
) -> Response {
    match key.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_and_header_keys() {
        let key = ApiKey::new("s3cret-key");
        assert_eq!(
            key.check(&headers(&[("authorization", "Bearer s3cret-key")])),
            Ok(())
        );
        assert_eq!(
            key.check(&headers(&[("authorization", "bearer s3cret-key ")])),
            Ok(())
        );
        assert_eq!(key.check(&headers(&[("x-api-key", "s3cret-key")])), Ok(()));
        assert_eq!(
            key.check(&headers(&[("x-api-key", "s3cret-kez")])),
            Err(ApiError::Unauthorized("the API key is wrong".to_owned()))
        );
        assert_eq!(
            key.check(&headers(&[("authorization", "Basic czNjcmV0LWtleQ==")]))
                .unwrap_err()
                .code(),
            "unauthorized"
        );
        assert_eq!(key.check(&headers(&[])).unwrap_err().code(), "unauthorized");
        assert_eq!(
            ApiKey::new("").check(&headers(&[("x-api-key", "")])),
            Err(ApiError::Disabled)
        );
    }

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcabc"));
        assert!(!constant_time_eq(b"abcabc", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
    }
}
