//! Every configuration key: its kind, and the environment names that set it.
//!
//! A key `section.name` is set by `FERRIO_SECTION_NAME`, and then by its aliases in the order
//! listed (the names teams already use in their `.env` files). `docs/configuration.md` has the
//! same table; a test keeps the two in step.

/// What a key holds, which says how a text value (environment, `.env`, flag) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text.
    Text,
    /// Text that is never printed.
    Secret,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A whole number.
    Int,
    /// A duration (see [`super::duration`]).
    Duration,
    /// A comma-separated list in text, an array in TOML.
    List,
}

/// One configuration key.
#[derive(Debug)]
pub(crate) struct Key {
    /// Dotted name, `section.field`.
    pub(crate) name: &'static str,
    /// What it holds.
    pub(crate) kind: Kind,
    /// Other environment names, after the `FERRIO_*` one, first wins.
    pub(crate) aliases: &'static [&'static str],
}

impl Key {
    /// The canonical environment name: `FERRIO_` and the key in capitals, `.` as `_`.
    pub(crate) fn env_name(&self) -> String {
        format!(
            "FERRIO_{}",
            self.name.replace('.', "_").to_ascii_uppercase()
        )
    }

    /// Every environment name, canonical first.
    pub(crate) fn env_names(&self) -> Vec<String> {
        let mut names = vec![self.env_name()];
        names.extend(self.aliases.iter().map(|a| (*a).to_owned()));
        names
    }

    /// The section and field names.
    pub(crate) fn split(&self) -> (&'static str, &'static str) {
        self.name.split_once('.').expect("keys are section.field")
    }
}

const fn key(name: &'static str, kind: Kind, aliases: &'static [&'static str]) -> Key {
    Key {
        name,
        kind,
        aliases,
    }
}

/// Environment variables that are not keys but are read: the configuration file's path.
pub(crate) const CONFIG_VAR: &str = "FERRIO_CONFIG";

/// Every key, in the order `config check` prints them.
pub(crate) static KEYS: &[Key] = &[
    key("server.host", Kind::Text, &["FERRIO_HOST"]),
    key("server.port", Kind::Int, &["FERRIO_PORT"]),
    key("server.path", Kind::Text, &[]),
    key("server.namespaces", Kind::List, &[]),
    key("server.metrics", Kind::Bool, &[]),
    key("server.tls_cert", Kind::Text, &[]),
    key("server.tls_key", Kind::Text, &[]),
    key("server.allowed_origins", Kind::List, &[]),
    key("server.trusted_proxies", Kind::List, &[]),
    key("server.shutdown_timeout", Kind::Duration, &[]),
    key("server.cookie", Kind::Bool, &[]),
    key("server.cookie_name", Kind::Text, &[]),
    key("server.cookie_path", Kind::Text, &[]),
    key("server.cookie_http_only", Kind::Bool, &[]),
    key("server.cookie_secure", Kind::Bool, &[]),
    key("server.cookie_same_site", Kind::Text, &[]),
    key(
        "engine.transports",
        Kind::List,
        &["SOCKETIO_TRANSPORTS", "SOCKET_IO_TRANSPORTS"],
    ),
    key("engine.allow_upgrades", Kind::Bool, &[]),
    key("engine.allow_eio3", Kind::Bool, &[]),
    key(
        "heartbeat.ping_interval",
        Kind::Duration,
        &["SOCKETIO_PING_INTERVAL", "SOCKET_IO_PING_INTERVAL"],
    ),
    key(
        "heartbeat.ping_timeout",
        Kind::Duration,
        &["SOCKETIO_PING_TIMEOUT", "SOCKET_IO_PING_TIMEOUT"],
    ),
    key("heartbeat.upgrade_timeout", Kind::Duration, &[]),
    key("heartbeat.connect_timeout", Kind::Duration, &[]),
    key(
        "limits.max_payload",
        Kind::Int,
        &[
            "SOCKETIO_MAX_HTTP_BUFFER_SIZE",
            "SOCKET_IO_MAX_HTTP_BUFFER_SIZE",
        ],
    ),
    key(
        "limits.max_connections",
        Kind::Int,
        &["SOCKETIO_MAX_CONNECTIONS", "SOCKET_IO_MAX_CONNECTIONS"],
    ),
    key("limits.max_connections_per_ip", Kind::Int, &[]),
    key("limits.max_buffered_packets", Kind::Int, &[]),
    key("limits.fanout_window", Kind::Int, &[]),
    key("limits.max_attachments", Kind::Int, &[]),
    key("limits.max_rooms_per_socket", Kind::Int, &[]),
    key("limits.polling_body_timeout", Kind::Duration, &[]),
    key(
        "rate_limit.enabled",
        Kind::Bool,
        &["SOCKETIO_RATE_LIMITING", "SOCKET_IO_RATE_LIMITING"],
    ),
    key("rate_limit.handshakes_per_10s", Kind::Int, &[]),
    key("rate_limit.events_per_second", Kind::Int, &[]),
    key("rate_limit.over_limit", Kind::Text, &[]),
    key(
        "cors.origins",
        Kind::List,
        &["SOCKETIO_CORS_ORIGINS", "SOCKET_IO_CORS_ORIGINS"],
    ),
    key(
        "cors.credentials",
        Kind::Bool,
        &["SOCKETIO_CORS_CREDENTIALS", "SOCKET_IO_CORS_CREDENTIALS"],
    ),
    key(
        "cors.methods",
        Kind::List,
        &["SOCKETIO_CORS_METHODS", "SOCKET_IO_CORS_METHODS"],
    ),
    key(
        "cors.headers",
        Kind::List,
        &["SOCKETIO_CORS_HEADERS", "SOCKET_IO_CORS_HEADERS"],
    ),
    key("recovery.enabled", Kind::Bool, &[]),
    key("recovery.window", Kind::Duration, &[]),
    key("history.enabled", Kind::Bool, &[]),
    key("history.store", Kind::Text, &[]),
    key("history.path", Kind::Text, &[]),
    key("history.rooms", Kind::List, &[]),
    key("history.max_messages", Kind::Int, &[]),
    key("history.max_age", Kind::Duration, &[]),
    key(
        "log.level",
        Kind::Text,
        &["FERRIO_LOG", "SOCKETIO_LOG_LEVEL", "SOCKET_IO_LOG_LEVEL"],
    ),
    key("log.format", Kind::Text, &[]),
    key(
        "log.connections",
        Kind::Bool,
        &["SOCKETIO_LOG_CONNECTIONS", "SOCKET_IO_LOG_CONNECTIONS"],
    ),
    key(
        "auth.require_auth",
        Kind::Bool,
        &["SOCKETIO_REQUIRE_AUTH", "SOCKET_IO_REQUIRE_AUTH"],
    ),
    key("auth.allow_anonymous", Kind::Bool, &[]),
    key("auth.jwt_secret", Kind::Secret, &[]),
    key("auth.jwt_public_key", Kind::Text, &[]),
    key("auth.jwt_public_key_path", Kind::Text, &[]),
    key("auth.jwks_path", Kind::Text, &[]),
    key("auth.jwt_algorithm", Kind::Text, &[]),
    key("auth.cookie_name", Kind::Text, &[]),
    key("auth.leeway", Kind::Duration, &[]),
    key("auth.audience", Kind::List, &[]),
    key("auth.issuer", Kind::Text, &[]),
    key("auth.jwks_url", Kind::Text, &[]),
    key("auth.jwks_cache_ttl", Kind::Duration, &[]),
    key("auth.jwks_ca_file", Kind::Text, &[]),
    key("rooms.join", Kind::List, &[]),
    key("rooms.publish", Kind::List, &[]),
    key("rooms.public_join", Kind::List, &[]),
    key("rooms.public_publish", Kind::List, &[]),
    key("rooms.publish_to_sender", Kind::Bool, &[]),
    key("api.key", Kind::Secret, &[]),
    key("api.max_body", Kind::Int, &[]),
    key("cluster.nodes", Kind::Int, &[]),
    key("cluster.adapter", Kind::Text, &[]),
    key("cluster.redis_url", Kind::Secret, &[]),
    key("cluster.redis_key", Kind::Text, &[]),
    key("cluster.request_timeout", Kind::Duration, &[]),
    key("webhooks.events_url", Kind::Text, &[]),
    key("webhooks.events", Kind::List, &[]),
    key("webhooks.connect_url", Kind::Text, &[]),
    key("webhooks.disconnect_url", Kind::Text, &[]),
    key("webhooks.timeout", Kind::Duration, &[]),
    key("webhooks.secret", Kind::Secret, &[]),
    key("webhooks.max_in_flight", Kind::Int, &[]),
    key("webhooks.ca_file", Kind::Text, &[]),
    key("ws.enabled", Kind::Bool, &[]),
    key("ws.path", Kind::Text, &[]),
    key("ws.ping_interval", Kind::Duration, &[]),
    key("ws.ping_timeout", Kind::Duration, &[]),
];

/// The key with this dotted name.
pub(crate) fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether an environment variable is one Ferrio reads.
pub(crate) fn is_known_var(var: &str) -> bool {
    var == CONFIG_VAR || KEYS.iter().any(|k| k.env_names().iter().any(|n| n == var))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Config;

    #[test]
    fn every_field_of_the_model_has_a_key_and_back() {
        let value = toml::Table::try_from(Config::default()).unwrap();
        let mut fields = Vec::new();
        for (section, table) in &value {
            for field in table.as_table().unwrap().keys() {
                fields.push(format!("{section}.{field}"));
            }
        }
        fields.sort();
        let mut names: Vec<String> = KEYS.iter().map(|k| k.name.to_owned()).collect();
        names.sort();
        assert_eq!(fields, names);
    }

    #[test]
    fn environment_names_are_unique() {
        let mut all: Vec<String> = KEYS.iter().flat_map(|k| k.env_names()).collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
        assert_eq!(
            find("heartbeat.ping_timeout").unwrap().env_name(),
            "FERRIO_HEARTBEAT_PING_TIMEOUT"
        );
    }

    #[test]
    fn the_documentation_names_every_key_and_variable() {
        let docs = include_str!("../../../../docs/configuration.md");
        for key in KEYS {
            assert!(
                docs.contains(&format!("`{}`", key.name)),
                "{} undocumented",
                key.name
            );
            for var in key.env_names() {
                assert!(docs.contains(&format!("`{var}`")), "{var} undocumented");
            }
        }
    }
}
