//! The tower `Service` that answers Engine.IO requests.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Body;

use crate::body::ResponseBody;
use crate::errors::{error_response, ErrorCode};
use crate::query::EngineQuery;
use crate::refusal::Refusal;
use crate::socket::TransportKind;
use crate::{polling, websocket, Engine, EngineHandler};

/// Answers Engine.IO requests (polling and WebSocket) for one [`Engine`].
///
/// Mount it at the engine's path, e.g. `Router::new().route_service("/socket.io/", service)`
/// in axum. Requests for other paths get 404. WebSocket upgrades need an HTTP server that hands
/// over upgraded connections (hyper's `with_upgrades()`, which axum and [`crate::serve`] use).
pub struct EngineService<H: EngineHandler> {
    engine: Arc<Engine<H>>,
}

impl<H: EngineHandler> Clone for EngineService<H> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
        }
    }
}

impl<H: EngineHandler> std::fmt::Debug for EngineService<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineService")
            .field("engine", &self.engine)
            .finish()
    }
}

impl<H: EngineHandler> EngineService<H> {
    /// A service answering for `engine`.
    pub fn new(engine: Arc<Engine<H>>) -> Self {
        Self { engine }
    }

    /// The engine behind this service.
    pub fn engine(&self) -> &Arc<Engine<H>> {
        &self.engine
    }
}

impl<H, B> tower_service::Service<Request<B>> for EngineService<H>
where
    H: EngineHandler,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let engine = self.engine.clone();
        Box::pin(async move { Ok(handle(engine, request).await) })
    }
}

/// Answers one request, adding the CORS headers when configured.
async fn handle<H, B>(engine: Arc<Engine<H>>, request: Request<B>) -> Response<ResponseBody>
where
    H: EngineHandler,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let request_headers = request.headers().clone();
    let mut response = if !engine.config().matches_path(request.uri().path()) {
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    } else if let Err(origin) = engine.config().check_origin(&request_headers) {
        // Checked on every request, not only handshakes: a page from another site must not
        // drive a session whose id it learned, and a WebSocket is never stopped by CORS.
        let (parts, _) = request.into_parts();
        Refusal::Origin { origin }.answer(engine.client_key(&parts), None)
    } else if request.method() == Method::OPTIONS {
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(cors) = &engine.config().cors {
            cors.apply_preflight(&request_headers, response.headers_mut());
        }
        return response;
    } else {
        route(&engine, request).await
    };
    if let Some(cors) = &engine.config().cors {
        cors.apply(&request_headers, response.headers_mut());
    }
    response
}

async fn route<H, B>(engine: &Arc<Engine<H>>, mut request: Request<B>) -> Response<ResponseBody>
where
    H: EngineHandler,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let config = engine.config();
    let query = match EngineQuery::parse(request.uri().query().unwrap_or("")) {
        Ok(query) => query,
        Err(code) => return error_response(code, None),
    };
    let enabled = match query.transport {
        TransportKind::Polling => config.transports.polling,
        TransportKind::WebSocket => config.transports.websocket,
    };
    if !enabled {
        return error_response(ErrorCode::UnknownTransport, None);
    }
    if query.protocol == ferrio_engineio_proto::ProtocolVersion::V3 && !config.allow_eio3 {
        return error_response(ErrorCode::UnsupportedProtocolVersion, None);
    }

    let Some(sid) = query.sid else {
        return open(engine, request, &query);
    };
    let Some(socket) = engine.session(sid) else {
        return error_response(ErrorCode::UnknownSid, None);
    };
    if socket.expire_if_overdue() {
        return error_response(ErrorCode::UnknownSid, None);
    }
    if socket.protocol() != query.protocol {
        return error_response(ErrorCode::BadRequest, None);
    }
    match query.transport {
        TransportKind::Polling => match *request.method() {
            Method::GET => polling::poll(socket, &engine.traffic().polling_out).await,
            Method::POST => polling::post(engine, socket, request).await,
            _ => error_response(ErrorCode::BadRequest, None),
        },
        TransportKind::WebSocket => {
            let upgradable = config.allow_upgrades
                && socket.is_open()
                && socket.transport() == TransportKind::Polling
                && !socket.upgrading.swap(true, Ordering::AcqRel);
            match websocket::accept(&mut request) {
                Ok((response, on_upgrade)) if upgradable => {
                    websocket::spawn_upgrade(engine.clone(), socket, on_upgrade);
                    response
                }
                Ok((response, on_upgrade)) => {
                    // A second WebSocket for the session: the reference server completes the
                    // WebSocket handshake and closes it at once, and clients expect that.
                    websocket::spawn_refusal(on_upgrade);
                    response
                }
                Err(code) => {
                    socket.upgrading.store(false, Ordering::Release);
                    error_response(code, None)
                }
            }
        }
    }
}

/// Opens a session: a polling handshake or a direct WebSocket.
fn open<H, B>(
    engine: &Arc<Engine<H>>,
    request: Request<B>,
    query: &EngineQuery,
) -> Response<ResponseBody>
where
    H: EngineHandler,
{
    if query.transport == TransportKind::Polling && request.method() != Method::GET {
        return error_response(ErrorCode::BadHandshakeMethod, None);
    }
    let (parts, body) = request.into_parts();
    let ip = engine.client_key(&parts);
    // The rate is checked first: it is the cheapest check, and a flood should cost no more
    // than this (an `allow_request` check may verify a token).
    if let Err(refusal) = engine.check_handshake_rate(ip) {
        return refusal.answer(ip, None);
    }
    if let Some(allow) = &engine.config().allow_request {
        if let Err(refused) = allow(&parts) {
            return Refusal::NotAllowed {
                message: refused.message,
            }
            .answer(ip, None);
        }
    }
    match query.transport {
        TransportKind::Polling => {
            polling::handshake(engine, &parts, ip, query.protocol, !query.base64)
        }
        TransportKind::WebSocket => {
            let mut request = Request::from_parts(parts, body);
            let (mut response, on_upgrade) = match websocket::accept(&mut request) {
                Ok(accepted) => accepted,
                Err(code) => return error_response(code, None),
            };
            let (parts, _) = request.into_parts();
            // Refused here, the 101 is never sent: the client gets the error answer instead,
            // and the connection stays plain HTTP.
            let socket = match engine.open_session(
                &parts,
                ip,
                query.protocol,
                TransportKind::WebSocket,
                true,
            ) {
                Ok(socket) => socket,
                Err(refusal) => return refusal.answer(ip, None),
            };
            engine.set_cookie(response.headers_mut(), socket.id());
            websocket::spawn_direct(engine.clone(), socket, on_upgrade);
            response
        }
    }
}
