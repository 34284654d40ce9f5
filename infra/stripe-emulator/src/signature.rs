//! Webhook signatures in Stripe's `Stripe-Signature` format.
//!
//! Stripe signs `"<t>.<raw body>"` with HMAC-SHA256, keyed with the whole
//! endpoint secret string (`whsec_…` included), and sends the lowercase hex
//! digest as `v1=`. In test mode Stripe adds a `v0=` entry that verifiers must
//! ignore. The emulator fills it with a digest under a fixed decoy key, so a
//! verifier that wrongly accepts `v0` fails.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Key of the decoy `v0=` digest added to test-mode signatures.
const TEST_MODE_DECOY_KEY: &str = "whsec_emulator_v0_decoy";

/// Returns the lowercase hex HMAC-SHA256 of `"<timestamp>.<payload>"` under `secret`.
pub(crate) fn v1_digest(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Builds a `Stripe-Signature` header value `t=<timestamp>,v1=<hex>` for
/// `payload` signed with the endpoint `secret`, exactly as Stripe computes it.
pub fn sign_payload(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    format!("t={timestamp},v1={}", v1_digest(secret, timestamp, payload))
}

/// Builds the header Stripe sends on a delivery: `t=`, the given extra `v1=`
/// values (before the real one, as when Stripe signs with several secrets
/// during secret rotation), the `v1=` of `secret`, and in test mode a
/// trailing decoy `v0=`.
pub(crate) fn delivery_header(
    secret: &str,
    extra_signatures: &[String],
    timestamp: i64,
    payload: &[u8],
    livemode: bool,
) -> String {
    let mut header = format!("t={timestamp}");
    for extra in extra_signatures {
        header.push_str(",v1=");
        header.push_str(extra);
    }
    header.push_str(",v1=");
    header.push_str(&v1_digest(secret, timestamp, payload));
    if !livemode {
        header.push_str(",v0=");
        header.push_str(&v1_digest(TEST_MODE_DECOY_KEY, timestamp, payload));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected digest computed independently with Python:
    // hmac.new(b'whsec_test_secret', b'1700000000.{"id":"evt_1"}', hashlib.sha256).hexdigest()
    const KNOWN_DIGEST: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

    #[test]
    fn sign_payload_matches_known_vector() {
        let header = sign_payload("whsec_test_secret", 1_700_000_000, br#"{"id":"evt_1"}"#);
        assert_eq!(header, format!("t=1700000000,v1={KNOWN_DIGEST}"));
    }

    #[test]
    fn delivery_header_orders_entries_like_stripe() {
        let payload = br#"{"id":"evt_1"}"#;
        let old_signature = v1_digest("whsec_old", 1_700_000_000, payload);
        let header = delivery_header(
            "whsec_test_secret",
            std::slice::from_ref(&old_signature),
            1_700_000_000,
            payload,
            false,
        );
        let entries: Vec<&str> = header.split(',').collect();
        assert_eq!(entries.len(), 4, "{header}");
        assert_eq!(entries[0], "t=1700000000");
        assert_eq!(entries[1], format!("v1={old_signature}"));
        assert_eq!(entries[2], format!("v1={KNOWN_DIGEST}"));
        assert!(entries[3].starts_with("v0="), "{header}");
        assert_ne!(entries[3], format!("v0={KNOWN_DIGEST}"));
    }

    #[test]
    fn delivery_header_has_no_v0_in_livemode() {
        let header = delivery_header("whsec_test_secret", &[], 1_700_000_000, b"{}", true);
        assert!(!header.contains("v0="), "{header}");
    }
}
