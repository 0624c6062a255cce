//! The gateway's Socket.IO side: JWT authentication at connection ([`auth`]), the identity it
//! yields ([`claims`]), the room policy ([`policy`]) and the built-in events that apply it
//! ([`events`]). Composed from the libraries' public API: a connect middleware, a connect
//! handler and event handlers. `docs/auth.md` is the guide.

pub(crate) mod address;
pub(crate) mod auth;
pub(crate) mod claims;
pub(crate) mod events;
pub(crate) mod jwks;
pub(crate) mod policy;

use std::sync::Arc;

use ferrio_socketio::{ConnectError, Socket, SocketIo};

use crate::config::model::Config;
use auth::{find_token, until_expiry, Reason, Refusal, Verifier};
use claims::{any_glob, user_room, Identity};
use policy::RoomPolicy;

/// Everything the handlers need, built once from the configuration.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// `None` when no key is configured: every client is anonymous.
    verifier: Option<Verifier>,
    /// Whether clients without a token get in.
    allow_anonymous: bool,
    /// The cookie a token is read from.
    cookie_name: String,
    /// Room permissions.
    pub(crate) policy: RoomPolicy,
    /// One log line per connection and disconnection.
    log_connections: bool,
    /// Durable room history, when `history.enabled` is on.
    pub(crate) history: Option<Arc<crate::history::HistoryService>>,
    /// The backend's webhooks, when any is configured.
    webhooks: Option<Arc<crate::webhook::Webhooks>>,
    /// `server.trusted_proxies`: whose forwarding headers tell the client's address.
    proxies: Option<ferrio_engineio::TrustedProxies>,
}

impl Gateway {
    /// Builds the gateway's state; the error names the setting that is wrong.
    pub(crate) fn from_config(config: &Config) -> Result<Self, String> {
        let verifier = Verifier::from_config(&config.auth)?;
        let allow_anonymous =
            verifier.is_none() || (config.auth.allow_anonymous && !config.auth.require_auth);
        Ok(Self {
            verifier,
            allow_anonymous,
            cookie_name: config.auth.cookie_name.clone(),
            policy: RoomPolicy::from_config(&config.rooms)?,
            log_connections: config.log.connections,
            history: crate::history::HistoryService::shared(config)?,
            webhooks: crate::webhook::Webhooks::from_config(&config.webhooks)?
                .map(|hooks| Arc::new(hooks.with_trusted_proxies(&config.server.trusted_proxies))),
            proxies: trusted_proxies(&config.server.trusted_proxies),
        })
    }

    /// The backend's webhooks, when any is configured.
    pub(crate) fn webhooks(&self) -> Option<&Arc<crate::webhook::Webhooks>> {
        self.webhooks.as_ref()
    }

    /// A line for the start-up log saying how clients are authenticated.
    pub(crate) fn describe(&self) -> String {
        match &self.verifier {
            None => "no JWT key configured: every client is anonymous".to_owned(),
            Some(verifier) => format!(
                "JWT auth with {}; anonymous clients {}",
                verifier.describe_keys(),
                if self.allow_anonymous {
                    "allowed"
                } else {
                    "refused"
                }
            ),
        }
    }

    /// Decides who a connecting socket is, or why it is refused.
    async fn authenticate(&self, socket: &Socket) -> Result<Identity, Refusal> {
        let Some(verifier) = &self.verifier else {
            return Ok(Identity::Anonymous);
        };
        let Some((token, source)) =
            find_token(socket.auth(), socket.handshake(), &self.cookie_name)
        else {
            if self.allow_anonymous {
                return Ok(Identity::Anonymous);
            }
            let cookie = if self.cookie_name.is_empty() {
                String::new()
            } else {
                format!(" or the {} cookie", self.cookie_name)
            };
            return Err(Refusal::new(
                Reason::MissingToken,
                format!(
                    "authentication required: no token (send it as auth.token, an \
                     Authorization: Bearer header{cookie})"
                ),
            ));
        };
        let claims = verifier.verify(&token).await?;
        if let Some(allowed) = &claims.namespaces {
            if !any_glob(allowed, socket.nsp()) {
                return Err(Refusal::new(
                    Reason::NamespaceNotAllowed,
                    format!("namespace {} not allowed by the token", socket.nsp()),
                ));
            }
        }
        tracing::debug!(id = %socket.id(), sub = %claims.sub, ?source, "authenticated");
        Ok(Identity::User(claims))
    }

    /// The connect middleware: refuses with CONNECT_ERROR, or stores the [`Identity`]. The
    /// connect webhook, when set, has the last word.
    async fn middleware(&self, socket: &Socket) -> Result<(), ConnectError> {
        match self.authenticate(socket).await {
            Ok(identity) => {
                if let Some(webhooks) = &self.webhooks {
                    if let Err(error) = webhooks.check_connect(socket, &identity).await {
                        tracing::info!(
                                    reason = "webhook",
                                    nsp = socket.nsp(),
                                    remote = %address::peer(socket),
                        ip = %address::client_ip_text(socket, self.proxies.as_ref()),
                                    "connection refused: {}",
                                    error.message
                                );
                        return Err(error);
                    }
                }
                // Shared: the event handlers read it on every join and publish.
                socket.insert_data(Arc::new(identity));
                Ok(())
            }
            Err(refusal) => {
                tracing::info!(
                    reason = refusal.reason.as_str(),
                    nsp = socket.nsp(),
                    remote = %address::peer(socket),
                ip = %address::client_ip_text(socket, self.proxies.as_ref()),
                    "connection refused: {}",
                    refusal.message
                );
                Err(refusal.into_connect_error())
            }
        }
    }

    /// The connect handler: the user's room, the expiry timer, the built-in events.
    fn on_connection(self: &Arc<Self>, socket: &Arc<Socket>) {
        let identity = events::identity(socket);
        if self.log_connections {
            tracing::info!(
                id = %socket.id(),
                nsp = socket.nsp(),
                user = identity.sub().unwrap_or("(anonymous)"),
                transport = ?socket.transport(),
                remote = %address::peer(socket),
                ip = %address::client_ip_text(socket, self.proxies.as_ref()),
                "connected"
            );
            socket.on_disconnect(|socket, reason| {
                // The reason as clients and the reference server word it.
                tracing::info!(id = %socket.id(), reason = reason.as_str(), "disconnected");
            });
        } else {
            tracing::debug!(id = %socket.id(), "connected");
        }
        if let Identity::User(claims) = identity.as_ref() {
            socket.join(user_room(&claims.sub));
            if let (Some(exp), Some(verifier)) = (claims.exp, &self.verifier) {
                schedule_expiry(socket, exp, verifier.leeway());
            }
        }
        events::register(socket, self);
        if let Some(history) = &self.history {
            crate::history::events::register(socket, history, &self.policy);
        }
        if let Some(webhooks) = &self.webhooks {
            webhooks.register(socket);
        }
        // `ferrio doctor` measures an event round trip with this event: echo it back.
        socket.on(crate::doctor::DOCTOR_EVENT, |_socket, event| {
            if let Some(ack) = event.ack {
                let _ = ack.send(event.payload);
            }
        });
    }
}

/// Disconnects the socket when its token expires (`exp` plus the leeway).
fn schedule_expiry(socket: &Arc<Socket>, exp: u64, leeway: std::time::Duration) {
    let Some(wait) = until_expiry(exp, leeway) else {
        return; // So far in the future that it never comes.
    };
    let weak = Arc::downgrade(socket);
    let task = tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        if let Some(socket) = weak.upgrade() {
            if socket.connected() {
                tracing::info!(id = %socket.id(), nsp = socket.nsp(), "token expired: disconnecting");
                socket.disconnect();
            }
        }
    });
    let abort = task.abort_handle();
    socket.on_disconnect(move |_, _| abort.abort());
}

/// Whether namespace `name` is served: one of `server.namespaces` (names or globs).
/// `server.trusted_proxies`, parsed; `None` when empty (or invalid: `config check` refuses
/// that before the server starts).
pub(crate) fn trusted_proxies(list: &[String]) -> Option<ferrio_engineio::TrustedProxies> {
    if list.is_empty() {
        return None;
    }
    ferrio_engineio::TrustedProxies::parse(list).ok()
}

fn serves(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|pattern| {
        let pattern = if pattern.starts_with('/') {
            pattern.clone()
        } else {
            format!("/{pattern}")
        };
        claims::glob_match(&pattern, name)
    })
}

/// Installs authentication, the room policy and the built-in events on `/` and on every
/// namespace `server.namespaces` names.
pub(crate) fn install(io: &SocketIo, config: &Config) -> Result<Arc<Gateway>, String> {
    let gateway = Arc::new(Gateway::from_config(config)?);
    if let Some(webhooks) = &gateway.webhooks {
        tracing::info!("{}", webhooks.describe());
    }
    if gateway
        .verifier
        .as_ref()
        .is_some_and(|v| v.remote().is_some())
    {
        let gw = gateway.clone();
        tokio::spawn(async move {
            if let Some(remote) = gw.verifier.as_ref().and_then(Verifier::remote) {
                remote.fetch_at_start().await;
            }
        });
    }
    let root = io.of("/");
    let gw = gateway.clone();
    root.use_middleware(move |socket: Arc<Socket>| {
        let gw = gw.clone();
        async move { gw.middleware(&socket).await }
    });
    let gw = gateway.clone();
    root.on_connection(move |socket| gw.on_connection(socket));

    let others: Vec<String> = config
        .server
        .namespaces
        .iter()
        .filter(|n| !n.trim_matches('/').is_empty())
        .cloned()
        .collect();
    if !others.is_empty() {
        let dynamic = io.dynamic_namespace(move |name| serves(&others, name));
        let gw = gateway.clone();
        dynamic.use_middleware(move |socket: Arc<Socket>| {
            let gw = gw.clone();
            async move { gw.middleware(&socket).await }
        });
        let gw = gateway.clone();
        dynamic.on_connection(move |socket| gw.on_connection(socket));
    }
    Ok(gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_namespaces() {
        let patterns = vec!["/".to_owned(), "chat".to_owned(), "/team-*".to_owned()];
        assert!(serves(&patterns, "/chat"));
        assert!(serves(&patterns, "/team-red"));
        assert!(!serves(&patterns, "/admin"));
    }
}
