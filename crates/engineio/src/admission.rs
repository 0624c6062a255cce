//! Admission of new sessions by client address: the handshake rate and the number of sessions
//! per address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use crate::rate::KeyedLimiter;
use crate::refusal::Refusal;
use crate::EngineConfig;

/// The most client addresses the handshake limiter tracks at once. Past it (a flood from that
/// many sources), new addresses are let through untracked; see [`KeyedLimiter`].
pub(crate) const MAX_TRACKED_ADDRESSES: usize = 100_000;

/// Per-address state of an engine: the handshake limiter and the session counts.
///
/// Both maps hold only addresses that are active: a count leaves with the address's last
/// session, a bucket once it has refilled.
#[derive(Debug)]
pub(crate) struct Admission {
    sessions: Mutex<HashMap<IpAddr, usize>>,
    handshakes: Option<Mutex<KeyedLimiter<IpAddr>>>,
}

impl Admission {
    pub(crate) fn new(config: &EngineConfig) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            handshakes: config
                .handshake_rate_per_ip
                .map(|limit| Mutex::new(KeyedLimiter::new(limit, MAX_TRACKED_ADDRESSES))),
        }
    }

    /// Takes a handshake token for `ip`.
    pub(crate) fn check_handshake(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let Some(limiter) = &self.handshakes else {
            return Ok(());
        };
        let mut limiter = limiter.lock().unwrap_or_else(|p| p.into_inner());
        limiter.check(ip, now).map_err(|_| Refusal::HandshakeRate {
            limit: *limiter.limit(),
        })
    }

    /// Counts one more session for `ip`, unless it holds `max` already.
    pub(crate) fn reserve(&self, ip: IpAddr, max: usize) -> Result<(), Refusal> {
        let mut sessions = self.lock_sessions();
        let count = sessions.entry(ip).or_insert(0);
        if *count >= max {
            if *count == 0 {
                sessions.remove(&ip);
            }
            return Err(Refusal::MaxConnectionsPerIp { max });
        }
        *count += 1;
        Ok(())
    }

    /// Counts one session of `ip` less.
    pub(crate) fn release(&self, ip: IpAddr) {
        let mut sessions = self.lock_sessions();
        if let Some(count) = sessions.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                sessions.remove(&ip);
            }
        }
    }

    /// How many sessions `ip` holds.
    pub(crate) fn sessions_of(&self, ip: IpAddr) -> usize {
        self.lock_sessions().get(&ip).copied().unwrap_or(0)
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The key a client address is limited under: an IPv4 address as it is (also when it arrives
/// IPv4-mapped on an IPv6 socket), an IPv6 address by its /64 prefix, which one host or one home
/// network usually gets whole, so that rotating through it gains nothing.
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::RateLimit;
    use std::time::Duration;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(address_key(ip("203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(address_key(ip("::ffff:203.0.113.7")), ip("203.0.113.7"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn session_counts_are_per_address_and_forgotten_at_zero() {
        let admission = Admission::new(&EngineConfig::default());
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        assert_eq!(admission.reserve(a, 2), Ok(()));
        assert_eq!(admission.reserve(a, 2), Ok(()));
        assert_eq!(
            admission.reserve(a, 2),
            Err(Refusal::MaxConnectionsPerIp { max: 2 })
        );
        assert_eq!(admission.reserve(b, 2), Ok(()));
        admission.release(a);
        assert_eq!(admission.sessions_of(a), 1);
        assert_eq!(admission.reserve(a, 2), Ok(()));
        admission.release(a);
        admission.release(a);
        admission.release(b);
        assert!(admission.lock_sessions().is_empty());
        // A zero limit refuses and leaves nothing behind.
        assert!(admission.reserve(a, 0).is_err());
        assert!(admission.lock_sessions().is_empty());
    }

    #[test]
    fn handshake_rate_is_per_address() {
        let limit = RateLimit::new(2, Duration::from_secs(10));
        let admission = Admission::new(&EngineConfig {
            handshake_rate_per_ip: Some(limit),
            ..EngineConfig::default()
        });
        let now = Instant::now();
        let a = ip("192.0.2.1");
        assert!(admission.check_handshake(a, now).is_ok());
        assert!(admission.check_handshake(a, now).is_ok());
        assert_eq!(
            admission.check_handshake(a, now),
            Err(Refusal::HandshakeRate { limit })
        );
        assert!(admission.check_handshake(ip("192.0.2.2"), now).is_ok());
        assert!(admission
            .check_handshake(a, now + Duration::from_secs(5))
            .is_ok());
    }
}
