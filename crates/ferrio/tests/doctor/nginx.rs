//! nginx in front of Ferrio, one test per broken setting, each asserting the exact diagnosis.
//! nginx is Debian's, run as this test's own user with a configuration in a temporary
//! directory (`ferrio_test_support::nginx`).

use std::path::Path;
use std::time::Duration;

use ferrio_test_support::nginx::{free_port, nginx_binary, Nginx, NginxConfig};
use serde_json::Value;

use super::{
    all_green, allow, diagnose, doctor, failed, ferrio, ferrio_pinging, step, text, ORIGIN,
};

/// What the skip message names.
pub(crate) const WHAT: &str = "ferrio doctor behind nginx";

/// Starts nginx proxying `/socket.io/` to `backend` with `location` as the extra lines of the
/// location block.
pub(crate) fn nginx(binary: &Path, backend: &str, location: &str) -> Nginx {
    let backend = backend.trim_start_matches("http://");
    Nginx::start(
        binary,
        NginxConfig {
            server: format!(
                "location /socket.io/ {{\n\
                   proxy_pass http://{backend};\n\
                   {location}\n\
                 }}"
            ),
            ..NginxConfig::default()
        },
    )
}

/// nginx as [`nginx`] in front of a Ferrio that allows [`ORIGIN`].
async fn proxied(binary: &Path, location: &str) -> Nginx {
    let backend = ferrio(Some(allow(ORIGIN))).await;
    nginx(binary, &backend, location)
}

/// The doctor's report (`--json --timeout 5s`, `args`), which must exit with `code`, on nginx
/// as [`proxied`]; `None` when the test is skipped.
async fn behind_nginx(location: &str, args: &[&str], code: i32) -> Option<Value> {
    let binary = nginx_binary(WHAT)?;
    let proxy = proxied(&binary, location).await;
    Some(diagnose(&proxy.url("http"), args, code).await)
}

/// The lines a correct nginx location has for Socket.IO.
pub(crate) const NGINX_UPGRADE: &str = "proxy_http_version 1.1;\n\
    proxy_set_header Upgrade $http_upgrade;\n\
    proxy_set_header Connection \"upgrade\";";

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_correct_nginx_all_is_green() {
    let Some(report) = behind_nginx(NGINX_UPGRADE, &["--origin", ORIGIN], 0).await else {
        return;
    };
    all_green(&report);
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_without_the_upgrade_headers_fails_the_upgrade_with_the_fix() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let proxy = proxied(&binary, "").await;
    let report = diagnose(&proxy.url("http"), &["--origin", ORIGIN], 1).await;
    for name in ["handshake", "cors", "long-poll"] {
        assert_eq!(step(&report, name)["status"], "pass", "{name}");
    }
    for name in ["upgrade", "websocket"] {
        let failed = failed(&report, name, "websocket-upgrade-not-forwarded");
        assert!(
            text(failed, "detail").contains(
                "answered 400 Bad Request {\"code\":3,\"message\":\"Bad request\"}: the \
                 WebSocket request reached the server without its Upgrade and Connection \
                 headers (a proxy in front dropped them)"
            ),
            "{failed}"
        );
        for line in [
            "proxy_http_version 1.1;",
            "proxy_set_header Upgrade $http_upgrade;",
            "proxy_set_header Connection \"upgrade\";",
        ] {
            assert!(text(failed, "fix").contains(line), "{name}: {line}");
        }
    }
    // The heartbeat is watched over long-polling instead.
    let heartbeat = step(&report, "heartbeat");
    assert_eq!(heartbeat["status"], "pass");
    assert!(
        text(heartbeat, "detail").contains("over long-polling"),
        "{heartbeat}"
    );
    // Polling still carries the namespace and events.
    assert_eq!(step(&report, "namespace")["status"], "pass");
    assert_eq!(step(&report, "event")["status"], "pass");

    let human = doctor(&[&proxy.url("http"), "--timeout", "5s"]).await;
    assert!(human.stdout.contains("✗ upgrade "), "{}", human.stdout);
    assert!(human
        .stdout
        .contains("\n         proxy_set_header Upgrade $http_upgrade;\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_reading_for_less_than_the_ping_interval_cuts_the_heartbeat() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let backend = ferrio_pinging(Some(allow(ORIGIN)), Duration::from_millis(2500)).await;
    let location = format!("{NGINX_UPGRADE}\nproxy_read_timeout 1s;");
    let proxy = nginx(&binary, &backend, &location);
    let report = diagnose(&proxy.url("http"), &[], 1).await;
    assert_eq!(step(&report, "upgrade")["status"], "pass");
    let heartbeat = failed(&report, "heartbeat", "proxy-read-timeout");
    assert!(
        text(heartbeat, "detail").ends_with(
            "before the server's first ping (due after 2.5 s): a proxy read timeout shorter \
             than pingInterval cuts idle connections"
        ),
        "{heartbeat}"
    );
    assert!(
        text(heartbeat, "fix").contains("`proxy_read_timeout 60s;`"),
        "{heartbeat}"
    );

    // Without WebSockets, the held poll is cut instead.
    let proxy = nginx(&binary, &backend, "proxy_read_timeout 1s;");
    let report = doctor(&[&proxy.url("http"), "--json", "--timeout", "5s"])
        .await
        .json();
    let heartbeat = failed(&report, "heartbeat", "proxy-read-timeout");
    assert!(
        text(heartbeat, "detail")
            .starts_with("the held poll was answered 504 Gateway Timeout after 1."),
        "{heartbeat}"
    );
    assert!(
        text(heartbeat, "fix").contains("`proxy_read_timeout 60s;`"),
        "{heartbeat}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_without_its_backend_fails_the_handshake_with_502() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let backend = format!("127.0.0.1:{}", free_port());
    let proxy = nginx(&binary, &backend, NGINX_UPGRADE);
    let report = diagnose(&proxy.url("http"), &[], 1).await;
    let handshake = failed(&report, "handshake", "proxy-upstream-unreachable");
    assert!(
        text(handshake, "detail")
            .starts_with("GET /socket.io/?EIO=4&transport=polling answered 502 Bad Gateway"),
        "{handshake}"
    );
    assert!(
        text(handshake, "fix").starts_with("the proxy in front cannot reach the Socket.IO server"),
        "{handshake}"
    );
}

/// The 400 nginx's upgrade problems cause, as the doctor explains it.
const UPGRADE_400: &str = "answered 400 Bad Request {\"code\":3,\"message\":\"Bad request\"}: the \
    WebSocket request reached the server without its Upgrade and Connection headers (a proxy \
    in front dropped them), or as HTTP/1.0 (a proxy speaking HTTP/1.0 to the server: nginx's \
    default without proxy_http_version 1.1), or the server refused the session";

#[tokio::test(flavor = "multi_thread")]
async fn nginx_speaking_http_1_0_to_the_server_fails_the_upgrade() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    // The upgrade headers are forwarded, but over HTTP/1.0, which has no upgrade.
    let location = "proxy_http_version 1.0;\n\
        proxy_set_header Upgrade $http_upgrade;\n\
        proxy_set_header Connection \"upgrade\";";
    let proxy = proxied(&binary, location).await;
    let report = diagnose(&proxy.url("http"), &[], 1).await;
    let upgrade = step(&report, "upgrade");
    assert_eq!(upgrade["status"], "fail");
    assert_eq!(
        text(upgrade, "detail"),
        format!("the upgrade from polling failed: {UPGRADE_400}")
    );
    assert_eq!(upgrade["code"], "websocket-upgrade-not-forwarded");
    assert!(text(upgrade, "fix").contains("\nproxy_http_version 1.1;\n"));
    let websocket = step(&report, "websocket");
    assert_eq!(
        text(websocket, "detail"),
        format!("a direct WebSocket failed: {UPGRADE_400}")
    );
    // Polling works over HTTP/1.0.
    for name in ["handshake", "long-poll", "namespace", "event"] {
        assert_eq!(step(&report, name)["status"], "pass", "{name}");
    }
}

/// nginx buffers responses by default (`proxy_buffering on`), and a long poll is not held by
/// it: the server answers a poll with one complete response, which nginx passes on as soon
/// as it has it. Buffering only delays responses that are streamed, which Engine.IO's are
/// not. This test keeps that claim honest; the body size limit below is what nginx's request
/// handling does break.
#[tokio::test(flavor = "multi_thread")]
async fn nginx_buffering_does_not_hold_the_long_poll() {
    let location = format!("{NGINX_UPGRADE}\nproxy_buffering on;\nproxy_request_buffering on;");
    let Some(report) = behind_nginx(&location, &[], 0).await else {
        return;
    };
    let long_poll = step(&report, "long-poll");
    assert_eq!(long_poll["status"], "pass", "{long_poll}");
    assert!(
        text(long_poll, "detail").starts_with("POST answered on the waiting GET in "),
        "{long_poll}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_body_size_limit_refuses_the_polling_post_with_413() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let location = format!("{NGINX_UPGRADE}\nclient_max_body_size 1;");
    let proxy = proxied(&binary, &location).await;
    let report = diagnose(&proxy.url("http"), &[], 1).await;
    let long_poll = failed(&report, "long-poll", "proxy-body-size");
    assert_eq!(
        text(long_poll, "detail"),
        "the POST answered 413 Payload Too Large: nginx refused a 2-byte polling body as too \
         large"
    );
    assert!(
        text(long_poll, "fix").contains("nginx `client_max_body_size 2m;`"),
        "{long_poll}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_without_a_socket_io_location_answers_404_itself() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let backend = ferrio(Some(allow(ORIGIN))).await;
    let backend = backend.trim_start_matches("http://");
    // The application is proxied under another path only.
    let proxy = Nginx::start(
        &binary,
        NginxConfig {
            server: format!("location /chat/ {{ proxy_pass http://{backend}; }}"),
            ..NginxConfig::default()
        },
    );
    let report = diagnose(&proxy.url("http"), &[], 1).await;
    let handshake = step(&report, "handshake");
    assert_eq!(handshake["code"], "proxy-no-location");
    let detail = text(handshake, "detail");
    assert!(
        detail.starts_with("GET /socket.io/?EIO=4&transport=polling answered 404 Not Found"),
        "{detail}"
    );
    assert!(
        detail.ends_with(
            "\nnginx answered 404 itself: no location block forwards /socket.io/ to the \
             Socket.IO server"
        ),
        "{detail}"
    );
    assert!(text(handshake, "fix").contains("\nlocation /socket.io/ {\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_proxy_pass_with_a_path_rewrites_the_socket_io_path_away() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let backend = ferrio(Some(allow(ORIGIN))).await;
    let backend = backend.trim_start_matches("http://");
    // `proxy_pass http://backend/;` replaces /socket.io/ with /.
    let proxy = Nginx::start(
        &binary,
        NginxConfig {
            server: format!(
                "location /socket.io/ {{ proxy_pass http://{backend}/;\n{NGINX_UPGRADE} }}"
            ),
            ..NginxConfig::default()
        },
    );
    let report = diagnose(&proxy.url("http"), &[], 1).await;
    let handshake = step(&report, "handshake");
    assert_eq!(handshake["code"], "proxy-path-rewritten");
    assert_eq!(
        text(handshake, "detail"),
        "GET /socket.io/?EIO=4&transport=polling answered 404 Not Found: body: \"\"\n\
         nginx passed the request on, but the server behind it found nothing at the path it \
         received: a proxy_pass with a path (`proxy_pass http://backend/;`, even a trailing \
         slash) rewrites /socket.io/ away"
    );
    assert!(text(handshake, "fix").starts_with("write proxy_pass without a path"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_hiding_the_cors_headers_fails_cors_and_the_preflight() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let location = format!("{NGINX_UPGRADE}\nproxy_hide_header Access-Control-Allow-Origin;");
    let proxy = proxied(&binary, &location).await;
    let report = diagnose(&proxy.url("http"), &["--origin", ORIGIN], 1).await;
    assert_eq!(step(&report, "cors")["status"], "fail");
    let preflight = step(&report, "preflight");
    assert_eq!(preflight["code"], "cors-preflight-no-origin");
    assert_eq!(
        text(preflight, "detail"),
        "the preflight answer (204 No Content) has no Access-Control-Allow-Origin for \
         http://app.test: browsers block the polling POST"
    );
    assert!(
        text(preflight, "fix")
            .contains("do not hide its headers (`proxy_hide_header Access-Control-...`)"),
        "{preflight}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_answering_the_preflight_itself_fails_the_preflight() {
    let location = format!("{NGINX_UPGRADE}\nif ($request_method = OPTIONS) {{ return 204; }}");
    let Some(report) = behind_nginx(&location, &["--origin", ORIGIN], 1).await else {
        return;
    };
    // The handshake's own CORS headers come from the server and are fine.
    assert_eq!(step(&report, "cors")["status"], "pass");
    let preflight = failed(&report, "preflight", "cors-preflight-no-origin");
    assert!(
        text(preflight, "fix").contains("let OPTIONS through to the server (no `if ($request_method = OPTIONS) { return 204; }`)"),
        "{preflight}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_adding_cors_headers_on_top_of_the_server_doubles_them() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let location =
        format!("{NGINX_UPGRADE}\nadd_header Access-Control-Allow-Origin $http_origin always;");
    let proxy = proxied(&binary, &location).await;
    let report = diagnose(&proxy.url("http"), &["--origin", ORIGIN], 1).await;
    for name in ["cors", "preflight"] {
        let failed = step(&report, name);
        assert_eq!(failed["status"], "fail", "{name}");
        assert!(
            text(failed, "detail").contains(
                "2 Access-Control-Allow-Origin headers (http://app.test, http://app.test): \
                 browsers refuse more than one"
            ),
            "{failed}"
        );
        assert!(
            text(failed, "fix").starts_with("set CORS in one place"),
            "{failed}"
        );
    }
    assert_eq!(
        step(&report, "preflight")["code"],
        "cors-preflight-duplicate-origin"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_overriding_the_allowed_origin_fails_for_the_page_origin() {
    // The server's header is replaced by a fixed origin that is not the page's.
    let location = format!(
        "{NGINX_UPGRADE}\nproxy_hide_header Access-Control-Allow-Origin;\n\
         add_header Access-Control-Allow-Origin \"https://admin.test\" always;"
    );
    let Some(report) = behind_nginx(&location, &["--origin", ORIGIN], 1).await else {
        return;
    };
    let cors = step(&report, "cors");
    assert_eq!(cors["status"], "fail");
    assert!(
        text(cors, "detail").starts_with(
            "Access-Control-Allow-Origin is \"https://admin.test\", not \"http://app.test\""
        ),
        "{cors}"
    );
    let preflight = step(&report, "preflight");
    assert_eq!(preflight["code"], "cors-preflight-wrong-origin");
    assert_eq!(
        text(preflight, "detail"),
        "the preflight answer allows origin \"https://admin.test\", not \"http://app.test\": \
         browsers block the polling POST"
    );
}
