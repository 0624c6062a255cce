//! JWT authentication and room policy of `ferrio serve`, end to end: the built binary on a free
//! 127.0.0.1 port with a configuration file in a temporary directory, and the official
//! socket.io-client v4 (tests/interop/node_modules) in `node` scripts as the client.
//!
//! Without `node` or without `npm ci` in tests/interop these tests are skipped loudly, unless
//! `CI=true`, where they fail. Every wait is bounded.

mod backend;
mod process;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use process::{interop_dir, node_client_available, Ferrio, Launch, Ready};
use serde_json::{json, Value};

/// The longest a node script may run.
const SCRIPT_LIMIT: Duration = Duration::from_secs(30);
/// An HS256 secret long enough not to draw the weak-secret warning.
const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(algorithm: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

fn hs256(secret: &str, claims: &Value) -> String {
    sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret.as_bytes()),
        None,
        claims,
    )
}

fn pem_key(name: &str, algorithm: Algorithm) -> EncodingKey {
    let pem = std::fs::read(fixture(name)).unwrap();
    match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem).unwrap(),
        _ => unreachable!(),
    }
}

/// `ferrio serve` with `config` (TOML, without `[server]`) and `namespaces` served, once it
/// answers (another free port tried when a test took its port meanwhile).
fn start_server(config: &str, namespaces: &[&str]) -> Ferrio {
    let namespaces: Vec<String> = namespaces.iter().map(|n| format!("{n:?}")).collect();
    let text = format!(
        "[server]\nnamespaces = [{}]\n[log]\nlevel = \"info,ferrio=debug\"\n{config}",
        namespaces.join(", ")
    );
    Ferrio::launch(&Launch {
        args: &["serve", "--config", "ferrio.toml", "--no-env-file"],
        env: Vec::new(),
        files: vec![("ferrio.toml", text)],
        ready: Ready::Listening,
    })
}

/// Helpers every script gets: `connect(nsp, opts)` resolves to `{s}` or `{s, error}`,
/// `ack(s, event, arg)`, `out(value)` prints a JSON line, `sleep(ms)`.
const PRELUDE: &str = r#"
const { io } = require("sio-client-v4");
const URL = process.env.URL;
const out = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const connect = (nsp, opts) => new Promise((resolve) => {
  const s = io(URL + nsp, { forceNew: true, reconnection: false, ...opts });
  s.once("connect", () => resolve({ s }));
  s.once("connect_error", (e) => resolve({ s, error: { message: e.message, data: e.data } }));
});
const ack = (s, ev, arg) => s.timeout(5000).emitWithAck(ev, arg).catch((e) => ({ timeout: String(e) }));
setTimeout(() => { out({ fatal: "script timeout" }); process.exit(2); }, 20000);
"#;

/// Runs `body` (an async function body) with node against `server`; the JSON lines it printed.
fn script(server: &Ferrio, body: &str) -> Vec<Value> {
    let source = format!(
        "{PRELUDE}\n(async () => {{\n{body}\nprocess.exit(0);\n}})().catch((e) => {{ out({{ fatal: String(e.stack) }}); process.exit(3); }});\n"
    );
    let mut child = Command::new("node")
        .arg("-e")
        .arg(&source)
        .current_dir(interop_dir())
        .env("URL", server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let deadline = Instant::now() + SCRIPT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node script ran over {SCRIPT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "node script failed ({status}):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Connects to `nsp` with `opts` (JSON) and prints the connection error, or `{connected: true}`.
fn try_connect(server: &Ferrio, nsp: &str, opts: &Value) -> Value {
    let lines = script(
        server,
        &format!(
            "const r = await connect({nsp:?}, {opts});\n\
             out(r.error ? {{ error: r.error }} : {{ connected: true }});\n\
             r.s.close();"
        ),
    );
    lines.into_iter().next().expect("one line")
}

fn with_token(token: &str) -> Value {
    json!({ "auth": { "token": token } })
}

fn refused(message: &str, reason: &str) -> Value {
    json!({ "error": { "message": message, "data": { "reason": reason } } })
}

fn connected() -> Value {
    json!({ "connected": true })
}

fn hs_config() -> String {
    format!("[auth]\njwt_secret = {SECRET:?}\nleeway = \"0s\"\n")
}

#[test]
fn hs256_valid_expired_wrong_key_and_missing() {
    if !node_client_available() {
        return;
    }
    let server = start_server(&hs_config(), &["/"]);
    let valid = hs256(SECRET, &json!({ "sub": "u1", "exp": now() + 600 }));
    assert_eq!(try_connect(&server, "/", &with_token(&valid)), connected());
    let no_exp = hs256(SECRET, &json!({ "sub": "u1" }));
    assert_eq!(try_connect(&server, "/", &with_token(&no_exp)), connected());

    let expired = hs256(SECRET, &json!({ "sub": "u1", "exp": now() - 60 }));
    assert_eq!(
        try_connect(&server, "/", &with_token(&expired)),
        refused("token expired", "expired_token")
    );
    let other = hs256(
        "another-secret-another-secret-another",
        &json!({ "sub": "u1" }),
    );
    assert_eq!(
        try_connect(&server, "/", &with_token(&other)),
        refused(
            "invalid token: bad signature (signed with another key)",
            "bad_signature"
        )
    );
    let rs = sign(
        Algorithm::RS256,
        &pem_key("rsa_private.pem", Algorithm::RS256),
        None,
        &json!({ "sub": "u1" }),
    );
    assert_eq!(
        try_connect(&server, "/", &with_token(&rs)),
        refused(
            "token signed with RS256, but this server has no such key (it verifies HS256)",
            "wrong_key"
        )
    );
    let garbage = try_connect(&server, "/", &with_token("not.a.jwt"));
    assert_eq!(
        garbage["error"]["data"],
        json!({ "reason": "invalid_token" })
    );
    assert!(
        garbage["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid token: not a JWT"),
        "{garbage}"
    );
    let no_sub = hs256(SECRET, &json!({ "exp": now() + 600 }));
    assert_eq!(
        try_connect(&server, "/", &with_token(&no_sub)),
        refused(
            "invalid token: the sub claim (the user id) is missing",
            "invalid_token"
        )
    );
    assert_eq!(
        try_connect(&server, "/", &json!({})),
        refused(
            "authentication required: no token (send it as auth.token, an Authorization: \
             Bearer header or the token cookie)",
            "missing_token"
        )
    );
    assert!(server.log().contains("connection refused: token expired"));
}

#[test]
fn rs256_es256_from_pem_and_jwks() {
    if !node_client_available() {
        return;
    }
    let ec_public = std::fs::read_to_string(fixture("ec_public.pem")).unwrap();
    let config = format!(
        "[auth]\njwt_public_key_path = {:?}\njwt_public_key = {ec_public:?}\nleeway = \"0s\"\n",
        fixture("rsa_public.pem").display().to_string()
    );
    let server = start_server(&config, &["/"]);
    let claims = json!({ "sub": "u2", "exp": now() + 600 });
    let rs = sign(
        Algorithm::RS256,
        &pem_key("rsa_private.pem", Algorithm::RS256),
        None,
        &claims,
    );
    let es = sign(
        Algorithm::ES256,
        &pem_key("ec_private.pem", Algorithm::ES256),
        None,
        &claims,
    );
    assert_eq!(try_connect(&server, "/", &with_token(&rs)), connected());
    assert_eq!(try_connect(&server, "/", &with_token(&es)), connected());
    let other = sign(
        Algorithm::RS256,
        &pem_key("rsa_other_private.pem", Algorithm::RS256),
        None,
        &claims,
    );
    assert_eq!(
        try_connect(&server, "/", &with_token(&other)),
        refused(
            "invalid token: bad signature (signed with another key)",
            "bad_signature"
        )
    );
    let hs = hs256(SECRET, &claims);
    assert_eq!(
        try_connect(&server, "/", &with_token(&hs)),
        refused(
            "token signed with HS256, but this server has no such key (it verifies ES256, RS256)",
            "wrong_key"
        )
    );
    drop(server);

    let config = format!(
        "[auth]\njwks_path = {:?}\n",
        fixture("jwks.json").display().to_string()
    );
    let server = start_server(&config, &["/"]);
    let key = pem_key("rsa_private.pem", Algorithm::RS256);
    let good = sign(Algorithm::RS256, &key, Some("test-rsa"), &claims);
    assert_eq!(try_connect(&server, "/", &with_token(&good)), connected());
    let unknown_kid = sign(Algorithm::RS256, &key, Some("rotated-away"), &claims);
    assert_eq!(
        try_connect(&server, "/", &with_token(&unknown_kid)),
        refused(
            "token signed with RS256 and key id \"rotated-away\", but this server has no such key \
             (it verifies RS256)",
            "wrong_key"
        )
    );
}

#[test]
fn tokens_from_header_and_cookie_and_anonymous_access() {
    if !node_client_available() {
        return;
    }
    let config = format!(
        "{}allow_anonymous = true\ncookie_name = \"jwt\"\n[rooms]\npublic_join = [\"^lobby$\"]\n",
        hs_config()
    );
    let server = start_server(&config, &["/"]);
    let token = hs256(
        SECRET,
        &json!({ "sub": "u3", "exp": now() + 600, "rooms": ["team_*"] }),
    );
    // The claims' rooms are granted only when the token was read: a join proves it.
    let body = format!(
        r#"
for (const [name, opts] of [
  ["header", {{ extraHeaders: {{ authorization: "Bearer {token}" }} }}],
  ["cookie", {{ extraHeaders: {{ cookie: "a=b; jwt={token}" }} }}],
  ["anonymous", {{}}],
]) {{
  const r = await connect("/", opts);
  out({{ name, error: r.error || null, team: await ack(r.s, "join", {{ room: "team_a" }}),
         lobby: await ack(r.s, "join", {{ room: "lobby" }}) }});
  r.s.close();
}}
"#
    );
    let lines = script(&server, &body);
    let ok = |room: &str| json!({ "ok": true, "room": room });
    assert_eq!(
        lines,
        vec![
            json!({ "name": "header", "error": null, "team": ok("team_a"), "lobby": ok("lobby") }),
            json!({ "name": "cookie", "error": null, "team": ok("team_a"), "lobby": ok("lobby") }),
            json!({ "name": "anonymous", "error": null,
                    "team": { "ok": false, "error": "not allowed to join room team_a" },
                    "lobby": ok("lobby") }),
        ]
    );
    // A bad token is refused even where anonymous clients are let in.
    let bad = hs256(
        "another-secret-another-secret-another",
        &json!({ "sub": "x" }),
    );
    assert_eq!(
        try_connect(
            &server,
            "/",
            &json!({ "extraHeaders": { "cookie": format!("jwt={bad}") } })
        )["error"]["data"],
        json!({ "reason": "bad_signature" })
    );
}

#[test]
fn namespaces_allowed_by_the_token() {
    if !node_client_available() {
        return;
    }
    let server = start_server(&hs_config(), &["/", "/chat", "/team-*"]);
    let token = hs256(
        SECRET,
        &json!({ "sub": "u4", "namespaces": ["/chat", "/team-*"] }),
    );
    assert_eq!(
        try_connect(&server, "/", &with_token(&token)),
        refused(
            "namespace / not allowed by the token",
            "namespace_not_allowed"
        )
    );
    assert_eq!(
        try_connect(&server, "/chat", &with_token(&token)),
        connected()
    );
    assert_eq!(
        try_connect(&server, "/team-red", &with_token(&token)),
        connected()
    );
    // A namespace the server does not serve is refused by the library as usual.
    assert_eq!(
        try_connect(&server, "/admin", &with_token(&token))["error"]["message"],
        json!("Invalid namespace")
    );
    // Without the claim, every served namespace.
    let any = hs256(SECRET, &json!({ "sub": "u4" }));
    assert_eq!(try_connect(&server, "/", &with_token(&any)), connected());
    assert_eq!(
        try_connect(&server, "/chat", &with_token(&any)),
        connected()
    );
}

#[test]
fn an_expiring_token_disconnects_the_socket() {
    if !node_client_available() {
        return;
    }
    let server = start_server(&hs_config(), &["/"]);
    let token = hs256(SECRET, &json!({ "sub": "u5", "exp": now() + 2 }));
    let body = format!(
        r#"
const r = await connect("/", {{ auth: {{ token: "{token}" }} }});
out({{ error: r.error || null }});
const started = Date.now();
const reason = await new Promise((resolve) => {{
  r.s.on("disconnect", resolve);
  setTimeout(() => resolve("still connected"), 8000);
}});
out({{ reason, after_ms: Date.now() - started }});
r.s.close();
"#
    );
    let lines = script(&server, &body);
    assert_eq!(lines[0], json!({ "error": null }));
    assert_eq!(
        lines[1]["reason"],
        json!("io server disconnect"),
        "{lines:?}"
    );
    assert!(lines[1]["after_ms"].as_u64().unwrap() <= 3500, "{lines:?}");
    assert!(server.log().contains("token expired: disconnecting"));
}

#[test]
fn room_policy_join_publish_and_leave() {
    if !node_client_available() {
        return;
    }
    let config = format!(
        "{}[rooms]\njoin = [\"^patient_[A-Za-z0-9]+$\"]\npublic_publish = [\"^lobby$\"]\n",
        hs_config()
    );
    let server = start_server(&config, &["/"]);
    let token = |sub: &str| {
        hs256(
            SECRET,
            &json!({ "sub": sub, "exp": now() + 600, "rooms": ["team_*"], "publish": ["team_*", "user:*"] }),
        )
    };
    let (a, b, c) = (token("alice"), token("bob"), token("carol"));
    let body = format!(
        r#"
const a = (await connect("/", {{ auth: {{ token: "{a}" }} }})).s;
const b = (await connect("/", {{ auth: {{ token: "{b}" }} }})).s;
const c = (await connect("/", {{ auth: {{ token: "{c}" }} }})).s;
const got = {{ a: [], b: [], c: [] }};
for (const [name, s] of [["a", a], ["b", b], ["c", c]]) {{
  s.on("news", (data) => got[name].push(data));
  s.on("dm", (data) => got[name].push({{ dm: data }}));
}}
out({{ join_patient: await ack(a, "join", {{ room: "patient_42" }}) }});
out({{ join_bad_pattern: await ack(a, "join", {{ room: "patient_4-2" }}) }});
out({{ join_admin: await ack(a, "join", {{ room: "admin" }}) }});
out({{ join_team_a: await ack(a, "join", {{ room: "team_x" }}) }});
out({{ join_team_b: await ack(b, "join", {{ room: "team_x" }}) }});
out({{ join_invalid: await ack(a, "join", "team_x") }});
out({{ publish: await ack(a, "publish", {{ room: "team_x", event: "news", data: {{ n: 1 }} }}) }});
out({{ publish_refused: await ack(a, "publish", {{ room: "patient_42", event: "news", data: {{ n: 2 }} }}) }});
out({{ publish_lobby: await ack(c, "publish", {{ room: "lobby", event: "news", data: {{ n: 3 }} }}) }});
out({{ publish_user: await ack(c, "publish", {{ room: "user:bob", event: "dm", data: "hi bob" }}) }});
out({{ leave: await ack(b, "leave", {{ room: "team_x" }}) }});
out({{ leave_own: await ack(b, "leave", {{ room: "user:bob" }}) }});
out({{ publish_after_leave: await ack(a, "publish", {{ room: "team_x", event: "news", data: {{ n: 4 }} }}) }});
out({{ publish_reserved: await ack(a, "publish", {{ room: "team_x", event: "disconnect", data: 1 }}) }});
await sleep(300);
out({{ got }});
a.close(); b.close(); c.close();
"#
    );
    let lines = script(&server, &body);
    let refused = |error: &str| json!({ "ok": false, "error": error });
    let ok = |room: &str| json!({ "ok": true, "room": room });
    let invalid = lines[5]["join_invalid"]["error"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(invalid.starts_with("invalid argument: "), "{lines:?}");
    let reserved = lines[13]["publish_reserved"].clone();
    assert_eq!(reserved["ok"], json!(false), "{lines:?}");
    assert!(
        reserved["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot publish \"disconnect\""),
        "{lines:?}"
    );
    assert_eq!(
        lines,
        vec![
            json!({ "join_patient": ok("patient_42") }),
            json!({ "join_bad_pattern": refused("not allowed to join room patient_4-2") }),
            json!({ "join_admin": refused("not allowed to join room admin") }),
            json!({ "join_team_a": ok("team_x") }),
            json!({ "join_team_b": ok("team_x") }),
            json!({ "join_invalid": { "error": invalid } }),
            json!({ "publish": ok("team_x") }),
            json!({ "publish_refused": refused("not allowed to publish to room patient_42") }),
            json!({ "publish_lobby": ok("lobby") }),
            json!({ "publish_user": ok("user:bob") }),
            json!({ "leave": ok("team_x") }),
            json!({ "leave_own": refused("cannot leave room user:bob: it is the socket's own") }),
            json!({ "publish_after_leave": ok("team_x") }),
            json!({ "publish_reserved": reserved }),
            // The sender is excluded, carol is not in team_x, bob left before n: 4, and the
            // lobby has no member.
            json!({ "got": { "a": [], "b": [{ "n": 1 }, { "dm": "hi bob" }], "c": [] } }),
        ]
    );
    assert!(server
        .log()
        .contains("refused: not allowed to join room admin"));
}

#[test]
fn publish_to_sender_when_configured() {
    if !node_client_available() {
        return;
    }
    let config = format!(
        "{}[rooms]\npublic_join = [\"^lobby$\"]\npublic_publish = [\"^lobby$\"]\npublish_to_sender = true\n",
        hs_config()
    );
    let server = start_server(&config, &["/"]);
    let token = hs256(SECRET, &json!({ "sub": "dave" }));
    let body = format!(
        r#"
const a = (await connect("/", {{ auth: {{ token: "{token}" }} }})).s;
const got = [];
a.on("news", (d) => got.push(d));
out(await ack(a, "join", {{ room: "lobby" }}));
out(await ack(a, "publish", {{ room: "lobby", event: "news", data: "mine" }}));
const deadline = Date.now() + 5000;
while (got.length === 0 && Date.now() < deadline) await sleep(20);
out({{ got }});
a.close();
"#
    );
    assert_eq!(
        script(&server, &body),
        vec![
            json!({ "ok": true, "room": "lobby" }),
            json!({ "ok": true, "room": "lobby" }),
            json!({ "got": ["mine"] }),
        ]
    );
}

fn audience_config() -> String {
    format!(
        "{}audience = [\"chat\", \"admin\"]\nissuer = \"https://id.example\"\n",
        hs_config()
    )
}

#[test]
fn audience_and_issuer_are_checked() {
    if !node_client_available() {
        return;
    }
    let server = start_server(&audience_config(), &["/"]);
    let claims = |aud: Value, iss: Value| {
        let mut claims = json!({ "sub": "u1", "exp": now() + 600 });
        if !aud.is_null() {
            claims["aud"] = aud;
        }
        if !iss.is_null() {
            claims["iss"] = iss;
        }
        hs256(SECRET, &claims)
    };
    let issuer = json!("https://id.example");
    let good = claims(json!("chat"), issuer.clone());
    assert_eq!(try_connect(&server, "/", &with_token(&good)), connected());
    let listed = claims(json!(["other", "admin"]), issuer.clone());
    assert_eq!(try_connect(&server, "/", &with_token(&listed)), connected());

    let wrong_audience = refused(
        "invalid token: its audience (aud) is not one of \"chat\", \"admin\"",
        "wrong_audience",
    );
    let other = claims(json!("billing"), issuer.clone());
    assert_eq!(
        try_connect(&server, "/", &with_token(&other)),
        wrong_audience
    );
    let none = claims(Value::Null, issuer.clone());
    assert_eq!(
        try_connect(&server, "/", &with_token(&none)),
        wrong_audience
    );

    let wrong_issuer = refused(
        "invalid token: its issuer (iss) is not \"https://id.example\"",
        "wrong_issuer",
    );
    let forged = claims(json!("chat"), json!("https://evil.example"));
    assert_eq!(
        try_connect(&server, "/", &with_token(&forged)),
        wrong_issuer
    );
    let anonymous_issuer = claims(json!("chat"), Value::Null);
    assert_eq!(
        try_connect(&server, "/", &with_token(&anonymous_issuer)),
        wrong_issuer
    );
}

/// A JWKS fixture as JSON.
fn jwks(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

#[test]
fn jwks_url_is_fetched_cached_and_fetched_again_for_a_new_key() {
    if !node_client_available() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let served = std::sync::Arc::new(std::sync::Mutex::new(jwks("jwks.json")));
    let set = served.clone();
    let identity_provider = runtime.block_on(backend::Backend::start(move |_| {
        backend::Reply::Json(200, set.lock().unwrap().clone())
    }));
    let config = format!(
        "[auth]\nrequire_auth = true\njwks_url = \"{}/.well-known/jwks.json\"\n",
        identity_provider.url
    );
    let server = start_server(&config, &["/"]);
    let fetches = || {
        identity_provider
            .requests_to("/.well-known/jwks.json")
            .len()
    };
    runtime.block_on(identity_provider.wait_for("/.well-known/jwks.json", 1));
    assert!(
        server.log().contains(&format!(
            // The algorithms come first once the first fetch is in: it races the log line.
            "the keys of {}/.well-known/jwks.json; anonymous clients refused",
            identity_provider.url
        )),
        "{}",
        server.log()
    );

    let rsa = pem_key("rsa_private.pem", Algorithm::RS256);
    let claims = json!({ "sub": "u1", "exp": now() + 600 });
    let first = sign(Algorithm::RS256, &rsa, Some("test-rsa"), &claims);
    assert_eq!(try_connect(&server, "/", &with_token(&first)), connected());
    assert_eq!(try_connect(&server, "/", &with_token(&first)), connected());
    assert_eq!(fetches(), 1, "a known key is served from the cache");

    // The identity provider rotates in a new key: a token naming it fetches the set again.
    let mut both = jwks("jwks.json");
    let other = jwks("jwks_other.json")["keys"][0].clone();
    both["keys"].as_array_mut().unwrap().push(other);
    *served.lock().unwrap() = both;
    let rotated = pem_key("rsa_other_private.pem", Algorithm::RS256);
    let second = sign(Algorithm::RS256, &rotated, Some("test-rsa-other"), &claims);
    assert_eq!(try_connect(&server, "/", &with_token(&second)), connected());
    assert_eq!(fetches(), 2);

    // A key id the provider does not have: refused, and not fetched again so soon.
    let unknown = sign(Algorithm::RS256, &rotated, Some("no-such-kid"), &claims);
    let wrong_key = refused(
        "token signed with RS256 and key id \"no-such-kid\", but this server has no such key \
         (it verifies RS256)",
        "wrong_key",
    );
    assert_eq!(try_connect(&server, "/", &with_token(&unknown)), wrong_key);
    assert_eq!(try_connect(&server, "/", &with_token(&unknown)), wrong_key);
    assert_eq!(fetches(), 2, "fetches for unknown key ids are rate-limited");
}

#[test]
fn an_unreachable_jwks_url_refuses_with_the_reason() {
    if !node_client_available() {
        return;
    }
    let port = process::free_port();
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let server = start_server(
        &format!("[auth]\nrequire_auth = true\njwks_url = \"{url}\"\n"),
        &["/"],
    );
    let rsa = pem_key("rsa_private.pem", Algorithm::RS256);
    let token = sign(
        Algorithm::RS256,
        &rsa,
        Some("test-rsa"),
        &json!({ "sub": "u1", "exp": now() + 600 }),
    );
    let answer = try_connect(&server, "/", &with_token(&token));
    assert_eq!(
        answer["error"]["data"],
        json!({ "reason": "keys_unavailable" })
    );
    let message = answer["error"]["message"].as_str().unwrap();
    let expected = format!(
        "cannot verify the token: the key set could not be fetched ({url} unreachable: \
         127.0.0.1:{port}: "
    );
    assert!(message.starts_with(&expected), "{message}");
}

/// Serves `body` over https on 127.0.0.1 (as `localhost`) with `leaf`, on `runtime`; the port.
fn serve_https(
    runtime: &tokio::runtime::Runtime,
    leaf: &ferrio_test_support::pki::CertifiedPem,
    body: String,
) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(leaf.rustls_server_config());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = bytes::Bytes::from(body);
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(body),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

#[test]
fn an_https_jwks_url_of_a_private_ca_is_trusted_through_jwks_ca_file() {
    if !node_client_available() {
        return;
    }
    use ferrio_test_support::pki::{TestCa, Validity};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ca = TestCa::new("Ferrio identity provider test CA");
    let leaf = ca.leaf(&["localhost"], Validity::CURRENT);
    let port = serve_https(&runtime, &leaf, jwks("jwks.json").to_string());
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let rsa = pem_key("rsa_private.pem", Algorithm::RS256);
    let token = sign(
        Algorithm::RS256,
        &rsa,
        Some("test-rsa"),
        &json!({ "sub": "u1", "exp": now() + 600 }),
    );

    let url = format!("https://localhost:{port}/jwks.json");
    let trusting = start_server(
        &format!(
            "[auth]\nrequire_auth = true\njwks_url = \"{url}\"\njwks_ca_file = {:?}\n",
            ca_file.display().to_string()
        ),
        &["/"],
    );
    assert_eq!(
        try_connect(&trusting, "/", &with_token(&token)),
        connected()
    );

    // Without the CA, the provider's certificate is refused and no key can be had.
    let distrusting = start_server(
        &format!("[auth]\nrequire_auth = true\njwks_url = \"{url}\"\n"),
        &["/"],
    );
    let answer = try_connect(&distrusting, "/", &with_token(&token));
    assert_eq!(
        answer["error"]["data"],
        json!({ "reason": "keys_unavailable" })
    );
    assert_eq!(
        answer["error"]["message"],
        format!(
            "cannot verify the token: the key set could not be fetched ({url} TLS failed: \
             invalid peer certificate: UnknownIssuer)"
        )
    );
}
