//! `ferrio config check`'s lints: settings that are valid but will not do what was meant.
//!
//! Each lint has a stable id and an exact message; errors stop `ferrio serve` and make
//! `ferrio config check` exit 1, warnings explain the fix.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::duration::{self, Written};
use super::keys::{self, Kind};
use super::model::{AdapterKind, Config, HistoryStoreKind, SameSite, Transport};
use super::sources::{Loaded, Source};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Probably not what was meant; the server runs.
    Warning,
    /// The server would not work as configured.
    Error,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lint {
    /// Stable id, e.g. `cors-wildcard-credentials`.
    pub(crate) id: &'static str,
    /// Error or warning.
    pub(crate) severity: Severity,
    /// What is wrong.
    pub(crate) message: String,
    /// How to fix it.
    pub(crate) fix: String,
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{severity}[{}]: {}\n  fix: {}",
            self.id, self.message, self.fix
        )
    }
}

/// A typical reverse proxy's read timeout (nginx `proxy_read_timeout`, AWS ALB idle timeout).
pub(crate) const PROXY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Below this an upgrade fails on slow networks.
pub(crate) const MIN_UPGRADE_TIMEOUT: Duration = Duration::from_secs(3);
/// Above this a payload limit is "huge".
pub(crate) const HUGE_PAYLOAD: u64 = 10_000_000;
/// Shortest HS256 secret not flagged.
pub(crate) const MIN_SECRET_BYTES: usize = 32;

/// The duration keys whose size is checked against their unit, with the longest plausible value.
const DURATION_RANGES: &[(&str, Duration)] = &[
    ("heartbeat.ping_interval", Duration::from_secs(3600)),
    ("heartbeat.ping_timeout", Duration::from_secs(3600)),
    ("heartbeat.upgrade_timeout", Duration::from_secs(3600)),
    ("heartbeat.connect_timeout", Duration::from_secs(3600)),
    ("limits.polling_body_timeout", Duration::from_secs(3600)),
    ("recovery.window", Duration::from_secs(24 * 3600)),
    ("auth.leeway", Duration::from_secs(3600)),
    ("cluster.request_timeout", Duration::from_secs(3600)),
    ("server.shutdown_timeout", Duration::from_secs(3600)),
    ("webhooks.timeout", Duration::from_secs(3600)),
    ("ws.ping_interval", Duration::from_secs(3600)),
    ("ws.ping_timeout", Duration::from_secs(3600)),
    ("auth.jwks_cache_ttl", Duration::from_secs(7 * 24 * 3600)),
];

fn lint(id: &'static str, severity: Severity, message: String, fix: impl Into<String>) -> Lint {
    Lint {
        id,
        severity,
        message,
        fix: fix.into(),
    }
}

/// Every finding on a loaded configuration, errors first, each group in key order.
pub(crate) fn check(loaded: &Loaded) -> Vec<Lint> {
    let config = &loaded.config;
    let mut out = Vec::new();
    let unit_flagged = duration_units(loaded, &mut out);
    server(config, &mut out);
    listener(config, &mut out);
    cookie(config, &mut out);
    cors(config, &mut out);
    heartbeat(config, &unit_flagged, &mut out);
    transports(config, &mut out);
    payload(config, &mut out);
    fanout_window(config, &mut out);
    log(config, &mut out);
    auth(config, &mut out);
    rooms(config, &mut out);
    history(config, &mut out);
    api(config, &mut out);
    webhooks(config, &mut out);
    ws(config, &mut out);
    cluster(config, &mut out);
    environment(loaded, &mut out);
    out.sort_by_key(|l| std::cmp::Reverse(l.severity));
    out
}

/// `duration-unit`: returns the keys it flagged.
fn duration_units(loaded: &Loaded, out: &mut Vec<Lint>) -> Vec<&'static str> {
    let mut flagged = Vec::new();
    for (name, max) in DURATION_RANGES {
        let origin = loaded.origin(name);
        if origin.source == Source::Default {
            continue;
        }
        let given = origin.given.trim().trim_matches('"');
        let Ok((value, written)) = duration::parse_written(given) else {
            continue;
        };
        if written == Written::Bare && value < Duration::from_secs(1) && !value.is_zero() {
            out.push(lint(
                "duration-unit",
                Severity::Warning,
                format!(
                    "{name} = {given} ({}) is read as {given} milliseconds, since a bare number \
                     is milliseconds; that is very short, {given} seconds was probably meant",
                    origin.source
                ),
                format!(
                    "write \"{given}s\" for seconds, or \"{given}ms\" if milliseconds are meant"
                ),
            ));
            flagged.push(*name);
        } else if value > *max && written == Written::Seconds {
            let number = given.trim_end_matches('s');
            out.push(lint(
                "duration-unit",
                Severity::Warning,
                format!(
                    "{name} = {given} ({}) is {}, far longer than it should be; \
                     {number} milliseconds was probably meant",
                    origin.source,
                    duration::human(value)
                ),
                format!(
                    "write \"{number}ms\" (or {number} as a bare number, which is milliseconds)"
                ),
            ));
            flagged.push(*name);
        }
    }
    flagged
}

fn server(config: &Config, out: &mut Vec<Lint>) {
    if !config.server.path.starts_with('/') {
        out.push(lint(
            "server-path",
            Severity::Error,
            format!(
                "server.path = {:?} does not start with \"/\"",
                config.server.path
            ),
            format!("write \"/{}\"", config.server.path),
        ));
    }
}

/// TLS files, the origin allow-list and the trusted proxies.
fn listener(config: &Config, out: &mut Vec<Lint>) {
    let server = &config.server;
    match (server.tls_cert.is_empty(), server.tls_key.is_empty()) {
        (true, true) => {}
        (false, false) => {
            let (cert, key) = (Path::new(&server.tls_cert), Path::new(&server.tls_key));
            if let Err(e) = ferrio_engineio::check_tls_files(cert, key) {
                out.push(lint(
                    "tls-files-invalid",
                    Severity::Error,
                    format!("server.tls_cert / server.tls_key: {e}"),
                    "point server.tls_cert at the PEM certificate chain (leaf first) and \
                     server.tls_key at its PEM private key, both readable by the server",
                ));
            }
        }
        (cert_missing, _) => {
            let (set, unset) = if cert_missing {
                ("server.tls_key", "server.tls_cert")
            } else {
                ("server.tls_cert", "server.tls_key")
            };
            out.push(lint(
                "tls-incomplete",
                Severity::Error,
                format!(
                    "{set} is set but {unset} is not: TLS needs both the certificate and its key"
                ),
                format!("set {unset} too, or unset {set} to serve plain HTTP"),
            ));
        }
    }
    for origin in &server.allowed_origins {
        if origin == "*" {
            out.push(lint(
                "allowed-origins-wildcard",
                Severity::Warning,
                "server.allowed_origins contains \"*\": every origin is allowed, so the list \
                 checks nothing"
                    .to_owned(),
                "list the sites allowed to connect (server.allowed_origins = \
                 [\"https://app.example.com\"]), or leave it empty",
            ));
        } else if let Some(problem) = origin_problem(origin) {
            out.push(lint(
                "allowed-origin-invalid",
                Severity::Error,
                format!(
                    "server.allowed_origins entry {origin:?} {problem}: a browser's Origin header \
                     is scheme://host[:port] only, so it never matches"
                ),
                "write origins as \"https://app.example.com\" (with the port if not the \
                 default one, and no path)",
            ));
        }
    }
    for entry in &server.trusted_proxies {
        if let Err(e) = entry.parse::<ferrio_engineio::IpNet>() {
            out.push(lint(
                "trusted-proxy-invalid",
                Severity::Error,
                format!("server.trusted_proxies: {e}"),
                "list the proxies' addresses or networks: \"127.0.0.1\", \"10.0.0.0/8\", \
                 \"2001:db8::/32\"",
            ));
        }
    }
}

/// The session cookie: what browsers would refuse or drop.
fn cookie(config: &Config, out: &mut Vec<Lint>) {
    let server = &config.server;
    if !server.cookie {
        return;
    }
    if let Some(problem) = crate::config::build::cookie_problem(server) {
        out.push(lint(
            "cookie-invalid",
            Severity::Error,
            problem,
            "write server.cookie_name as one word such as \"io\" (the default) and \
             server.cookie_path as a path such as \"/\"",
        ));
    }
    if server.cookie_same_site == SameSite::None && !server.cookie_is_secure() {
        out.push(lint(
            "cookie-same-site-none-insecure",
            Severity::Error,
            "server.cookie_same_site is \"none\" but the cookie is not Secure (server.cookie_secure \
             is false and the server speaks plain HTTP): browsers refuse a SameSite=None cookie \
             without Secure, so no client keeps it"
                .to_owned(),
            "set server.cookie_secure = true if browsers reach the server over https (a proxy in \
             front ends TLS), serve TLS here (server.tls_cert, server.tls_key), or use \
             server.cookie_same_site = \"lax\" when the page and the server are on the same site",
        ));
    }
    if server.cookie_secure && !server.speaks_tls() && server.trusted_proxies.is_empty() {
        out.push(lint(
            "cookie-secure-plain-http",
            Severity::Warning,
            "server.cookie_secure is true but the server speaks plain HTTP and \
             server.trusted_proxies names no proxy in front: browsers on http:// drop a Secure \
             cookie, so clients that reach the server directly keep no session cookie"
                .to_owned(),
            "serve TLS here (server.tls_cert, server.tls_key), list the proxy that ends TLS in \
             server.trusted_proxies, or set server.cookie_secure = false",
        ));
    }
    let auth_cookie = &config.auth.cookie_name;
    if !auth_cookie.is_empty() && *auth_cookie == server.cookie_name {
        out.push(lint(
            "cookie-name-clash",
            Severity::Error,
            format!(
                "server.cookie_name and auth.cookie_name are both {auth_cookie:?}: the session \
                 cookie would replace the token cookie in the browser, so the next handshake \
                 would carry a session id instead of the token"
            ),
            "keep the session cookie's default name \"io\", or give the two cookies different \
             names",
        ));
    }
}

/// What makes an origin one that a browser never sends, if anything.
fn origin_problem(origin: &str) -> Option<&'static str> {
    match origin.split_once("://") {
        None => Some("has no scheme"),
        Some((_, rest)) if rest.contains('/') => Some("has a path or a trailing slash"),
        Some(_) => None,
    }
}

fn cors(config: &Config, out: &mut Vec<Lint>) {
    let cors = &config.cors;
    if cors.credentials && cors.origins.iter().any(|o| o == "*") {
        out.push(lint(
            "cors-wildcard-credentials",
            Severity::Error,
            "cors.origins allows \"*\" while cors.credentials is true: browsers refuse a \
             credentialed response whose Access-Control-Allow-Origin is \"*\""
                .to_owned(),
            "list the exact origins (cors.origins = [\"https://app.example.com\"]), \
             or set cors.credentials = false",
        ));
    }
    for origin in cors.origins.iter().filter(|o| *o != "*") {
        let Some((scheme, rest)) = origin.split_once("://") else {
            out.push(lint(
                "cors-origin-scheme",
                Severity::Error,
                format!(
                    "cors.origins entry {origin:?} has no scheme: a browser's Origin header is \
                     always scheme://host[:port], so it never matches"
                ),
                format!("write \"https://{origin}\" (or http:// for a plain-HTTP site)"),
            ));
            continue;
        };
        if let Some(at) = rest.find('/') {
            let bare = format!("{scheme}://{}", &rest[..at]);
            out.push(lint(
                "cors-origin-path",
                Severity::Error,
                format!(
                    "cors.origins entry {origin:?} has a path or a trailing slash: a browser's \
                     Origin header is scheme://host[:port] only, so it never matches"
                ),
                format!("write {bare:?}"),
            ));
        }
    }
}

fn heartbeat(config: &Config, unit_flagged: &[&str], out: &mut Vec<Lint>) {
    let hb = &config.heartbeat;
    if hb.ping_interval >= PROXY_READ_TIMEOUT {
        out.push(lint(
            "heartbeat-proxy-timeout",
            Severity::Warning,
            format!(
                "heartbeat.ping_interval is {}: a reverse proxy's usual read timeout (60s: \
                 nginx proxy_read_timeout, AWS ALB idle timeout) closes an idle WebSocket or a \
                 held long-polling request before the next ping, and clients reconnect over and \
                 over",
                duration::format(hb.ping_interval)
            ),
            "keep heartbeat.ping_interval well below 60s (25s is the default), or raise the \
             proxy's read timeout above ping_interval + ping_timeout",
        ));
    }
    if hb.upgrade_timeout < MIN_UPGRADE_TIMEOUT
        && !unit_flagged.contains(&"heartbeat.upgrade_timeout")
    {
        out.push(lint(
            "upgrade-timeout-short",
            Severity::Warning,
            format!(
                "heartbeat.upgrade_timeout is {}: on slow or mobile networks opening and probing \
                 the WebSocket takes longer, so upgrades fail and clients stay on long-polling",
                duration::format(hb.upgrade_timeout)
            ),
            "use at least 3s (10s is the default)",
        ));
    }
}

fn transports(config: &Config, out: &mut Vec<Lint>) {
    let list = &config.engine.transports;
    if list.is_empty() {
        out.push(lint(
            "transports-empty",
            Severity::Error,
            "engine.transports is empty: no client can connect".to_owned(),
            "set engine.transports = [\"polling\", \"websocket\"]",
        ));
    } else if !list.contains(&Transport::Polling) {
        out.push(lint(
            "transports-websocket-only",
            Severity::Warning,
            "engine.transports is [\"websocket\"] only: there is no long-polling fallback, so \
             clients behind proxies or networks that block WebSocket cannot connect, and clients \
             that start with polling (the default of socket.io-client) are refused"
                .to_owned(),
            "add \"polling\" (engine.transports = [\"polling\", \"websocket\"]), or configure \
             every client with transports: [\"websocket\"]",
        ));
    }
}

fn payload(config: &Config, out: &mut Vec<Lint>) {
    let max = config.limits.max_payload;
    if max > HUGE_PAYLOAD {
        out.push(lint(
            "payload-huge",
            Severity::Warning,
            format!(
                "limits.max_payload is {max} bytes ({} MB): the server may buffer a message this \
                 large for every connection, so a few clients can exhaust its memory",
                max / 1_000_000
            ),
            "keep it near the largest message the application sends (1000000, 1 MB, is the \
             default) and send large files over plain HTTP",
        ));
    }
}

fn fanout_window(config: &Config, out: &mut Vec<Lint>) {
    let window = config.limits.fanout_window;
    let max = u64::from(ferrio_engineio::MAX_FANOUT_WINDOW);
    if window > max {
        out.push(lint(
            "fanout-window-too-large",
            Severity::Warning,
            format!(
                "limits.fanout_window is {window}: pacing keeps at most {max} broadcasts in flight per client, so {max} is used"
            ),
            "set it between 1 and 32, or 0 to turn fan-out pacing off (docs/limits.md)",
        ));
    }
}

fn log(config: &Config, out: &mut Vec<Lint>) {
    if tracing_subscriber::EnvFilter::try_new(&config.log.level).is_err() {
        out.push(lint(
            "log-level-invalid",
            Severity::Error,
            format!("log.level = {:?} is not a log filter", config.log.level),
            "use error, warn, info, debug or trace, or a filter such as \"info,ferrio=debug\"",
        ));
    }
}

fn auth(config: &Config, out: &mut Vec<Lint>) {
    let auth = &config.auth;
    if auth.require_auth && !auth.has_key() {
        out.push(lint(
            "auth-no-key",
            Severity::Error,
            "auth.require_auth is true but neither auth.jwt_secret nor auth.jwt_public_key is \
             set: no token can be verified, so every connection would be refused"
                .to_owned(),
            "set auth.jwt_secret (HS256) or auth.jwt_public_key (RS256, ES256); \
             `ferrio config init` writes a file with a generated secret",
        ));
    }
    if let Err(e) = crate::gateway::auth::Verifier::from_config(auth) {
        out.push(lint(
            "auth-key-invalid",
            Severity::Error,
            e,
            "point the setting at a readable PEM public key or JWKS file, and make \
             auth.jwt_algorithm (if set) match the configured keys",
        ));
    }
    if auth.require_auth && auth.allow_anonymous {
        out.push(lint(
            "auth-anonymous-required",
            Severity::Error,
            "auth.require_auth and auth.allow_anonymous are both true: a client without a token \
             cannot be both refused and let in"
                .to_owned(),
            "turn one of them off (require_auth refuses clients without a token)",
        ));
    }
    if auth.allow_anonymous && !auth.has_key() {
        out.push(lint(
            "auth-anonymous-no-key",
            Severity::Warning,
            "auth.allow_anonymous is true but no key is set: every client is anonymous anyway, \
             and gets only the rooms of rooms.public_join and rooms.public_publish"
                .to_owned(),
            "set auth.jwt_secret, auth.jwt_public_key, auth.jwt_public_key_path or \
             auth.jwks_path to authenticate users",
        ));
    }
    let len = auth.jwt_secret.len();
    if len > 0 && len < MIN_SECRET_BYTES {
        out.push(lint(
            "auth-weak-secret",
            Severity::Warning,
            format!(
                "auth.jwt_secret is {len} bytes long: an HS256 secret shorter than 32 bytes can \
                 be guessed by brute force"
            ),
            "use at least 32 random bytes, e.g. `openssl rand -hex 32`, or the secret \
             `ferrio config init` generates",
        ));
    }
}

fn rooms(config: &Config, out: &mut Vec<Lint>) {
    let rooms = &config.rooms;
    let sets = [
        ("rooms.join", &rooms.join),
        ("rooms.publish", &rooms.publish),
        ("rooms.public_join", &rooms.public_join),
        ("rooms.public_publish", &rooms.public_publish),
        ("history.rooms", &config.history.rooms),
    ];
    for (key, patterns) in sets {
        for pattern in patterns {
            if let Some(error) = crate::gateway::policy::pattern_error(key, pattern) {
                out.push(lint(
                    "rooms-pattern-invalid",
                    Severity::Error,
                    error,
                    "fix the pattern; e.g. \"^patient_[A-Za-z0-9]+$\" allows patient_ and \
                     letters or digits",
                ));
            } else if !(pattern.starts_with('^') && pattern.ends_with('$')) {
                out.push(lint(
                    "rooms-pattern-unanchored",
                    Severity::Warning,
                    format!(
                        "{key}: {pattern:?} is not anchored with ^ and $, so it matches any room \
                         that merely contains a match (\"admin\" allows \"not_admin_really\")"
                    ),
                    format!(
                        "write \"^{}$\" to match whole room names",
                        pattern.trim_start_matches('^').trim_end_matches('$')
                    ),
                ));
            }
        }
    }
}

fn history(config: &Config, out: &mut Vec<Lint>) {
    let history = &config.history;
    if !history.enabled && !history.rooms.is_empty() {
        out.push(lint(
            "history-rooms-unused",
            Severity::Warning,
            "history.rooms is set but history.enabled is false: no room keeps history".to_owned(),
            "set history.enabled = true (docs/history.md)",
        ));
    }
    if history.enabled && history.rooms.is_empty() && !config.recovery.enabled {
        out.push(lint(
            "history-store-idle",
            Severity::Warning,
            "history.enabled opens the store, but history.rooms is empty and recovery is off: \
             nothing is stored"
                .to_owned(),
            "name the rooms that keep history in history.rooms, or turn recovery.enabled on \
             to keep recovery across restarts",
        ));
    }
    let in_redis = history.store == HistoryStoreKind::Redis;
    if in_redis && history.enabled && config.cluster.adapter != AdapterKind::Redis {
        out.push(lint(
            "history-redis-no-cluster",
            Severity::Error,
            "history.store is \"redis\" but cluster.adapter is \"local\": the history is kept in \
             the cluster's Redis (cluster.redis_url), and there is none"
                .to_owned(),
            "set cluster.adapter = \"redis\" and cluster.redis_url, or history.store = \"sqlite\"",
        ));
    }
    if in_redis && !history.enabled {
        out.push(lint(
            "history-store-unused",
            Severity::Warning,
            "history.store is \"redis\" but history.enabled is false: no history is kept"
                .to_owned(),
            "set history.enabled = true (docs/history.md)",
        ));
    }
}

fn api(config: &Config, out: &mut Vec<Lint>) {
    let len = config.api.key.len();
    if len > 0 && len < MIN_SECRET_BYTES {
        out.push(lint(
            "api-weak-key",
            Severity::Warning,
            format!(
                "api.key is {len} bytes long: an HTTP API key shorter than 32 bytes can be \
                 guessed by brute force, and whoever has it can emit to every client"
            ),
            "use at least 32 random bytes, e.g. `openssl rand -hex 32`, or the key \
             `ferrio config init` generates",
        ));
    }
}

fn webhooks(config: &Config, out: &mut Vec<Lint>) {
    match crate::webhook::Webhooks::from_config(&config.webhooks) {
        Err(e) => out.push(lint(
            "webhooks-invalid",
            Severity::Error,
            e,
            "write each webhook as a full URL, http://host[:port]/path or https://..., give \
             webhooks.timeout a duration above 0 (5s is the default), and point \
             webhooks.ca_file (if set) at a PEM file of CA certificates",
        )),
        Ok(Some(_)) if config.webhooks.secret.is_empty() => out.push(lint(
            "webhooks-unsigned",
            Severity::Warning,
            "webhooks are set but webhooks.secret is empty: the backend cannot tell the \
             gateway's calls from anyone else's"
                .to_owned(),
            "set webhooks.secret and check the X-Ferrio-Signature header in the backend \
             (docs/webhooks.md)",
        )),
        Ok(_) => {}
    }
    let url = config.auth.jwks_url.trim();
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| url.starts_with(prefix));
    if url.starts_with("http://") && !loopback {
        out.push(lint(
            "auth-jwks-http",
            Severity::Warning,
            format!(
                "auth.jwks_url = {url:?} is fetched over plain HTTP: whoever sits on the path \
                 can swap the keys and sign tokens for any user"
            ),
            "serve the JWKS over https://",
        ));
    }
}

fn ws(config: &Config, out: &mut Vec<Lint>) {
    let ws = &config.ws;
    if !ws.enabled {
        return;
    }
    let engine = crate::config::build::mount_path(&config.server.path);
    let problem = if !ws.path.starts_with('/') {
        Some(format!("ws.path = {:?} does not start with /", ws.path))
    } else if ws.path.contains(['{', '}', '*', '?', '#']) {
        Some(format!(
            "ws.path = {:?} holds {{, }}, *, ? or #: it is a plain path, not a pattern",
            ws.path
        ))
    } else if ws.path.trim_end_matches('/') == engine.trim_end_matches('/')
        || ["/health", "/ready", "/metrics"].contains(&ws.path.as_str())
    {
        Some(format!(
            "ws.path = {:?} is already served (Socket.IO at server.path, or /health, /ready, \
             /metrics)",
            ws.path
        ))
    } else {
        None
    };
    if let Some(message) = problem {
        out.push(lint(
            "ws-path-invalid",
            Severity::Error,
            message,
            "set ws.path to a free path such as \"/ws\", or ws.enabled = false",
        ));
    }
}

fn cluster(config: &Config, out: &mut Vec<Lint>) {
    let cluster = &config.cluster;
    if cluster.nodes > 1 && cluster.adapter == AdapterKind::Local {
        out.push(lint(
            "cluster-no-adapter",
            Severity::Error,
            format!(
                "cluster.nodes is {} but cluster.adapter is \"local\": each node reaches only \
                 its own clients, so broadcasts and rooms silently miss the clients of the other \
                 nodes",
                cluster.nodes
            ),
            "set cluster.adapter = \"redis\" and cluster.redis_url, or run a single node",
        ));
    }
    if cluster.adapter == AdapterKind::Redis && cluster.redis_url.is_empty() {
        out.push(lint(
            "cluster-redis-url",
            Severity::Error,
            "cluster.adapter is \"redis\" but cluster.redis_url is empty".to_owned(),
            "set cluster.redis_url = \"redis://host:6379\"",
        ));
    }
    if cluster.adapter == AdapterKind::Redis && !cluster.redis_url.is_empty() {
        if let Err(e) = ferrio_redis_adapter::check_redis_url(&cluster.redis_url) {
            // The URL may hold a password: only the parser's complaint is shown.
            out.push(lint(
                "cluster-redis-url-invalid",
                Severity::Error,
                format!("cluster.redis_url: {e}"),
                "write it redis://[:password@]host:port[/db] (rediss:// is not supported)",
            ));
        }
    }
    if cluster.adapter == AdapterKind::Local && !cluster.redis_url.is_empty() {
        out.push(lint(
            "cluster-redis-unused",
            Severity::Warning,
            "cluster.redis_url is set but cluster.adapter is \"local\": Redis is not used and \
             this node shares no rooms with other nodes"
                .to_owned(),
            "set cluster.adapter = \"redis\", or unset cluster.redis_url",
        ));
    }
    if cluster.adapter == AdapterKind::Redis && cluster.request_timeout.is_zero() {
        out.push(lint(
            "cluster-request-timeout",
            Severity::Error,
            "cluster.request_timeout is 0: requests to the other nodes (fetch sockets, rooms, \
             server-side emits with acks) would give up before any answer"
                .to_owned(),
            "set cluster.request_timeout = \"5s\" (the default)",
        ));
    }
    if cluster.adapter == AdapterKind::Redis && config.recovery.enabled {
        out.push(lint(
            "cluster-recovery-per-node",
            Severity::Warning,
            "recovery.enabled with cluster.adapter = \"redis\": a session is held by the node \
             the client was on; the client recovers it through any node while that node is up, \
             and starts a new session once it is gone for good"
                .to_owned(),
            "keep sessions sticky so clients come back to their node (deploy/nginx.conf, \
             docs/cluster.md)",
        ));
    }
}

fn environment(loaded: &Loaded, out: &mut Vec<Lint>) {
    for key in keys::KEYS {
        let origin = loaded.origin(key.name);
        for (source, value) in &origin.shadowed {
            let (won, lost) = if key.kind == Kind::Secret {
                (origin.source.to_string(), source.to_string())
            } else {
                (
                    format!("{} = {:?}", origin.source, origin.given),
                    format!("{source} = {value:?}"),
                )
            };
            out.push(lint(
                "env-alias-conflict",
                Severity::Warning,
                format!("{} is set twice: {won} wins over {lost}", key.name),
                "remove one of the two variables",
            ));
        }
    }
    for source in &loaded.unknown_vars {
        out.push(lint(
            "env-unknown",
            Severity::Warning,
            format!("{source} is not a Ferrio setting and is ignored"),
            "check its spelling against docs/configuration.md, which lists every variable",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sources::{load, Inputs};

    fn lints(pairs: &[(&str, &str)]) -> Vec<Lint> {
        let inputs = Inputs {
            no_env_file: true,
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Inputs::default()
        };
        check(&load(&inputs).unwrap())
    }

    fn ids(pairs: &[(&str, &str)]) -> Vec<&'static str> {
        lints(pairs).into_iter().map(|l| l.id).collect()
    }

    #[test]
    fn defaults_are_clean() {
        assert_eq!(lints(&[]), vec![]);
    }

    #[test]
    fn each_lint_fires_alone() {
        type Vars = &'static [(&'static str, &'static str)];
        let cases: &[(Vars, &[&str])] = &[
            (
                &[
                    ("FERRIO_CORS_ORIGINS", "*"),
                    ("FERRIO_CORS_CREDENTIALS", "true"),
                ],
                &["cors-wildcard-credentials"],
            ),
            (
                &[("FERRIO_CORS_ORIGINS", "https://a.example/")],
                &["cors-origin-path"],
            ),
            (
                &[("FERRIO_CORS_ORIGINS", "a.example")],
                &["cors-origin-scheme"],
            ),
            (
                &[("FERRIO_HEARTBEAT_PING_INTERVAL", "60s")],
                &["heartbeat-proxy-timeout"],
            ),
            (
                &[("FERRIO_HEARTBEAT_UPGRADE_TIMEOUT", "1s")],
                &["upgrade-timeout-short"],
            ),
            (
                &[("FERRIO_HEARTBEAT_UPGRADE_TIMEOUT", "2")],
                &["duration-unit"],
            ),
            (
                &[("FERRIO_HEARTBEAT_PING_TIMEOUT", "60000s")],
                &["duration-unit"],
            ),
            (
                &[("FERRIO_ENGINE_TRANSPORTS", "websocket")],
                &["transports-websocket-only"],
            ),
            (&[("FERRIO_ENGINE_TRANSPORTS", "")], &["transports-empty"]),
            (
                &[("FERRIO_LIMITS_MAX_PAYLOAD", "100000000")],
                &["payload-huge"],
            ),
            (&[("FERRIO_AUTH_REQUIRE_AUTH", "1")], &["auth-no-key"]),
            (
                &[("FERRIO_AUTH_JWT_SECRET", "short")],
                &["auth-weak-secret"],
            ),
            (
                &[
                    ("FERRIO_AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                    ("FERRIO_AUTH_JWT_ALGORITHM", "RS256"),
                ],
                &["auth-key-invalid"],
            ),
            (
                &[("FERRIO_AUTH_JWKS_PATH", "/nonexistent/jwks.json")],
                &["auth-key-invalid"],
            ),
            (
                &[
                    ("FERRIO_AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                    ("FERRIO_AUTH_REQUIRE_AUTH", "1"),
                    ("FERRIO_AUTH_ALLOW_ANONYMOUS", "1"),
                ],
                &["auth-anonymous-required"],
            ),
            (
                &[("FERRIO_AUTH_ALLOW_ANONYMOUS", "1")],
                &["auth-anonymous-no-key"],
            ),
            (&[("FERRIO_API_KEY", "short")], &["api-weak-key"]),
            (&[("FERRIO_ROOMS_JOIN", "^a($")], &["rooms-pattern-invalid"]),
            (
                &[("FERRIO_ROOMS_PUBLIC_JOIN", "lobby")],
                &["rooms-pattern-unanchored"],
            ),
            (
                &[
                    ("FERRIO_HISTORY_ENABLED", "true"),
                    ("FERRIO_HISTORY_ROOMS", "news,^a($"),
                ],
                &["rooms-pattern-invalid", "rooms-pattern-unanchored"],
            ),
            (
                &[("FERRIO_HISTORY_ROOMS", "^news$")],
                &["history-rooms-unused"],
            ),
            (
                &[("FERRIO_HISTORY_ENABLED", "true")],
                &["history-store-idle"],
            ),
            (
                &[
                    ("FERRIO_HISTORY_ENABLED", "true"),
                    ("FERRIO_HISTORY_ROOMS", "^news$"),
                    ("FERRIO_HISTORY_STORE", "redis"),
                ],
                &["history-redis-no-cluster"],
            ),
            (
                &[("FERRIO_HISTORY_STORE", "redis")],
                &["history-store-unused"],
            ),
            (
                &[("FERRIO_LIMITS_FANOUT_WINDOW", "100")],
                &["fanout-window-too-large"],
            ),
            (&[("FERRIO_CLUSTER_NODES", "3")], &["cluster-no-adapter"]),
            (
                &[("FERRIO_CLUSTER_ADAPTER", "redis")],
                &["cluster-redis-url"],
            ),
            (
                &[
                    ("FERRIO_CLUSTER_ADAPTER", "redis"),
                    ("FERRIO_CLUSTER_REDIS_URL", "http://127.0.0.1:6379"),
                ],
                &["cluster-redis-url-invalid"],
            ),
            (
                &[("FERRIO_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379")],
                &["cluster-redis-unused"],
            ),
            (
                &[
                    ("FERRIO_CLUSTER_ADAPTER", "redis"),
                    ("FERRIO_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379"),
                    ("FERRIO_CLUSTER_REQUEST_TIMEOUT", "0s"),
                ],
                &["cluster-request-timeout"],
            ),
            (
                &[
                    ("FERRIO_CLUSTER_ADAPTER", "redis"),
                    ("FERRIO_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379"),
                    ("FERRIO_RECOVERY_ENABLED", "true"),
                ],
                &["cluster-recovery-per-node"],
            ),
            (&[("FERRIO_SERVER_PATH", "io")], &["server-path"]),
            (
                &[("FERRIO_SERVER_TLS_CERT", "/etc/ferrio/cert.pem")],
                &["tls-incomplete"],
            ),
            (
                &[
                    ("FERRIO_SERVER_TLS_CERT", "/nonexistent/cert.pem"),
                    ("FERRIO_SERVER_TLS_KEY", "/nonexistent/key.pem"),
                ],
                &["tls-files-invalid"],
            ),
            (
                &[("FERRIO_SERVER_ALLOWED_ORIGINS", "https://a.example/")],
                &["allowed-origin-invalid"],
            ),
            (
                &[("FERRIO_SERVER_ALLOWED_ORIGINS", "*")],
                &["allowed-origins-wildcard"],
            ),
            (
                &[("FERRIO_SERVER_TRUSTED_PROXIES", "10.0.0.1/8")],
                &["trusted-proxy-invalid"],
            ),
            (
                &[
                    ("FERRIO_SERVER_COOKIE", "true"),
                    ("FERRIO_SERVER_COOKIE_NAME", "io;x"),
                ],
                &["cookie-invalid"],
            ),
            (
                &[
                    ("FERRIO_SERVER_COOKIE", "true"),
                    ("FERRIO_SERVER_COOKIE_SAME_SITE", "None"),
                ],
                &["cookie-same-site-none-insecure"],
            ),
            (
                &[
                    ("FERRIO_SERVER_COOKIE", "true"),
                    ("FERRIO_SERVER_COOKIE_SECURE", "true"),
                ],
                &["cookie-secure-plain-http"],
            ),
            (
                &[
                    ("FERRIO_SERVER_COOKIE", "true"),
                    ("FERRIO_SERVER_COOKIE_NAME", "token"),
                ],
                &["cookie-name-clash"],
            ),
            (&[("FERRIO_LOG_LEVEL", "info,=")], &["log-level-invalid"]),
            (&[("FERRIO_NOPE", "1")], &["env-unknown"]),
            (
                &[
                    ("SOCKETIO_PING_TIMEOUT", "5s"),
                    ("SOCKET_IO_PING_TIMEOUT", "6s"),
                ],
                &["env-alias-conflict"],
            ),
        ];
        for (env, expected) in cases {
            assert_eq!(ids(env), *expected, "{env:?}");
        }
    }

    #[test]
    fn cookie_lints_need_the_cookie_and_a_real_problem() {
        let none = Vec::<&str>::new();
        // Off (the default), the cookie settings are not used, so nothing is flagged.
        assert_eq!(
            ids(&[
                ("FERRIO_SERVER_COOKIE_SAME_SITE", "none"),
                ("FERRIO_SERVER_COOKIE_SECURE", "true"),
                ("FERRIO_SERVER_COOKIE_NAME", "token"),
            ]),
            none
        );
        assert_eq!(ids(&[("FERRIO_SERVER_COOKIE", "true")]), none);
        // Behind a proxy that ends TLS: Secure and SameSite=None are what is wanted.
        assert_eq!(
            ids(&[
                ("FERRIO_SERVER_COOKIE", "true"),
                ("FERRIO_SERVER_COOKIE_SECURE", "true"),
                ("FERRIO_SERVER_COOKIE_SAME_SITE", "none"),
                ("FERRIO_SERVER_TRUSTED_PROXIES", "10.0.0.0/8"),
            ]),
            none
        );
        // Without the token cookie, any name is free.
        assert_eq!(
            ids(&[
                ("FERRIO_SERVER_COOKIE", "true"),
                ("FERRIO_SERVER_COOKIE_NAME", "token"),
                ("FERRIO_AUTH_COOKIE_NAME", ""),
            ]),
            none
        );
    }

    #[test]
    fn plausible_durations_are_not_flagged() {
        assert_eq!(
            ids(&[("SOCKETIO_PING_TIMEOUT", "60000")]),
            Vec::<&str>::new()
        );
        assert_eq!(
            ids(&[("SOCKETIO_PING_INTERVAL", "20s")]),
            Vec::<&str>::new()
        );
        assert_eq!(
            ids(&[("SOCKETIO_PING_INTERVAL", "250ms")]),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn webhook_ws_and_jwks_lints_say_what_and_how() {
        let text = |pairs: &[(&str, &str)]| -> Vec<String> {
            lints(pairs).iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            text(&[("FERRIO_WEBHOOKS_EVENTS_URL", "backend:8000/events")]),
            vec![
                "error[webhooks-invalid]: webhooks.events_url: \"backend:8000/events\" is not \
                  a URL (invalid format)\n  fix: write each webhook as a full URL, \
                  http://host[:port]/path or https://..., give webhooks.timeout a duration \
                  above 0 (5s is the default), and point webhooks.ca_file (if set) at a PEM \
                  file of CA certificates"
            ]
        );
        assert_eq!(
            text(&[
                ("FERRIO_WEBHOOKS_EVENTS_URL", "https://api.example/events"),
                ("FERRIO_WEBHOOKS_SECRET", "s"),
                ("FERRIO_WEBHOOKS_CA_FILE", "/nonexistent/ca.pem"),
            ])[0]
                .lines()
                .next(),
            Some(
                "error[webhooks-invalid]: webhooks.ca_file: cannot read /nonexistent/ca.pem: No \
                 such file or directory (os error 2)"
            )
        );
        assert_eq!(
            text(&[(
                "FERRIO_WEBHOOKS_DISCONNECT_URL",
                "http://127.0.0.1:8000/bye"
            )]),
            vec![
                "warning[webhooks-unsigned]: webhooks are set but webhooks.secret is empty: \
                  the backend cannot tell the gateway's calls from anyone else's\n  fix: set \
                  webhooks.secret and check the X-Ferrio-Signature header in the backend \
                  (docs/webhooks.md)"
            ]
        );
        assert_eq!(
            ids(&[
                ("FERRIO_WEBHOOKS_EVENTS_URL", "https://api.example/events"),
                ("FERRIO_WEBHOOKS_SECRET", "s"),
            ]),
            Vec::<&str>::new()
        );
        assert_eq!(
            text(&[("FERRIO_WS_PATH", "/socket.io")]),
            vec![
                "error[ws-path-invalid]: ws.path = \"/socket.io\" is already served \
                  (Socket.IO at server.path, or /health, /ready, /metrics)\n  fix: set ws.path \
                  to a free path such as \"/ws\", or ws.enabled = false"
            ]
        );
        assert_eq!(ids(&[("FERRIO_WS_PATH", "ws")]), vec!["ws-path-invalid"]);
        assert_eq!(
            text(&[("FERRIO_WS_PATH", "/ws/{room}")]),
            vec![
                "error[ws-path-invalid]: ws.path = \"/ws/{room}\" holds {, }, *, ? or #: it is \
                  a plain path, not a pattern\n  fix: set ws.path to a free path such as \
                  \"/ws\", or ws.enabled = false"
            ]
        );
        assert_eq!(
            ids(&[("FERRIO_WS_PATH", "ws"), ("FERRIO_WS_ENABLED", "false")]),
            Vec::<&str>::new()
        );
        assert_eq!(
            ids(&[("FERRIO_AUTH_JWKS_URL", "http://idp.example/jwks.json")]),
            vec!["auth-jwks-http"]
        );
        assert_eq!(
            ids(&[("FERRIO_AUTH_JWKS_URL", "ftp://idp.example/jwks.json")]),
            vec!["auth-key-invalid"]
        );
    }

    #[test]
    fn errors_sort_before_warnings() {
        let found = lints(&[
            ("FERRIO_ENGINE_TRANSPORTS", "websocket"),
            ("FERRIO_CLUSTER_NODES", "2"),
        ]);
        assert_eq!(found[0].severity, Severity::Error);
        assert_eq!(found[1].severity, Severity::Warning);
    }
}
