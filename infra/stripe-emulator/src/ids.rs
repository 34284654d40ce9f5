//! Generation of Stripe-style object ids, tokens and redacted key strings.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// Returns `len` random ASCII letters and digits.
fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn mode_infix(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
}

/// Request id as sent in the `Request-Id` header (`req_…`).
pub(crate) fn request_id() -> String {
    format!("req_{}", random_alphanumeric(14))
}

pub(crate) fn account_id() -> String {
    format!("acct_{}", random_alphanumeric(16))
}

pub(crate) fn customer_id() -> String {
    format!("cus_{}", random_alphanumeric(14))
}

pub(crate) fn event_id() -> String {
    format!("evt_{}", random_alphanumeric(24))
}

/// OAuth authorization code (`ac_…`).
pub(crate) fn authorization_code() -> String {
    format!("ac_{}", random_alphanumeric(32))
}

/// Deprecated OAuth access token, shaped like a secret key of the connected account.
pub(crate) fn access_token(livemode: bool) -> String {
    format!("sk_{}_{}", mode_infix(livemode), random_alphanumeric(32))
}

pub(crate) fn publishable_key(livemode: bool) -> String {
    format!("pk_{}_{}", mode_infix(livemode), random_alphanumeric(32))
}

pub(crate) fn refresh_token() -> String {
    format!("rt_{}", random_alphanumeric(40))
}

/// Eight upper-case hex digits, like Stripe's customer `invoice_prefix`.
pub(crate) fn invoice_prefix() -> String {
    format!("{:08X}", rand::rng().random::<u32>())
}

/// Returns the first 32 hex digits of SHA-256 over the NUL-joined parts.
fn stable_suffix(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let mut digest = hex::encode(hasher.finalize());
    digest.truncate(32);
    digest
}

/// Feature id derived from the account and lookup key, so repeated setups
/// of the same lookup key produce the same `feat_…` id.
pub(crate) fn feature_id(livemode: bool, account: &str, lookup_key: &str) -> String {
    let suffix = stable_suffix(&["feature", account, lookup_key]);
    if livemode {
        format!("feat_{suffix}")
    } else {
        format!("feat_test_{suffix}")
    }
}

/// Entitlement id derived from the account, customer and lookup key.
pub(crate) fn entitlement_id(
    livemode: bool,
    account: &str,
    customer: &str,
    lookup_key: &str,
) -> String {
    let suffix = stable_suffix(&["entitlement", account, customer, lookup_key]);
    if livemode {
        format!("ent_{suffix}")
    } else {
        format!("ent_test_{suffix}")
    }
}

/// Redacts an API key the way Stripe prints it in error messages: the
/// `sk_test_`/`sk_live_`-style prefix, asterisks, and the last four characters.
pub(crate) fn redact_key(key: &str) -> String {
    let prefix_len = [
        "sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_",
    ]
    .iter()
    .find(|prefix| key.starts_with(*prefix))
    .map_or(0, |prefix| prefix.len());
    let rest: Vec<char> = key[prefix_len..].chars().collect();
    if rest.len() <= 4 {
        return format!("{}{}", &key[..prefix_len], "*".repeat(rest.len()));
    }
    let tail: String = rest[rest.len() - 4..].iter().collect();
    format!(
        "{}{}{}",
        &key[..prefix_len],
        "*".repeat(rest.len() - 4),
        tail
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_key_keeps_prefix_and_last_four() {
        assert_eq!(redact_key("sk_test_abcdefgh1234"), "sk_test_********1234");
    }

    #[test]
    fn redact_key_hides_short_keys_entirely() {
        assert_eq!(redact_key("sk_test_abc"), "sk_test_***");
        assert_eq!(redact_key("xyz"), "***");
    }

    #[test]
    fn feature_id_is_stable_and_mode_tagged() {
        let first = feature_id(false, "acct_1", "pro");
        assert_eq!(first, feature_id(false, "acct_1", "pro"));
        assert!(first.starts_with("feat_test_"), "{first}");
        assert_ne!(first, feature_id(false, "acct_2", "pro"));
        assert!(feature_id(true, "acct_1", "pro").starts_with("feat_"));
    }

    #[test]
    fn entitlement_id_depends_on_customer() {
        let first = entitlement_id(false, "acct_1", "cus_1", "pro");
        let second = entitlement_id(false, "acct_1", "cus_2", "pro");
        assert!(first.starts_with("ent_test_"), "{first}");
        assert_ne!(first, second);
    }
}
