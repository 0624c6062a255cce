//! The client's address behind trusted reverse proxies: `X-Forwarded-For` and `X-Real-IP`,
//! believed only when the connection comes from a proxy on the list.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use http::request::Parts;

use crate::ClientIp;

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a network of
/// one (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    address: IpAddr,
    prefix: u8,
}

/// Why a network could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetError {
    /// The part before the `/` is not an IP address.
    #[error(
        "{text:?} is not an IP address or network (write 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)"
    )]
    Address {
        /// What was given.
        text: String,
    },
    /// The prefix length is not a number within the address's bits.
    #[error("{text:?} has a prefix length that is not a number from 0 to {max}")]
    Prefix {
        /// What was given.
        text: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
    /// Bits are set past the prefix (`10.0.0.1/8`): probably a typo for another network.
    #[error("{text:?} has bits set past its /{prefix} prefix; the network is {network}")]
    HostBits {
        /// What was given.
        text: String,
        /// The prefix length.
        prefix: u8,
        /// The network it would be, written correctly.
        network: String,
    },
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (address, prefix) = match trimmed.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (trimmed, None),
        };
        let address: IpAddr = address.parse().map_err(|_| IpNetError::Address {
            text: text.to_owned(),
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) => {
                digits
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or(IpNetError::Prefix {
                        text: text.to_owned(),
                        max,
                    })?
            }
        };
        let net = Self { address, prefix };
        let network = net.network();
        if network != address {
            return Err(IpNetError::HostBits {
                text: text.to_owned(),
                prefix,
                network: format!("{network}/{prefix}"),
            });
        }
        Ok(net)
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl IpNet {
    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as an
    /// IPv4 client appears on a dual-stack socket) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(ip)), self.prefix, 32)
                    == mask(u128::from(u32::from(net)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(ip), self.prefix, 128) == mask(u128::from(net), self.prefix, 128)
            }
            _ => false,
        }
    }

    fn network(&self) -> IpAddr {
        match self.address {
            IpAddr::V4(v4) => {
                let bits = mask(u128::from(u32::from(v4)), self.prefix, 32);
                IpAddr::from(u32::try_from(bits).unwrap_or(0).to_be_bytes())
            }
            IpAddr::V6(v6) => IpAddr::from(mask(u128::from(v6), self.prefix, 128).to_be_bytes()),
        }
    }
}

/// `bits` (an address of `width` bits) with everything past the first `prefix` bits cleared.
fn mask(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u32::from(prefix);
    let drop = u32::from(width) - keep.min(u32::from(width));
    (bits >> drop) << drop
}

/// The proxies whose forwarding headers are believed, and the rule for finding the client
/// behind them.
///
/// When the TCP peer is in one of the networks, the client is the right-most address of
/// `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the address it
/// received the request from, so everything left of that was written by the client and could
/// be forged); with no usable `X-Forwarded-For`, `X-Real-IP`; with neither, the peer. When the
/// peer is not trusted, the headers are ignored and the peer is the client, so a client
/// connecting directly cannot choose the address it is limited under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts the given networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self { networks }
    }

    /// Reads networks in CIDR notation; the first that cannot be read is the error.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Self, IpNetError> {
        let networks = list
            .iter()
            .map(|text| text.as_ref().parse())
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|net| net.contains(ip))
    }

    /// The client of a request whose TCP peer is `peer`, by the rule above.
    pub fn client_of(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        if let Some(ip) = self.client_in_forwarded_for(headers) {
            return ip;
        }
        headers
            .get("x-real-ip")
            .and_then(|value| value.to_str().ok())
            .and_then(|text| parse_address(text.trim()))
            .unwrap_or(peer)
    }

    /// The right-most untrusted address of all `X-Forwarded-For` headers taken in order. When
    /// an entry cannot be read, the search stops there and nothing is returned: what lies to
    /// its left came through a hop that is not understood.
    fn client_in_forwarded_for(&self, headers: &http::HeaderMap) -> Option<IpAddr> {
        let mut entries = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let text = value.to_str().ok()?;
            entries.extend(text.split(',').map(str::trim).filter(|e| !e.is_empty()));
        }
        let mut last_trusted = None;
        for entry in entries.iter().rev() {
            let ip = parse_address(entry)?;
            if !self.trusts(ip) {
                return Some(ip);
            }
            last_trusted = Some(ip);
        }
        // Every hop is a trusted proxy: the left-most is as close to the client as it gets.
        last_trusted
    }

    /// The [`ClientIp`] hook for [`crate::EngineConfig::client_ip`]: the peer from the request's
    /// extensions (as [`crate::serve`] puts it there), then the rule above. A request without a
    /// peer has no address.
    pub fn into_client_ip(self) -> ClientIp {
        Arc::new(move |parts: &Parts| {
            let peer = parts.extensions.get::<SocketAddr>()?.ip();
            Some(self.client_of(peer, &parts.headers))
        })
    }
}

/// An address as proxies write it: bare, `[v6]`, or with a port (`192.0.2.1:5000`,
/// `[2001:db8::1]:5000`).
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn networks_parse_and_match() {
        let net: IpNet = "10.0.0.0/8".parse().expect("net");
        assert!(net.contains(ip("10.255.1.2")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let one: IpNet = "192.0.2.7".parse().expect("one");
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpNet = "2001:db8::/32".parse().expect("v6");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let all: IpNet = "0.0.0.0/0".parse().expect("all");
        assert!(all.contains(ip("203.0.113.9")));
    }

    #[test]
    fn bad_networks_say_what_is_wrong() {
        assert_eq!(
            "10.0.0.1/8"
                .parse::<IpNet>()
                .expect_err("host bits")
                .to_string(),
            "\"10.0.0.1/8\" has bits set past its /8 prefix; the network is 10.0.0.0/8"
        );
        assert_eq!(
            "10.0.0.0/33"
                .parse::<IpNet>()
                .expect_err("prefix")
                .to_string(),
            "\"10.0.0.0/33\" has a prefix length that is not a number from 0 to 32"
        );
        assert_eq!(
            "proxy.local".parse::<IpNet>().expect_err("name").to_string(),
            "\"proxy.local\" is not an IP address or network (write 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)"
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/8", "nope"]).is_err());
    }

    #[test]
    fn forwarded_address_is_believed_only_from_a_trusted_peer() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("list");
        let forwarded = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.5")]);
        // Through the proxy: the right-most address it appended.
        assert_eq!(
            proxies.client_of(ip("10.0.0.2"), &forwarded),
            ip("203.0.113.5")
        );
        // Straight from the internet: the header is the client's own words, ignored.
        assert_eq!(
            proxies.client_of(ip("192.0.2.9"), &forwarded),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn chains_of_trusted_proxies_are_skipped_and_forgeries_are_not_reached() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("list");
        let chain = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.5, 10.0.0.7"),
        ]);
        assert_eq!(proxies.client_of(ip("10.0.0.2"), &chain), ip("203.0.113.5"));
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.7")]);
        assert_eq!(
            proxies.client_of(ip("10.0.0.2"), &all_trusted),
            ip("10.0.0.9")
        );
        // An unreadable hop: fall back to X-Real-IP, then the peer.
        let garbage = headers(&[("x-forwarded-for", "unknown"), ("x-real-ip", "203.0.113.8")]);
        assert_eq!(
            proxies.client_of(ip("10.0.0.2"), &garbage),
            ip("203.0.113.8")
        );
        let nothing = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(proxies.client_of(ip("10.0.0.2"), &nothing), ip("10.0.0.2"));
    }

    #[test]
    fn real_ip_and_ports_are_read() {
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).expect("list");
        let real = headers(&[("x-real-ip", " 203.0.113.5 ")]);
        assert_eq!(proxies.client_of(ip("127.0.0.1"), &real), ip("203.0.113.5"));
        let ported = headers(&[("x-forwarded-for", "[2001:db8::5]:443")]);
        assert_eq!(
            proxies.client_of(ip("127.0.0.1"), &ported),
            ip("2001:db8::5")
        );
        let v4_port = headers(&[("x-forwarded-for", "203.0.113.5:5000")]);
        assert_eq!(
            proxies.client_of(ip("127.0.0.1"), &v4_port),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn the_hook_reads_the_peer_from_the_extensions() {
        let hook = TrustedProxies::parse(&["127.0.0.1"])
            .expect("list")
            .into_client_ip();
        let build = || {
            http::Request::builder()
                .header("x-forwarded-for", "203.0.113.5")
                .body(())
                .expect("request")
        };
        let (parts, ()) = build().into_parts();
        assert_eq!(hook(&parts), None);
        let mut request = build();
        request
            .extensions_mut()
            .insert(SocketAddr::from(([127, 0, 0, 1], 4000)));
        let (parts, ()) = request.into_parts();
        assert_eq!(hook(&parts), Some(ip("203.0.113.5")));
    }
}
