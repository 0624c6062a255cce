//! `cors`: what a browser page at `--origin` would be told by the handshake's CORS headers,
//! without credentials (the client's default) and with them (`withCredentials: true`, for
//! cookies such as a load balancer's sticky-session cookie).
//!
//! The settings named in every CORS fix are here too, for the `preflight` step.

use std::time::Duration;

use ferrio_engineio_proto::ProtocolVersion;
use http::{Method, StatusCode};

use super::handshake;
use super::probe::{self, Response};
use super::report::Outcome;
use super::target::Target;

/// Sends the handshake with `Origin: origin` and judges the answer's CORS headers.
pub(crate) async fn check(target: &Target, origin: Option<&str>, timeout: Duration) -> Outcome {
    let Some(origin) = origin else {
        return Outcome::skip(
            "no --origin given: pass the origin of the web page that connects \
             (--origin https://app.example.com) to check CORS",
        );
    };
    let query = target.query(4, "polling", None);
    let response = match probe::http(target, Method::GET, &query, &[("origin", origin)], "").await {
        Ok(response) => response,
        Err(error) => {
            return Outcome::fail(
                format!("the handshake with Origin {origin} failed: {error}"),
                "the server or the proxy drops requests from this origin: check its rules",
            )
        }
    };
    if response.status == StatusCode::OK {
        if let Ok(open) = handshake::read_open(&response.body, ProtocolVersion::V4) {
            handshake::close(target, 4, &open.sid, timeout);
        }
    } else {
        return Outcome::fail(
            format!(
                "the handshake with Origin {origin} was refused: {} {:?}",
                response.status,
                response.body_start()
            ),
            format!(
                "the server refuses requests from {origin}: add it to the origins it allows \
                 (Ferrio: EngineConfig::allowed_origins; Node: allowRequest)"
            ),
        );
    }
    judge(origin, &response)
}

/// The settings that make the server answer CORS for `origin`, in every form.
pub(crate) fn server_fix(origin: &str) -> String {
    format!(
        "Ferrio: `cors.origins = [\"{origin}\"]` (FERRIO_CORS_ORIGINS), `cors.credentials = \
         true` for clients with credentials, `cors.headers` empty (it then allows what the \
         browser asks for); Node: `new Server(httpServer, {{ cors: {{ origin: \"{origin}\", \
         credentials: true }} }})`"
    )
}

/// The nginx hint: where headers get lost or doubled on the way.
pub(crate) const NGINX_CORS_HINT: &str = "behind nginx: let OPTIONS through to the server (no `if \
    ($request_method = OPTIONS) { return 204; }`), do not hide its headers \
    (`proxy_hide_header Access-Control-...`), and set CORS in one place only: either the \
    server's settings, or nginx `add_header Access-Control-Allow-Origin $http_origin always;` \
    (with Allow-Methods, Allow-Headers, Allow-Credentials) and none in the server";

/// The CORS verdict on a successful handshake answer.
fn judge(origin: &str, response: &Response) -> Outcome {
    let all: Vec<&str> = response
        .headers
        .get_all("access-control-allow-origin")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if all.len() > 1 {
        return Outcome::fail(
            format!(
                "the handshake answer has {} Access-Control-Allow-Origin headers ({}): \
                 browsers refuse more than one",
                all.len(),
                all.join(", ")
            ),
            format!(
                "set CORS in one place: the server's settings or the proxy's add_header, not \
                 both\n{NGINX_CORS_HINT}"
            ),
        )
        .code("cors-duplicate-origin");
    }
    let allow_origin = response.header("access-control-allow-origin");
    let credentials = response
        .header("access-control-allow-credentials")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let fix_plain = format!(
        "allow the origin on the server: Node `new Server(httpServer, {{ cors: {{ origin: \
         \"{origin}\" }} }})`; Ferrio: EngineConfig::cors = \
         CorsConfig::new(AllowOrigin::List(vec![\"{origin}\".into()])); and check that no \
         proxy strips or rewrites the Access-Control-* headers"
    );
    let fix_credentials = format!(
        "answer with the exact origin and credentials: Node `cors: {{ origin: \"{origin}\", \
         credentials: true }}`; Ferrio: CorsConfig {{ origin: AllowOrigin::List(vec![\"{origin}\"\
         .into()]), credentials: true, .. }}. Only needed when clients use \
         withCredentials: true (cookies, sticky sessions)"
    );
    match allow_origin {
        None => Outcome::fail(
            format!(
                "no Access-Control-Allow-Origin for origin {origin}: browsers on {origin} \
                 cannot read the handshake (\"blocked by CORS policy\")"
            ),
            fix_plain,
        ),
        Some(allowed) if allowed != "*" && allowed != origin => Outcome::fail(
            format!(
                "Access-Control-Allow-Origin is {allowed:?}, not {origin:?}: browsers on \
                 {origin} cannot read the handshake (\"blocked by CORS policy\")"
            ),
            fix_plain,
        ),
        Some("*") => Outcome::warn(
            format!(
                "origin {origin} allowed without credentials (Access-Control-Allow-Origin: *), \
                 but browsers refuse `*` with credentials: clients with withCredentials: true \
                 fail"
            ),
            fix_credentials,
        ),
        Some(_) if !credentials => Outcome::warn(
            format!(
                "origin {origin} allowed without credentials, but there is no \
                 Access-Control-Allow-Credentials: true: clients with withCredentials: true fail"
            ),
            fix_credentials,
        ),
        Some(_) => Outcome::pass(format!(
            "origin {origin} allowed, with and without credentials \
             (Access-Control-Allow-Origin: {origin}, Access-Control-Allow-Credentials: true)"
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::doctor::report::Status;
    use bytes::Bytes;
    use http::HeaderMap;

    pub(crate) fn response(headers: &[(&'static str, &'static str)]) -> Response {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header"));
        }
        Response {
            status: StatusCode::OK,
            headers: map,
            body: Bytes::new(),
        }
    }

    #[test]
    fn verdicts() {
        let o = "https://app.example";
        assert_eq!(judge(o, &response(&[])).status, Status::Fail);
        let other = judge(
            o,
            &response(&[("access-control-allow-origin", "https://x")]),
        );
        assert_eq!(other.status, Status::Fail);
        assert!(other.detail.contains("not \"https://app.example\""));
        let star = judge(
            o,
            &response(&[
                ("access-control-allow-origin", "*"),
                ("access-control-allow-credentials", "true"),
            ]),
        );
        assert_eq!(star.status, Status::Warn);
        assert!(star.detail.contains("refuse `*` with credentials"));
        let no_credentials = judge(o, &response(&[("access-control-allow-origin", o)]));
        assert_eq!(no_credentials.status, Status::Warn);
        let good = judge(
            o,
            &response(&[
                ("access-control-allow-origin", o),
                ("access-control-allow-credentials", "true"),
            ]),
        );
        assert_eq!(good.status, Status::Pass);
    }
}
