//! JWT verification: the keys from the configuration, where a client's token is found, and why
//! a connection is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrio_socketio::{ConnectError, Handshake};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::claims::Claims;
use super::jwks::RemoteJwks;
use crate::config::model::Auth;
use crate::webhook::client::{read_roots, Pool};

/// The algorithms the gateway verifies.
const SUPPORTED: [Algorithm; 3] = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256];

/// Why a connection was refused: `data.reason` of the CONNECT_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// No token in the auth payload, the `Authorization` header or the cookie.
    MissingToken,
    /// Not a JWT, claims of the wrong shape, not valid yet (`nbf`), or an unsupported algorithm.
    InvalidToken,
    /// Past its `exp` (and the leeway).
    ExpiredToken,
    /// Signed with an algorithm or key id this server has no key for.
    WrongKey,
    /// The signature does not match the key.
    BadSignature,
    /// The token's `namespaces` claim does not allow this namespace.
    NamespaceNotAllowed,
    /// The token's `aud` is missing or not one of `auth.audience`.
    WrongAudience,
    /// The token's `iss` is missing or not `auth.issuer`.
    WrongIssuer,
    /// The key set of `auth.jwks_url` could not be fetched, so no key verifies the token.
    KeysUnavailable,
}

impl Reason {
    /// The reason as sent to the client.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::ExpiredToken => "expired_token",
            Self::WrongKey => "wrong_key",
            Self::BadSignature => "bad_signature",
            Self::NamespaceNotAllowed => "namespace_not_allowed",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::KeysUnavailable => "keys_unavailable",
        }
    }
}

/// A refused connection: a message for people and a reason for programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Why, for programs.
    pub(crate) reason: Reason,
    /// Why, for people.
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// The CONNECT_ERROR sent to the client: `{message, data: {reason}}`.
    pub(crate) fn into_connect_error(self) -> ConnectError {
        ConnectError::with_data(
            self.message,
            serde_json::json!({ "reason": self.reason.as_str() }),
        )
    }
}

/// One verifying key.
pub(crate) struct KeyEntry {
    pub(crate) algorithm: Algorithm,
    /// The JWKS `kid`, for keys from a JWKS file or URL.
    pub(crate) kid: Option<String>,
    key: DecodingKey,
}

/// Verifies tokens with the configured keys.
pub(crate) struct Verifier {
    keys: Vec<KeyEntry>,
    /// The key set of `auth.jwks_url`, fetched and refreshed.
    remote: Option<RemoteJwks>,
    leeway: Duration,
    /// Accepted `aud` values; empty: not checked.
    audience: Vec<String>,
    /// The required `iss`; `None`: not checked.
    issuer: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms())
            .finish_non_exhaustive()
    }
}

fn algorithm_name(algorithm: Algorithm) -> String {
    format!("{algorithm:?}")
}

impl Verifier {
    /// The verifier the configuration describes; `None` when no key is set. The error says
    /// which setting is wrong and why.
    pub(crate) fn from_config(auth: &Auth) -> Result<Option<Self>, String> {
        let only = match auth.jwt_algorithm.trim().to_ascii_uppercase().as_str() {
            "" => None,
            "HS256" => Some(Algorithm::HS256),
            "RS256" => Some(Algorithm::RS256),
            "ES256" => Some(Algorithm::ES256),
            other => {
                return Err(format!(
                    "auth.jwt_algorithm = {other:?} is not supported: use HS256, RS256 or ES256 \
                     (or leave it empty to accept what the configured keys verify)"
                ))
            }
        };
        let mut keys = Vec::new();
        if !auth.jwt_secret.is_empty() {
            keys.push(KeyEntry {
                algorithm: Algorithm::HS256,
                kid: None,
                key: DecodingKey::from_secret(auth.jwt_secret.as_bytes()),
            });
        }
        if !auth.jwt_public_key.is_empty() {
            keys.push(pem_key(
                auth.jwt_public_key.as_bytes(),
                "auth.jwt_public_key",
            )?);
        }
        if !auth.jwt_public_key_path.is_empty() {
            let path = &auth.jwt_public_key_path;
            let pem = std::fs::read(path)
                .map_err(|e| format!("auth.jwt_public_key_path: cannot read {path}: {e}"))?;
            keys.push(pem_key(
                &pem,
                &format!("auth.jwt_public_key_path ({path})"),
            )?);
        }
        if !auth.jwks_path.is_empty() {
            keys.extend(jwks_keys(&auth.jwks_path)?);
        }
        let remote = if auth.jwks_url.trim().is_empty() {
            None
        } else {
            let url = crate::webhook::client::Url::parse(auth.jwks_url.trim())
                .map_err(|e| format!("auth.jwks_url: {e}"))?;
            let pool = match auth.jwks_ca_file.trim() {
                "" => Pool::default(),
                path => Pool::with_roots(read_roots("auth.jwks_ca_file", path)?),
            };
            Some(RemoteJwks::new(url, auth.jwks_cache_ttl, only, pool))
        };
        if keys.is_empty() && remote.is_none() {
            return Ok(None);
        }
        if let Some(only) = only {
            keys.retain(|k| k.algorithm == only);
            if keys.is_empty() && remote.is_none() {
                return Err(format!(
                    "auth.jwt_algorithm is {} but no configured key verifies {}",
                    algorithm_name(only),
                    algorithm_name(only)
                ));
            }
        }
        let audience: Vec<String> = auth
            .audience
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let issuer = Some(auth.issuer.trim().to_owned()).filter(|i| !i.is_empty());
        Ok(Some(Self {
            keys,
            remote,
            leeway: auth.leeway,
            audience,
            issuer,
        }))
    }

    /// The keys, for the start-up log: the algorithms, and where fetched keys come from.
    pub(crate) fn describe_keys(&self) -> String {
        let mut parts = self.algorithms();
        if let Some(remote) = &self.remote {
            parts.push(format!("the keys of {}", remote.url()));
        }
        parts.join(", ")
    }

    /// The key set fetched from `auth.jwks_url`, if one is configured.
    pub(crate) fn remote(&self) -> Option<&RemoteJwks> {
        self.remote.as_ref()
    }

    /// The algorithms some key verifies, without repeats.
    pub(crate) fn algorithms(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let remote = self.remote.as_ref().map(RemoteJwks::keys);
        for key in self.keys.iter().chain(remote.iter().flat_map(|k| k.iter())) {
            let name = algorithm_name(key.algorithm);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The leeway on `exp` and `nbf`.
    pub(crate) fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Verifies a token and returns its claims. With `auth.jwks_url`, a token naming a key id
    /// the cached set lacks (or a set past its time) fetches the set again first, at most once
    /// every [`jwks::MIN_REFETCH`](super::jwks::MIN_REFETCH). Cancel-safe.
    pub(crate) async fn verify(&self, token: &str) -> Result<Claims, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            Refusal::new(
                Reason::InvalidToken,
                format!("invalid token: not a JWT ({e})"),
            )
        })?;
        let Some(remote) = &self.remote else {
            return self.verify_with(token, &[]);
        };
        let known = |keys: &[KeyEntry]| {
            self.keys
                .iter()
                .chain(keys.iter())
                .any(|k| k.algorithm == header.alg && kid_fits(k, &header))
        };
        let mut keys = remote.keys();
        if !known(&keys) || remote.is_stale() {
            remote.refresh_on_demand().await;
            keys = remote.keys();
        }
        if !known(&keys) {
            if let Some(error) = remote.last_error() {
                if keys.is_empty() && self.keys.is_empty() {
                    return Err(Refusal::new(
                        Reason::KeysUnavailable,
                        format!(
                            "cannot verify the token: the key set could not be fetched ({error})"
                        ),
                    ));
                }
            }
        }
        self.verify_with(token, &keys)
    }

    /// Verifies a token with the configured keys and `remote` (the fetched key set).
    fn verify_with(&self, token: &str, remote: &[KeyEntry]) -> Result<Claims, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            Refusal::new(
                Reason::InvalidToken,
                format!("invalid token: not a JWT ({e})"),
            )
        })?;
        if !SUPPORTED.contains(&header.alg) {
            return Err(Refusal::new(
                Reason::InvalidToken,
                format!(
                    "invalid token: algorithm {} is not supported (HS256, RS256, ES256)",
                    algorithm_name(header.alg)
                ),
            ));
        }
        let candidates: Vec<&KeyEntry> = self
            .keys
            .iter()
            .chain(remote.iter())
            .filter(|k| k.algorithm == header.alg)
            .filter(|k| kid_fits(k, &header))
            .collect();
        if candidates.is_empty() {
            let kid = header
                .kid
                .as_ref()
                .map(|k| format!(" and key id {k:?}"))
                .unwrap_or_default();
            return Err(Refusal::new(
                Reason::WrongKey,
                format!(
                    "token signed with {}{kid}, but this server has no such key ({})",
                    algorithm_name(header.alg),
                    match self.algorithms() {
                        known if known.is_empty() => "it has no key yet".to_owned(),
                        known => format!("it verifies {}", known.join(", ")),
                    }
                ),
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        if self.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audience);
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        // `sub` is checked below, with a clear message; `exp` is optional. A configured
        // audience or issuer must be present, not merely right when present.
        let mut required = Vec::new();
        if !self.audience.is_empty() {
            required.push("aud");
        }
        if self.issuer.is_some() {
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let mut last = None;
        for entry in candidates {
            match jsonwebtoken::decode::<Claims>(token, &entry.key, &validation) {
                Err(e)
                    if matches!(e.kind(), ErrorKind::InvalidAudience)
                        || matches!(e.kind(), ErrorKind::MissingRequiredClaim(c) if c == "aud") =>
                {
                    return Err(Refusal::new(
                        Reason::WrongAudience,
                        format!(
                            "invalid token: its audience (aud) is not {}",
                            one_of(&self.audience)
                        ),
                    ))
                }
                Err(e)
                    if matches!(e.kind(), ErrorKind::InvalidIssuer)
                        || matches!(e.kind(), ErrorKind::MissingRequiredClaim(c) if c == "iss") =>
                {
                    return Err(Refusal::new(
                        Reason::WrongIssuer,
                        format!(
                            "invalid token: its issuer (iss) is not {:?}",
                            self.issuer.as_deref().unwrap_or_default()
                        ),
                    ))
                }
                Ok(data) if data.claims.sub.is_empty() => {
                    return Err(Refusal::new(
                        Reason::InvalidToken,
                        "invalid token: the sub claim (the user id) is missing",
                    ))
                }
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    let refusal = refusal_of(e.kind());
                    if refusal.reason != Reason::BadSignature {
                        return Err(refusal);
                    }
                    last = Some(refusal);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            Refusal::new(Reason::InvalidToken, "invalid token: no key could check it")
        }))
    }
}

/// Whether a key's id allows it for a token: keys and tokens without ids fit any.
fn kid_fits(key: &KeyEntry, header: &jsonwebtoken::Header) -> bool {
    match (&key.kid, &header.kid) {
        (Some(kid), Some(wanted)) => kid == wanted,
        _ => true,
    }
}

/// `"a"` or `one of "a", "b"`.
fn one_of(values: &[String]) -> String {
    match values {
        [one] => format!("{one:?}"),
        many => format!(
            "one of {}",
            many.iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn refusal_of(kind: &ErrorKind) -> Refusal {
    match kind {
        ErrorKind::ExpiredSignature => Refusal::new(Reason::ExpiredToken, "token expired"),
        ErrorKind::InvalidSignature => Refusal::new(
            Reason::BadSignature,
            "invalid token: bad signature (signed with another key)",
        ),
        ErrorKind::ImmatureSignature => {
            Refusal::new(Reason::InvalidToken, "invalid token: not valid yet (nbf)")
        }
        ErrorKind::InvalidAlgorithm => Refusal::new(
            Reason::WrongKey,
            "token signed with an algorithm this server has no key for",
        ),
        ErrorKind::Json(e) => Refusal::new(
            Reason::InvalidToken,
            format!("invalid token: unexpected claims ({e})"),
        ),
        other => Refusal::new(Reason::InvalidToken, format!("invalid token ({other:?})")),
    }
}

/// A PEM public key: RSA (RS256) or EC P-256 (ES256).
fn pem_key(pem: &[u8], setting: &str) -> Result<KeyEntry, String> {
    let text = String::from_utf8_lossy(pem);
    if !text.contains("-----BEGIN") {
        return Err(format!("{setting} is not a PEM key (no -----BEGIN line)"));
    }
    if text.contains("PRIVATE KEY") {
        return Err(format!(
            "{setting} is a private key: configure the public key only"
        ));
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(KeyEntry {
            algorithm: Algorithm::RS256,
            kid: None,
            key,
        });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok(KeyEntry {
            algorithm: Algorithm::ES256,
            kid: None,
            key,
        });
    }
    Err(format!(
        "{setting} is neither an RSA nor an EC P-256 public key in PEM"
    ))
}

/// The RS256 and ES256 keys of a JWKS file.
fn jwks_keys(path: &str) -> Result<Vec<KeyEntry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("auth.jwks_path: cannot read {path}: {e}"))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| format!("auth.jwks_path: {path} is not a JWKS ({e})"))?;
    let keys = keys_of_set(&set, &format!("auth.jwks_path: key {{index}} of {path}"))?;
    if keys.is_empty() {
        return Err(format!("auth.jwks_path: {path} holds no key"));
    }
    Ok(keys)
}

/// The keys of a JWKS; `source` names a key in errors, `{index}` standing for its position.
pub(crate) fn keys_of_set(set: &JwkSet, source: &str) -> Result<Vec<KeyEntry>, String> {
    let mut keys = Vec::new();
    for (index, jwk) in set.keys.iter().enumerate() {
        let name = source.replace("{index}", &index.to_string());
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("{name}: {e}"))?;
        let unsupported = |what: String| {
            format!("{name} is {what}: only RS256, ES256 and HS256 keys are supported")
        };
        if !jwk.is_supported() {
            return Err(unsupported("of an unsupported kind".to_owned()));
        }
        use jsonwebtoken::jwk::{AlgorithmParameters, KeyAlgorithm};
        let algorithm = match (jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::RS256), _) | (None, AlgorithmParameters::RSA(_)) => {
                Algorithm::RS256
            }
            (Some(KeyAlgorithm::ES256), _) | (None, AlgorithmParameters::EllipticCurve(_)) => {
                Algorithm::ES256
            }
            (Some(KeyAlgorithm::HS256), _) | (None, AlgorithmParameters::OctetKey(_)) => {
                Algorithm::HS256
            }
            (Some(other), _) => return Err(unsupported(format!("{other:?}"))),
            (None, _) => return Err(unsupported("of an unsupported kind".to_owned())),
        };
        keys.push(KeyEntry {
            algorithm,
            kid: jwk.common.key_id.clone(),
            key,
        });
    }
    Ok(keys)
}

/// Where a client's token is looked for, first found wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenSource {
    /// `{token}` of the CONNECT auth payload.
    Auth,
    /// `Authorization: Bearer` of the handshake request.
    Header,
    /// The configured cookie of the handshake request.
    Cookie,
}

/// The client's token and where it was found.
pub(crate) fn find_token(
    auth: &Value,
    handshake: &Handshake,
    cookie_name: &str,
) -> Option<(String, TokenSource)> {
    if let Some(token) = auth.get("token").and_then(Value::as_str) {
        if !token.is_empty() {
            return Some((token.to_owned(), TokenSource::Auth));
        }
    }
    let headers = handshake.headers();
    for value in headers.get_all(http::header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else { continue };
        let value = value.trim();
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some((token.trim().to_owned(), TokenSource::Header));
            }
        }
    }
    if cookie_name.is_empty() {
        return None;
    }
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=') {
                let token = token.trim().trim_matches('"');
                if name.trim() == cookie_name && !token.is_empty() {
                    return Some((token.to_owned(), TokenSource::Cookie));
                }
            }
        }
    }
    None
}

/// How long until `exp` (plus the leeway) passes; zero when it has, `None` when it is beyond
/// what the clock can represent.
pub(crate) fn until_expiry(exp: u64, leeway: Duration) -> Option<Duration> {
    let deadline = UNIX_EPOCH
        .checked_add(Duration::from_secs(exp))?
        .checked_add(leeway)?;
    Some(
        deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn auth(secret: &str) -> Auth {
        Auth {
            jwt_secret: secret.to_owned(),
            leeway: Duration::ZERO,
            ..Auth::default()
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn hs(secret: &str, claims: Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn expiry_delays() {
        assert_eq!(until_expiry(0, Duration::ZERO), Some(Duration::ZERO));
        assert_eq!(until_expiry(u64::MAX, Duration::ZERO), None);
        let wait = until_expiry(now() + 100, Duration::from_secs(5)).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(105));
    }

    #[test]
    fn no_key_no_verifier() {
        assert!(Verifier::from_config(&Auth::default()).unwrap().is_none());
    }

    #[tokio::test]
    async fn hs256_flows() {
        let v = Verifier::from_config(&auth("s3cret")).unwrap().unwrap();
        let ok = hs(
            "s3cret",
            serde_json::json!({"sub": "u1", "exp": now() + 60}),
        );
        assert_eq!(v.verify(&ok).await.unwrap().sub, "u1");
        let expired = hs(
            "s3cret",
            serde_json::json!({"sub": "u1", "exp": now() - 10}),
        );
        assert_eq!(
            v.verify(&expired).await.unwrap_err().reason,
            Reason::ExpiredToken
        );
        let other = hs("other", serde_json::json!({"sub": "u1"}));
        assert_eq!(
            v.verify(&other).await.unwrap_err().reason,
            Reason::BadSignature
        );
        let no_sub = hs("s3cret", serde_json::json!({"exp": now() + 60}));
        assert_eq!(
            v.verify(&no_sub).await.unwrap_err().reason,
            Reason::InvalidToken
        );
        let later = hs(
            "s3cret",
            serde_json::json!({"sub": "u1", "nbf": now() + 600}),
        );
        assert_eq!(
            v.verify(&later).await.unwrap_err().reason,
            Reason::InvalidToken
        );
        assert_eq!(
            v.verify("garbage").await.unwrap_err().reason,
            Reason::InvalidToken
        );
    }

    #[tokio::test]
    async fn audience_and_issuer() {
        let mut config = auth("s3cret");
        config.audience = vec!["chat".into()];
        config.issuer = "https://id.example".into();
        let v = Verifier::from_config(&config).unwrap().unwrap();
        let token = |claims: Value| hs("s3cret", claims);
        let ok = token(
            serde_json::json!({"sub": "u", "aud": ["x", "chat"], "iss": "https://id.example"}),
        );
        assert_eq!(v.verify(&ok).await.unwrap().sub, "u");
        let refusal = v
            .verify(&token(
                serde_json::json!({"sub": "u", "aud": "x", "iss": "https://id.example"}),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            refusal,
            Refusal::new(
                Reason::WrongAudience,
                "invalid token: its audience (aud) is not \"chat\""
            )
        );
        let no_iss = token(serde_json::json!({"sub": "u", "aud": "chat"}));
        assert_eq!(
            v.verify(&no_iss).await.unwrap_err().reason,
            Reason::WrongIssuer
        );
    }

    #[test]
    fn jwks_url_must_be_http() {
        let config = Auth {
            jwks_url: "ftp://idp.example/jwks.json".into(),
            ..Auth::default()
        };
        assert_eq!(
            Verifier::from_config(&config).unwrap_err(),
            "auth.jwks_url: \"ftp://idp.example/jwks.json\" uses the scheme \"ftp\": only http:// \
             and https:// are supported"
        );
    }

    #[test]
    fn algorithm_setting_is_checked() {
        let mut config = auth("s");
        config.jwt_algorithm = "RS256".into();
        assert!(Verifier::from_config(&config)
            .unwrap_err()
            .contains("no configured key verifies RS256"));
        config.jwt_algorithm = "none".into();
        assert!(Verifier::from_config(&config)
            .unwrap_err()
            .contains("is not supported"));
        let bad_pem = Auth {
            jwt_public_key: "hello".into(),
            ..Auth::default()
        };
        assert!(Verifier::from_config(&bad_pem)
            .unwrap_err()
            .contains("not a PEM key"));
    }

    #[test]
    fn tokens_are_found_in_order() {
        let mut headers = http::HeaderMap::new();
        let with = |headers: &http::HeaderMap| {
            Handshake::new(
                "/socket.io/?EIO=4".parse().unwrap(),
                headers,
                None,
                SystemTime::now(),
            )
        };
        let handshake = with(&headers);
        assert_eq!(
            find_token(&serde_json::json!({}), &handshake, "token"),
            None
        );
        headers.insert(http::header::COOKIE, "a=1; token=C; b=2".parse().unwrap());
        let handshake = with(&headers);
        assert_eq!(
            find_token(&serde_json::json!({}), &handshake, "token"),
            Some(("C".into(), TokenSource::Cookie))
        );
        assert_eq!(find_token(&serde_json::json!({}), &handshake, "jwt"), None);
        headers.insert(http::header::AUTHORIZATION, "Bearer H".parse().unwrap());
        let handshake = with(&headers);
        assert_eq!(
            find_token(&serde_json::json!({}), &handshake, "token"),
            Some(("H".into(), TokenSource::Header))
        );
        assert_eq!(
            find_token(&serde_json::json!({"token": "A"}), &handshake, "token"),
            Some(("A".into(), TokenSource::Auth))
        );
    }
}
