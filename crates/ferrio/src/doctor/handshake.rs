//! `handshake`: the Engine.IO v4 polling handshake, the first request every default client
//! makes (status, protocol version, the open packet, ping settings). `eio3`: whether the
//! server still accepts Engine.IO v3 clients (socket.io-client v2), for information.

use std::time::Duration;

use bytes::Bytes;
use ferrio_engineio_proto::{payload, OpenData, Packet, ProtocolVersion};
use http::{Method, StatusCode};

use super::probe::{self, Response};
use super::report::Outcome;
use super::target::Target;

/// Ping settings below this many milliseconds were most likely meant as seconds.
const SECONDS_NOT_MILLIS: Duration = Duration::from_millis(200);

/// The v4 polling handshake.
pub(crate) async fn polling(target: &Target, timeout: Duration) -> Outcome {
    let query = target.query(4, "polling", None);
    let response = match probe::http(target, Method::GET, &query, &[], "").await {
        Ok(response) => response,
        Err(error) => {
            return Outcome::fail(
                format!("GET {query} failed: {error}"),
                "check that a Socket.IO server (not another service) answers on this port",
            )
        }
    };
    if response.status != StatusCode::OK {
        return refused(&response, &query);
    }
    let open = match read_open(&response.body, ProtocolVersion::V4) {
        Ok(open) => open,
        Err(outcome) => return outcome,
    };
    close(target, 4, &open.sid, timeout);
    judge_open(&open)
}

/// Reads the open packet of a handshake answer.
pub(crate) fn read_open(body: &Bytes, version: ProtocolVersion) -> Result<OpenData, Outcome> {
    let not_engine_io = || {
        Outcome::fail(
            format!(
                "answered 200 but not with an Engine.IO open packet: this is not a Socket.IO \
                 server (body: {:?})",
                probe::snippet(body)
            ),
            "check the URL's port and --path (the server's `path` option, /socket.io/ by \
             default); a proxy may route this path to another application (a web app's \
             index.html fallback)",
        )
    };
    if version == ProtocolVersion::V4 && looks_like_v3(body) {
        return Err(Outcome::fail(
            "the server answered in the Engine.IO v3 format: it is a socket.io v2 server, which \
             clients v3 and later (Engine.IO v4) cannot talk to",
            "upgrade the server to socket.io v3 or later (or Ferrio), or use socket.io-client v2",
        ));
    }
    let packets = payload::decode(body.clone(), version, false).map_err(|_| not_engine_io())?;
    match packets.first() {
        Some(Packet::Open(json)) => OpenData::parse(json).map_err(|e| {
            Outcome::fail(
                format!(
                    "the open packet is invalid: {e} (body: {:?})",
                    probe::snippet(body)
                ),
                "the server does not follow the Engine.IO protocol: upgrade it",
            )
        }),
        _ => Err(not_engine_io()),
    }
}

/// Whether a body is a v3 length-prefixed payload: `96:0{...`.
fn looks_like_v3(body: &[u8]) -> bool {
    let digits = body.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && body.get(digits) == Some(&b':')
}

/// The checks on an open packet.
pub(crate) fn judge_open(open: &OpenData) -> Outcome {
    let detail = format!(
        "Engine.IO v4, sid {:?}, upgrades {:?}, pingInterval {} ms, pingTimeout {} ms, \
         maxPayload {}",
        open.sid,
        open.upgrades,
        open.ping_interval.as_millis(),
        open.ping_timeout.as_millis(),
        open.max_payload
            .map_or_else(|| "not sent".to_owned(), |n| n.to_string())
    );
    if open.ping_interval < SECONDS_NOT_MILLIS || open.ping_timeout < SECONDS_NOT_MILLIS {
        return Outcome::warn(
            format!(
                "{detail}\npingInterval {} ms / pingTimeout {} ms look like seconds: clients \
                 ping-pong many times a second and drop on any delay",
                open.ping_interval.as_millis(),
                open.ping_timeout.as_millis()
            ),
            "the server's pingInterval and pingTimeout are in milliseconds: e.g. \
             pingInterval: 25000, pingTimeout: 20000 (the defaults)",
        );
    }
    if !open.upgrades.iter().any(|u| u == "websocket") {
        return Outcome::warn(
            format!(
                "{detail}\nthe server offers no upgrade to WebSocket: clients stay on long-polling"
            ),
            "enable the websocket transport and upgrades on the server (transports: \
             [\"polling\", \"websocket\"], allowUpgrades: true)",
        );
    }
    Outcome::pass(detail)
}

/// What a non-200 handshake answer means.
fn refused(response: &Response, query: &str) -> Outcome {
    let (code, message) = engine_error(&response.body);
    let status = response.status;
    let said = message.as_deref().map_or_else(
        || format!("body: {:?}", response.body_start()),
        |m| format!("{m:?}"),
    );
    let why = format!("GET {query} answered {status}: {said}");
    let fix = match (status.as_u16(), code) {
        (400, Some(0)) => "the server does not accept long-polling (its transports exclude \
                           \"polling\"): either enable polling on the server, or configure every \
                           client with transports: [\"websocket\"]"
            .to_owned(),
        (400, Some(5)) => "the server refuses Engine.IO v4 clients: it is older than socket.io \
                           v3; upgrade it"
            .to_owned(),
        (403, _) => "the server's allowRequest (or origin check) refused the handshake: check \
                     its rules for this client"
            .to_owned(),
        (404, _) if probe::from_nginx(response) => {
            return Outcome::fail(
                format!(
                    "{why}\nnginx answered 404 itself: no location block forwards {} to the \
                     Socket.IO server",
                    path_of(query)
                ),
                format!(
                    "add to the nginx server block (with the path clients use, --path):\n\
                     location {} {{\n\
                     \x20   proxy_pass http://127.0.0.1:3000;\n\
                     \x20   proxy_http_version 1.1;\n\
                     \x20   proxy_set_header Upgrade $http_upgrade;\n\
                     \x20   proxy_set_header Connection \"upgrade\";\n\
                     }}",
                    path_of(query)
                ),
            )
            .code("proxy-no-location");
        }
        (404, _) if probe::through_nginx(response) => {
            return Outcome::fail(
                format!(
                    "{why}\nnginx passed the request on, but the server behind it found \
                     nothing at the path it received: a proxy_pass with a path (`proxy_pass \
                     http://backend/;`, even a trailing slash) rewrites {} away",
                    path_of(query)
                ),
                "write proxy_pass without a path (`proxy_pass http://127.0.0.1:3000;`) so \
                 that the path reaches the server unchanged, or set the server's path to the \
                 one it receives",
            )
            .code("proxy-path-rewritten");
        }
        (404, _) => "nothing answers at this path: check --path (the server's `path` option, \
                     /socket.io/ by default) and that the proxy forwards it to the server"
            .to_owned(),
        (503, Some(_)) => "the server is refusing connections (a connection limit); check its \
                           limits and load"
            .to_owned(),
        (502..=504, _) => {
            let fix = "the proxy in front cannot reach the Socket.IO server: check that the \
                       backend is up and the proxy's upstream address";
            return Outcome::fail(why, fix).code("proxy-upstream-unreachable");
        }
        (429, _) => "the server is refusing connections (a connection or rate limit); \
                           check its limits and load"
            .to_owned(),
        _ if code.is_some() => {
            "the Socket.IO server refused the handshake: see its message".to_owned()
        }
        _ => "this does not look like a Socket.IO server: check the URL, the port and --path"
            .to_owned(),
    };
    Outcome::fail(why, fix)
}

/// The path of a path and query.
fn path_of(query: &str) -> &str {
    query.split('?').next().unwrap_or(query)
}

/// The `{"code":N,"message":"..."}` of an Engine.IO error answer.
fn engine_error(body: &[u8]) -> (Option<u64>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    (
        value.get("code").and_then(serde_json::Value::as_u64),
        value
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_owned),
    )
}

/// Closes a session the doctor opened, in the background; the answer does not matter.
pub(crate) fn close(target: &Target, eio: u8, sid: &str, timeout: Duration) {
    let target = target.clone();
    let query = target.query(eio, "polling", Some(sid));
    let body = if eio == 3 { "1:1" } else { "1" };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(
            timeout,
            probe::http(&target, Method::POST, &query, &[], body),
        )
        .await;
    });
}

/// The Engine.IO v3 handshake that socket.io-client v2 makes.
pub(crate) async fn eio3(target: &Target, timeout: Duration) -> Outcome {
    let query = target.query(3, "polling", None);
    let response = match probe::http(target, Method::GET, &query, &[], "").await {
        Ok(response) => response,
        Err(error) => {
            return Outcome::info(
                format!("GET {query} failed: {error}"),
                "only matters for socket.io-client v2 apps",
            )
        }
    };
    if response.status == StatusCode::OK {
        if let Ok(open) = read_open(&response.body, ProtocolVersion::V3) {
            close(target, 3, &open.sid, timeout);
            return Outcome::pass("Engine.IO v3 clients (socket.io-client v2) are accepted");
        }
    }
    let (_, message) = engine_error(&response.body);
    Outcome::info(
        format!(
            "Engine.IO v3 clients (socket.io-client v2) are refused: {} {}",
            response.status,
            message.unwrap_or_else(|| response.body_start())
        ),
        "only if old socket.io-client v2 apps must connect: on a Node server set \
         `allowEIO3: true`; Ferrio accepts them by default (EngineConfig::allow_eio3)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(interval: u64, timeout: u64, upgrades: &[&str]) -> OpenData {
        OpenData {
            sid: "abc".into(),
            upgrades: upgrades.iter().map(|s| (*s).to_owned()).collect(),
            ping_interval: Duration::from_millis(interval),
            ping_timeout: Duration::from_millis(timeout),
            max_payload: Some(1_000_000),
        }
    }

    #[test]
    fn ping_settings_in_seconds_are_flagged() {
        assert_eq!(
            judge_open(&open(25_000, 20_000, &["websocket"])).status,
            super::super::Status::Pass
        );
        let outcome = judge_open(&open(25, 20, &["websocket"]));
        assert_eq!(outcome.status, super::super::Status::Warn);
        assert!(
            outcome.detail.contains("look like seconds"),
            "{}",
            outcome.detail
        );
        assert_eq!(
            judge_open(&open(25_000, 20_000, &[])).status,
            super::super::Status::Warn
        );
    }

    #[test]
    fn recognizes_open_packets_and_impostors() {
        let v4 = Bytes::from_static(
            br#"0{"sid":"x","upgrades":["websocket"],"pingInterval":1,"pingTimeout":2}"#,
        );
        assert_eq!(read_open(&v4, ProtocolVersion::V4).expect("open").sid, "x");
        let v3 = Bytes::from_static(
            br#"70:0{"sid":"x","upgrades":["websocket"],"pingInterval":1,"pingTimeout":2}2:40"#,
        );
        assert_eq!(read_open(&v3, ProtocolVersion::V3).expect("open").sid, "x");
        let outcome = read_open(&v3, ProtocolVersion::V4).expect_err("v3 only");
        assert!(outcome.detail.contains("socket.io v2 server"));
        let html = Bytes::from_static(b"<html>hello</html>");
        let outcome = read_open(&html, ProtocolVersion::V4).expect_err("not engine.io");
        assert!(
            outcome.detail.contains("not a Socket.IO server"),
            "{}",
            outcome.detail
        );
    }
}
