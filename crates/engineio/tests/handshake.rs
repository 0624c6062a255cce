//! Handshakes over real HTTP: the open packet of both revisions, the session cookie, every
//! error answer of the reference server, the `allow_request` check and CORS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, request, ws_connect, TestServer};
use ferrio_engineio::{
    AllowOrigin, CookieConfig, CorsConfig, EngineConfig, RequestRefused, SameSite, Transports,
};
use tokio_tungstenite::tungstenite::Error as WsError;

fn short_config() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(25_000),
        ping_timeout: Duration::from_millis(20_000),
        max_payload: 123_456,
        ..config()
    }
}

#[tokio::test]
async fn v4_handshake_sends_the_exact_open_packet() {
    let mut server = TestServer::start(short_config()).await;
    let response = server.get("EIO=4&transport=polling&t=Nx1").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert!(
        response.header("set-cookie").is_none(),
        "no cookie unless configured"
    );
    let body = response.text();
    let open: serde_json::Value =
        serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("JSON");
    let sid = common::sid_of(&open);
    assert_eq!(
        body,
        format!(
            r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":123456}}"#
        )
    );
    assert_eq!(sid.as_str().len(), 20);
    server.connected(sid).await;

    let socket = server.socket(sid);
    assert_eq!(socket.protocol(), ferrio_engineio::ProtocolVersion::V4);
    assert_eq!(socket.transport(), ferrio_engineio::TransportKind::Polling);
    assert_eq!(socket.handshake().query_param("t").as_deref(), Some("Nx1"));
    let peer = socket
        .handshake()
        .remote_addr
        .expect("serve records the peer");
    assert!(peer.ip().is_loopback());

    // Two handshakes, two distinct sessions.
    let (other, _) = server.handshake_v4().await;
    assert_ne!(other, sid);
    assert_eq!(server.engine.session_count(), 2);
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn v3_handshake_is_a_length_prefixed_payload() {
    let mut server = TestServer::start(short_config()).await;
    let response = server.get("EIO=3&transport=polling").await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let body = response.text();
    let (length, packet) = body.split_once(':').expect("a length prefix");
    let open: serde_json::Value =
        serde_json::from_str(packet.strip_prefix('0').expect("open packet")).expect("JSON");
    let sid = common::sid_of(&open);
    let expected_packet = format!(
        r#"0{{"sid":"{sid}","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":123456}}"#
    );
    assert_eq!(packet, expected_packet);
    assert_eq!(length, expected_packet.len().to_string());
    server.connected(sid).await;
    assert_eq!(
        server.socket(sid).protocol(),
        ferrio_engineio::ProtocolVersion::V3
    );
    assert!(server.socket(sid).supports_binary());

    // `b64=1`: the same handshake, and the session remembers the client takes no binary.
    let (b64, _) = server.handshake_v3(true).await;
    assert!(!server.socket(b64).supports_binary());
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn upgrades_are_offered_only_when_possible() {
    for (transports, allow_upgrades, offered) in [
        (Transports::default(), true, true),
        (Transports::default(), false, false),
        (
            Transports {
                polling: true,
                websocket: false,
            },
            true,
            false,
        ),
    ] {
        let mut server = TestServer::start(EngineConfig {
            transports,
            allow_upgrades,
            ..config()
        })
        .await;
        let (_, open) = server.handshake_v4().await;
        let expected = if offered {
            serde_json::json!(["websocket"])
        } else {
            serde_json::json!([])
        };
        assert_eq!(
            open["upgrades"], expected,
            "{transports:?} {allow_upgrades}"
        );
    }
}

#[tokio::test]
async fn cookie_is_set_exactly_when_configured() {
    let mut server = TestServer::start(EngineConfig {
        cookie: Some(CookieConfig::default()),
        ..config()
    })
    .await;
    let response = server.get("EIO=4&transport=polling").await;
    let body = response.text();
    let open: serde_json::Value =
        serde_json::from_str(body.strip_prefix('0').expect("open packet")).expect("JSON");
    let sid = common::sid_of(&open);
    assert_eq!(
        response.header_all("set-cookie"),
        vec![format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")]
    );
    server.connected(sid).await;

    // Only the handshake sets it.
    let post = server.post(4, sid, b"4x").await;
    assert_eq!(post.status, 200);
    assert!(post.header("set-cookie").is_none());

    // A direct WebSocket gets it on the 101 answer.
    let (_ws, answer) = server.ws("EIO=4&transport=websocket").await;
    let cookie = answer
        .headers()
        .get("set-cookie")
        .expect("a cookie on the 101")
        .to_str()
        .expect("ASCII");
    assert!(cookie.starts_with("io=") && cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"));

    // Every attribute is configurable.
    let mut server = TestServer::start(EngineConfig {
        cookie: Some(CookieConfig {
            name: "sticky".to_owned(),
            path: "/app".to_owned(),
            http_only: false,
            secure: true,
            same_site: SameSite::None,
        }),
        ..config()
    })
    .await;
    let response = server.get("EIO=3&transport=polling").await;
    let packets = common::v3_text_packets(&response.text());
    let open: serde_json::Value =
        serde_json::from_str(packets[0].strip_prefix('0').expect("open")).expect("JSON");
    let sid = common::sid_of(&open);
    assert_eq!(
        response.header_all("set-cookie"),
        vec![format!("sticky={sid}; Path=/app; Secure; SameSite=None")]
    );
    server.connected(sid).await;
}

#[tokio::test]
async fn no_cookie_without_config() {
    let server = TestServer::start(config()).await;
    let response = server.get("EIO=4&transport=polling").await;
    assert_eq!(response.status, 200);
    assert!(response.header("set-cookie").is_none());
    let (_ws, answer) = server.ws("EIO=4&transport=websocket").await;
    assert!(answer.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn query_errors_have_the_reference_codes() {
    let mut server = TestServer::start(config()).await;
    let (sid, _) = server.handshake_v4().await;

    // 0: transport missing or unknown.
    server
        .get("EIO=4")
        .await
        .assert_error(400, 0, "Transport unknown");
    server
        .get("EIO=4&transport=carrier-pigeon")
        .await
        .assert_error(400, 0, "Transport unknown");
    // The transport is checked before the revision, as in the reference server.
    server
        .get("EIO=9&transport=nope")
        .await
        .assert_error(400, 0, "Transport unknown");

    // 1: unknown or malformed session id.
    server
        .get("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA")
        .await
        .assert_error(400, 1, "Session ID unknown");
    server
        .get("EIO=4&transport=polling&sid=not-a-sid")
        .await
        .assert_error(400, 1, "Session ID unknown");
    common::request(
        server.addr,
        "POST",
        &TestServer::target("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA"),
        &[],
        b"4hi",
    )
    .await
    .assert_error(400, 1, "Session ID unknown");

    // 2: a handshake must be a GET.
    for method in ["POST", "PUT", "DELETE"] {
        request(
            server.addr,
            method,
            &TestServer::target("EIO=4&transport=polling"),
            &[],
            b"",
        )
        .await
        .assert_error(400, 2, "Bad handshake method");
    }

    // 3: a method polling does not know, a session asked for with the other revision, and a
    // WebSocket request that is not a WebSocket handshake.
    request(
        server.addr,
        "PUT",
        &TestServer::target(&format!("EIO=4&transport=polling&sid={sid}")),
        &[],
        b"4hi",
    )
    .await
    .assert_error(400, 3, "Bad request");
    server
        .poll(3, sid)
        .await
        .assert_error(400, 3, "Bad request");
    server
        .get(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .assert_error(400, 3, "Bad request");
    server
        .get("EIO=4&transport=websocket")
        .await
        .assert_error(400, 3, "Bad request");

    // 5: a revision not served.
    for query in [
        "EIO=5&transport=polling",
        "EIO=2&transport=polling",
        "EIO=&transport=polling",
        "transport=polling",
    ] {
        server
            .get(query)
            .await
            .assert_error(400, 5, "Unsupported protocol version");
    }

    // Another path is not the engine's.
    let other = request(
        server.addr,
        "GET",
        "/other/?EIO=4&transport=polling",
        &[],
        b"",
    )
    .await;
    assert_eq!((other.status, other.body.len()), (404, 0));

    // None of that touched the session, nor opened another.
    assert_eq!(server.engine.session_count(), 1);
    server.assert_polling_works(4, sid).await;
    server.assert_exactly_once(&[]);
}

#[tokio::test]
async fn eio3_can_be_turned_off() {
    let server = TestServer::start(EngineConfig {
        allow_eio3: false,
        ..config()
    })
    .await;
    server.get("EIO=3&transport=polling").await.assert_error(
        400,
        5,
        "Unsupported protocol version",
    );
    match ws_connect(&server.ws_url("EIO=3&transport=websocket"), &[]).await {
        Err(WsError::Http(answer)) => {
            assert_eq!(answer.status(), 400);
            assert_eq!(
                answer.body().as_deref(),
                Some(&br#"{"code":5,"message":"Unsupported protocol version"}"#[..])
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    assert_eq!(server.engine.session_count(), 0);
    assert_eq!(server.get("EIO=4&transport=polling").await.status, 200);
}

#[tokio::test]
async fn disabled_transports_are_unknown() {
    let polling_off = TestServer::start(EngineConfig {
        transports: Transports {
            polling: false,
            websocket: true,
        },
        ..config()
    })
    .await;
    polling_off
        .get("EIO=4&transport=polling")
        .await
        .assert_error(400, 0, "Transport unknown");
    polling_off
        .get("EIO=3&transport=polling")
        .await
        .assert_error(400, 0, "Transport unknown");
    // WebSocket still works there.
    let (_ws, _) = polling_off.ws("EIO=4&transport=websocket").await;

    let ws_off = TestServer::start(EngineConfig {
        transports: Transports {
            polling: true,
            websocket: false,
        },
        ..config()
    })
    .await;
    match ws_connect(&ws_off.ws_url("EIO=4&transport=websocket"), &[]).await {
        Err(WsError::Http(answer)) => {
            assert_eq!(answer.status(), 400);
            assert_eq!(
                answer.body().as_deref(),
                Some(&br#"{"code":0,"message":"Transport unknown"}"#[..])
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    assert_eq!(ws_off.engine.session_count(), 0);
}

#[tokio::test]
async fn allow_request_refusals_answer_403_with_their_message() {
    let mut server = TestServer::start(EngineConfig {
        allow_request: Some(Arc::new(|parts: &http::request::Parts| {
            match parts.headers.get("x-token").map(|v| v.as_bytes()) {
                Some(b"good") => Ok(()),
                Some(b"silent") => Err(RequestRefused { message: None }),
                _ => Err(RequestRefused {
                    message: Some("token \"missing\"".to_owned()),
                }),
            }
        })),
        ..config()
    })
    .await;
    let target = TestServer::target("EIO=4&transport=polling");
    request(server.addr, "GET", &target, &[], b"")
        .await
        .assert_error(403, 4, "token \"missing\"");
    request(server.addr, "GET", &target, &[("X-Token", "silent")], b"")
        .await
        .assert_error(403, 4, "Forbidden");

    // A direct WebSocket is checked the same way.
    match ws_connect(&server.ws_url("EIO=4&transport=websocket"), &[]).await {
        Err(WsError::Http(answer)) => {
            assert_eq!(answer.status(), 403);
            assert_eq!(
                answer.body().as_deref(),
                Some(&br#"{"code":4,"message":"token \"missing\""}"#[..])
            );
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    assert_eq!(server.engine.session_count(), 0);

    let response = request(server.addr, "GET", &target, &[("X-Token", "good")], b"").await;
    assert_eq!(response.status, 200);
    let open: serde_json::Value =
        serde_json::from_str(response.text().strip_prefix('0').expect("open")).expect("JSON");
    let sid = common::sid_of(&open);
    server.connected(sid).await;
    // The check runs on handshakes only: the session's own requests carry no token.
    server.assert_polling_works(4, sid).await;
    let (_ws, _) = ws_connect(
        &server.ws_url("EIO=4&transport=websocket"),
        &[("x-token", "good")],
    )
    .await
    .expect("accepted with the token");
}

fn cors_server_config() -> EngineConfig {
    let mut cors = CorsConfig::new(AllowOrigin::List(vec![
        "https://good.example".to_owned(),
        "http://localhost:8080".to_owned(),
    ]));
    cors.credentials = true;
    EngineConfig {
        cors: Some(cors),
        ..config()
    }
}

#[tokio::test]
async fn cors_preflight_allows_listed_origins() {
    let server = TestServer::start(cors_server_config()).await;
    let target = TestServer::target("EIO=4&transport=polling");
    let preflight = request(
        server.addr,
        "OPTIONS",
        &target,
        &[
            ("Origin", "https://good.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type,x-custom"),
        ],
        b"",
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert!(preflight.body.is_empty());
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://good.example")
    );
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type,x-custom")
    );
    assert_eq!(preflight.header("vary"), Some("Origin"));

    // A preflight from an origin not listed gets no grant.
    let refused = request(
        server.addr,
        "OPTIONS",
        &target,
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(refused.status, 204);
    assert!(refused.header("access-control-allow-origin").is_none());
    assert!(refused.header("access-control-allow-credentials").is_none());
    assert_eq!(
        server.engine.session_count(),
        0,
        "a preflight opens nothing"
    );
}

#[tokio::test]
async fn cors_headers_on_every_answer_to_allowed_origins_only() {
    let mut server = TestServer::start(cors_server_config()).await;
    let target = TestServer::target("EIO=4&transport=polling");

    let allowed = request(
        server.addr,
        "GET",
        &target,
        &[("Origin", "http://localhost:8080")],
        b"",
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://localhost:8080")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    let open: serde_json::Value =
        serde_json::from_str(allowed.text().strip_prefix('0').expect("open")).expect("JSON");
    let sid = common::sid_of(&open);
    server.connected(sid).await;

    // Error answers carry the grant too, or a browser could not read them.
    let error = request(
        server.addr,
        "GET",
        &TestServer::target("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA"),
        &[("Origin", "https://good.example")],
        b"",
    )
    .await;
    error.assert_error(400, 1, "Session ID unknown");
    assert_eq!(
        error.header("access-control-allow-origin"),
        Some("https://good.example")
    );

    // Another origin gets no grant (the browser then refuses to read the answer); a request
    // without Origin is not cross-origin and gets none either.
    for headers in [&[("Origin", "https://evil.example")][..], &[]] {
        let response = request(server.addr, "GET", &target, headers, b"").await;
        assert_eq!(response.status, 200);
        assert!(response.header("access-control-allow-origin").is_none());
        assert!(response
            .header("access-control-allow-credentials")
            .is_none());
    }

    // `Any` answers `*` and never sends credentials.
    let any = TestServer::start(EngineConfig {
        cors: Some(CorsConfig::any()),
        ..config()
    })
    .await;
    let response = request(
        any.addr,
        "GET",
        &target,
        &[("Origin", "https://whoever.example")],
        b"",
    )
    .await;
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert!(response
        .header("access-control-allow-credentials")
        .is_none());
    assert!(response.header("vary").is_none());

    // Without CORS settings, nothing.
    let none = TestServer::start(config()).await;
    let response = request(
        none.addr,
        "OPTIONS",
        &target,
        &[("Origin", "https://good.example")],
        b"",
    )
    .await;
    assert_eq!(response.status, 204);
    assert!(response.header("access-control-allow-origin").is_none());
    assert!(response.header("access-control-allow-methods").is_none());
}
