//! Certificates made at test time with rcgen: a certificate authority and the leaf
//! certificates it signs (valid, expired, for other names), and self-signed ones, in PEM.

use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

/// A certificate and its private key, in PEM.
#[derive(Debug, Clone)]
pub struct CertifiedPem {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

impl CertifiedPem {
    /// A rustls server configuration presenting this certificate (ring provider, safe
    /// defaults, no client certificates), for a test's own TLS server.
    ///
    /// # Panics
    /// When the PEM does not load: the test made it.
    pub fn rustls_server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(self.cert.as_bytes()).expect("a certificate")],
            PrivateKeyDer::from_pem_slice(self.key.as_bytes()).expect("a private key"),
        )
        .expect("a certificate and its key");
        std::sync::Arc::new(config)
    }
}

/// When a certificate is valid, in days from now (negative: in the past).
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// First valid day.
    pub from_days: i64,
    /// Last valid day.
    pub until_days: i64,
}

impl Validity {
    /// From yesterday for a year.
    pub const CURRENT: Self = Self {
        from_days: -1,
        until_days: 365,
    };
    /// Expired: from 30 days ago until 2 days ago.
    pub const EXPIRED: Self = Self {
        from_days: -30,
        until_days: -2,
    };
}

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new authority whose common name is `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_validity(
            &mut params,
            Validity {
                from_days: -60,
                until_days: 3650,
            },
        );
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The authority's certificate, to trust.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by this authority.
    pub fn leaf(&self, names: &[&str], validity: Validity) -> CertifiedPem {
        let params = leaf_params(names, validity);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        CertifiedPem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A self-signed server certificate for `names`.
pub fn self_signed(names: &[&str], validity: Validity) -> CertifiedPem {
    let params = leaf_params(names, validity);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    CertifiedPem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn leaf_params(names: &[&str], validity: Validity) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("leaf params");
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    set_validity(&mut params, validity);
    params
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let at = |days: i64| {
        let seconds = i64::try_from(now).expect("clock in range") + days * 86_400;
        OffsetDateTime::from_unix_timestamp(seconds).expect("date in range")
    };
    params.not_before = at(validity.from_days);
    params.not_after = at(validity.until_days);
}
