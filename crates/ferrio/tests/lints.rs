//! The lints of `ferrio config check` that `tests/config.rs` does not show, each with its exact
//! message and exit status, run as the built binary with a clean environment; and a check that
//! every lint the gateway has is documented and shown with its exact message by some test.

use std::path::Path;
use std::process::Command;

/// `ferrio config check` in `dir` with only `PATH` and `env`: (exit status, the lint section).
fn check(dir: &Path, env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(["config", "check"])
        .output()
        .expect("run ferrio");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, "", "{env:?}");
    let lints = stdout
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no lint section in\n{stdout}"))
        .1
        .to_owned();
    (out.status.code().expect("exited"), lints)
}

/// Environment variables, as (name, value).
type Vars = &'static [(&'static str, &'static str)];

/// (environment, exit status, the exact lint section).
const CASES: &[(Vars, i32, &str)] = &[
    (
        &[("FERRIO_SERVER_ALLOWED_ORIGINS", "https://a.example/")],
        1,
        "error[allowed-origin-invalid]: server.allowed_origins entry \"https://a.example/\" has a path or a trailing slash: a browser's Origin header is scheme://host[:port] only, so it never matches\n  fix: write origins as \"https://app.example.com\" (with the port if not the default one, and no path)\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_SERVER_ALLOWED_ORIGINS", "a.example")],
        1,
        "error[allowed-origin-invalid]: server.allowed_origins entry \"a.example\" has no scheme: a browser's Origin header is scheme://host[:port] only, so it never matches\n  fix: write origins as \"https://app.example.com\" (with the port if not the default one, and no path)\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_SERVER_ALLOWED_ORIGINS", "*")],
        0,
        "warning[allowed-origins-wildcard]: server.allowed_origins contains \"*\": every origin is allowed, so the list checks nothing\n  fix: list the sites allowed to connect (server.allowed_origins = [\"https://app.example.com\"]), or leave it empty\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_SERVER_TRUSTED_PROXIES", "10.0.0.1/8")],
        1,
        "error[trusted-proxy-invalid]: server.trusted_proxies: \"10.0.0.1/8\" has bits set past its /8 prefix; the network is 10.0.0.0/8\n  fix: list the proxies' addresses or networks: \"127.0.0.1\", \"10.0.0.0/8\", \"2001:db8::/32\"\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_SERVER_TRUSTED_PROXIES", "proxy.local")],
        1,
        "error[trusted-proxy-invalid]: server.trusted_proxies: \"proxy.local\" is not an IP address or network (write 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)\n  fix: list the proxies' addresses or networks: \"127.0.0.1\", \"10.0.0.0/8\", \"2001:db8::/32\"\n1 error, 0 warnings\n",
    ),
    (
        &[
            ("FERRIO_SERVER_COOKIE", "true"),
            ("FERRIO_SERVER_COOKIE_NAME", "io;x"),
        ],
        1,
        "error[cookie-invalid]: server.cookie_name = \"io;x\" is not a cookie name, which holds only letters, digits and !#$%&'*+-.^_`|~\n  fix: write server.cookie_name as one word such as \"io\" (the default) and server.cookie_path as a path such as \"/\"\n1 error, 0 warnings\n",
    ),
    (
        &[
            ("FERRIO_SERVER_COOKIE", "true"),
            ("FERRIO_SERVER_COOKIE_PATH", "app"),
        ],
        1,
        "error[cookie-invalid]: server.cookie_path = \"app\" is not a cookie path, which starts with / and holds printable ASCII characters other than ; only\n  fix: write server.cookie_name as one word such as \"io\" (the default) and server.cookie_path as a path such as \"/\"\n1 error, 0 warnings\n",
    ),
    (
        &[
            ("FERRIO_SERVER_COOKIE", "true"),
            ("FERRIO_SERVER_COOKIE_SAME_SITE", "none"),
        ],
        1,
        "error[cookie-same-site-none-insecure]: server.cookie_same_site is \"none\" but the cookie is not Secure (server.cookie_secure is false and the server speaks plain HTTP): browsers refuse a SameSite=None cookie without Secure, so no client keeps it\n  fix: set server.cookie_secure = true if browsers reach the server over https (a proxy in front ends TLS), serve TLS here (server.tls_cert, server.tls_key), or use server.cookie_same_site = \"lax\" when the page and the server are on the same site\n1 error, 0 warnings\n",
    ),
    (
        &[
            ("FERRIO_SERVER_COOKIE", "true"),
            ("FERRIO_SERVER_COOKIE_SECURE", "true"),
            ("FERRIO_SERVER_COOKIE_SAME_SITE", "none"),
        ],
        0,
        "warning[cookie-secure-plain-http]: server.cookie_secure is true but the server speaks plain HTTP and server.trusted_proxies names no proxy in front: browsers on http:// drop a Secure cookie, so clients that reach the server directly keep no session cookie\n  fix: serve TLS here (server.tls_cert, server.tls_key), list the proxy that ends TLS in server.trusted_proxies, or set server.cookie_secure = false\n0 errors, 1 warning\n",
    ),
    (
        &[
            ("FERRIO_SERVER_COOKIE", "true"),
            ("FERRIO_SERVER_COOKIE_NAME", "token"),
        ],
        1,
        "error[cookie-name-clash]: server.cookie_name and auth.cookie_name are both \"token\": the session cookie would replace the token cookie in the browser, so the next handshake would carry a session id instead of the token\n  fix: keep the session cookie's default name \"io\", or give the two cookies different names\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_SERVER_TLS_KEY", "/etc/ferrio/key.pem")],
        1,
        "error[tls-incomplete]: server.tls_key is set but server.tls_cert is not: TLS needs both the certificate and its key\n  fix: set server.tls_cert too, or unset server.tls_key to serve plain HTTP\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_AUTH_JWKS_URL", "http://idp.example/jwks.json")],
        0,
        "warning[auth-jwks-http]: auth.jwks_url = \"http://idp.example/jwks.json\" is fetched over plain HTTP: whoever sits on the path can swap the keys and sign tokens for any user\n  fix: serve the JWKS over https://\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_AUTH_JWKS_URL", "ftp://idp.example/jwks.json")],
        1,
        "error[auth-key-invalid]: auth.jwks_url: \"ftp://idp.example/jwks.json\" uses the scheme \"ftp\": only http:// and https:// are supported\n  fix: point the setting at a readable PEM public key or JWKS file, and make auth.jwt_algorithm (if set) match the configured keys\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379")],
        0,
        "warning[cluster-redis-unused]: cluster.redis_url is set but cluster.adapter is \"local\": Redis is not used and this node shares no rooms with other nodes\n  fix: set cluster.adapter = \"redis\", or unset cluster.redis_url\n0 errors, 1 warning\n",
    ),
    (
        &[
            ("FERRIO_CLUSTER_ADAPTER", "redis"),
            ("FERRIO_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379"),
            ("FERRIO_CLUSTER_REQUEST_TIMEOUT", "0s"),
        ],
        1,
        "error[cluster-request-timeout]: cluster.request_timeout is 0: requests to the other nodes (fetch sockets, rooms, server-side emits with acks) would give up before any answer\n  fix: set cluster.request_timeout = \"5s\" (the default)\n1 error, 0 warnings\n",
    ),
    (
        &[
            ("FERRIO_CLUSTER_ADAPTER", "redis"),
            ("FERRIO_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379"),
            ("FERRIO_RECOVERY_ENABLED", "true"),
        ],
        0,
        "warning[cluster-recovery-per-node]: recovery.enabled with cluster.adapter = \"redis\": a session is held by the node the client was on; the client recovers it through any node while that node is up, and starts a new session once it is gone for good\n  fix: keep sessions sticky so clients come back to their node (deploy/nginx.conf, docs/cluster.md)\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_WEBHOOKS_DISCONNECT_URL", "http://127.0.0.1:8000/bye")],
        0,
        "warning[webhooks-unsigned]: webhooks are set but webhooks.secret is empty: the backend cannot tell the gateway's calls from anyone else's\n  fix: set webhooks.secret and check the X-Ferrio-Signature header in the backend (docs/webhooks.md)\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_HISTORY_ROOMS", "^news$")],
        0,
        "warning[history-rooms-unused]: history.rooms is set but history.enabled is false: no room keeps history\n  fix: set history.enabled = true (docs/history.md)\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_HISTORY_ENABLED", "true")],
        0,
        "warning[history-store-idle]: history.enabled opens the store, but history.rooms is empty and recovery is off: nothing is stored\n  fix: name the rooms that keep history in history.rooms, or turn recovery.enabled on to keep recovery across restarts\n0 errors, 1 warning\n",
    ),
    (
        &[
            ("FERRIO_HISTORY_ENABLED", "true"),
            ("FERRIO_HISTORY_ROOMS", "^news$"),
            ("FERRIO_HISTORY_STORE", "redis"),
        ],
        1,
        "error[history-redis-no-cluster]: history.store is \"redis\" but cluster.adapter is \"local\": the history is kept in the cluster's Redis (cluster.redis_url), and there is none\n  fix: set cluster.adapter = \"redis\" and cluster.redis_url, or history.store = \"sqlite\"\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_HISTORY_STORE", "redis")],
        0,
        "warning[history-store-unused]: history.store is \"redis\" but history.enabled is false: no history is kept\n  fix: set history.enabled = true (docs/history.md)\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_LIMITS_FANOUT_WINDOW", "100")],
        0,
        "warning[fanout-window-too-large]: limits.fanout_window is 100: pacing keeps at most 32 broadcasts in flight per client, so 32 is used\n  fix: set it between 1 and 32, or 0 to turn fan-out pacing off (docs/limits.md)\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_WS_PATH", "/socket.io")],
        1,
        "error[ws-path-invalid]: ws.path = \"/socket.io\" is already served (Socket.IO at server.path, or /health, /ready, /metrics)\n  fix: set ws.path to a free path such as \"/ws\", or ws.enabled = false\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_WS_PATH", "ws")],
        1,
        "error[ws-path-invalid]: ws.path = \"ws\" does not start with /\n  fix: set ws.path to a free path such as \"/ws\", or ws.enabled = false\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_WS_PATH", "/ws/{room}")],
        1,
        "error[ws-path-invalid]: ws.path = \"/ws/{room}\" holds {, }, *, ? or #: it is a plain path, not a pattern\n  fix: set ws.path to a free path such as \"/ws\", or ws.enabled = false\n1 error, 0 warnings\n",
    ),
];

#[test]
fn every_other_lint_with_its_exact_message_and_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    for (env, code, expected) in CASES {
        assert_eq!(
            check(dir.path(), env),
            (*code, (*expected).to_owned()),
            "{env:?}"
        );
    }
}

/// Messages that quote a dependency's error: the message up to it, then the whole fix.
#[test]
fn lints_quoting_another_parser_keep_their_own_words_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (code, lints) = check(
        dir.path(),
        &[
            ("FERRIO_CLUSTER_ADAPTER", "redis"),
            ("FERRIO_CLUSTER_REDIS_URL", "http://127.0.0.1:6379"),
        ],
    );
    assert_eq!(code, 1);
    let lines: Vec<&str> = lints.lines().collect();
    assert_eq!(lines.len(), 3, "{lints}");
    assert!(
        lines[0].starts_with(
            "error[cluster-redis-url-invalid]: cluster.redis_url: invalid Redis URL: "
        ),
        "{lints}"
    );
    assert!(
        !lints.contains("127.0.0.1:6379"),
        "the URL may hold a password: {lints}"
    );
    assert_eq!(
        lines[1..],
        [
            "  fix: write it redis://[:password@]host:port[/db] (rediss:// is not supported)",
            "1 error, 0 warnings"
        ]
    );

    let (code, lints) = check(
        dir.path(),
        &[("FERRIO_WEBHOOKS_EVENTS_URL", "backend:8000/events")],
    );
    assert_eq!(code, 1);
    assert_eq!(
        lints.lines().next(),
        Some(
            "error[webhooks-invalid]: webhooks.events_url: \"backend:8000/events\" is not a URL \
             (invalid format)"
        ),
        "{lints}"
    );
    assert!(
        lints.contains(
            "\n  fix: write each webhook as a full URL, http://host[:port]/path or https://..., "
        ),
        "{lints}"
    );
}

/// Every lint id of the gateway's source: each is in the lint table of
/// docs/configuration.md, and some test asserts a message of it in full (`id]: ` followed by
/// its text), here, in tests/config.rs, tests/tls.rs or the unit tests of lint.rs.
#[test]
fn every_lint_is_documented_and_shown_by_a_test() {
    let source = include_str!("../src/config/lint.rs");
    let (code, unit_tests) = source.split_once("#[cfg(test)]").expect("unit tests");
    let mut ids: Vec<&str> = code
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix('"')?.strip_suffix("\","))
        .filter(|id| {
            id.len() > 3
                && id.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                && id.contains('-')
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(ids.len() >= 30, "{ids:?}");
    let docs = include_str!("../../../docs/configuration.md");
    let lint_table = docs.split_once("## Lints").expect("a Lints section").1;
    let tests = [
        include_str!("config.rs"),
        include_str!("tls.rs"),
        include_str!("lints.rs"),
        unit_tests,
    ];
    for id in ids {
        assert!(
            lint_table.contains(&format!("| `{id}` |")),
            "{id} is not in the lint table of docs/configuration.md"
        );
        let shown = format!("[{id}]: ");
        assert!(
            tests.iter().any(|text| text.contains(&shown)),
            "no test shows the message of {id}"
        );
    }
}
