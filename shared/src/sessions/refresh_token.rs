//! The refresh-token format, its deterministic rotation chain, and the keys derived from
//! `KEY_ENCRYPTION_KEY` for it.
//!
//! A refresh token is five dot-separated parts:
//!
//! ```text
//! <environment ULID>.<session ULID>.<user ULID>.<generation>.<secret>
//! ```
//!
//! The IDs are in clear so a refresh can build every key it must read (the session, the user, the
//! environment) before its first request. The secret is 256 bits, base64url without padding. The
//! sign-in draws it at random (generation 0); every rotation derives the next one:
//!
//! ```text
//! secret[n + 1] = HMAC-SHA256(chain key, label || environment || session || user || n + 1 || secret[n])
//! ```
//!
//! The chain key is derived from `KEY_ENCRYPTION_KEY`, so the next token follows from the
//! presented one without being stored: a repeated use of a token recomputes the same successor.
//! The chain runs one way only, so the stored hashes and the chain key together still do not
//! yield a usable token. Changing `KEY_ENCRYPTION_KEY` changes the chain, and with it every
//! successor a retry would recompute; it also makes every stored signing key unreadable.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::ids;
use crate::tokens::KeyEncryptionKey;

type HmacSha256 = Hmac<Sha256>;

const SECRET_BYTES: usize = 32;
/// Length of a 256-bit secret in base64url without padding.
const SECRET_CHARS: usize = 43;
const CHAIN_LABEL: &[u8] = b"refresh-token-chain-v1";

/// Keys derived from `KEY_ENCRYPTION_KEY`, one per purpose, so no key serves two algorithms.
#[derive(Clone)]
pub struct SessionSecrets {
    chain: [u8; 32],
    jti: [u8; 32],
    pub(crate) idempotency_encryption: [u8; 32],
    pub(crate) fingerprint: [u8; 32],
}

impl std::fmt::Debug for SessionSecrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SessionSecrets(..)")
    }
}

impl SessionSecrets {
    /// Derives the keys as HMAC-SHA256 of a purpose label under the key-encryption key.
    pub fn derive(kek: &KeyEncryptionKey) -> Self {
        // The key's bytes are private to the tokens module; its base64 form is the public way out.
        let kek_bytes = STANDARD.decode(kek.to_base64()).unwrap_or_default();
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = <HmacSha256 as Mac>::new_from_slice(&kek_bytes)
                .expect("HMAC accepts any key length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        SessionSecrets {
            chain: derive(b"stripe-entitlements/refresh-token-chain"),
            jti: derive(b"stripe-entitlements/access-token-jti"),
            idempotency_encryption: derive(b"stripe-entitlements/idempotency-encryption"),
            fingerprint: derive(b"stripe-entitlements/idempotency-fingerprint"),
        }
    }

    /// Derives the `jti` of the access token issued with `generation` of a session: a ULID whose time is
    /// the issue time and whose random part is keyed on the session and generation, so a repeated
    /// rotation issues the same `jti`.
    pub fn access_token_id(&self, session_id: &str, generation: u64, issued_at_ms: i64) -> String {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.jti).expect("HMAC accepts any key length");
        mac.update(session_id.as_bytes());
        mac.update(&generation.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let mut random = [0u8; 16];
        random[6..].copy_from_slice(&digest[..10]);
        let timestamp = u64::try_from(issued_at_ms).unwrap_or_default();
        ulid::Ulid::from_parts(timestamp, u128::from_be_bytes(random)).to_string()
    }
}

/// A parsed refresh token.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// `client_…`
    pub environment_id: String,
    /// `session_…`
    pub session_id: String,
    /// `user_…`
    pub user_id: String,
    pub generation: u64,
    secret: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RefreshToken")
            .field("session_id", &self.session_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// Starts a chain with a random secret, for a new session.
    pub fn first(environment_id: &str, session_id: &str, user_id: &str) -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        RefreshToken {
            environment_id: environment_id.to_owned(),
            session_id: session_id.to_owned(),
            user_id: user_id.to_owned(),
            generation: 0,
            secret,
        }
    }

    /// Parses a token; `None` for anything that is not exactly the format above.
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (Some(environment), Some(session), Some(user), Some(generation), Some(secret), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let generation = parse_generation(generation)?;
        if secret.len() != SECRET_CHARS {
            return None;
        }
        let secret: [u8; SECRET_BYTES] = URL_SAFE_NO_PAD.decode(secret).ok()?.try_into().ok()?;
        Some(RefreshToken {
            environment_id: id_from_ulid("client", environment)?,
            session_id: id_from_ulid("session", session)?,
            user_id: id_from_ulid("user", user)?,
            generation,
            secret,
        })
    }

    /// Derives the token of the next generation.
    pub fn next(&self, secrets: &SessionSecrets) -> Self {
        let generation = self.generation + 1;
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&secrets.chain)
            .expect("HMAC accepts any key length");
        mac.update(CHAIN_LABEL);
        for part in [&self.environment_id, &self.session_id, &self.user_id] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(&generation.to_be_bytes());
        mac.update(&self.secret);
        RefreshToken {
            environment_id: self.environment_id.clone(),
            session_id: self.session_id.clone(),
            user_id: self.user_id.clone(),
            generation,
            secret: mac.finalize().into_bytes().into(),
        }
    }

    /// Encodes the token as sent to clients.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            ulid_of(&self.environment_id),
            ulid_of(&self.session_id),
            ulid_of(&self.user_id),
            self.generation,
            URL_SAFE_NO_PAD.encode(self.secret),
        )
    }

    /// SHA-256 (hex) of the encoded token, the form in which it is stored.
    pub fn hash(&self) -> String {
        ids::hash_secret(&self.encode())
    }
}

/// Parses a generation written in decimal without sign or leading zeros.
fn parse_generation(text: &str) -> Option<u64> {
    let canonical = !text.is_empty() && (text == "0" || !text.starts_with('0')) && text.len() <= 19;
    if !canonical || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Rebuilds `prefix_<ULID>` from a ULID in canonical (uppercase Crockford) form.
fn id_from_ulid(prefix: &str, text: &str) -> Option<String> {
    let ulid = ulid::Ulid::from_string(text).ok()?;
    (ulid.to_string() == text).then(|| format!("{prefix}_{text}"))
}

/// Returns the ULID part of `prefix_<ULID>`.
fn ulid_of(id: &str) -> &str {
    id.rsplit_once('_').map_or(id, |(_, ulid)| ulid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SessionSecrets {
        SessionSecrets::derive(&KeyEncryptionKey::generate())
    }

    fn first() -> RefreshToken {
        RefreshToken::first(
            &ids::new_id("client"),
            &ids::new_id("session"),
            &ids::new_id("user"),
        )
    }

    #[test]
    fn token_round_trips() {
        let token = first();
        let encoded = token.encode();
        assert_eq!(RefreshToken::parse(&encoded), Some(token.clone()));
        assert_eq!(encoded.split('.').count(), 5);
        assert!(encoded.ends_with(&URL_SAFE_NO_PAD.encode(token.secret)));
    }

    #[test]
    fn next_is_deterministic_and_advances() {
        let secrets = secrets();
        let token = first();
        let next = token.next(&secrets);
        assert_eq!(next, token.next(&secrets));
        assert_eq!(next.generation, 1);
        assert_ne!(next.secret, token.secret);
        assert_eq!(next.session_id, token.session_id);
        assert_eq!(RefreshToken::parse(&next.encode()), Some(next));
    }

    #[test]
    fn chain_depends_on_key() {
        let token = first();
        assert_ne!(token.next(&secrets()), token.next(&secrets()));
    }

    #[test]
    fn parse_rejects_malformed_tokens() {
        let valid = first().encode();
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        let variants = [
            String::new(),
            "x".to_owned(),
            valid[..valid.len() - 1].to_owned(),
            format!("{valid}."),
            format!("{valid}A"),
            valid.replace('.', ","),
            {
                parts[3] = "01".to_owned();
                parts.join(".")
            },
            {
                parts[3] = "-1".to_owned();
                parts.join(".")
            },
            {
                parts[3] = "99999999999999999999".to_owned();
                parts.join(".")
            },
            {
                parts[3] = "0".to_owned();
                parts[0] = parts[0].to_lowercase();
                parts.join(".")
            },
        ];
        for variant in variants {
            assert_eq!(RefreshToken::parse(&variant), None, "{variant:?}");
        }
    }

    #[test]
    fn access_token_id_is_stable_ulid() {
        let secrets = secrets();
        let id = secrets.access_token_id("session_1", 3, 1_700_000_000_123);
        assert_eq!(
            id,
            secrets.access_token_id("session_1", 3, 1_700_000_000_123)
        );
        assert_ne!(
            id,
            secrets.access_token_id("session_1", 4, 1_700_000_000_123)
        );
        let ulid = ulid::Ulid::from_string(&id).expect("a ULID");
        assert_eq!(ulid.timestamp_ms(), 1_700_000_000_123);
    }
}
