//! The signature of webhook bodies: `X-Ferrio-Signature: sha256=<hex>`, the HMAC-SHA256 of the
//! exact body bytes under `webhooks.secret`, so a backend can tell the gateway's calls from
//! anyone else's.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub(crate) const HEADER: &str = "x-ferrio-signature";

/// The header's value for `body`: `sha256=` and 64 lowercase hex digits.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_case_2() {
        // Test case 2 of RFC 4231 (HMAC-SHA256): key "Jefe".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
