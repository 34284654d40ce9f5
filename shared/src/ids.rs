//! Identifiers in the WorkOS style: a type prefix and a ULID (`org_01J…`), and random secrets.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Mutex;

/// Creates a new identifier such as `org_01JD3YF4QX6W2N8V0Z5K7M9PAB`.
///
/// ULIDs sort by creation time, so sort keys built from them list objects in creation order. The
/// generator is monotonic within a process, so IDs created in the same millisecond keep their order
/// too; across processes, order is only as fine as the millisecond and the clocks.
pub fn new_id(prefix: &str) -> String {
    static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let ulid = generator
        .get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new());
    format!("{prefix}_{ulid}")
}

/// Returns `true` when `value` is `prefix_` followed by a ULID in canonical form.
pub fn is_id(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|ulid| ulid.len() == 26 && ulid::Ulid::from_string(ulid).is_ok())
}

/// Creates a random secret of 256 bits, base64url-encoded, behind `prefix` (for example `sk_`).
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Returns the lowercase hex SHA-256 digest of a secret, the form in which secrets are stored and
/// looked up. Secrets carry 256 random bits, so a fast hash is enough: there is nothing to guess.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_id_round_trips_through_is_id() {
        let id = new_id("org");
        assert!(id.starts_with("org_"));
        assert!(is_id(&id, "org"));
        assert!(!is_id(&id, "user"));
    }

    #[test]
    fn new_ids_increase_within_process() {
        let ids: Vec<String> = (0..1000).map(|_| new_id("org")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn is_id_rejects_malformed_values() {
        assert!(!is_id("org_", "org"));
        assert!(!is_id("org_123", "org"));
        assert!(!is_id("org01JD3YF4QX6W2N8V0Z5K7M9PAB", "org"));
        assert!(!is_id("org_01JD3YF4QX6W2N8V0Z5K7M9PA!", "org"));
    }

    #[test]
    fn secrets_are_distinct_and_hash_stably() {
        let first = new_secret("sk_");
        let second = new_secret("sk_");
        assert_ne!(first, second);
        assert_eq!(first.len(), 3 + 43);
        assert_eq!(hash_secret(&first), hash_secret(&first));
        assert_ne!(hash_secret(&first), hash_secret(&second));
        assert_eq!(hash_secret(&first).len(), 64);
    }
}
