//! A real HTTP backend in the test process, on 127.0.0.1 and a free port: it records every
//! request (webhook calls, JWKS fetches) and answers as the test's function says.

#![allow(dead_code)] // Each test file uses part of it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

/// One request the backend received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The caller's address: the same for calls on one kept-alive connection.
    pub(crate) peer: Option<SocketAddr>,
}

impl Recorded {
    /// The body as JSON (`null` when it is not JSON).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How the backend answers one request.
pub(crate) enum Reply {
    /// This status and JSON body.
    Json(u16, Value),
    /// This status and text body.
    Text(u16, &'static str),
    /// Never answers.
    Hang,
    /// This status and JSON body after this delay, as a slow backend.
    Delayed(Duration, u16, Value),
    /// This status and JSON body, then closes the connection (`Connection: close`), as
    /// servers without keep-alive do.
    JsonThenClose(u16, Value),
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// The running backend; it stops with the test's runtime.
pub(crate) struct Backend {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl Backend {
    /// Starts a backend answering with `handler`.
    pub(crate) async fn start(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let handler: Handler = Arc::new(handler);
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = recorded.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let handler = handler.clone();
            let log = log.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    body,
                    peer: parts
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|info| info.0),
                };
                log.lock().unwrap().push(recorded.clone());
                let mut close = false;
                let (status, content_type, body) = match handler(&recorded) {
                    Reply::Json(status, value) => (status, "application/json", value.to_string()),
                    Reply::Text(status, text) => (status, "text/plain", text.to_owned()),
                    Reply::JsonThenClose(status, value) => {
                        close = true;
                        (status, "application/json", value.to_string())
                    }
                    Reply::Hang => std::future::pending().await,
                    Reply::Delayed(delay, status, value) => {
                        tokio::time::sleep(delay).await;
                        (status, "application/json", value.to_string())
                    }
                };
                let mut response = Response::builder()
                    .status(status)
                    .header("content-type", content_type);
                if close {
                    response = response.header("connection", "close");
                }
                response.body(Body::from(body)).unwrap()
            }
        });
        tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, app).await;
        });
        Self { url, recorded }
    }

    /// Every request so far.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    /// The requests to `path` so far.
    pub(crate) fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits (10 s at most) until `count` requests to `path` came; panics otherwise.
    pub(crate) async fn wait_for(&self, path: &str, count: usize) -> Vec<Recorded> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.requests_to(path);
            if found.len() >= count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{count} request(s) to {path} never came: {:?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
