//! What a server's leaf certificate says about itself (names, subject, issuer, expiry), read
//! with x509-parser, and the dates and day counts of the `tls` step's messages.

use std::time::{SystemTime, UNIX_EPOCH};

/// What the leaf certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// The subjectAltName DNS names and IP addresses, in order.
    pub(crate) names: Vec<String>,
    /// The subject, `CN=...`.
    pub(crate) subject: String,
    /// The issuer, `CN=...`.
    pub(crate) issuer: String,
    /// The end of validity, seconds since the Unix epoch.
    pub(crate) not_after: i64,
}

impl Leaf {
    /// Reads a DER certificate; `None` when it cannot be parsed.
    pub(crate) fn parse(der: &[u8]) -> Option<Self> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => names.push(ip_text(bytes)),
                    _ => {}
                }
            }
        }
        Some(Self {
            names,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }

    /// The names for a message: the subjectAltNames, or the subject when there are none.
    pub(crate) fn covers(&self) -> String {
        if self.names.is_empty() {
            format!("no subjectAltName (subject {})", self.subject)
        } else {
            self.names.join(", ")
        }
    }

    pub(crate) fn self_signed(&self) -> bool {
        self.subject == self.issuer
    }

    /// Days from now to the end of validity, to the nearest whole day (negative once
    /// expired).
    pub(crate) fn days_left(&self) -> i64 {
        (self.not_after - unix_now() + 43_200).div_euclid(86_400)
    }
}

/// `1 day`, `3 days`.
pub(crate) fn count_days(days: i64) -> String {
    if days.abs() == 1 {
        format!("{days} day")
    } else {
        format!("{days} days")
    }
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => format!("{bytes:02x?}"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A UTC date, `YYYY-MM-DD`, from seconds since the Unix epoch.
pub(crate) fn date(unix: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_795_046_400), "2026-11-19");
        assert_eq!(date(-86_400), "1969-12-31");
    }

    #[test]
    fn addresses() {
        assert_eq!(ip_text(&[127, 0, 0, 1]), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_text(&v6), "::1");
    }
}
