//! The API's error answer: a status and `{"error": "...", "code": "...", "field"?: "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why a request was refused. Every variant answers with JSON naming a stable `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// No key, or the wrong one: 401 `unauthorized`.
    Unauthorized(String),
    /// `api.key` is not set, so the API is off: 404 `api_disabled`.
    Disabled,
    /// No such route: 404 `not_found`.
    NotFound(String),
    /// The namespace is not one the server serves: 404 `unknown_namespace`.
    UnknownNamespace(String),
    /// The body is not JSON, or not an object: 400 `invalid_json`.
    InvalidJson(String),
    /// A field is missing or wrong: 400 `invalid_body`, naming the field.
    InvalidField {
        /// The field, e.g. `event` or `args[1]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A query parameter is unknown or wrong: 400 `invalid_query`, naming the parameter.
    InvalidQuery {
        /// The parameter.
        parameter: String,
        /// What is wrong with it.
        message: String,
    },
    /// The body is longer than `api.max_body`: 413 `body_too_large`.
    TooLarge {
        /// The limit, in bytes.
        max: usize,
    },
    /// The history store failed; nothing was stored or sent: 503 `history_unavailable`.
    HistoryUnavailable(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub(crate) fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Disabled | Self::NotFound(_) | Self::UnknownNamespace(_) => StatusCode::NOT_FOUND,
            Self::InvalidJson(_) | Self::InvalidField { .. } | Self::InvalidQuery { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HistoryUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Disabled => "api_disabled",
            Self::NotFound(_) => "not_found",
            Self::UnknownNamespace(_) => "unknown_namespace",
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidField { .. } => "invalid_body",
            Self::InvalidQuery { .. } => "invalid_query",
            Self::TooLarge { .. } => "body_too_large",
            Self::HistoryUnavailable(_) => "history_unavailable",
        }
    }

    /// The human-readable message.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Unauthorized(message) | Self::NotFound(message) | Self::InvalidJson(message) => {
                message.clone()
            }
            Self::Disabled => "the HTTP API is off: set api.key (FERRIO_API_KEY) to turn it on; \
                               `ferrio config init` generates one"
                .to_owned(),
            Self::UnknownNamespace(name) => format!(
                "namespace {name:?} is not served (server.namespaces lists the served ones)"
            ),
            Self::InvalidField { field, message } => format!("{field}: {message}"),
            Self::InvalidQuery { parameter, message } => format!("{parameter}: {message}"),
            Self::TooLarge { max } => {
                format!("the request body is larger than {max} bytes (api.max_body)")
            }
            Self::HistoryUnavailable(error) => {
                format!("the history store failed, nothing was sent: {error}")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message(), "code": self.code() });
        match &self {
            Self::InvalidField { field, .. } => body["field"] = json!(field),
            Self::InvalidQuery { parameter, .. } => body["parameter"] = json!(parameter),
            _ => {}
        }
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, Self::Unauthorized(_)) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
