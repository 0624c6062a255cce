//! What a verified token says about its bearer, and the glob patterns its claims use.

use serde::Deserialize;

/// The claims of a gateway token. Unknown claims are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct Claims {
    /// The user id; a token without one is refused.
    #[serde(default)]
    pub(crate) sub: String,
    /// Namespaces the user may connect to (globs); absent allows every served namespace.
    #[serde(default)]
    pub(crate) namespaces: Option<Vec<String>>,
    /// Rooms the user may join (globs).
    #[serde(default)]
    pub(crate) rooms: Vec<String>,
    /// Rooms the user may publish to (globs).
    #[serde(default)]
    pub(crate) publish: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default)]
    pub(crate) exp: Option<u64>,
}

/// Who a socket is: what the gateway stores in the socket's data at connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// No token: only the configured public room patterns apply.
    Anonymous,
    /// A verified token.
    User(Claims),
}

impl Identity {
    /// The user id, if any.
    pub(crate) fn sub(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::User(claims) => Some(&claims.sub),
        }
    }
}

/// The room every socket of user `sub` joins, so that backends can target a user.
pub(crate) fn user_room(sub: &str) -> String {
    format!("user:{sub}")
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none
/// included) and every other character for itself.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole text must be the pattern.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether any of `patterns` matches `text`.
pub(crate) fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("patient_*", "patient_42"));
        assert!(glob_match("patient_*", "patient_"));
        assert!(!glob_match("patient_*", "doctor_1"));
        assert!(glob_match("lobby", "lobby"));
        assert!(!glob_match("lobby", "lobby2"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*_admin", "team_admin"));
        assert!(!glob_match("ab*ba", "aba"));
        assert!(glob_match("/team-*", "/team-red"));
    }

    #[test]
    fn claims_default_to_nothing_allowed() {
        let claims: Claims = serde_json::from_str(r#"{"sub":"u1","extra":1}"#).unwrap();
        assert_eq!(claims.sub, "u1");
        assert!(claims.rooms.is_empty() && claims.publish.is_empty());
        assert_eq!(claims.namespaces, None);
        assert_eq!(user_room("u1"), "user:u1");
    }
}
