//! The JWT flows and room policy refusals of `ferrio serve` (a child process) as the Rust client
//! `ferrio-client` sees them: each refused connection's exact CONNECT_ERROR message and reason,
//! and each refused join, publish or leave's exact acknowledgement. `tests/auth.rs` shows the
//! same through the official socket.io-client; this file needs no node, so it always runs.

mod process;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrio_client::{
    ClientConfig, ConnectError, ConnectRefused, Manager, Payload, ReconnectionConfig, Socket,
};
use jsonwebtoken::{encode, EncodingKey, Header};
use process::Ferrio;
use serde_json::{json, Value};

const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";
const ISSUER: &str = "https://id.example";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(secret: &str, claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Claims of user `sub` that pass every check of the server below, with `changes` applied
/// (`null` removes a claim).
fn claims(sub: &str, changes: Value) -> Value {
    let mut claims = json!({ "sub": sub, "exp": now() + 600, "aud": "chat", "iss": ISSUER });
    for (name, value) in changes.as_object().cloned().unwrap_or_default() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(&name),
            value => claims.as_object_mut().unwrap().insert(name, value),
        };
    }
    claims
}

fn start() -> Ferrio {
    Ferrio::serve(&[
        ("FERRIO_AUTH_JWT_SECRET", SECRET),
        ("FERRIO_AUTH_LEEWAY", "0s"),
        ("FERRIO_AUTH_AUDIENCE", "chat,admin"),
        ("FERRIO_AUTH_ISSUER", ISSUER),
        ("FERRIO_ROOMS_JOIN", "^patient_[A-Za-z0-9]+$"),
    ])
}

/// Connects a socket to `/` with `token` (or none), without reconnection.
async fn connect(
    server: &Ferrio,
    token: Option<&str>,
) -> (Manager, Socket, Result<(), ConnectError>) {
    let manager = Manager::new(ClientConfig {
        reconnection: ReconnectionConfig {
            enabled: false,
            ..ReconnectionConfig::default()
        },
        timeout: Duration::from_secs(15),
        ..ClientConfig::new(server.url())
    })
    .unwrap();
    let socket = manager.socket("/").unwrap();
    if let Some(token) = token {
        socket.set_auth(json!({ "token": token }).as_object().cloned());
    }
    let result = socket.connect().await;
    (manager, socket, result)
}

/// The refusal of a connection with `token`: (message, data).
async fn refusal(server: &Ferrio, token: Option<&str>) -> (String, Option<Value>) {
    let (_manager, _socket, result) = connect(server, token).await;
    match result {
        Err(ConnectError::Refused(ConnectRefused { message, data })) => (message, data),
        other => panic!("not refused: {other:?}\n{}", server.log()),
    }
}

fn refused(message: &str, reason: &str) -> (String, Option<Value>) {
    (message.to_owned(), Some(json!({ "reason": reason })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refused_token_gets_its_exact_connect_error() {
    let server = start();
    let valid = sign(SECRET, &claims("u1", json!({})));
    let (_manager, socket, result) = connect(&server, Some(&valid)).await;
    result.unwrap();
    assert!(socket.connected());

    let cases = [
        (
            Some(sign(SECRET, &claims("u1", json!({ "exp": now() - 60 })))),
            refused("token expired", "expired_token"),
        ),
        (
            Some(sign(
                "another-secret-another-secret-another",
                &claims("u1", json!({})),
            )),
            refused(
                "invalid token: bad signature (signed with another key)",
                "bad_signature",
            ),
        ),
        (
            None,
            refused(
                "authentication required: no token (send it as auth.token, an Authorization: \
                 Bearer header or the token cookie)",
                "missing_token",
            ),
        ),
        (
            Some(sign(SECRET, &claims("u1", json!({ "aud": "billing" })))),
            refused(
                "invalid token: its audience (aud) is not one of \"chat\", \"admin\"",
                "wrong_audience",
            ),
        ),
        (
            Some(sign(
                SECRET,
                &claims("u1", json!({ "iss": "https://evil.example" })),
            )),
            refused(
                "invalid token: its issuer (iss) is not \"https://id.example\"",
                "wrong_issuer",
            ),
        ),
        (
            Some(sign(SECRET, &claims("u1", json!({ "sub": null })))),
            refused(
                "invalid token: the sub claim (the user id) is missing",
                "invalid_token",
            ),
        ),
    ];
    for (token, expected) in cases {
        assert_eq!(
            refusal(&server, token.as_deref()).await,
            expected,
            "{token:?}"
        );
    }
    assert!(server.log().contains("connection refused: token expired"));
}

/// The acknowledgement of built-in event `name` with `arg`.
async fn ack(socket: &Socket, name: &str, arg: Value) -> Value {
    let answer = socket
        .emit_with_ack(name, Payload::json(arg).unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    answer.args.first().cloned().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_policy_refusals_are_exact() {
    let server = start();
    let token = sign(
        SECRET,
        &claims(
            "alice",
            json!({ "rooms": ["team_*"], "publish": ["team_*"] }),
        ),
    );
    let (_manager, alice, result) = connect(&server, Some(&token)).await;
    result.unwrap();
    let ok = |room: &str| json!({ "ok": true, "room": room });
    let no = |error: &str| json!({ "ok": false, "error": error });
    let publish = |room: &str| json!({ "room": room, "event": "news", "data": { "n": 1 } });

    assert_eq!(
        ack(&alice, "join", json!({ "room": "patient_42" })).await,
        ok("patient_42")
    );
    assert_eq!(
        ack(&alice, "join", json!({ "room": "patient_4-2" })).await,
        no("not allowed to join room patient_4-2")
    );
    assert_eq!(
        ack(&alice, "join", json!({ "room": "admin" })).await,
        no("not allowed to join room admin")
    );
    assert_eq!(
        ack(&alice, "join", json!({ "room": "team_x" })).await,
        ok("team_x")
    );
    assert_eq!(
        ack(&alice, "publish", publish("team_x")).await,
        ok("team_x")
    );
    assert_eq!(
        ack(&alice, "publish", publish("patient_42")).await,
        no("not allowed to publish to room patient_42")
    );
    assert_eq!(
        ack(&alice, "leave", json!({ "room": "user:alice" })).await,
        no("cannot leave room user:alice: it is the socket's own")
    );
    assert_eq!(
        ack(&alice, "leave", json!({ "room": "team_x" })).await,
        ok("team_x")
    );
    assert!(server
        .log()
        .contains("refused: not allowed to join room admin"));
}
