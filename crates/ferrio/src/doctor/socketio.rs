//! `namespace`: connecting to `--namespace` with `{token}` auth through `ferrio-client`, as an
//! application would; a CONNECT_ERROR's message and data are shown. `event`: a harmless event
//! emitted with an acknowledgement, and the time the acknowledgement took.

use std::time::{Duration, Instant};

use ferrio_client::{
    AckError, ClientConfig, ConnectError, ConnectionState, Manager, Payload, ReconnectionConfig,
    Socket, TlsConfig, TransportKind,
};

use super::human;
use super::report::Outcome;
use super::target::Target;

/// The event the `event` step emits. Servers that want the latency measured acknowledge it.
pub(crate) const DOCTOR_EVENT: &str = "ferrio:doctor";
/// The longest wait for the event's acknowledgement.
const ACK_WAIT: Duration = Duration::from_secs(3);
/// The longest wait for an upgrade under way to finish before the event is timed.
const UPGRADE_WAIT: Duration = Duration::from_secs(1);

/// The transports the client may use, given what worked: `None` when nothing did.
pub(crate) fn transports(
    polling: bool,
    upgrade: bool,
    websocket: bool,
) -> Option<(Vec<TransportKind>, bool)> {
    match (polling, websocket) {
        (true, true) => Some((
            vec![TransportKind::Polling, TransportKind::WebSocket],
            upgrade,
        )),
        (true, false) => Some((vec![TransportKind::Polling], false)),
        (false, true) => Some((vec![TransportKind::WebSocket], false)),
        (false, false) => None,
    }
}

/// Connects a socket to `nsp`; hands it to the `event` step when connected.
pub(crate) async fn connect(
    target: &Target,
    nsp: &str,
    token: Option<&str>,
    (transports, upgrade): (Vec<TransportKind>, bool),
    timeout: Duration,
) -> (Outcome, Option<Socket>) {
    let mut tls = TlsConfig::default();
    if let Some(client) = &target.tls_client {
        tls.dangerously_accept_any_certificate = client.insecure;
        if let Some(ca_file) = &client.ca_file {
            if let Err(error) = tls.add_root_certificates_pem_file(ca_file) {
                let fix = "check --ca-file";
                return (
                    Outcome::fail(format!("cannot set up TLS: {error}"), fix),
                    None,
                );
            }
        }
    }
    let config = ClientConfig {
        tls,
        path: target.path.clone(),
        transports,
        upgrade,
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        timeout,
        ..ClientConfig::new(target.client_url())
    };
    let socket = match Manager::new(config).and_then(|m| m.socket(nsp)) {
        Ok(socket) => socket,
        Err(error) => {
            return (
                Outcome::fail(
                    format!("cannot set up the client: {error}"),
                    "check the URL, --path and --namespace",
                ),
                None,
            )
        }
    };
    if let Some(token) = token {
        socket.set_auth(serde_json::json!({ "token": token }).as_object().cloned());
    }
    let auth = if token.is_some() {
        "with auth {token}"
    } else {
        "without auth"
    };
    let started = Instant::now();
    match socket.connect().await {
        Ok(()) => {
            let transport = match &*socket.manager().state().borrow() {
                ConnectionState::Connected { transport } => transport.as_str(),
                _ => "?",
            };
            let outcome = Outcome::pass(format!(
                "connected to {nsp} {auth} in {} over {transport}, socket id {}",
                human(started.elapsed()),
                socket.id().unwrap_or_default()
            ));
            (outcome, Some(socket))
        }
        Err(error) => {
            socket.manager().disconnect();
            (refused(nsp, auth, token.is_some(), &error), None)
        }
    }
}

/// What a failed namespace connection means.
fn refused(nsp: &str, auth: &str, has_token: bool, error: &ConnectError) -> Outcome {
    match error {
        ConnectError::Refused(refused) => {
            let data = refused
                .data
                .as_ref()
                .map_or_else(String::new, |d| format!(", data {d}"));
            let why = format!(
                "the server refused {nsp} {auth}: CONNECT_ERROR {:?}{data}",
                refused.message
            );
            let fix = if refused.message == "Invalid namespace" {
                format!("the server has no namespace {nsp:?}: check --namespace")
            } else if has_token {
                "the server's connect middleware refused this token: check --token (sent as \
                 the auth payload {\"token\": ...}) and the middleware's rules"
                    .to_owned()
            } else {
                "the server's connect middleware refused the connection: if it expects a \
                 token, pass it with --token (sent as the auth payload {\"token\": ...})"
                    .to_owned()
            };
            Outcome::fail(why, fix)
        }
        other => Outcome::fail(
            format!("could not connect to {nsp} {auth}: {other}"),
            "see the transport steps above for the cause",
        ),
    }
}

/// Emits the doctor's event with an acknowledgement and times it.
///
/// When the connection may still upgrade to WebSocket, the upgrade is given a moment to finish
/// first, so that the latency is the WebSocket's and not an upgrade's pause.
pub(crate) async fn event(socket: &Socket, upgrading: bool, timeout: Duration) -> Outcome {
    let mut state = socket.manager().state();
    if upgrading {
        let upgraded = state.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Connected {
                    transport: TransportKind::WebSocket
                }
            )
        });
        let _ = tokio::time::timeout(UPGRADE_WAIT, upgraded).await;
    }
    let transport = match &*state.borrow() {
        ConnectionState::Connected { transport } => transport.as_str(),
        _ => "?",
    };
    let wait = timeout.min(ACK_WAIT);
    let payload = match Payload::json(serde_json::json!({ "doctor": true })) {
        Ok(payload) => payload,
        Err(error) => {
            return Outcome::fail(
                format!("cannot build the event: {error}"),
                "report this as a bug of ferrio doctor",
            )
        }
    };
    let started = Instant::now();
    match socket.emit_with_ack(DOCTOR_EVENT, payload, wait).await {
        Ok(_) => Outcome::pass(format!(
            "{DOCTOR_EVENT:?} acknowledged in {} over {transport}",
            human(started.elapsed())
        )),
        Err(AckError::Timeout(waited)) => Outcome::warn(
            format!(
                "the server did not acknowledge {DOCTOR_EVENT:?} within {}: it has no handler \
                 for it, so the round trip latency was not measured (events themselves get \
                 through: the namespace connected)",
                human(waited)
            ),
            format!(
                "to measure the latency, acknowledge the event on the server: \
                 socket.on(\"{DOCTOR_EVENT}\", (data, ack) => ack(data)) (`ferrio serve` does)"
            ),
        ),
        Err(error) => Outcome::fail(
            format!("the event failed: {error}"),
            "the connection dropped: see the heartbeat step",
        ),
    }
}
