//! Webhooks to the backend: client events forwarded as JSON POSTs whose answer becomes the
//! client's ack, a connect call that may refuse a connection, and a disconnect notice.
//! `docs/webhooks.md` is the guide; the bodies are built in [`body`], signed in [`signature`]
//! and sent with the client in [`client`].
//!
//! No call ever runs on a connection's reading task: event calls are spawned, so a slow
//! backend delays that event's ack and nothing else.

pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod pending;
pub(crate) mod signature;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrio_socketio::{AckSender, ConnectError, Event, Socket};
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::model::Webhooks as WebhooksConfig;
use crate::gateway::claims::Identity;
use crate::gateway::events::identity;
use client::{HttpError, Url};

/// The rooms a connect webhook's answer named, kept in the socket's data until it is in its
/// namespace.
#[derive(Debug)]
struct ConnectRooms(Vec<String>);

/// The configured webhooks, ready to call.
#[derive(Debug)]
pub(crate) struct Webhooks {
    events_url: Option<Url>,
    /// Forwarded event names; empty forwards all.
    events: Vec<String>,
    connect_url: Option<Url>,
    disconnect_url: Option<Url>,
    timeout: Duration,
    /// The signing key; `None` sends no signature.
    secret: Option<Vec<u8>>,
    /// Places for calls under way, `webhooks.max_in_flight`; `None`: no limit.
    in_flight: Option<(Arc<Semaphore>, usize)>,
    /// Connections kept open to the backends.
    pool: client::Pool,
    /// `server.trusted_proxies`, to tell the client's address behind them.
    proxies: Option<ferrio_engineio::TrustedProxies>,
    /// Event and disconnect calls under way, for the shutdown to wait for.
    pending: Arc<pending::Pending>,
}

/// The counter of webhook calls, by hook (`event`, `connect`, `disconnect`) and outcome (`ok`,
/// `refused`, `timeout`, `unreachable`, `error`, `overloaded`).
pub(crate) const CALLS_TOTAL: &str = "ferrio_webhook_calls_total";
/// The histogram of webhook call durations in seconds, by hook.
pub(crate) const CALL_SECONDS: &str = "ferrio_webhook_call_seconds";

/// Counts one call.
fn count(hook: &'static str, outcome: &'static str) {
    metrics::counter!(CALLS_TOTAL, "hook" => hook, "outcome" => outcome).increment(1);
}

/// The outcome label of a call that got no usable answer.
fn outcome_of(error: &HttpError) -> &'static str {
    match error {
        HttpError::Timeout(_) => "timeout",
        HttpError::Connect(_) => "unreachable",
        HttpError::Tls(_) | HttpError::Exchange(_) => "error",
    }
}

/// Parses one optional URL setting; the error names the setting.
fn url(setting: &str, value: &str) -> Result<Option<Url>, String> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    Url::parse(value.trim())
        .map(Some)
        .map_err(|e| format!("{setting}: {e}"))
}

/// What a failed call tells the client and the log: `webhook timed out after 5s`.
fn describe(error: &HttpError) -> String {
    match error {
        HttpError::Exchange(detail) => format!("webhook failed: {detail}"),
        other => format!("webhook {other}"),
    }
}

impl Webhooks {
    /// The webhooks the configuration sets; `None` when no URL is set. The error names the
    /// setting that is wrong.
    pub(crate) fn from_config(config: &WebhooksConfig) -> Result<Option<Self>, String> {
        let hooks = Self {
            events_url: url("webhooks.events_url", &config.events_url)?,
            events: config.events.clone(),
            connect_url: url("webhooks.connect_url", &config.connect_url)?,
            disconnect_url: url("webhooks.disconnect_url", &config.disconnect_url)?,
            timeout: config.timeout,
            secret: (!config.secret.is_empty()).then(|| config.secret.as_bytes().to_vec()),
            in_flight: match usize::try_from(config.max_in_flight) {
                Ok(0) => None,
                Ok(max) => Some((
                    Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
                    max,
                )),
                Err(_) => None,
            },
            proxies: None,
            pending: Arc::default(),
            pool: match config.ca_file.trim() {
                "" => client::Pool::default(),
                path => client::Pool::with_roots(client::read_roots("webhooks.ca_file", path)?),
            },
        };
        if config.timeout.is_zero() {
            return Err("webhooks.timeout is 0: no call could ever complete".to_owned());
        }
        let any = hooks.events_url.is_some()
            || hooks.connect_url.is_some()
            || hooks.disconnect_url.is_some();
        Ok(any.then_some(hooks))
    }

    /// Reports the client's address behind these proxies (`server.trusted_proxies`) as the
    /// socket's `ip`. A list that cannot be read is ignored here: `config check` refuses it.
    pub(crate) fn with_trusted_proxies(mut self, proxies: &[String]) -> Self {
        self.proxies = crate::gateway::trusted_proxies(proxies);
        self
    }

    /// A line for the start-up log.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(url) = &self.events_url {
            let which = if self.events.is_empty() {
                "every event".to_owned()
            } else {
                self.events.join(", ")
            };
            parts.push(format!("events ({which}) to {url}"));
        }
        if let Some(url) = &self.connect_url {
            parts.push(format!("connections to {url}"));
        }
        if let Some(url) = &self.disconnect_url {
            parts.push(format!("disconnections to {url}"));
        }
        format!(
            "webhooks: {}; timeout {}{}",
            parts.join(", "),
            crate::config::duration::format(self.timeout),
            if self.secret.is_some() {
                ", signed"
            } else {
                ""
            }
        )
    }

    /// Posts `body` as JSON, signed when a secret is set; counts the call and times it.
    async fn post(
        &self,
        hook: &'static str,
        url: &Url,
        body: &Value,
    ) -> Result<client::Response, HttpError> {
        let bytes = Bytes::from(body.to_string());
        let mut headers = vec![("content-type", "application/json".to_owned())];
        if let Some(secret) = &self.secret {
            headers.push((signature::HEADER, signature::sign(secret, &bytes)));
        }
        let started = Instant::now();
        let result = self
            .pool
            .send(url, ::http::Method::POST, &headers, bytes, self.timeout)
            .await;
        metrics::histogram!(CALL_SECONDS, "hook" => hook).record(started.elapsed().as_secs_f64());
        count(
            hook,
            match &result {
                Ok(answer) if answer.status.is_success() => "ok",
                Ok(_) => "refused",
                Err(error) => outcome_of(error),
            },
        );
        result
    }

    /// A place for a call now, or `None` when `webhooks.max_in_flight` are under way (no limit:
    /// always a place, `Some(None)`).
    fn try_place(&self) -> Option<Option<OwnedSemaphorePermit>> {
        match &self.in_flight {
            None => Some(None),
            Some((places, _)) => places.clone().try_acquire_owned().ok().map(Some),
        }
    }

    /// A place for a call, waiting at most `webhooks.timeout` for one.
    async fn place(&self) -> Result<Option<OwnedSemaphorePermit>, String> {
        let Some((places, max)) = &self.in_flight else {
            return Ok(None);
        };
        match tokio::time::timeout(self.timeout, places.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(format!(
                "too many webhook calls in flight (at most {max}) for {}",
                crate::config::duration::format(self.timeout)
            )),
        }
    }

    /// Resolves once no event or disconnect call is under way; a shutdown waits for it.
    pub(crate) async fn settled(&self) {
        self.pending.idle().await;
    }

    /// How many event and disconnect calls are under way.
    pub(crate) fn calls_under_way(&self) -> usize {
        self.pending.count()
    }

    /// Hooks a new socket's events and disconnection, and joins the rooms the connect webhook
    /// named. Runs in the connect handler.
    pub(crate) fn register(self: &Arc<Self>, socket: &Arc<Socket>) {
        if let Some(rooms) = socket.data::<Arc<ConnectRooms>>() {
            if let Err(error) = socket.try_join(rooms.0.clone()) {
                tracing::warn!(
                    id = %socket.id(),
                    "cannot join the rooms the connect webhook named: {error}"
                );
            }
        }
        if self.events_url.is_some() {
            let hooks = self.clone();
            socket.on_any(move |socket, event| hooks.forward_event(socket, event));
        }
        if self.disconnect_url.is_some() {
            let hooks = self.clone();
            socket.on_disconnect(move |socket, reason| {
                let hooks = hooks.clone();
                let body = body::disconnect_body(
                    body::socket_json(socket, &identity(socket), hooks.proxies.as_ref()),
                    socket.nsp(),
                    reason.as_str(),
                );
                let id = socket.id().to_string();
                let call = hooks.pending.start();
                tokio::spawn(async move {
                    let _call = call;
                    let Some(url) = &hooks.disconnect_url else {
                        return;
                    };
                    let _place = match hooks.place().await {
                        Ok(place) => place,
                        Err(error) => {
                            count("disconnect", "overloaded");
                            tracing::warn!(socket = %id, "disconnect webhook not called: {error}");
                            return;
                        }
                    };
                    match hooks.post("disconnect", url, &body).await {
                        Ok(answer) if answer.status.is_success() => {}
                        Ok(answer) => tracing::warn!(
                            socket = %id,
                            "disconnect webhook answered {}: {}",
                            answer.status,
                            client::snippet(&answer.body)
                        ),
                        Err(error) => {
                            tracing::warn!(socket = %id, "disconnect {}", describe(&error))
                        }
                    }
                });
            });
        }
    }

    /// Forwards a client event, off the reading task; the answer acknowledges it.
    fn forward_event(self: &Arc<Self>, socket: &Arc<Socket>, event: Event) {
        let Event { name, payload, ack } = event;
        if !self.events.is_empty() && !self.events.contains(&name) {
            tracing::debug!(id = %socket.id(), event = %name, "event not forwarded (webhooks.events)");
            if let Some(ack) = ack {
                let _ = ack.send_json(json!({ "error": format!("unknown event {name:?}") }));
            }
            return;
        }
        let body = body::event_body(
            body::socket_json(socket, &identity(socket), self.proxies.as_ref()),
            socket.nsp(),
            &name,
            &payload,
        );
        let Some(place) = self.try_place() else {
            count("event", "overloaded");
            let max = self.in_flight.as_ref().map_or(0, |(_, max)| *max);
            let error = format!("too many webhook calls in flight (at most {max})");
            // Counted in /metrics; at debug level, so that a flood does not flood the log too.
            tracing::debug!(id = %socket.id(), event = %name, "event not forwarded: {error}");
            if let Some(ack) = ack {
                let _ = ack.send_json(json!({ "error": error }));
            }
            return;
        };
        let hooks = self.clone();
        let id = socket.id().to_string();
        let call = self.pending.start();
        tokio::spawn(async move {
            let (_place, _call) = (place, call);
            let Some(url) = &hooks.events_url else {
                return;
            };
            let result = match hooks.post("event", url, &body).await {
                Ok(answer) if answer.status.is_success() => body::ack_args(&answer.body),
                Ok(answer) => Err(format!(
                    "webhook answered {}{}",
                    answer.status,
                    body::refusal_message(&answer.body)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )),
                Err(error) => Err(describe(&error)),
            };
            if let Err(error) = &result {
                tracing::warn!(socket = %id, event = %name, "event {error}");
            }
            if let Some(ack) = ack {
                reply(ack, result);
            }
        });
    }

    /// Asks the connect webhook whether `socket` may connect. Not set: yes. A non-2xx answer
    /// refuses with the backend's message; no answer refuses too (fail closed).
    pub(crate) async fn check_connect(
        &self,
        socket: &Socket,
        identity: &Identity,
    ) -> Result<(), ConnectError> {
        let Some(url) = &self.connect_url else {
            return Ok(());
        };
        let body = body::connect_body(
            body::socket_json(socket, identity, self.proxies.as_ref()),
            socket.nsp(),
            socket.auth(),
        );
        let _place = match self.place().await {
            Ok(place) => place,
            Err(error) => {
                count("connect", "overloaded");
                let message = format!("connect webhook not called: {error}");
                tracing::warn!(id = %socket.id(), nsp = socket.nsp(), "{message}: connection refused");
                return Err(ConnectError::with_data(
                    message,
                    json!({ "reason": "webhook_failed" }),
                ));
            }
        };
        match self.post("connect", url, &body).await {
            Ok(answer) if answer.status.is_success() => {
                let rooms = body::connect_rooms(&answer.body);
                if !rooms.is_empty() {
                    // Joined by the connect handler, once the socket is in its namespace.
                    socket.insert_data(Arc::new(ConnectRooms(rooms)));
                }
                Ok(())
            }
            Ok(answer) => {
                let message = body::refusal_message(&answer.body).unwrap_or_else(|| {
                    format!("refused by the connect webhook ({})", answer.status)
                });
                Err(ConnectError::with_data(
                    message,
                    json!({ "reason": "webhook_refused", "status": answer.status.as_u16() }),
                ))
            }
            Err(error) => {
                let message = format!("connect {}", describe(&error));
                tracing::warn!(id = %socket.id(), nsp = socket.nsp(), "{message}: connection refused");
                Err(ConnectError::with_data(
                    message,
                    json!({ "reason": "webhook_failed" }),
                ))
            }
        }
    }
}

/// Acknowledges with the backend's arguments, or with `{"error": ...}`.
fn reply(ack: AckSender, result: Result<Vec<Value>, String>) {
    let _ = match result {
        Ok(args) => ack.send(ferrio_socketio::Payload::from_args(args)),
        Err(error) => ack.send_json(json!({ "error": error })),
    };
}
