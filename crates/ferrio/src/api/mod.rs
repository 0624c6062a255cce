//! The HTTP API for backends, under `/api/v1`: emit to rooms, sockets, users or everyone; make
//! sockets join, leave or disconnect; list rooms and sockets; stats. `docs/http-api.md` is the
//! guide, `GET /api/openapi.json` the OpenAPI 3.1 document.
//!
//! Every route sits behind the key check ([`auth`]); with no `api.key` the API is off and
//! answers 404 `api_disabled`. Other modules add routes of their own under the same check with
//! [`ApiRoutes::route`] and [`ApiRoutes::merge`], then [`router`] builds the whole API:
//!
//! ```ignore
//! let api = api::routes(state).merge(history::routes(store));
//! app = app.merge(api::router(&config.api.key, api));
//! ```
//!
//! Each route added must also be described in [`openapi::document`]; a test checks it.

mod auth;
mod body;
mod emit;
mod error;
mod history;
pub(crate) mod openapi;
mod query;
mod rooms;
mod select;
mod sockets;
mod stats;

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{any, get, post, MethodRouter};
use axum::{Json, Router};
use ferrio_socketio::{Namespace, SocketIo};

pub(crate) use error::ApiError;

use crate::config::model::Config;
use crate::gateway::claims::glob_match;

/// Where the API's routes live.
pub(crate) const PREFIX: &str = "/api/v1";
/// Where the OpenAPI document is served, without a key.
pub(crate) const OPENAPI_PATH: &str = "/api/openapi.json";

/// What the built-in routes need.
#[derive(Debug)]
pub(crate) struct ApiState {
    /// The server the API acts on.
    pub(crate) io: SocketIo,
    /// `server.namespaces`: the namespaces served, names or globs (`/` always).
    served: Vec<String>,
    /// `api.max_body`: the longest request body, in bytes.
    pub(crate) max_body: usize,
    /// Room history, when `history.enabled` is on (`api/history.rs`).
    pub(crate) history: Option<Arc<crate::history::HistoryService>>,
    /// `server.trusted_proxies`, to tell a socket's client address behind them.
    pub(crate) proxies: Option<ferrio_engineio::TrustedProxies>,
    /// Whether other nodes share this one's rooms (`cluster.adapter` is not `local`): an emit
    /// or a socket operation then goes through the adapter even for a namespace no client
    /// reached here.
    clustered: bool,
}

impl ApiState {
    /// The state of the API of `io`, configured by `config`.
    pub(crate) fn new(io: SocketIo, config: &Config) -> Arc<Self> {
        Arc::new(Self {
            io,
            served: config.server.namespaces.clone(),
            max_body: usize::try_from(config.api.max_body).unwrap_or(usize::MAX),
            // The service `ferrio serve` opened already (one per file): this is the same one.
            history: crate::history::HistoryService::shared(config)
                .ok()
                .flatten(),
            proxies: crate::gateway::trusted_proxies(&config.server.trusted_proxies),
            clustered: config.cluster.adapter != crate::config::model::AdapterKind::Local,
        })
    }

    /// Namespace `name` (`chat` is `/chat`): its normalized name, and the namespace if a client
    /// ever connected to it. A namespace the server does not serve is an error, so that a typo
    /// is not a silent emit to nobody.
    pub(crate) fn namespace(
        &self,
        name: &str,
    ) -> Result<(String, Option<Arc<Namespace>>), ApiError> {
        let name = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{name}")
        };
        let served = name == "/"
            || self.served.iter().any(|pattern| {
                let pattern = if pattern.starts_with('/') {
                    pattern.clone()
                } else {
                    format!("/{pattern}")
                };
                glob_match(&pattern, &name)
            });
        if !served {
            return Err(ApiError::UnknownNamespace(name));
        }
        // Never `io.of(name)`: creating a namespace here would shadow the dynamic namespace
        // that serves it, and its clients would lose their handlers.
        let namespace = self.io.namespace(&name);
        Ok((name, namespace))
    }

    /// Namespace `name` to act on (emit, join, leave, disconnect): as [`ApiState::namespace`],
    /// but in a cluster a served namespace no client reached on this node is created here (as
    /// a client's CONNECT would create it), so that the action still reaches the clients of
    /// the other nodes through the adapter.
    pub(crate) fn namespace_to_act_on(
        &self,
        name: &str,
    ) -> Result<(String, Option<Arc<Namespace>>), ApiError> {
        let (name, namespace) = self.namespace(name)?;
        if namespace.is_some() || !self.clustered {
            return Ok((name, namespace));
        }
        let namespace = self.io.resolve_namespace(&name);
        Ok((name, namespace))
    }
}

/// A set of API routes, with the method and path of each kept for the OpenAPI check.
#[derive(Debug, Default)]
pub(crate) struct ApiRoutes {
    router: Router,
    routes: Vec<(Method, String)>,
}

impl ApiRoutes {
    /// No routes yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `method` `path` (under `/api/v1`, e.g. `/rooms/{room}/history`), handled by
    /// `handler` (its state already given with `.with_state`).
    pub(crate) fn route(mut self, method: Method, path: &str, handler: MethodRouter) -> Self {
        let full = format!("{PREFIX}{path}");
        self.router = self.router.route(&full, handler);
        self.routes.push((method, full));
        self
    }

    /// Adds every route of `other`.
    // The extension point for other modules' routes (room history); none in this build yet.
    #[allow(dead_code)]
    pub(crate) fn merge(mut self, other: ApiRoutes) -> Self {
        self.router = self.router.merge(other.router);
        self.routes.extend(other.routes);
        self
    }

    /// Every route: method and full path.
    // Read by the test that holds the OpenAPI document to the router.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn list(&self) -> &[(Method, String)] {
        &self.routes
    }
}

/// The built-in routes.
pub(crate) fn routes(state: Arc<ApiState>) -> ApiRoutes {
    ApiRoutes::new()
        .route(
            Method::POST,
            "/emit",
            post(emit::emit).with_state(state.clone()),
        )
        .route(
            Method::POST,
            "/sockets/join",
            post(sockets::join).with_state(state.clone()),
        )
        .route(
            Method::POST,
            "/sockets/leave",
            post(sockets::leave).with_state(state.clone()),
        )
        .route(
            Method::POST,
            "/sockets/disconnect",
            post(sockets::disconnect).with_state(state.clone()),
        )
        .route(
            Method::GET,
            "/sockets",
            get(sockets::list).with_state(state.clone()),
        )
        .route(
            Method::GET,
            "/rooms",
            get(rooms::list).with_state(state.clone()),
        )
        .route(
            Method::GET,
            "/rooms/{room}/history",
            get(history::read).with_state(state.clone()),
        )
        .route(Method::GET, "/stats", get(stats::stats).with_state(state))
}

/// The whole API: `routes` behind the key check of `key` (`api.key`; empty turns the API off),
/// a JSON 404 for unknown paths under `/api/v1`, and the OpenAPI document.
pub(crate) fn router(key: &str, routes: ApiRoutes) -> Router {
    let protected = routes
        .router
        .route(PREFIX, any(not_found))
        .route(&format!("{PREFIX}/{{*rest}}"), any(not_found))
        .layer(axum::middleware::from_fn_with_state(
            auth::ApiKey::new(key),
            auth::require_key,
        ));
    Router::new()
        .route(OPENAPI_PATH, get(|| async { Json(openapi::document()) }))
        .merge(protected)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no API route {}; GET {OPENAPI_PATH} lists them",
        uri.path()
    ))
}
