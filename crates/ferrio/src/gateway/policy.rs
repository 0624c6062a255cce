//! Room policy: who may join and publish to which room, from the token's claims (globs) and the
//! configured patterns (regular expressions).

use regex::RegexSet;

use super::claims::{any_glob, Identity};
use crate::config::model::Rooms;

/// What a client asks to do with a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Join it.
    Join,
    /// Publish to it.
    Publish,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Self::Join => "join",
            Self::Publish => "publish to",
        }
    }
}

/// The configured patterns, compiled.
#[derive(Debug, Clone)]
pub(crate) struct RoomPolicy {
    join: RegexSet,
    publish: RegexSet,
    public_join: RegexSet,
    public_publish: RegexSet,
    /// Whether publishers receive their own publications.
    pub(crate) publish_to_sender: bool,
}

/// Why `pattern` is not a regular expression, in one line; `None` when it is one.
pub(crate) fn pattern_error(key: &str, pattern: &str) -> Option<String> {
    let error = regex::Regex::new(pattern).err()?.to_string();
    let cause = error
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_owned();
    Some(format!(
        "{key}: {pattern:?} is not a regular expression ({cause})"
    ))
}

fn compile(key: &str, patterns: &[String]) -> Result<RegexSet, String> {
    for pattern in patterns {
        if let Some(error) = pattern_error(key, pattern) {
            return Err(error);
        }
    }
    RegexSet::new(patterns).map_err(|e| format!("{key}: {e}"))
}

impl RoomPolicy {
    /// Compiles the patterns; the error names the setting and the pattern.
    pub(crate) fn from_config(rooms: &Rooms) -> Result<Self, String> {
        Ok(Self {
            join: compile("rooms.join", &rooms.join)?,
            publish: compile("rooms.publish", &rooms.publish)?,
            public_join: compile("rooms.public_join", &rooms.public_join)?,
            public_publish: compile("rooms.public_publish", &rooms.public_publish)?,
            publish_to_sender: rooms.publish_to_sender,
        })
    }

    /// Whether `identity` may do `action` with `room`; the error is the ack's message.
    pub(crate) fn check(
        &self,
        identity: &Identity,
        action: Action,
        room: &str,
    ) -> Result<(), String> {
        let (public, configured) = match action {
            Action::Join => (&self.public_join, &self.join),
            Action::Publish => (&self.public_publish, &self.publish),
        };
        let allowed = public.is_match(room)
            || match identity {
                Identity::Anonymous => false,
                Identity::User(claims) => {
                    let globs = match action {
                        Action::Join => &claims.rooms,
                        Action::Publish => &claims.publish,
                    };
                    configured.is_match(room) || any_glob(globs, room)
                }
            };
        if allowed {
            Ok(())
        } else {
            Err(format!("not allowed to {} room {room}", action.verb()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::claims::Claims;

    fn policy() -> RoomPolicy {
        RoomPolicy::from_config(&Rooms {
            join: vec!["^patient_[A-Za-z0-9]+$".into()],
            publish: vec![],
            public_join: vec!["^lobby$".into()],
            public_publish: vec![],
            publish_to_sender: false,
        })
        .unwrap()
    }

    #[test]
    fn claims_patterns_and_public_rooms() {
        let policy = policy();
        let user = Identity::User(Claims {
            sub: "u".into(),
            publish: vec!["chat_*".into()],
            rooms: vec!["chat_*".into()],
            ..Claims::default()
        });
        assert_eq!(policy.check(&user, Action::Join, "patient_42"), Ok(()));
        assert_eq!(policy.check(&user, Action::Join, "chat_a"), Ok(()));
        assert_eq!(policy.check(&user, Action::Join, "lobby"), Ok(()));
        assert_eq!(
            policy.check(&user, Action::Join, "patient_4-2"),
            Err("not allowed to join room patient_4-2".into())
        );
        assert_eq!(policy.check(&user, Action::Publish, "chat_a"), Ok(()));
        assert_eq!(
            policy.check(&user, Action::Publish, "patient_42"),
            Err("not allowed to publish to room patient_42".into())
        );
        let anon = Identity::Anonymous;
        assert_eq!(policy.check(&anon, Action::Join, "lobby"), Ok(()));
        assert!(policy.check(&anon, Action::Join, "patient_42").is_err());
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = RoomPolicy::from_config(&Rooms {
            join: vec!["(".into()],
            ..Rooms::default()
        })
        .unwrap_err();
        assert_eq!(
            err,
            "rooms.join: \"(\" is not a regular expression (unclosed group)"
        );
    }
}
