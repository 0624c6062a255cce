//! The HTTP API for backends, end to end: `ferrio serve` as a child process, backends as plain
//! HTTP requests, clients as `ferrio-client` sockets receiving what the API emits.

mod process;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrio_client::{ClientConfig, Manager, ReconnectionConfig, Socket};
use jsonwebtoken::{encode, EncodingKey, Header};
use process::{request, Answer, Ferrio};
use serde_json::{json, Value};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const JWT_SECRET: &str = "fedcba9876543210fedcba9876543210";

fn with_key() -> Ferrio {
    Ferrio::serve(&[("FERRIO_API_KEY", KEY)])
}

/// A request with the right key.
fn api(server: &Ferrio, method: &str, target: &str, body: &str) -> Answer {
    request(
        server.port,
        method,
        target,
        &[
            ("Authorization", format!("Bearer {KEY}").as_str()),
            ("Content-Type", "application/json"),
        ],
        body,
    )
    .unwrap()
}

/// A POST with the right key and a JSON body: status and JSON answer.
fn post(server: &Ferrio, target: &str, body: Value) -> (u16, Value) {
    let answer = api(server, "POST", target, &body.to_string());
    (answer.status, answer.json())
}

fn get(server: &Ferrio, target: &str) -> (u16, Value) {
    let answer = api(server, "GET", target, "");
    (answer.status, answer.json())
}

fn invalid(field: &str, message: &str) -> (u16, Value) {
    (
        400,
        json!({ "error": format!("{field}: {message}"), "code": "invalid_body", "field": field }),
    )
}

#[test]
fn without_a_key_the_api_is_off_but_documented() {
    let server = Ferrio::serve(&[]);
    let answer = request(
        server.port,
        "GET",
        "/api/v1/stats",
        &[("X-API-Key", "")],
        "",
    )
    .unwrap();
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.json(),
        json!({
            "error": "the HTTP API is off: set api.key (FERRIO_API_KEY) to turn it on; \
                      `ferrio config init` generates one",
            "code": "api_disabled"
        })
    );
    let doc = request(server.port, "GET", "/api/openapi.json", &[], "").unwrap();
    assert_eq!(doc.status, 200);
    assert_eq!(doc.json()["openapi"], "3.1.0");
}

#[test]
fn the_key_is_required_and_compared() {
    let server = with_key();
    let port = server.port;
    let missing = request(port, "GET", "/api/v1/stats", &[], "").unwrap();
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        missing.json(),
        json!({
            "error": "an API key is required: send Authorization: Bearer <key> or X-API-Key: <key>",
            "code": "unauthorized"
        })
    );
    let wrong_key = format!("{}0", &KEY[..KEY.len() - 1]);
    for headers in [
        [("Authorization", format!("Bearer {wrong_key}"))],
        [("X-API-Key", wrong_key.clone())],
        [("X-API-Key", format!("{KEY}{KEY}"))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let wrong = request(port, "POST", "/api/v1/emit", &headers, r#"{"event":"x"}"#).unwrap();
        assert_eq!(
            (wrong.status, wrong.json()),
            (
                401,
                json!({ "error": "the API key is wrong", "code": "unauthorized" })
            ),
            "{headers:?}"
        );
    }
    let bearer = request(
        port,
        "GET",
        "/api/v1/stats",
        &[("Authorization", &format!("Bearer {KEY}"))],
        "",
    )
    .unwrap();
    assert_eq!(bearer.status, 200, "{}", bearer.body);
    let header = request(port, "GET", "/api/v1/stats", &[("X-API-Key", KEY)], "").unwrap();
    assert_eq!(header.status, 200, "{}", header.body);
    // Unknown routes answer JSON too, behind the key.
    assert_eq!(
        get(&server, "/api/v1/nope"),
        (
            404,
            json!({
                "error": "no API route /api/v1/nope; GET /api/openapi.json lists them",
                "code": "not_found"
            })
        )
    );
    assert_eq!(
        request(port, "GET", "/api/v1/nope", &[], "")
            .unwrap()
            .status,
        401
    );
}

#[test]
fn bad_requests_get_400_naming_the_field() {
    let server = Ferrio::serve(&[("FERRIO_API_KEY", KEY), ("FERRIO_API_MAX_BODY", "200")]);
    let raw = |target: &str, body: &str| {
        let answer = api(&server, "POST", target, body);
        (answer.status, answer.json())
    };
    assert_eq!(
        raw("/api/v1/emit", "{\"event\": "),
        (
            400,
            json!({
                "error": "the body is not valid JSON: EOF while parsing a value at line 1 column 10",
                "code": "invalid_json"
            })
        )
    );
    assert_eq!(
        raw("/api/v1/emit", "[1]"),
        (
            400,
            json!({ "error": "the body must be a JSON object, not an array", "code": "invalid_json" })
        )
    );
    assert_eq!(
        raw(
            "/api/v1/emit",
            &format!("{{\"event\": \"{}\"}}", "x".repeat(300))
        ),
        (
            413,
            json!({
                "error": "the request body is larger than 200 bytes (api.max_body)",
                "code": "body_too_large"
            })
        )
    );
    let emit = |body: Value| post(&server, "/api/v1/emit", body);
    assert_eq!(emit(json!({})), invalid("event", "missing"));
    assert_eq!(
        emit(json!({"event": 5})),
        invalid(
            "event",
            "invalid type: integer `5`, expected a string (found a number)"
        )
    );
    assert_eq!(
        emit(json!({"event": ""})),
        invalid("event", "must not be empty")
    );
    assert_eq!(
        emit(json!({"event": "disconnect"})),
        invalid(
            "event",
            "\"disconnect\" is reserved by the Socket.IO protocol; choose another name"
        )
    );
    assert_eq!(
        emit(json!({"event": "e", "args": {"a": 1}})),
        invalid(
            "args",
            "must be an array of the event's arguments, not an object; use data for one argument"
        )
    );
    assert_eq!(
        emit(json!({"event": "e", "args": [1], "data": 1})),
        invalid(
            "data",
            "give either args (every argument, as an array) or data (one argument), not both"
        )
    );
    assert_eq!(
        emit(json!({"event": "e", "rooms": ["a", ""]})),
        invalid("rooms[1]", "must not be empty")
    );
    assert_eq!(
        emit(json!({"event": "e", "users": "bob"})),
        invalid(
            "users",
            "invalid type: string \"bob\", expected a sequence (found a string)"
        )
    );
    assert_eq!(
        emit(json!({"event": "e", "room": ["a"]})),
        invalid("room", "unknown field")
    );
    assert_eq!(
        emit(json!({"event": "e", "data": {"file": {"$binary": "not base64!"}}})),
        invalid(
            "data.file.$binary",
            "not base64: Invalid symbol 32, offset 3."
        )
    );
    assert_eq!(
        emit(json!({"event": "e", "namespace": "/nope"})),
        (
            404,
            json!({
                "error": "namespace \"/nope\" is not served (server.namespaces lists the served ones)",
                "code": "unknown_namespace"
            })
        )
    );

    let join = |body: Value| post(&server, "/api/v1/sockets/join", body);
    assert_eq!(
        join(json!({"rooms": ["a"]})),
        invalid(
            "select",
            "missing: choose sockets with {\"rooms\": [...]}, {\"sockets\": [...]}, \
             {\"users\": [...]} or {\"all\": true}"
        )
    );
    assert_eq!(
        join(json!({"select": {}, "rooms": ["a"]})),
        invalid(
            "select",
            "chooses no sockets: give rooms, sockets or users, or all: true"
        )
    );
    assert_eq!(
        join(json!({"select": {"all": true, "users": ["u"]}, "rooms": ["a"]})),
        invalid(
            "select.all",
            "all: true chooses every socket; leave out rooms, sockets and users with it"
        )
    );
    assert_eq!(
        join(json!({"select": {"user": ["u"]}, "rooms": ["a"]})),
        invalid("select.user", "unknown field")
    );
    assert_eq!(
        join(json!({"select": {"all": true}})),
        invalid("rooms", "missing: name at least one room")
    );
    assert_eq!(
        post(
            &server,
            "/api/v1/sockets/disconnect",
            json!({"select": {"all": true}, "close": "yes"})
        ),
        invalid(
            "close",
            "invalid type: string \"yes\", expected a boolean (found a string)"
        )
    );
    assert_eq!(
        get(&server, "/api/v1/rooms?namespace=/&nsp=/"),
        (
            400,
            json!({ "error": "nsp: unknown parameter", "code": "invalid_query", "parameter": "nsp" })
        )
    );
    assert_eq!(
        get(&server, "/api/v1/sockets?room="),
        (
            400,
            json!({ "error": "room: must not be empty", "code": "invalid_query", "parameter": "room" })
        )
    );
}

/// A parameter's example as it is written in a URL.
fn example_text(example: &Value) -> String {
    match example {
        Value::String(text) => text.clone(),
        Value::Null => panic!("a parameter without an example"),
        other => other.to_string(),
    }
}

/// Every operation of the OpenAPI document, sent as its example says, succeeds; and the
/// document names exactly the routes the server answers.
#[test]
fn the_openapi_examples_succeed() {
    // History on for the room of the history example, so that every route has something to do.
    let server = Ferrio::serve(&[
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_HISTORY_ENABLED", "true"),
        ("FERRIO_HISTORY_ROOMS", "^news$"),
    ]);
    let doc = request(server.port, "GET", "/api/openapi.json", &[], "")
        .unwrap()
        .json();
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = Vec::new();
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            operations.push(format!("{} {path}", method.to_uppercase()));
            let mut target = path.clone();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    let name = parameter["name"].as_str().unwrap();
                    let example = example_text(&parameter["example"]);
                    target = target.replace(&format!("{{{name}}}"), &example);
                }
            }
            let query: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    format!(
                        "{}={}",
                        p["name"].as_str().unwrap(),
                        example_text(&p["example"])
                    )
                })
                .collect();
            if !query.is_empty() {
                target = format!("{target}?{}", query.join("&"));
            }
            let example = &operation["requestBody"]["content"]["application/json"]["example"];
            let body = if example.is_null() {
                String::new()
            } else {
                example.to_string()
            };
            let answer = api(&server, &method.to_uppercase(), &target, &body);
            assert_eq!(
                answer.status, 200,
                "{method} {target} {body}: {}",
                answer.body
            );
            let schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap();
            let answer = answer.json();
            for field in doc["components"]["schemas"][schema]["required"]
                .as_array()
                .unwrap()
            {
                let field = field.as_str().unwrap();
                assert!(
                    answer.get(field).is_some(),
                    "{method} {path}: no {field} in {answer}"
                );
            }
        }
    }
    // The unit test in api/openapi.rs holds the document to the router; here, the routes of
    // this guide's endpoints are all there.
    for expected in [
        "GET /api/v1/rooms",
        "GET /api/v1/sockets",
        "GET /api/v1/stats",
        "POST /api/v1/emit",
        "POST /api/v1/sockets/disconnect",
        "POST /api/v1/sockets/join",
        "POST /api/v1/sockets/leave",
    ] {
        assert!(
            operations.iter().any(|o| o == expected),
            "{expected} is not documented"
        );
    }
}

/// What one client received: `(event, first argument)` in order, binary as `{"bytes": [...]}`.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

struct Client {
    _manager: Manager,
    socket: Socket,
    received: Received,
}

impl Client {
    /// Connects to `/` with `token` (if any), recording every event.
    async fn connect(server: &Ferrio, token: Option<&str>) -> Client {
        let manager = Manager::new(ClientConfig {
            reconnection: ReconnectionConfig {
                enabled: false,
                ..ReconnectionConfig::default()
            },
            ..ClientConfig::new(server.url())
        })
        .unwrap();
        let socket = manager.socket("/").unwrap();
        if let Some(token) = token {
            socket.set_auth(json!({ "token": token }).as_object().cloned());
        }
        let received: Received = Arc::default();
        let sink = received.clone();
        socket.on_any(move |_socket, event| {
            let first = match event.payload.binary_at(0) {
                Some(bytes) => json!({ "bytes": bytes.to_vec() }),
                None => event.payload.args.first().cloned().unwrap_or(Value::Null),
            };
            let first = match event.payload.args.first() {
                Some(Value::Object(map)) if map.contains_key("file") => json!({
                    "name": map.get("name"),
                    "file": event.payload.binary_of(&map["file"]).map(|b| b.to_vec()),
                }),
                _ => first,
            };
            sink.lock().unwrap().push((event.name, first));
        });
        socket.connect().await.unwrap();
        Client {
            _manager: manager,
            socket,
            received,
        }
    }

    fn id(&self) -> String {
        self.socket.id().unwrap()
    }

    /// Waits (bounded) for event `name`, then returns every event received until it.
    async fn until(&self, name: &str) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut received = self.received.lock().unwrap();
                if let Some(at) = received.iter().position(|(n, _)| n == name) {
                    return received.drain(..=at).collect();
                }
            }
            assert!(Instant::now() < deadline, "{name} never came");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn token(sub: &str) -> String {
    encode(
        &Header::default(),
        &json!({ "sub": sub, "exp": 4_000_000_000u64 }),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn event(name: &str, value: Value) -> (String, Value) {
    (name.to_owned(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_joins_listings_and_disconnects_reach_clients() {
    let server = Ferrio::serve(&[
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_AUTH_JWT_SECRET", JWT_SECRET),
        ("FERRIO_AUTH_ALLOW_ANONYMOUS", "true"),
    ]);
    let alice = Client::connect(&server, Some(&token("alice"))).await;
    let bob = Client::connect(&server, Some(&token("bob"))).await;
    let guest = Client::connect(&server, None).await;
    let clients = [&alice, &bob, &guest];
    // Each test step ends with a "done" event to everyone: what a client got before it is all
    // it will get of that step, since a connection delivers in order.
    let done = |step: u32| {
        post(
            &server,
            "/api/v1/emit",
            json!({"event": "done", "data": step}),
        )
    };
    let step = |n: u32| event("done", json!(n));

    // Alice and Bob join the lobby, by user id.
    let (status, answer) = post(
        &server,
        "/api/v1/sockets/join",
        json!({"select": {"users": ["alice", "bob"]}, "rooms": ["lobby"]}),
    );
    assert_eq!((status, answer), (200, json!({"matched": 2})));

    // To the lobby except Bob.
    let (status, answer) = post(
        &server,
        "/api/v1/emit",
        json!({"event": "news", "data": {"n": 1}, "rooms": ["lobby"], "except": ["user:bob"]}),
    );
    assert_eq!((status, answer), (200, json!({"recipients": 1})));
    assert_eq!(done(1), (200, json!({"recipients": 3})));
    assert_eq!(
        alice.until("done").await,
        [event("news", json!({"n": 1})), step(1)]
    );
    assert_eq!(bob.until("done").await, [step(1)]);
    assert_eq!(guest.until("done").await, [step(1)]);

    // To a user, and to a socket by id, with several arguments.
    let (status, answer) = post(
        &server,
        "/api/v1/emit",
        json!({"event": "dm", "args": ["for bob", 2], "users": ["bob"], "sockets": [guest.id()]}),
    );
    assert_eq!((status, answer), (200, json!({"recipients": 2})));
    done(2);
    assert_eq!(alice.until("done").await, [step(2)]);
    assert_eq!(
        bob.until("done").await,
        [event("dm", json!("for bob")), step(2)]
    );
    assert_eq!(
        guest.until("done").await,
        [event("dm", json!("for bob")), step(2)]
    );

    // Binary, to everyone: a top-level binary argument, and one nested in an object.
    let (status, _) = post(
        &server,
        "/api/v1/emit",
        json!({"event": "blob", "args": [{"$binary": "AAEC/w=="}]}),
    );
    assert_eq!(status, 200);
    let (status, _) = post(
        &server,
        "/api/v1/emit",
        json!({"event": "upload", "data": {"name": "a.bin", "file": {"$binary": "aGk="}}, "volatile": true}),
    );
    assert_eq!(status, 200);
    done(3);
    for client in clients {
        assert_eq!(
            client.until("done").await,
            [
                event("blob", json!({"bytes": [0, 1, 2, 255]})),
                event("upload", json!({"name": "a.bin", "file": [104, 105]})),
                step(3)
            ]
        );
    }

    // Listings.
    let (status, rooms) = get(&server, "/api/v1/rooms");
    assert_eq!(status, 200);
    assert_eq!(
        rooms,
        json!({"namespace": "/", "rooms": [
            {"name": "lobby", "sockets": 2},
            {"name": "user:alice", "sockets": 1},
            {"name": "user:bob", "sockets": 1},
        ]})
    );
    let (status, listed) = get(&server, "/api/v1/sockets?namespace=/&room=lobby");
    assert_eq!(status, 200);
    let mut summary: Vec<(String, Value, Value, String)> = listed["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(
                s["address"].as_str().unwrap().starts_with("127.0.0.1:"),
                "{s}"
            );
            assert!(
                s["connected_at"].as_u64().unwrap() > 1_700_000_000_000,
                "{s}"
            );
            (
                s["id"].as_str().unwrap().to_owned(),
                s["user"].clone(),
                s["rooms"].clone(),
                s["transport"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    summary.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (
            alice.id(),
            json!("alice"),
            json!(["lobby", "user:alice"]),
            "websocket".to_owned(),
        ),
        (
            bob.id(),
            json!("bob"),
            json!(["lobby", "user:bob"]),
            "websocket".to_owned(),
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    // The client upgrades from polling to WebSocket; wait for the listing to show it.
    if summary != expected {
        let deadline = Instant::now() + Duration::from_secs(10);
        while summary != expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (_, listed) = get(&server, "/api/v1/sockets?room=lobby");
            summary = listed["sockets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["id"].as_str().unwrap().to_owned(),
                        s["user"].clone(),
                        s["rooms"].clone(),
                        s["transport"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            summary.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
    assert_eq!(summary, expected);
    let (_, all) = get(&server, "/api/v1/sockets");
    let guest_entry = all["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == guest.id())
        .cloned()
        .unwrap();
    assert_eq!(
        (&guest_entry["user"], &guest_entry["rooms"]),
        (&Value::Null, &json!([]))
    );

    let (status, stats) = get(&server, "/api/v1/stats");
    assert_eq!(status, 200);
    assert_eq!(stats["connections"]["total"], 3, "{stats}");
    assert_eq!(
        stats["namespaces"]["/"],
        json!({"sockets": 3, "rooms": {"lobby": 2, "user:alice": 1, "user:bob": 1}})
    );

    // Alice leaves the lobby.
    assert_eq!(
        post(
            &server,
            "/api/v1/sockets/leave",
            json!({"select": {"users": ["alice"]}, "rooms": ["lobby"]})
        ),
        (200, json!({"matched": 1}))
    );
    assert_eq!(
        post(
            &server,
            "/api/v1/emit",
            json!({"event": "news", "data": 2, "rooms": ["lobby"]})
        ),
        (200, json!({"recipients": 1}))
    );

    // The guest is disconnected: told by the server, it does not reconnect.
    let reasons: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = reasons.clone();
    guest
        .socket
        .on_disconnect(move |_, reason| sink.lock().unwrap().push(reason.as_str().to_owned()));
    assert_eq!(
        post(
            &server,
            "/api/v1/sockets/disconnect",
            json!({"select": {"sockets": [guest.id()]}})
        ),
        (200, json!({"matched": 1}))
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while reasons.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the guest was never disconnected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*reasons.lock().unwrap(), ["io server disconnect"]);
    assert_eq!(
        post(
            &server,
            "/api/v1/emit",
            json!({"event": "after", "data": 0})
        ),
        (200, json!({"recipients": 2}))
    );
}

/// A polling client whose handshake says it was forwarded for `forwarded_for`, connected to `/`:
/// its socket id.
fn forwarded_socket(server: &Ferrio, forwarded_for: &str) -> String {
    let headers = [("X-Forwarded-For", forwarded_for)];
    let open = request(
        server.port,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        &headers,
        "",
    )
    .unwrap();
    assert_eq!(open.status, 200, "{}", open.body);
    let open: Value = serde_json::from_str(open.body.trim_start_matches('0')).unwrap();
    let sid = open["sid"].as_str().unwrap().to_owned();
    let target = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let connect = request(server.port, "POST", &target, &headers, "40").unwrap();
    assert_eq!((connect.status, connect.body.as_str()), (200, "ok"));
    let connected = request(server.port, "GET", &target, &headers, "").unwrap();
    let reply = connected.body.strip_prefix("40").expect("a CONNECT reply");
    let reply: Value = serde_json::from_str(reply).unwrap();
    reply["sid"].as_str().unwrap().to_owned()
}

#[test]
fn the_client_address_behind_a_trusted_proxy_is_the_forwarded_one_and_only_there() {
    // The test's own address is the proxy: it sends X-Forwarded-For as nginx would.
    let behind = Ferrio::serve(&[
        ("FERRIO_API_KEY", KEY),
        ("FERRIO_SERVER_TRUSTED_PROXIES", "127.0.0.1"),
        ("FERRIO_LOG_FORMAT", "json"),
        ("FERRIO_LOG_CONNECTIONS", "true"),
    ]);
    // Anyone else: the same header is the client's claim, not believed.
    let direct = Ferrio::serve(&[("FERRIO_API_KEY", KEY)]);
    for (server, expected) in [(&behind, "203.0.113.9"), (&direct, "127.0.0.1")] {
        let id = forwarded_socket(server, "198.51.100.1, 203.0.113.9");
        let (status, listed) = get(server, "/api/v1/sockets");
        assert_eq!(status, 200, "{listed}");
        let socket = &listed["sockets"][0];
        assert_eq!(socket["id"], id.as_str(), "{listed}");
        assert_eq!(socket["ip"], expected, "{listed}");
        assert!(
            socket["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "the peer stays the proxy's: {listed}"
        );
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        let found = behind.log().lines().find_map(|line| {
            let record: Value = serde_json::from_str(line).ok()?;
            (record["fields"]["message"] == "connected").then_some(record)
        });
        if let Some(line) = found {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no connected line:\n{}",
            behind.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(line["fields"]["ip"], "203.0.113.9", "{line}");
    assert!(
        line["fields"]["remote"]
            .as_str()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{line}"
    );
}
