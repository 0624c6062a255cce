//! Cross-origin resource sharing for the polling transport and the handshake.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::Method;

/// Which origins may make cross-origin requests.
#[derive(Clone)]
pub enum AllowOrigin {
    /// Any origin: answered with the literal `*` (browsers refuse `*` together with credentials;
    /// use [`AllowOrigin::Mirror`] for that).
    Any,
    /// Any origin, answered with the request's own origin.
    Mirror,
    /// Exactly these origins (scheme, host and port, no path, e.g. `https://app.example.com`).
    List(Vec<String>),
    /// Origins accepted by a function.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for AllowOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::Mirror => f.write_str("Mirror"),
            Self::List(list) => f.debug_tuple("List").field(list).finish(),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl AllowOrigin {
    /// Whether `origin` (an `Origin` header's value) is allowed: always for
    /// [`AllowOrigin::Any`] and [`AllowOrigin::Mirror`], exact match for a list.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any | Self::Mirror => true,
            Self::List(list) => list.iter().any(|o| o == origin),
            Self::Predicate(allow) => allow(origin),
        }
    }
}

/// CORS settings, as the `cors` option of the reference server.
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// Allowed origins.
    pub origin: AllowOrigin,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// Methods allowed in preflight answers; GET and POST by default.
    pub methods: Vec<Method>,
    /// Headers allowed in preflight answers; `None` mirrors `Access-Control-Request-Headers`.
    pub allowed_headers: Option<Vec<String>>,
    /// How long browsers may cache a preflight answer.
    pub max_age: Option<Duration>,
}

impl CorsConfig {
    /// Allows any origin with `*`, no credentials.
    pub fn any() -> Self {
        Self::new(AllowOrigin::Any)
    }

    /// Settings with the given origins and the other fields at their defaults.
    pub fn new(origin: AllowOrigin) -> Self {
        Self {
            origin,
            credentials: false,
            methods: vec![Method::GET, Method::POST],
            allowed_headers: None,
            max_age: None,
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request, or `None` if its origin is not
    /// allowed (or it sent none).
    fn allow_origin_value(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origin {
            AllowOrigin::Any => Some(HeaderValue::from_static("*")),
            AllowOrigin::Mirror => origin.cloned(),
            AllowOrigin::List(_) | AllowOrigin::Predicate(_) => {
                let origin = origin?;
                self.origin
                    .allows(origin.to_str().ok()?)
                    .then(|| origin.clone())
            }
        }
    }

    /// Whether a request's origin is allowed. Requests without an `Origin` header are not
    /// cross-origin browser requests and always pass.
    pub fn is_allowed(&self, request_headers: &HeaderMap) -> bool {
        match request_headers.get(header::ORIGIN) {
            None => true,
            Some(origin) => self.allow_origin_value(Some(origin)).is_some(),
        }
    }

    /// Adds the headers every answer to a cross-origin request carries.
    pub fn apply(&self, request_headers: &HeaderMap, response_headers: &mut HeaderMap) {
        let origin = request_headers.get(header::ORIGIN);
        if let Some(value) = self.allow_origin_value(origin) {
            response_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            if !matches!(self.origin, AllowOrigin::Any) {
                response_headers.append(header::VARY, HeaderValue::from_static("Origin"));
            }
            if self.credentials {
                response_headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
    }

    /// Adds the preflight headers to an answer to `OPTIONS`.
    pub fn apply_preflight(&self, request_headers: &HeaderMap, response_headers: &mut HeaderMap) {
        self.apply(request_headers, response_headers);
        let methods = self
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(",");
        if let Ok(value) = HeaderValue::from_str(&methods) {
            response_headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        let allowed = match &self.allowed_headers {
            Some(list) => HeaderValue::from_str(&list.join(",")).ok(),
            None => request_headers
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned(),
        };
        if let Some(value) = allowed {
            response_headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        if let Some(max_age) = self.max_age {
            response_headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from(max_age.as_secs()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_from(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_str(origin).expect("ascii"),
        );
        headers
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let mut cors = CorsConfig::new(AllowOrigin::List(vec!["https://a.example".into()]));
        cors.credentials = true;
        let mut out = HeaderMap::new();
        cors.apply(&request_from("https://a.example"), &mut out);
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://a.example"
        );
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(out[header::VARY], "Origin");

        let mut out = HeaderMap::new();
        cors.apply(&request_from("https://evil.example"), &mut out);
        assert!(out.is_empty());
        assert!(!cors.is_allowed(&request_from("https://evil.example")));
        assert!(cors.is_allowed(&HeaderMap::new()));
    }

    #[test]
    fn preflight_mirrors_requested_headers() {
        let cors = CorsConfig::any();
        let mut request = request_from("https://a.example");
        request.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        let mut out = HeaderMap::new();
        cors.apply_preflight(&request, &mut out);
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type");
    }
}
