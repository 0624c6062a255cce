//! nginx in front of Ferrio, one test per broken setting, each asserting the exact diagnosis.
//! nginx is Debian's, run as this test's own user with a configuration in a temporary
//! directory (`ferrio_test_support::nginx`).

use std::path::Path;
use std::time::Duration;

use ferrio_test_support::nginx::{free_port, nginx_binary, Nginx, NginxConfig};

use super::{all_green, allow, doctor, ferrio, ferrio_pinging, step, text, ORIGIN};

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

/// The lines a correct nginx location has for Socket.IO.
pub(crate) const NGINX_UPGRADE: &str = "proxy_http_version 1.1;\n\
    proxy_set_header Upgrade $http_upgrade;\n\
    proxy_set_header Connection \"upgrade\";";

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_correct_nginx_all_is_green() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let backend = ferrio(Some(allow(ORIGIN))).await;
    let proxy = nginx(&binary, &backend, NGINX_UPGRADE);
    let run = doctor(&[
        &proxy.url("http"),
        "--origin",
        ORIGIN,
        "--json",
        "--timeout",
        "5s",
    ])
    .await;
    assert_eq!(run.code, 0);
    all_green(&run.json());
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_without_the_upgrade_headers_fails_the_upgrade_with_the_fix() {
    let Some(binary) = nginx_binary(WHAT) else {
        return;
    };
    let backend = ferrio(Some(allow(ORIGIN))).await;
    let proxy = nginx(&binary, &backend, "");
    let run = doctor(&[
        &proxy.url("http"),
        "--origin",
        ORIGIN,
        "--json",
        "--timeout",
        "5s",
    ])
    .await;
    assert_eq!(run.code, 1);
    let report = run.json();
    for name in ["handshake", "cors", "long-poll"] {
        assert_eq!(step(&report, name)["status"], "pass", "{name}");
    }
    for name in ["upgrade", "websocket"] {
        let failed = step(&report, name);
        assert_eq!(failed["status"], "fail", "{name}");
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
    let run = doctor(&[&proxy.url("http"), "--json", "--timeout", "5s"]).await;
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(step(&report, "upgrade")["status"], "pass");
    let heartbeat = step(&report, "heartbeat");
    assert_eq!(heartbeat["status"], "fail");
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
    let heartbeat = step(&report, "heartbeat");
    assert_eq!(heartbeat["status"], "fail");
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
    let run = doctor(&[&proxy.url("http"), "--json", "--timeout", "5s"]).await;
    assert_eq!(run.code, 1);
    let report = run.json();
    let handshake = step(&report, "handshake");
    assert_eq!(handshake["status"], "fail");
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
