//! `preflight`: the `OPTIONS` request a browser sends before a cross-origin polling `POST`
//! with a non-simple header (`Access-Control-Request-Method: POST`,
//! `Access-Control-Request-Headers: content-type`), and whether its answer lets the `POST`
//! through: the status, `Access-Control-Allow-Origin` (once, and the page's origin),
//! `Access-Control-Allow-Methods`, `Access-Control-Allow-Headers`, and
//! `Access-Control-Allow-Credentials` for clients with credentials.

use http::Method;

use super::cors::{server_fix, NGINX_CORS_HINT};
use super::probe::{self, Response};
use super::report::Outcome;
use super::target::Target;

/// The header the preflight asks for.
const REQUESTED_HEADER: &str = "content-type";

/// Sends the preflight of a polling `POST` from `origin` and judges the answer.
pub(crate) async fn preflight(target: &Target, origin: Option<&str>) -> Outcome {
    let Some(origin) = origin else {
        return Outcome::skip("no --origin given: the preflight is a browser's, from an origin");
    };
    let query = target.query(4, "polling", None);
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", REQUESTED_HEADER),
    ];
    match probe::http(target, Method::OPTIONS, &query, &headers, "").await {
        Ok(response) => judge_preflight(origin, &query, &response),
        Err(error) => Outcome::fail(
            format!("OPTIONS {query} with Origin {origin} failed: {error}"),
            "the server or the proxy drops OPTIONS requests: check its rules",
        ),
    }
}

/// The verdict on a preflight answer.
fn judge_preflight(origin: &str, query: &str, response: &Response) -> Outcome {
    let fix = |extra: &str| format!("{}{extra}\n{NGINX_CORS_HINT}", server_fix(origin));
    let status = response.status;
    if !status.is_success() {
        let why = match status.as_u16() {
            403 => {
                "the server refused the origin (Ferrio: `server.allowed_origins` does not list \
                    it)"
            }
            404 => "nothing answers OPTIONS at this path",
            405 => {
                "OPTIONS is not allowed here (nginx `limit_except`, or an application \
                    framework answering before Socket.IO)"
            }
            _ => "a preflight must be answered 200 or 204",
        };
        return Outcome::fail(
            format!(
                "OPTIONS {query} from {origin} answered {status}: {why}: browsers then \
                     block the polling POST"
            ),
            fix(""),
        )
        .code("cors-preflight-status");
    }
    let origins: Vec<&str> = response
        .headers
        .get_all("access-control-allow-origin")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let allowed = match origins.as_slice() {
        [] => {
            return Outcome::fail(
                format!(
                    "the preflight answer ({status}) has no Access-Control-Allow-Origin for \
                     {origin}: browsers block the polling POST"
                ),
                fix(""),
            )
            .code("cors-preflight-no-origin")
        }
        [one] => *one,
        many => {
            return Outcome::fail(
                format!(
                    "the preflight answer has {} Access-Control-Allow-Origin headers ({}): \
                     browsers refuse more than one",
                    many.len(),
                    many.join(", ")
                ),
                format!(
                    "set CORS in one place: the server's settings or the proxy's add_header, \
                     not both\n{NGINX_CORS_HINT}"
                ),
            )
            .code("cors-preflight-duplicate-origin");
        }
    };
    if allowed != "*" && allowed != origin {
        return Outcome::fail(
            format!(
                "the preflight answer allows origin {allowed:?}, not {origin:?}: browsers block \
                 the polling POST"
            ),
            fix(""),
        )
        .code("cors-preflight-wrong-origin");
    }
    let list = |name: &str| -> Option<Vec<String>> {
        let values: Vec<String> = response
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|item| item.trim().to_ascii_lowercase())
            .filter(|item| !item.is_empty())
            .collect();
        (!values.is_empty()).then_some(values)
    };
    let credentials = response
        .header("access-control-allow-credentials")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // `*` is a wildcard only for requests without credentials.
    let wildcard = |items: &[String]| !credentials && items.iter().any(|i| i == "*");
    let headers = list("access-control-allow-headers");
    let headers_ok = headers
        .as_deref()
        .is_some_and(|h| wildcard(h) || h.iter().any(|i| i == REQUESTED_HEADER));
    if !headers_ok {
        let said = headers.map_or_else(|| "absent".to_owned(), |h| format!("{:?}", h.join(",")));
        return Outcome::fail(
            format!(
                "the preflight asked for header {REQUESTED_HEADER} and Access-Control-Allow-Headers \
                 is {said}: browsers block a POST that sends it"
            ),
            fix(&format!(
                " (or list it: `cors.headers = [\"{REQUESTED_HEADER}\"]`)"
            )),
        )
        .code("cors-preflight-headers");
    }
    let methods = list("access-control-allow-methods");
    let methods_text = methods
        .as_ref()
        .map_or_else(|| "absent".to_owned(), |m| m.join(",").to_ascii_uppercase());
    let methods_ok = methods
        .as_deref()
        .is_some_and(|m| wildcard(m) || m.iter().any(|i| i == "post"));
    let summary = format!(
        "OPTIONS answered {status}: Access-Control-Allow-Origin {allowed}, \
         Access-Control-Allow-Methods {methods_text}, Access-Control-Allow-Headers {}",
        response
            .header("access-control-allow-headers")
            .unwrap_or_default()
    );
    if !methods_ok {
        // POST is a CORS-safelisted method: browsers send it whatever this header says, so
        // a wrong list breaks nothing today; it is still wrong.
        return Outcome::warn(
            format!(
                "{summary}\nAccess-Control-Allow-Methods does not list POST: browsers still \
                 send the polling POST (POST needs no permission), but the list is wrong"
            ),
            fix(" (`cors.methods = [\"GET\", \"POST\"]`, the default)"),
        )
        .code("cors-preflight-methods");
    }
    if allowed == "*" || !credentials {
        return Outcome::warn(
            format!(
                "{summary}\nwithout credentials only: {}, so clients with \
                 withCredentials: true are blocked",
                if allowed == "*" {
                    "browsers refuse Access-Control-Allow-Origin `*` with credentials"
                } else {
                    "there is no Access-Control-Allow-Credentials: true"
                }
            ),
            fix(""),
        )
        .code("cors-preflight-no-credentials");
    }
    Outcome::pass(format!("{summary}, Access-Control-Allow-Credentials true"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::cors::tests::response;
    use crate::doctor::report::Status;
    use http::StatusCode;

    fn preflight(headers: &[(&'static str, &'static str)]) -> Outcome {
        let mut answer = response(headers);
        answer.status = StatusCode::NO_CONTENT;
        judge_preflight("https://app.example", "/socket.io/", &answer)
    }

    #[test]
    fn preflight_verdicts() {
        let o = "https://app.example";
        let good = preflight(&[
            ("access-control-allow-origin", o),
            ("access-control-allow-methods", "GET, POST"),
            ("access-control-allow-headers", "Content-Type"),
            ("access-control-allow-credentials", "true"),
        ]);
        assert_eq!(good.status, Status::Pass, "{}", good.detail);

        // POST needs no permission: a wrong method list is a warning.
        let methods = preflight(&[
            ("access-control-allow-origin", o),
            ("access-control-allow-methods", "GET"),
            ("access-control-allow-headers", "content-type"),
            ("access-control-allow-credentials", "true"),
        ]);
        assert_eq!(methods.code, Some("cors-preflight-methods"));
        assert_eq!(methods.status, Status::Warn);

        // `*` allows any header without credentials, and none with them.
        let star = [
            ("access-control-allow-origin", o),
            ("access-control-allow-methods", "*"),
            ("access-control-allow-headers", "*"),
        ];
        assert_eq!(preflight(&star).code, Some("cors-preflight-no-credentials"));
        let mut with_credentials = star.to_vec();
        with_credentials.push(("access-control-allow-credentials", "true"));
        let refused = preflight(&with_credentials);
        assert_eq!(refused.code, Some("cors-preflight-headers"));
        assert_eq!(
            refused.detail,
            "the preflight asked for header content-type and Access-Control-Allow-Headers is \
             \"*\": browsers block a POST that sends it"
        );

        let mut forbidden = response(&[]);
        forbidden.status = StatusCode::FORBIDDEN;
        let outcome = judge_preflight(o, "/socket.io/?EIO=4", &forbidden);
        assert_eq!(outcome.code, Some("cors-preflight-status"));
        assert!(outcome
            .detail
            .contains("answered 403 Forbidden: the server refused the origin"));
    }
}
