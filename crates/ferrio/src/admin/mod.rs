//! The admin page at `/admin`: a page in the browser that shows this node's connections,
//! namespaces, rooms, sockets and room history, and acts on them (emit, join, leave,
//! disconnect), all through the HTTP API with the API key its user types in.
//!
//! The server side is three static files. The page holds no secret and no route here bypasses
//! the key: everything the page shows or does is an `/api/v1` call, so the API's key check,
//! validation and errors apply unchanged, and a node whose API is off (`api.key` empty) serves
//! a page that says so. What clients control (user ids, room names, event arguments) is
//! written into the page as text, never as markup, and the Content-Security-Policy allows no
//! inline script, so a room named `<script>` stays a string.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Where the page is served.
pub(crate) const PATH: &str = "/admin";

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("admin.css");

/// Scripts and styles from this origin only; API calls to this origin only; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The page's routes, to merge into the gateway's router.
pub(crate) fn routes() -> Router {
    Router::new()
        .route(
            PATH,
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/admin/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/admin/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/admin/admin.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

/// A static file with the headers every admin file gets.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    // Each build may change the page; an admin page is small and rarely loaded.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
