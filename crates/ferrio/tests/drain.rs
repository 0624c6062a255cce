//! The graceful shutdown of `ferrio serve`, end to end: on SIGTERM `/ready` answers 503, new
//! handshakes are refused, connected clients are told to go (and reconnect), and the process
//! exits 0 once they are gone, or at `server.shutdown_timeout` when one stays.

mod backend;
mod process;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrio_client::{
    ClientConfig, ConnectionState, Manager, ReconnectionConfig, Socket, TransportKind,
};
use process::{request, Ferrio};
use serde_json::json;

/// A connected client that records why it was disconnected and every state of its
/// connection, reconnecting quickly.
struct Client {
    manager: Manager,
    _socket: Socket,
    reasons: Arc<Mutex<Vec<String>>>,
    states: Arc<Mutex<Vec<ConnectionState>>>,
}

impl Client {
    async fn connect(server: &Ferrio, transports: Vec<TransportKind>) -> Client {
        let manager = Manager::new(ClientConfig {
            transports,
            reconnection: ReconnectionConfig {
                delay: Duration::from_millis(50),
                delay_max: Duration::from_millis(100),
                ..ReconnectionConfig::default()
            },
            ..ClientConfig::new(server.url())
        })
        .unwrap();
        let socket = manager.socket("/").unwrap();
        let reasons: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = reasons.clone();
        socket
            .on_disconnect(move |_, reason| sink.lock().unwrap().push(reason.as_str().to_owned()));
        socket.connect().await.unwrap();
        let states: Arc<Mutex<Vec<ConnectionState>>> = Arc::default();
        let mut watch = manager.state();
        let sink = states.clone();
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                let state = watch.borrow_and_update().clone();
                sink.lock().unwrap().push(state);
            }
        });
        Client {
            manager,
            _socket: socket,
            reasons,
            states,
        }
    }

    /// Waits (bounded) until `done` holds of what was recorded.
    async fn wait_for(&self, what: &str, done: impl Fn(&[String], &[ConnectionState]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if done(&self.reasons.lock().unwrap(), &self.states.lock().unwrap()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: reasons {:?}, states {:?}",
                self.reasons.lock().unwrap(),
                self.states.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// How many reconnection attempts were scheduled.
fn attempts(states: &[ConnectionState]) -> usize {
    states
        .iter()
        .filter(|s| matches!(s, ConnectionState::ReconnectScheduled { .. }))
        .count()
}

/// A polling handshake whose session then never polls: it stays open until its deadline.
fn stuck_polling_session(port: u16) -> String {
    let answer = request(port, "GET", "/socket.io/?EIO=4&transport=polling", &[], "").unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let open: serde_json::Value =
        serde_json::from_str(&answer.body[answer.body.find('{').unwrap()..]).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnect_and_the_deadline_ends_a_drain_that_a_client_holds_up() {
    let mut server = Ferrio::serve(&[("FERRIO_SERVER_SHUTDOWN_TIMEOUT", "4s")]);
    let port = server.port;
    let client = Client::connect(&server, vec![TransportKind::WebSocket]).await;
    let polled = stuck_polling_session(port);
    let _stuck = stuck_polling_session(port);
    server.terminate();

    // The client is told to go as a closed transport, and tries again: refused while the
    // server drains, so it goes on trying.
    client
        .wait_for(
            "transport close, then two reconnection attempts",
            |reasons, states| {
                reasons.first().map(String::as_str) == Some("transport close")
                    && attempts(states) >= 2
            },
        )
        .await;
    assert_eq!(*client.reasons.lock().unwrap(), ["transport close"]);

    // Meanwhile: not ready, no new connections, while the open session can still read its
    // close packet ("1").
    let ready = request(port, "GET", "/ready", &[], "").unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (503, "shutting down"));
    let handshake = request(port, "GET", "/socket.io/?EIO=4&transport=polling", &[], "").unwrap();
    assert_eq!(handshake.status, 503);
    assert_eq!(handshake.header("retry-after"), Some("1"));
    assert_eq!(
        handshake.json(),
        json!({"code": 503, "message": "server shutting down"})
    );
    let health = request(port, "GET", "/health", &[], "").unwrap();
    assert_eq!(health.status, 200);
    let poll = request(
        port,
        "GET",
        &format!("/socket.io/?EIO=4&transport=polling&sid={polled}"),
        &[],
        "",
    )
    .unwrap();
    assert_eq!((poll.status, poll.body.as_str()), (200, "1"));

    // The stuck session holds the drain up until the deadline; then the process exits 0.
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the process exits at the deadline");
    assert!(status.success(), "{status:?}\n{}", server.log());
    let log = server.log();
    assert!(
        log.contains("server.shutdown_timeout passed with connections still open: exiting anyway"),
        "{log}"
    );
    assert!(!log.contains("every connection closed"), "{log}");
    client.manager.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_exits_once_every_client_is_gone() {
    // A deadline far away: the exit comes from the clients leaving, not from it.
    let mut server = Ferrio::serve(&[("FERRIO_SERVER_SHUTDOWN_TIMEOUT", "120s")]);
    let websocket = Client::connect(&server, vec![TransportKind::WebSocket]).await;
    let polling = Client::connect(&server, vec![TransportKind::Polling]).await;
    let ready = request(server.port, "GET", "/ready", &[], "").unwrap();
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(60))
        .expect("the process exits once its clients are gone");
    assert!(status.success(), "{status:?}\n{}", server.log());
    let log = server.log();
    assert!(log.contains("every connection closed"), "{log}");
    for client in [&websocket, &polling] {
        client
            .wait_for("transport close", |reasons, _| !reasons.is_empty())
            .await;
        assert_eq!(*client.reasons.lock().unwrap(), ["transport close"]);
        client.manager.disconnect();
    }
}

#[test]
fn a_second_signal_ends_the_drain_at_once() {
    let mut server = Ferrio::serve(&[("FERRIO_SERVER_SHUTDOWN_TIMEOUT", "120s")]);
    let _stuck = stuck_polling_session(server.port);
    server.terminate();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = request(server.port, "GET", "/ready", &[], "").unwrap();
        if ready.status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "/ready never turned 503");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the second signal ends the process long before the deadline");
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(
        server
            .log()
            .contains("second shutdown signal: exiting without waiting for clients"),
        "{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disconnect_webhooks_of_a_drain_reach_the_backend_before_the_process_exits() {
    const CLIENTS: usize = 12;
    // A slow backend, two calls at a time: the shutdown's 12 notices take about 0.9 s, far
    // longer than closing the connections does.
    let backend = backend::Backend::start(|_| {
        backend::Reply::Delayed(Duration::from_millis(150), 200, json!({}))
    })
    .await;
    let hook = format!("{}/disconnect", backend.url);
    let mut server = Ferrio::serve(&[
        ("FERRIO_WEBHOOKS_DISCONNECT_URL", hook.as_str()),
        ("FERRIO_WEBHOOKS_MAX_IN_FLIGHT", "2"),
        ("FERRIO_SERVER_SHUTDOWN_TIMEOUT", "10s"),
    ]);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Client::connect(&server, vec![TransportKind::WebSocket]).await);
    }
    server.terminate();
    let (server, exit) = tokio::task::spawn_blocking(move || {
        let exit = server.wait_exit(Duration::from_secs(15));
        (server, exit)
    })
    .await
    .unwrap();
    assert!(
        exit.is_some_and(|status| status.success()),
        "{exit:?}\n{}",
        server.log()
    );
    let calls = backend.requests_to("/disconnect");
    assert_eq!(calls.len(), CLIENTS, "{}", server.log());
    for call in &calls {
        assert_eq!(
            call.json()["reason"],
            "server shutting down",
            "{:?}",
            call.json()
        );
    }
    drop(clients);
}
