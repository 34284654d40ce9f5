//! Verification of the `Stripe-Signature` header over the raw request body.
//!
//! The header is a comma-separated list such as `t=1700000000,v1=<hex>,v1=<hex>,v0=<hex>`. Stripe
//! signs `"<t>.<raw body>"` with HMAC-SHA256, keyed with the whole endpoint secret (`whsec_…`),
//! and sends one `v1` per active secret while a secret is being rolled. A request is genuine when
//! any configured secret produces any `v1` value, compared in constant time, and `t` is at most
//! [`TOLERANCE_SECONDS`] away from the current time in either direction. Every other scheme,
//! `v0` included, is ignored, so a forged `v0` cannot stand in for `v1`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// How far the signature's timestamp may be from the current time, as in Stripe's libraries.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Length of an HMAC-SHA256 digest in bytes.
const DIGEST_BYTES: usize = 32;

/// The reason a signature was rejected. The messages contain no secret and no signature value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header has no valid timestamp (t=<unix seconds>)")]
    MissingTimestamp,
    #[error("the Stripe-Signature header has no v1 signature")]
    MissingSignature,
    #[error(
        "the Stripe-Signature timestamp is {age_seconds} s old; at most {TOLERANCE_SECONDS} s are accepted"
    )]
    TooOld { age_seconds: i64 },
    #[error(
        "the Stripe-Signature timestamp is {ahead_seconds} s in the future; at most {TOLERANCE_SECONDS} s are accepted"
    )]
    InFuture { ahead_seconds: i64 },
    #[error("no v1 signature matches the request body under any configured webhook secret")]
    Mismatch,
}

/// The parts of a `Stripe-Signature` header that verification uses.
#[derive(Debug)]
struct ParsedHeader<'a> {
    /// The timestamp exactly as sent, because the signed payload contains it as sent.
    timestamp_text: &'a str,
    timestamp: i64,
    signatures: Vec<[u8; DIGEST_BYTES]>,
}

fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    let mut timestamp: Option<(&str, i64)> = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((scheme, value)) = item.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match scheme.trim() {
            "t" if timestamp.is_none() => {
                if let Ok(seconds) = value.parse::<i64>() {
                    timestamp = Some((value, seconds));
                }
            }
            "v1" => {
                let mut digest = [0u8; DIGEST_BYTES];
                if hex::decode_to_slice(value, &mut digest).is_ok() {
                    signatures.push(digest);
                }
            }
            _ => {}
        }
    }
    let (timestamp_text, timestamp) = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::MissingSignature);
    }
    Ok(ParsedHeader {
        timestamp_text,
        timestamp,
        signatures,
    })
}

/// Verifies a request: its `Stripe-Signature` header (if any), its raw body and the accepted
/// secrets, at `now_seconds` (Unix time). Returns the signature's timestamp.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[Secret],
    now_seconds: i64,
) -> Result<i64, SignatureError> {
    let header = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
    let age_seconds = now_seconds.saturating_sub(header.timestamp);
    if age_seconds > TOLERANCE_SECONDS {
        return Err(SignatureError::TooOld { age_seconds });
    }
    if age_seconds < -TOLERANCE_SECONDS {
        return Err(SignatureError::InFuture {
            ahead_seconds: age_seconds.saturating_neg(),
        });
    }
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
            continue;
        };
        mac.update(header.timestamp_text.as_bytes());
        mac.update(b".");
        mac.update(payload);
        // `verify_slice` compares in constant time.
        if header
            .signatures
            .iter()
            .any(|signature| mac.clone().verify_slice(signature).is_ok())
        {
            return Ok(header.timestamp);
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const PAYLOAD: &[u8] = br#"{"id":"evt_1"}"#;

    fn sign(secret: &str, timestamp: &str, payload: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    }

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|value| Secret::new(*value)).collect()
    }

    #[test]
    fn known_vector_verifies() {
        // The digest of `1700000000.{"id":"evt_1"}` under `whsec_test_secret`, computed with
        // Python's hmac module.
        let header =
            "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
        let result = verify(Some(header), PAYLOAD, &secrets(&["whsec_test_secret"]), NOW);
        assert_eq!(result, Ok(NOW));
    }

    #[test]
    fn any_secret_and_any_v1_match() {
        let good = sign("whsec_new", "1700000000", PAYLOAD);
        let header = format!("t=1700000000,v1={},v1={good}", "00".repeat(32));
        let result = verify(
            Some(&header),
            PAYLOAD,
            &secrets(&["whsec_old", "whsec_new"]),
            NOW,
        );
        assert_eq!(result, Ok(NOW));
    }

    #[test]
    fn v0_is_ignored() {
        let good = sign("whsec_a", "1700000000", PAYLOAD);
        let header = format!("t=1700000000,v0={good}");
        let result = verify(Some(&header), PAYLOAD, &secrets(&["whsec_a"]), NOW);
        assert_eq!(result, Err(SignatureError::MissingSignature));
    }

    #[test]
    fn tolerance_is_300_seconds_both_ways() {
        for (timestamp, expected_ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
        ] {
            let text = timestamp.to_string();
            let header = format!("t={text},v1={}", sign("whsec_a", &text, PAYLOAD));
            let result = verify(Some(&header), PAYLOAD, &secrets(&["whsec_a"]), NOW);
            assert_eq!(
                result.is_ok(),
                expected_ok,
                "timestamp offset {}",
                timestamp - NOW
            );
        }
        let old = format!(
            "t={},v1={}",
            NOW - 301,
            sign("whsec_a", &(NOW - 301).to_string(), PAYLOAD)
        );
        let result = verify(Some(&old), PAYLOAD, &secrets(&["whsec_a"]), NOW);
        assert_eq!(result, Err(SignatureError::TooOld { age_seconds: 301 }));
        let ahead = format!(
            "t={},v1={}",
            NOW + 301,
            sign("whsec_a", &(NOW + 301).to_string(), PAYLOAD)
        );
        let result = verify(Some(&ahead), PAYLOAD, &secrets(&["whsec_a"]), NOW);
        assert_eq!(result, Err(SignatureError::InFuture { ahead_seconds: 301 }));
    }

    #[test]
    fn signed_timestamp_text_is_used_as_sent() {
        let header = format!(
            "t=01700000000,v1={}",
            sign("whsec_a", "01700000000", PAYLOAD)
        );
        let result = verify(Some(&header), PAYLOAD, &secrets(&["whsec_a"]), NOW);
        assert_eq!(result, Ok(NOW));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let empty: Vec<Secret> = secrets(&["whsec_a"]);
        assert_eq!(
            verify(None, PAYLOAD, &empty, NOW),
            Err(SignatureError::MissingHeader)
        );
        assert_eq!(
            verify(Some(""), PAYLOAD, &empty, NOW),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(Some("t=abc,v1=00"), PAYLOAD, &empty, NOW),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(Some("t=1700000000,v1=zz"), PAYLOAD, &empty, NOW),
            Err(SignatureError::MissingSignature)
        );
    }

    #[test]
    fn altered_body_is_rejected() {
        let header = format!("t=1700000000,v1={}", sign("whsec_a", "1700000000", PAYLOAD));
        let result = verify(
            Some(&header),
            br#"{"id":"evt_2"}"#,
            &secrets(&["whsec_a"]),
            NOW,
        );
        assert_eq!(result, Err(SignatureError::Mismatch));
    }
}
