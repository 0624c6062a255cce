//! `ferrio config check`, `ferrio config init` and `ferrio serve`'s configuration, run as the
//! built binary with a clean environment in a temporary directory.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `ferrio ARGS` in `dir` with only `PATH` and `env` in its environment.
fn ferrio(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run ferrio")
}

/// `ferrio config check ARGS`: (exit status, stdout, stderr).
fn check(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["config", "check"];
    all.extend_from_slice(args);
    let out = ferrio(dir, env, &all);
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The line of `key` in a check report, without its padding: `key = value # source`.
fn line(report: &str, key: &str) -> String {
    let found = report
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{report}"));
    let (setting, source) = found.split_once(" # ").expect("a source comment");
    format!("{} # {}", setting.trim_end(), source)
}

/// The lint section of a report: everything after the blank line.
fn lints(report: &str) -> &str {
    report.split_once("\n\n").expect("a lint section").1
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn zero_configuration_is_the_defaults_and_clean() {
    let dir = tmp();
    let (code, out, err) = check(dir.path(), &[], &[]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(out.starts_with("# Effective configuration (file: none; .env: none)\n"));
    assert_eq!(
        line(&out, "server.host"),
        "server.host = \"0.0.0.0\" # default"
    );
    assert_eq!(line(&out, "server.port"), "server.port = 3000 # default");
    assert_eq!(
        line(&out, "server.path"),
        "server.path = \"/socket.io/\" # default"
    );
    assert_eq!(
        line(&out, "heartbeat.ping_interval"),
        "heartbeat.ping_interval = \"25s\" # default"
    );
    assert_eq!(
        line(&out, "heartbeat.ping_timeout"),
        "heartbeat.ping_timeout = \"20s\" # default"
    );
    assert_eq!(
        line(&out, "limits.max_payload"),
        "limits.max_payload = 1000000 # default"
    );
    assert_eq!(lints(&out), "0 errors, 0 warnings\n");
    // Every line of the report is a `key = value`, a comment or the lint section.
    let settings = out.lines().filter(|l| l.contains(" = ")).count();
    // One per key, as many as the reference table of docs/configuration.md has rows.
    let documented = include_str!("../../../docs/configuration.md")
        .lines()
        .filter(|l| l.starts_with("| `") && l.contains("` | `FERRIO_"))
        .count();
    assert_eq!(settings, documented);
}

#[test]
fn the_printed_configuration_is_toml() {
    let dir = tmp();
    let (_, out, _) = check(dir.path(), &[], &[]);
    let settings = out.split_once("\n\n").unwrap().0;
    let table: toml::Table = settings.parse().unwrap();
    assert_eq!(table["server"]["port"].as_integer(), Some(3000));
}

#[test]
fn precedence_at_every_level_with_its_source() {
    let dir = tmp();
    let d = dir.path();
    std::fs::write(
        d.join("ferrio.toml"),
        "[server]\nport = 4001\nhost = \"127.0.0.1\"\n[heartbeat]\nping_interval = \"21s\"\n",
    )
    .unwrap();
    let file = ["--config", "ferrio.toml"];

    // The file beats the defaults.
    let (code, out, _) = check(d, &[], &file);
    assert_eq!(code, 0);
    assert!(out.starts_with("# Effective configuration (file: ferrio.toml; .env: none)\n"));
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 4001 # file ferrio.toml"
    );
    assert_eq!(
        line(&out, "server.host"),
        "server.host = \"127.0.0.1\" # file ferrio.toml"
    );

    // .env beats the file.
    std::fs::write(
        d.join(".env"),
        "FERRIO_SERVER_PORT=4002\nSOCKETIO_PING_INTERVAL=22s\n",
    )
    .unwrap();
    let (_, out, _) = check(d, &[], &file);
    assert!(out.starts_with("# Effective configuration (file: ferrio.toml; .env: .env)\n"));
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 4002 # dotenv .env FERRIO_SERVER_PORT"
    );
    assert_eq!(
        line(&out, "heartbeat.ping_interval"),
        "heartbeat.ping_interval = \"22s\" # dotenv .env SOCKETIO_PING_INTERVAL"
    );
    assert_eq!(
        line(&out, "server.host"),
        "server.host = \"127.0.0.1\" # file ferrio.toml"
    );

    // The environment beats .env.
    let env = [("FERRIO_SERVER_PORT", "4003")];
    let (_, out, _) = check(d, &env, &file);
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 4003 # env FERRIO_SERVER_PORT"
    );
    assert_eq!(
        line(&out, "heartbeat.ping_interval"),
        "heartbeat.ping_interval = \"22s\" # dotenv .env SOCKETIO_PING_INTERVAL"
    );

    // --set beats the environment, and a named flag beats --set.
    let (_, out, _) = check(
        d,
        &env,
        &["--config", "ferrio.toml", "--set", "server.port=4004"],
    );
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 4004 # flag --set server.port"
    );
    let (_, out, _) = check(
        d,
        &env,
        &[
            "--config",
            "ferrio.toml",
            "--set",
            "server.port=4004",
            "--port",
            "4005",
        ],
    );
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 4005 # flag --port"
    );

    // --no-env-file skips .env; --env-file names another one.
    let (_, out, _) = check(d, &[], &["--config", "ferrio.toml", "--no-env-file"]);
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 4001 # file ferrio.toml"
    );
    std::fs::write(d.join("other.env"), "FERRIO_SERVER_PORT=4006\n").unwrap();
    let (_, out, _) = check(d, &[], &["--env-file", "other.env"]);
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 4006 # dotenv other.env FERRIO_SERVER_PORT"
    );
}

#[test]
fn the_file_is_found_through_ferrio_config_in_the_environment_or_dotenv() {
    let dir = tmp();
    let d = dir.path();
    std::fs::write(d.join("a.toml"), "[server]\nport = 5001\n").unwrap();
    std::fs::write(d.join("b.toml"), "[server]\nport = 5002\n").unwrap();
    let (_, out, _) = check(d, &[("FERRIO_CONFIG", "a.toml")], &[]);
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 5001 # file a.toml"
    );
    std::fs::write(d.join(".env"), "FERRIO_CONFIG=b.toml\n").unwrap();
    let (_, out, _) = check(d, &[], &[]);
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 5002 # file b.toml"
    );
    // The environment's FERRIO_CONFIG beats .env's, and --config beats both.
    let (_, out, _) = check(d, &[("FERRIO_CONFIG", "a.toml")], &[]);
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 5001 # file a.toml"
    );
    let (_, out, _) = check(d, &[("FERRIO_CONFIG", "a.toml")], &["--config", "b.toml"]);
    assert_eq!(
        line(&out, "server.port"),
        "server.port = 5002 # file b.toml"
    );
}

#[test]
fn every_alias_sets_its_key() {
    let cases = [
        ("PING_TIMEOUT", "7s", "heartbeat.ping_timeout = \"7s\""),
        ("PING_INTERVAL", "8000", "heartbeat.ping_interval = \"8s\""),
        (
            "TRANSPORTS",
            "websocket",
            "engine.transports = [\"websocket\"]",
        ),
        (
            "CORS_ORIGINS",
            "https://a.example, https://b.example",
            "cors.origins = [\"https://a.example\", \"https://b.example\"]",
        ),
        ("CORS_CREDENTIALS", "true", "cors.credentials = true"),
        (
            "CORS_METHODS",
            "GET,POST,PUT",
            "cors.methods = [\"GET\", \"POST\", \"PUT\"]",
        ),
        (
            "CORS_HEADERS",
            "Authorization",
            "cors.headers = [\"Authorization\"]",
        ),
        (
            "MAX_HTTP_BUFFER_SIZE",
            "2000000",
            "limits.max_payload = 2000000",
        ),
        ("MAX_CONNECTIONS", "100", "limits.max_connections = 100"),
        ("LOG_LEVEL", "debug", "log.level = \"debug\""),
        ("LOG_CONNECTIONS", "1", "log.connections = true"),
        ("REQUIRE_AUTH", "yes", "auth.require_auth = true"),
        ("RATE_LIMITING", "on", "rate_limit.enabled = true"),
    ];
    let dir = tmp();
    for prefix in ["SOCKETIO_", "SOCKET_IO_"] {
        for (suffix, value, expected) in cases {
            let var = format!("{prefix}{suffix}");
            let (code, out, err) = check(dir.path(), &[(&var, value)], &[]);
            assert!(code == 0 || code == 1, "{var}: {err}");
            let key = expected.split(" = ").next().unwrap();
            let found = line(&out, key);
            // The value as written follows when it reads differently: `("8000")`.
            assert!(
                found == format!("{expected} # env {var}")
                    || found == format!("{expected} # env {var} ({value:?})"),
                "{var}: {found}"
            );
        }
    }
    // The earlier Ferrio names.
    for (var, value, expected) in [
        ("FERRIO_HOST", "::1", "server.host = \"::1\""),
        ("FERRIO_PORT", "3001", "server.port = 3001"),
        ("FERRIO_LOG", "warn", "log.level = \"warn\""),
    ] {
        let (_, out, _) = check(dir.path(), &[(var, value)], &[]);
        let key = expected.split(" = ").next().unwrap();
        assert_eq!(line(&out, key), format!("{expected} # env {var}"));
    }
}

#[test]
fn the_canonical_name_wins_over_aliases_and_socketio_over_socket_io() {
    let dir = tmp();
    let (_, out, _) = check(
        dir.path(),
        &[
            ("FERRIO_HEARTBEAT_PING_TIMEOUT", "9s"),
            ("SOCKETIO_PING_TIMEOUT", "9s"),
        ],
        &[],
    );
    assert_eq!(
        line(&out, "heartbeat.ping_timeout"),
        "heartbeat.ping_timeout = \"9s\" # env FERRIO_HEARTBEAT_PING_TIMEOUT"
    );
    assert_eq!(
        lints(&out),
        "0 errors, 0 warnings\n",
        "the same value is no conflict"
    );
    let (code, out, _) = check(
        dir.path(),
        &[
            ("SOCKETIO_LOG_LEVEL", "debug"),
            ("SOCKET_IO_LOG_LEVEL", "warn"),
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(
        line(&out, "log.level"),
        "log.level = \"debug\" # env SOCKETIO_LOG_LEVEL"
    );
    assert_eq!(
        lints(&out),
        "warning[env-alias-conflict]: log.level is set twice: env SOCKETIO_LOG_LEVEL = \"debug\" \
         wins over env SOCKET_IO_LOG_LEVEL = \"warn\"\n  fix: remove one of the two variables\n\
         0 errors, 1 warning\n"
    );
}

#[test]
fn durations_take_units_and_a_bare_number_is_milliseconds() {
    let dir = tmp();
    let d = dir.path();
    let cases = [
        (
            "FERRIO_HEARTBEAT_PING_INTERVAL",
            "20000",
            "heartbeat.ping_interval = \"20s\"",
            "(\"20000\")",
        ),
        (
            "FERRIO_HEARTBEAT_PING_INTERVAL",
            "1500",
            "heartbeat.ping_interval = \"1500ms\"",
            "(\"1500\")",
        ),
        (
            "FERRIO_HEARTBEAT_PING_INTERVAL",
            "1.5s",
            "heartbeat.ping_interval = \"1500ms\"",
            "(\"1.5s\")",
        ),
        (
            "FERRIO_HEARTBEAT_PING_TIMEOUT",
            "500ms",
            "heartbeat.ping_timeout = \"500ms\"",
            "",
        ),
        (
            "FERRIO_RECOVERY_WINDOW",
            "2m",
            "recovery.window = \"2m\"",
            "",
        ),
        (
            "FERRIO_RECOVERY_WINDOW",
            "1h",
            "recovery.window = \"1h\"",
            "",
        ),
        (
            "FERRIO_HEARTBEAT_CONNECT_TIMEOUT",
            "90s",
            "heartbeat.connect_timeout = \"90s\"",
            "",
        ),
    ];
    for (var, value, expected, given) in cases {
        let (code, out, err) = check(d, &[(var, value)], &[]);
        assert_eq!(code, 0, "{var}={value}: {err}{out}");
        let key = expected.split(" = ").next().unwrap();
        let source = if given.is_empty() {
            format!("env {var}")
        } else {
            format!("env {var} {given}")
        };
        assert_eq!(line(&out, key), format!("{expected} # {source}"));
    }
    // In TOML: a string with a unit, or an integer of milliseconds.
    std::fs::write(
        d.join("f.toml"),
        "[heartbeat]\nping_interval = 15000\nping_timeout = \"5s\"\n",
    )
    .unwrap();
    let (_, out, _) = check(d, &[], &["--config", "f.toml"]);
    assert_eq!(
        line(&out, "heartbeat.ping_interval"),
        "heartbeat.ping_interval = \"15s\" # file f.toml (\"15000\")"
    );
    assert_eq!(
        line(&out, "heartbeat.ping_timeout"),
        "heartbeat.ping_timeout = \"5s\" # file f.toml"
    );
    // Invalid durations stop loading with the key, value and source.
    let (code, out, err) = check(d, &[("SOCKETIO_PING_TIMEOUT", "fast")], &[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "error: heartbeat.ping_timeout = \"fast\" from env SOCKETIO_PING_TIMEOUT: invalid \
         duration \"fast\": write a number with a unit (500ms, 25s, 2m, 1h) or a bare number of \
         milliseconds\n"
    );
}

#[test]
fn loading_errors_exit_2_and_say_where() {
    let dir = tmp();
    let d = dir.path();
    std::fs::write(d.join("typo.toml"), "[server]\nprot = 1\n").unwrap();
    let (code, _, err) = check(d, &[], &["--config", "typo.toml"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: unknown key server.prot in typo.toml; [server] has: host, port, path, namespaces, \
         metrics, tls_cert, tls_key, allowed_origins, trusted_proxies, shutdown_timeout, cookie, \
         cookie_name, cookie_path, cookie_http_only, cookie_secure, cookie_same_site\n"
    );
    // SameSite is read in any case ("Lax", as browsers' documentation writes it), and nothing else.
    let (code, _, err) = check(d, &[("FERRIO_SERVER_COOKIE_SAME_SITE", "sometimes")], &[]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: server.cookie_same_site = \"sometimes\" from env FERRIO_SERVER_COOKIE_SAME_SITE: \
         \"sometimes\" is not a SameSite value: expected \"strict\", \"lax\" or \"none\"\n\
         in `server.cookie_same_site`\n"
    );
    std::fs::write(d.join("section.toml"), "[sever]\nport = 1\n").unwrap();
    let (code, _, err) = check(d, &[], &["--config", "section.toml"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: unknown section [sever] in section.toml; docs/configuration.md lists every key\n"
    );
    std::fs::write(d.join("kind.toml"), "[cors]\ncredentials = \"yes\"\n").unwrap();
    let (code, _, err) = check(d, &[], &["--config", "kind.toml"]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: cors.credentials = \"\\\"yes\\\"\" from file kind.toml: expected true or false\n"
    );
    let (code, _, err) = check(d, &[("FERRIO_SERVER_PORT", "x")], &[]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: server.port = \"x\" from env FERRIO_SERVER_PORT: expected a whole number\n"
    );
    let (code, _, err) = check(d, &[], &["--config", "missing.toml"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: cannot read the configuration file missing.toml: "),
        "{err}"
    );
    let (code, _, err) = check(
        d,
        &[("FERRIO_AUTH_JWT_SECRET", "s3cret")],
        &["--set", "nope.x=1"],
    );
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: unknown key \"nope.x\" in --set nope.x; docs/configuration.md lists every key\n"
    );
}

#[test]
fn secrets_are_never_printed() {
    let dir = tmp();
    let secret = "a-very-long-secret-that-must-not-appear-anywhere";
    let (code, out, err) = check(
        dir.path(),
        &[
            ("FERRIO_AUTH_JWT_SECRET", secret),
            ("FERRIO_API_KEY", secret),
            ("FERRIO_CLUSTER_REDIS_URL", secret),
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(!out.contains(secret) && !err.contains(secret));
    assert_eq!(
        line(&out, "auth.jwt_secret"),
        "auth.jwt_secret = \"(hidden, 48 characters)\" # env FERRIO_AUTH_JWT_SECRET"
    );
}

/// Environment variables, as (name, value).
type Vars = &'static [(&'static str, &'static str)];

/// (environment, exit status, the exact lint section).
const LINT_CASES: &[(Vars, i32, &str)] = &[
    (
        &[("FERRIO_CORS_ORIGINS", "*"), ("FERRIO_CORS_CREDENTIALS", "true")],
        1,
        "error[cors-wildcard-credentials]: cors.origins allows \"*\" while cors.credentials is true: browsers refuse a credentialed response whose Access-Control-Allow-Origin is \"*\"\n  fix: list the exact origins (cors.origins = [\"https://app.example.com\"]), or set cors.credentials = false\n1 error, 0 warnings\n",
    ),
    (
        &[("SOCKETIO_CORS_ORIGINS", "https://app.example.com/")],
        1,
        "error[cors-origin-path]: cors.origins entry \"https://app.example.com/\" has a path or a trailing slash: a browser's Origin header is scheme://host[:port] only, so it never matches\n  fix: write \"https://app.example.com\"\n1 error, 0 warnings\n",
    ),
    (
        &[("SOCKETIO_CORS_ORIGINS", "https://app.example.com:8443/chat")],
        1,
        "error[cors-origin-path]: cors.origins entry \"https://app.example.com:8443/chat\" has a path or a trailing slash: a browser's Origin header is scheme://host[:port] only, so it never matches\n  fix: write \"https://app.example.com:8443\"\n1 error, 0 warnings\n",
    ),
    (
        &[("SOCKETIO_CORS_ORIGINS", "app.example.com")],
        1,
        "error[cors-origin-scheme]: cors.origins entry \"app.example.com\" has no scheme: a browser's Origin header is always scheme://host[:port], so it never matches\n  fix: write \"https://app.example.com\" (or http:// for a plain-HTTP site)\n1 error, 0 warnings\n",
    ),
    (
        &[("SOCKETIO_PING_INTERVAL", "60s")],
        0,
        "warning[heartbeat-proxy-timeout]: heartbeat.ping_interval is 60s: a reverse proxy's usual read timeout (60s: nginx proxy_read_timeout, AWS ALB idle timeout) closes an idle WebSocket or a held long-polling request before the next ping, and clients reconnect over and over\n  fix: keep heartbeat.ping_interval well below 60s (25s is the default), or raise the proxy's read timeout above ping_interval + ping_timeout\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_HEARTBEAT_UPGRADE_TIMEOUT", "1s")],
        0,
        "warning[upgrade-timeout-short]: heartbeat.upgrade_timeout is 1s: on slow or mobile networks opening and probing the WebSocket takes longer, so upgrades fail and clients stay on long-polling\n  fix: use at least 3s (10s is the default)\n0 errors, 1 warning\n",
    ),
    (
        &[("SOCKETIO_TRANSPORTS", "websocket")],
        0,
        "warning[transports-websocket-only]: engine.transports is [\"websocket\"] only: there is no long-polling fallback, so clients behind proxies or networks that block WebSocket cannot connect, and clients that start with polling (the default of socket.io-client) are refused\n  fix: add \"polling\" (engine.transports = [\"polling\", \"websocket\"]), or configure every client with transports: [\"websocket\"]\n0 errors, 1 warning\n",
    ),
    (
        &[("SOCKETIO_TRANSPORTS", "")],
        1,
        "error[transports-empty]: engine.transports is empty: no client can connect\n  fix: set engine.transports = [\"polling\", \"websocket\"]\n1 error, 0 warnings\n",
    ),
    (
        &[("SOCKETIO_MAX_HTTP_BUFFER_SIZE", "100000000")],
        0,
        "warning[payload-huge]: limits.max_payload is 100000000 bytes (100 MB): the server may buffer a message this large for every connection, so a few clients can exhaust its memory\n  fix: keep it near the largest message the application sends (1000000, 1 MB, is the default) and send large files over plain HTTP\n0 errors, 1 warning\n",
    ),
    (
        &[("SOCKETIO_REQUIRE_AUTH", "true")],
        1,
        "error[auth-no-key]: auth.require_auth is true but neither auth.jwt_secret nor auth.jwt_public_key is set: no token can be verified, so every connection would be refused\n  fix: set auth.jwt_secret (HS256) or auth.jwt_public_key (RS256, ES256); `ferrio config init` writes a file with a generated secret\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_AUTH_JWT_SECRET", "short")],
        0,
        "warning[auth-weak-secret]: auth.jwt_secret is 5 bytes long: an HS256 secret shorter than 32 bytes can be guessed by brute force\n  fix: use at least 32 random bytes, e.g. `openssl rand -hex 32`, or the secret `ferrio config init` generates\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_API_KEY", "short")],
        0,
        "warning[api-weak-key]: api.key is 5 bytes long: an HTTP API key shorter than 32 bytes can be guessed by brute force, and whoever has it can emit to every client\n  fix: use at least 32 random bytes, e.g. `openssl rand -hex 32`, or the key `ferrio config init` generates\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_CLUSTER_NODES", "3")],
        1,
        "error[cluster-no-adapter]: cluster.nodes is 3 but cluster.adapter is \"local\": each node reaches only its own clients, so broadcasts and rooms silently miss the clients of the other nodes\n  fix: set cluster.adapter = \"redis\" and cluster.redis_url, or run a single node\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_CLUSTER_ADAPTER", "redis")],
        1,
        "error[cluster-redis-url]: cluster.adapter is \"redis\" but cluster.redis_url is empty\n  fix: set cluster.redis_url = \"redis://host:6379\"\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_AUTH_JWKS_PATH", "/nonexistent/jwks.json")],
        1,
        "error[auth-key-invalid]: auth.jwks_path: cannot read /nonexistent/jwks.json: No such file or directory (os error 2)\n  fix: point the setting at a readable PEM public key or JWKS file, and make auth.jwt_algorithm (if set) match the configured keys\n1 error, 0 warnings\n",
    ),
    (
        &[
            ("FERRIO_AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("FERRIO_AUTH_JWT_ALGORITHM", "ES256"),
        ],
        1,
        "error[auth-key-invalid]: auth.jwt_algorithm is ES256 but no configured key verifies ES256\n  fix: point the setting at a readable PEM public key or JWKS file, and make auth.jwt_algorithm (if set) match the configured keys\n1 error, 0 warnings\n",
    ),
    (
        &[
            ("FERRIO_AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("FERRIO_AUTH_REQUIRE_AUTH", "1"),
            ("FERRIO_AUTH_ALLOW_ANONYMOUS", "1"),
        ],
        1,
        "error[auth-anonymous-required]: auth.require_auth and auth.allow_anonymous are both true: a client without a token cannot be both refused and let in\n  fix: turn one of them off (require_auth refuses clients without a token)\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_AUTH_ALLOW_ANONYMOUS", "1")],
        0,
        "warning[auth-anonymous-no-key]: auth.allow_anonymous is true but no key is set: every client is anonymous anyway, and gets only the rooms of rooms.public_join and rooms.public_publish\n  fix: set auth.jwt_secret, auth.jwt_public_key, auth.jwt_public_key_path or auth.jwks_path to authenticate users\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_ROOMS_JOIN", "^a($")],
        1,
        "error[rooms-pattern-invalid]: rooms.join: \"^a($\" is not a regular expression (unclosed group)\n  fix: fix the pattern; e.g. \"^patient_[A-Za-z0-9]+$\" allows patient_ and letters or digits\n1 error, 0 warnings\n",
    ),
    (
        &[("FERRIO_ROOMS_PUBLIC_JOIN", "lobby")],
        0,
        "warning[rooms-pattern-unanchored]: rooms.public_join: \"lobby\" is not anchored with ^ and $, so it matches any room that merely contains a match (\"admin\" allows \"not_admin_really\")\n  fix: write \"^lobby$\" to match whole room names\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_SERVER_PATH", "io")],
        1,
        "error[server-path]: server.path = \"io\" does not start with \"/\"\n  fix: write \"/io\"\n1 error, 0 warnings\n",
    ),
    (
        &[("SOCKETIO_LOG_LEVEL", "info,=")],
        1,
        "error[log-level-invalid]: log.level = \"info,=\" is not a log filter\n  fix: use error, warn, info, debug or trace, or a filter such as \"info,ferrio=debug\"\n1 error, 0 warnings\n",
    ),
    (
        &[("SOCKETIO_PING_INTERVAL", "25")],
        0,
        "warning[duration-unit]: heartbeat.ping_interval = 25 (env SOCKETIO_PING_INTERVAL) is read as 25 milliseconds, since a bare number is milliseconds; that is very short, 25 seconds was probably meant\n  fix: write \"25s\" for seconds, or \"25ms\" if milliseconds are meant\n0 errors, 1 warning\n",
    ),
    (
        &[("SOCKETIO_PING_TIMEOUT", "60000s")],
        0,
        "warning[duration-unit]: heartbeat.ping_timeout = 60000s (env SOCKETIO_PING_TIMEOUT) is 16h40m, far longer than it should be; 60000 milliseconds was probably meant\n  fix: write \"60000ms\" (or 60000 as a bare number, which is milliseconds)\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_HEARTBEAT_UPGRADE_TIMEOUT", "2")],
        0,
        "warning[duration-unit]: heartbeat.upgrade_timeout = 2 (env FERRIO_HEARTBEAT_UPGRADE_TIMEOUT) is read as 2 milliseconds, since a bare number is milliseconds; that is very short, 2 seconds was probably meant\n  fix: write \"2s\" for seconds, or \"2ms\" if milliseconds are meant\n0 errors, 1 warning\n",
    ),
    (
        &[("FERRIO_PING_INTERVAL", "20s")],
        0,
        "warning[env-unknown]: env FERRIO_PING_INTERVAL is not a Ferrio setting and is ignored\n  fix: check its spelling against docs/configuration.md, which lists every variable\n0 errors, 1 warning\n",
    ),
    (
        &[("SOCKETIO_PING_TIMEOUT", "5s"), ("SOCKET_IO_PING_TIMEOUT", "6s")],
        0,
        "warning[env-alias-conflict]: heartbeat.ping_timeout is set twice: env SOCKETIO_PING_TIMEOUT = \"5s\" wins over env SOCKET_IO_PING_TIMEOUT = \"6s\"\n  fix: remove one of the two variables\n0 errors, 1 warning\n",
    ),
];

#[test]
fn every_lint_with_its_exact_message_and_exit_status() {
    let dir = tmp();
    for (env, code, expected) in LINT_CASES {
        let (got, out, err) = check(dir.path(), env, &[]);
        assert_eq!(lints(&out), *expected, "{env:?}");
        assert_eq!((got, err.as_str()), (*code, ""), "{env:?}");
    }
}

#[test]
fn lints_of_a_file_name_the_file_and_errors_come_first() {
    let dir = tmp();
    std::fs::write(
        dir.path().join("f.toml"),
        "[engine]\ntransports = [\"websocket\"]\n[cluster]\nnodes = 2\n[heartbeat]\nping_interval = 30\n",
    )
    .unwrap();
    let (code, out, _) = check(dir.path(), &[], &["--config", "f.toml"]);
    assert_eq!(code, 1);
    let ids: Vec<&str> = lints(&out)
        .lines()
        .filter(|l| !l.starts_with("  fix:"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "error[cluster-no-adapter]",
            "warning[duration-unit]",
            "warning[transports-websocket-only]",
            "1 error, 2 warnings"
        ]
    );
    assert!(out.contains(
        "warning[duration-unit]: heartbeat.ping_interval = 30 (file f.toml) is read as 30 milliseconds"
    ));
}

#[test]
fn init_writes_a_starter_file_with_fresh_secrets_and_never_overwrites() {
    let dir = tmp();
    let d = dir.path();
    let out = ferrio(d, &[], &["config", "init"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "wrote ferrio.toml with a freshly generated auth.jwt_secret and api.key; check it with: \
         ferrio config check --config ferrio.toml\n"
    );
    let first = std::fs::read_to_string(d.join("ferrio.toml")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("ferrio.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let table: toml::Table = first.parse().unwrap();
    let secret = table["auth"]["jwt_secret"].as_str().unwrap().to_owned();
    let api_key = table["api"]["key"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(secret, api_key);

    // It checks clean: every value is the default but the secrets.
    let (code, report, _) = check(d, &[], &["--config", "ferrio.toml"]);
    assert_eq!(code, 0);
    assert_eq!(lints(&report), "0 errors, 0 warnings\n");
    assert_eq!(
        line(&report, "server.port"),
        "server.port = 3000 # file ferrio.toml"
    );

    // It refuses to overwrite.
    let out = ferrio(d, &[], &["config", "init"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: ferrio.toml already exists; pass --force to overwrite it\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("ferrio.toml")).unwrap(),
        first
    );

    // Another run, another path: other secrets.
    let out = ferrio(d, &[], &["config", "init", "second.toml"]);
    assert_eq!(out.status.code(), Some(0));
    let second: toml::Table = std::fs::read_to_string(d.join("second.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(second["auth"]["jwt_secret"].as_str().unwrap(), secret);
    assert_ne!(second["api"]["key"].as_str().unwrap(), api_key);

    // --force overwrites, with new secrets.
    let out = ferrio(d, &[], &["config", "init", "--force"]);
    assert_eq!(out.status.code(), Some(0));
    let third: toml::Table = std::fs::read_to_string(d.join("ferrio.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(third["auth"]["jwt_secret"].as_str().unwrap(), secret);
}

/// A port free on 127.0.0.1 now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 GET; the whole answer as text.
fn http_get(port: u16, target: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_honours_the_configuration() {
    let dir = tmp();
    let d = dir.path();
    let port = free_port();
    std::fs::write(
        d.join("ferrio.toml"),
        "[server]\nhost = \"127.0.0.1\"\npath = \"/rt\"\nport = 1\n[heartbeat]\nping_interval = \"12s\"\n",
    )
    .unwrap();
    std::fs::write(d.join(".env"), "SOCKETIO_PING_TIMEOUT=6789\n").unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(d)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SOCKETIO_MAX_HTTP_BUFFER_SIZE", "54321")
        .args([
            "serve",
            "--config",
            "ferrio.toml",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        match http_get(port, "/rt/?EIO=4&transport=polling") {
            Ok(answer) if !answer.is_empty() => break answer,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("the server never answered: {other:?}"),
        }
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split_once("\r\n\r\n").unwrap().1;
    let open = &body[body.find("0{").expect("an open packet") + 1..];
    let open = &open[..=open.find('}').unwrap()];
    let open: serde_json::Value = serde_json::from_str(open).unwrap();
    assert_eq!(open["pingInterval"], 12_000, "{open}");
    assert_eq!(open["pingTimeout"], 6789, "{open}");
    assert_eq!(open["maxPayload"], 54_321, "{open}");
    // The path without its slash is served too; the default path is not.
    let bare = http_get(port, "/rt?EIO=4&transport=polling").unwrap();
    assert!(bare.starts_with("HTTP/1.1 200"), "{bare}");
    let default = http_get(port, "/socket.io/?EIO=4&transport=polling").unwrap();
    assert!(default.starts_with("HTTP/1.1 404"), "{default}");
}

#[test]
fn serve_refuses_to_start_on_a_lint_error() {
    let dir = tmp();
    let out = ferrio(
        dir.path(),
        &[("SOCKETIO_REQUIRE_AUTH", "true")],
        &["serve", "--host", "127.0.0.1", "--port", "0"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error[auth-no-key]: "), "{err}");
    assert!(err.ends_with(
        "ferrio serve: not started; `ferrio config check` shows the full configuration\n"
    ));
}

#[test]
fn serve_refuses_an_unloadable_configuration() {
    let dir = tmp();
    let out = ferrio(dir.path(), &[("FERRIO_SERVER_PORT", "http")], &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: server.port = \"http\" from env FERRIO_SERVER_PORT: expected a whole number\n"
    );
}

#[test]
fn serve_logs_as_configured_and_warns_of_lints() {
    let dir = tmp();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ferrio"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FERRIO_LOG_FORMAT", "json")
        .env("FERRIO_AUTH_JWT_SECRET", "short")
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let stdout = server.0.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.contains("ferrio listening"))
    {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the server logs that it listens")
            .unwrap();
        lines.push(line);
    }
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let warning = records
        .iter()
        .find(|r| r["level"] == "WARN")
        .expect("the lint is logged");
    assert!(warning["fields"]["message"]
        .as_str()
        .unwrap()
        .starts_with("warning[auth-weak-secret]: auth.jwt_secret is 5 bytes long"));
}
