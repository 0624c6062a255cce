//! The libraries' settings from the gateway's configuration.

use std::time::Duration;

use ferrio_engineio::{
    AllowOrigin, CookieConfig, CorsConfig, RateLimit, Transports, TrustedProxies,
};
use ferrio_socketio::{EventRateLimit, RecoveryConfig, SocketIoConfig};

use super::model::{Config, OverLimit, SameSite, Transport};

/// The Socket.IO server's settings. Fails on what the libraries cannot express.
pub(crate) fn socketio_config(config: &Config) -> Result<SocketIoConfig, String> {
    let mut io = SocketIoConfig::default();
    let engine = &mut io.engine;
    engine.path = mount_path(&config.server.path);
    engine.transports = Transports {
        polling: config.engine.transports.contains(&Transport::Polling),
        websocket: config.engine.transports.contains(&Transport::Websocket),
    };
    engine.allow_upgrades = config.engine.allow_upgrades;
    engine.allow_eio3 = config.engine.allow_eio3;
    let hb = &config.heartbeat;
    engine.ping_interval = hb.ping_interval;
    engine.ping_timeout = hb.ping_timeout;
    engine.upgrade_timeout = hb.upgrade_timeout;
    io.connect_timeout = hb.connect_timeout;

    let limits = &config.limits;
    let engine = &mut io.engine;
    engine.max_payload = limits.max_payload;
    engine.max_connections = nonzero(limits.max_connections)?;
    engine.max_connections_per_ip = nonzero(limits.max_connections_per_ip)?;
    engine.max_buffered_packets = usize_of(limits.max_buffered_packets)?;
    engine.fanout_window = u32::try_from(limits.fanout_window).unwrap_or(u32::MAX);
    engine.polling_body_timeout = limits.polling_body_timeout;
    io.max_attachments = usize_of(limits.max_attachments)?;
    io.max_rooms_per_socket = nonzero(limits.max_rooms_per_socket)?;

    if config.rate_limit.enabled {
        io.engine.handshake_rate_per_ip = Some(RateLimit::new(
            config.rate_limit.handshakes_per_10s,
            Duration::from_secs(10),
        ));
        let action = match config.rate_limit.over_limit {
            OverLimit::Drop => ferrio_socketio::OverLimit::Drop,
            OverLimit::Disconnect => ferrio_socketio::OverLimit::Disconnect,
        };
        io.event_rate = Some(
            EventRateLimit::new(RateLimit::new(
                config.rate_limit.events_per_second,
                Duration::from_secs(1),
            ))
            .with_action(action),
        );
    }

    let cors = &config.cors;
    if !cors.origins.is_empty() {
        let origin = if cors.origins.iter().any(|o| o == "*") {
            AllowOrigin::Any
        } else {
            AllowOrigin::List(cors.origins.clone())
        };
        let mut methods = Vec::new();
        for method in &cors.methods {
            methods.push(
                http::Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("cors.methods: {method:?} is not an HTTP method"))?,
            );
        }
        io.engine.cors = Some(CorsConfig {
            credentials: cors.credentials,
            methods,
            allowed_headers: (!cors.headers.is_empty()).then(|| cors.headers.clone()),
            ..CorsConfig::new(origin)
        });
    }

    let server = &config.server;
    if !server.allowed_origins.is_empty() {
        io.engine.allowed_origins = Some(if server.allowed_origins.iter().any(|o| o == "*") {
            AllowOrigin::Any
        } else {
            AllowOrigin::List(server.allowed_origins.clone())
        });
    }
    if !server.trusted_proxies.is_empty() {
        let proxies = TrustedProxies::parse(&server.trusted_proxies)
            .map_err(|e| format!("server.trusted_proxies: {e}"))?;
        io.engine.client_ip = Some(proxies.into_client_ip());
    }

    if server.cookie {
        if let Some(problem) = cookie_problem(server) {
            return Err(problem);
        }
        io.engine.cookie = Some(CookieConfig {
            name: server.cookie_name.clone(),
            path: server.cookie_path.clone(),
            http_only: server.cookie_http_only,
            secure: server.cookie_is_secure(),
            same_site: match server.cookie_same_site {
                SameSite::Strict => ferrio_engineio::SameSite::Strict,
                SameSite::Lax => ferrio_engineio::SameSite::Lax,
                SameSite::None => ferrio_engineio::SameSite::None,
            },
        });
    }

    if config.recovery.enabled {
        io.recovery = Some(RecoveryConfig {
            max_disconnection_duration: config.recovery.window,
            // The gateway's identity (JWT claims) is set by its connect middleware: a recovered
            // socket runs it again, with the token the client sends again, so that it keeps its
            // permissions (and an expired token does not recover).
            skip_middlewares: false,
        });
    }
    Ok(io)
}

/// What makes the session cookie's name or path unusable in a `Set-Cookie` header, if anything.
/// The engine writes them as given, so a `;` would add attributes and a space or a control
/// character would make the header invalid (and the cookie silently absent).
pub(crate) fn cookie_problem(server: &crate::config::model::Server) -> Option<String> {
    // RFC 6265: a cookie name is an RFC 7230 token.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if server.cookie_name.is_empty() || !server.cookie_name.chars().all(token) {
        return Some(format!(
            "server.cookie_name = {:?} is not a cookie name, which holds only letters, digits \
             and !#$%&'*+-.^_`|~",
            server.cookie_name
        ));
    }
    let path = &server.cookie_path;
    if !path.starts_with('/') || path.chars().any(|c| c == ';' || !(' '..='~').contains(&c)) {
        return Some(format!(
            "server.cookie_path = {path:?} is not a cookie path, which starts with / and holds \
             printable ASCII characters other than ; only"
        ));
    }
    None
}

/// The mount path with its trailing slash, as the engine expects it.
pub(crate) fn mount_path(path: &str) -> String {
    if path.ends_with('/') {
        path.to_owned()
    } else {
        format!("{path}/")
    }
}

fn usize_of(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("{n} is too large for this platform"))
}

fn nonzero(n: u64) -> Result<Option<usize>, String> {
    Ok(if n == 0 { None } else { Some(usize_of(n)?) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_reference_defaults() {
        let built = socketio_config(&Config::default()).unwrap();
        let reference = SocketIoConfig::default();
        assert_eq!(format!("{built:?}"), format!("{reference:?}"));
    }

    #[test]
    fn fields_reach_the_libraries() {
        let mut config = Config::default();
        config.server.path = "/rt".into();
        config.engine.transports = vec![Transport::Websocket];
        config.heartbeat.ping_interval = Duration::from_secs(5);
        config.limits.max_connections = 10;
        config.cors.origins = vec!["https://a.example".into()];
        config.cors.credentials = true;
        config.recovery.enabled = true;
        config.rate_limit.enabled = true;
        let built = socketio_config(&config).unwrap();
        assert_eq!(built.engine.path, "/rt/");
        assert!(!built.engine.transports.polling);
        assert_eq!(built.engine.ping_interval, Duration::from_secs(5));
        assert_eq!(built.engine.max_connections, Some(10));
        let cors = built.engine.cors.unwrap();
        assert!(cors.credentials);
        assert!(cors.origin.allows("https://a.example"));
        assert!(!cors.origin.allows("https://b.example"));
        assert!(built.recovery.is_some());
        let event_rate = built.event_rate.unwrap();
        assert_eq!(event_rate.action, ferrio_socketio::OverLimit::Drop);
        config.rate_limit.over_limit = OverLimit::Disconnect;
        let built_again = socketio_config(&config).unwrap();
        assert_eq!(
            built_again.event_rate.unwrap().action,
            ferrio_socketio::OverLimit::Disconnect
        );
        assert!(built.engine.handshake_rate_per_ip.is_some());
    }

    #[test]
    fn origins_and_proxies_reach_the_engine() {
        let mut config = Config::default();
        config.server.allowed_origins = vec!["https://a.example".into()];
        config.server.trusted_proxies = vec!["127.0.0.1".into()];
        let built = socketio_config(&config).unwrap();
        let allowed = built.engine.allowed_origins.unwrap();
        assert!(allowed.allows("https://a.example") && !allowed.allows("https://b.example"));
        let client_ip = built.engine.client_ip.unwrap();
        let mut request = http::Request::builder()
            .header("x-forwarded-for", "203.0.113.5")
            .body(())
            .unwrap();
        request
            .extensions_mut()
            .insert(std::net::SocketAddr::from(([127, 0, 0, 1], 1)));
        let (parts, ()) = request.into_parts();
        assert_eq!(client_ip(&parts), Some("203.0.113.5".parse().unwrap()));
        config.server.trusted_proxies = vec!["10.0.0.1/8".into()];
        assert_eq!(
            socketio_config(&config).err().unwrap(),
            "server.trusted_proxies: \"10.0.0.1/8\" has bits set past its /8 prefix; the network is 10.0.0.0/8"
        );
    }

    #[test]
    fn the_session_cookie_reaches_the_engine() {
        let mut config = Config::default();
        assert_eq!(socketio_config(&config).unwrap().engine.cookie, None);
        config.server.cookie = true;
        assert_eq!(
            socketio_config(&config).unwrap().engine.cookie,
            Some(CookieConfig::default())
        );
        config.server.cookie_name = "sticky".into();
        config.server.cookie_path = "/app".into();
        config.server.cookie_http_only = false;
        config.server.cookie_same_site = SameSite::None;
        // TLS here makes the cookie Secure without asking.
        config.server.tls_cert = "cert.pem".into();
        config.server.tls_key = "key.pem".into();
        assert_eq!(
            socketio_config(&config).unwrap().engine.cookie,
            Some(CookieConfig {
                name: "sticky".into(),
                path: "/app".into(),
                http_only: false,
                secure: true,
                same_site: ferrio_engineio::SameSite::None,
            })
        );
        config.server.cookie_path = "/; Domain=evil.example".into();
        assert_eq!(
            socketio_config(&config).err().unwrap(),
            "server.cookie_path = \"/; Domain=evil.example\" is not a cookie path, which starts \
             with / and holds printable ASCII characters other than ; only"
        );
        config.server.cookie_path = "/".into();
        config.server.cookie_name = "my cookie".into();
        assert_eq!(
            socketio_config(&config).err().unwrap(),
            "server.cookie_name = \"my cookie\" is not a cookie name, which holds only letters, \
             digits and !#$%&'*+-.^_`|~"
        );
    }

    #[test]
    fn bad_methods_are_refused() {
        let mut config = Config::default();
        config.cors.origins = vec!["*".into()];
        config.cors.methods = vec!["GET POST".into()];
        assert!(socketio_config(&config).is_err());
    }
}
