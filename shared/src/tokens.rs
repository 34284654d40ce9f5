//! RS256 access tokens, their signing keys and the JWKS that publishes them.
//!
//! Signing keys are RSA-2048 key pairs. The private key is stored as PKCS#8 DER encrypted with
//! AES-256-GCM under a key-encryption key (KEK) that comes from configuration, with the key's
//! `kid` as additional authenticated data, so a record moved to another `kid` fails to decrypt.
//!
//! A key goes through three statuses: `Next` (published in the JWKS, not yet signing), `Active`
//! (signing) and `Previous` (still published until the tokens it signed have expired). The
//! WorkOS SDK caches the JWKS for up to 10 minutes, so a key must be published for longer than
//! that before it signs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The only signing algorithm this module issues.
pub const RS256: &str = "RS256";

const KEK_BYTES: usize = 32;
const GCM_NONCE_BYTES: usize = 12;
const GCM_TAG_BYTES: usize = 16;

/// Standard base64 that also accepts input without padding.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// URL-safe base64 that also accepts input with padding.
const BASE64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Errors of key handling, signing and token decoding. Messages contain no key material.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The configured key-encryption key cannot be used.
    #[error("invalid key-encryption key: {0}")]
    InvalidKeyEncryptionKey(&'static str),
    /// aws-lc-rs failed to generate or serialize an RSA key pair.
    #[error("failed to generate an RSA signing key")]
    KeyGeneration,
    /// AES-256-GCM encryption of a new private key failed.
    #[error("failed to encrypt the private key of signing key {kid}")]
    KeyEncryption {
        /// Key id of the signing key.
        kid: String,
    },
    /// The stored private key did not decrypt, because of another KEK, a changed `kid` or a
    /// damaged record.
    #[error(
        "failed to decrypt the private key of signing key {kid}: check that the key-encryption \
         key is the one the key was created with and that the stored record is intact"
    )]
    KeyDecryption {
        /// Key id of the signing key.
        kid: String,
    },
    /// The decrypted private key is not an acceptable RSA key in PKCS#8 DER.
    #[error("the private key of signing key {kid} is not a valid RSA PKCS#8 key")]
    InvalidPrivateKey {
        /// Key id of the signing key.
        kid: String,
    },
    /// The stored key names an algorithm other than RS256.
    #[error("signing key {kid} has unsupported algorithm {alg:?}; only RS256 is supported")]
    UnsupportedAlgorithm {
        /// Key id of the signing key.
        kid: String,
        /// The algorithm stored with the key.
        alg: String,
    },
    /// aws-lc-rs failed to produce the signature.
    #[error("failed to sign an access token with signing key {kid}")]
    Signing {
        /// Key id of the signing key.
        kid: String,
    },
    /// The token is not three base64url segments separated by dots.
    #[error("malformed access token: {0}")]
    MalformedToken(&'static str),
    /// The token header or claims are not the expected JSON.
    #[error("access token JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}

/// A 256-bit AES key that encrypts signing keys at rest.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; KEK_BYTES]);

impl KeyEncryptionKey {
    /// Parses a key from standard base64 (padding optional) that decodes to exactly 32 bytes.
    ///
    /// # Errors
    /// [`TokenError::InvalidKeyEncryptionKey`] for invalid base64 or a length other than 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, TokenError> {
        let bytes = BASE64_LENIENT
            .decode(encoded.trim())
            .map_err(|_| TokenError::InvalidKeyEncryptionKey("not valid standard base64"))?;
        let key: [u8; KEK_BYTES] = bytes
            .try_into()
            .map_err(|_| TokenError::InvalidKeyEncryptionKey("must decode to exactly 32 bytes"))?;
        Ok(Self(key))
    }

    /// Generates a random key.
    pub fn generate() -> Self {
        let mut key = [0u8; KEK_BYTES];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Encodes the key as standard base64 with padding, the form [`Self::from_base64`] reads.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("KeyEncryptionKey(..)")
    }
}

/// Lifecycle status of a signing key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SigningKeyStatus {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signs new tokens and is published.
    Active,
    /// No longer signs, published until the tokens it signed have expired.
    Previous,
}

/// A signing key as stored: public components in clear, the private key encrypted.
#[derive(Serialize, Deserialize, Clone)]
pub struct StoredSigningKey {
    /// Key id, `key_<ULID>`, sent as the JWT header `kid`.
    pub kid: String,
    /// JWS algorithm, always `RS256`.
    pub alg: String,
    /// RSA modulus, base64url without padding.
    pub n: String,
    /// RSA public exponent, base64url without padding.
    pub e: String,
    /// Base64 of a 96-bit random nonce followed by the AES-256-GCM ciphertext and tag of the
    /// PKCS#8 DER private key, with the `kid` as additional authenticated data.
    pub encrypted_private_key: String,
    /// Lifecycle status.
    pub status: SigningKeyStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Time of the last status change.
    pub status_changed_at: DateTime<Utc>,
}

impl fmt::Debug for StoredSigningKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("status_changed_at", &self.status_changed_at)
            .finish_non_exhaustive()
    }
}

/// Generates an RSA-2048 signing key with aws-lc-rs and encrypts its private key under `kek`.
///
/// # Errors
/// [`TokenError::KeyGeneration`] or [`TokenError::KeyEncryption`] when aws-lc-rs or AES-GCM fail.
pub fn generate_signing_key(
    kek: &KeyEncryptionKey,
    status: SigningKeyStatus,
) -> Result<StoredSigningKey, TokenError> {
    let key_pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| TokenError::KeyGeneration)?;
    let pkcs8 = key_pair.as_der().map_err(|_| TokenError::KeyGeneration)?;
    let public_key = PublicKeyComponents::<Vec<u8>>::from(key_pair.public_key());

    let kid = format!("key_{}", ulid::Ulid::new());
    let encrypted_private_key = encrypt_private_key(kek, &kid, pkcs8.as_ref())?;
    let now = Utc::now();
    Ok(StoredSigningKey {
        n: URL_SAFE_NO_PAD.encode(&public_key.n),
        e: URL_SAFE_NO_PAD.encode(&public_key.e),
        kid,
        alg: RS256.to_owned(),
        encrypted_private_key,
        status,
        created_at: now,
        status_changed_at: now,
    })
}

fn encrypt_private_key(
    kek: &KeyEncryptionKey,
    kid: &str,
    pkcs8: &[u8],
) -> Result<String, TokenError> {
    let mut nonce = [0u8; GCM_NONCE_BYTES];
    rand::rng().fill_bytes(&mut nonce);
    let payload = Payload {
        msg: pkcs8,
        aad: kid.as_bytes(),
    };
    let ciphertext = kek
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), payload)
        .map_err(|_| TokenError::KeyEncryption {
            kid: kid.to_owned(),
        })?;
    let mut sealed = Vec::with_capacity(GCM_NONCE_BYTES + ciphertext.len());
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(STANDARD.encode(sealed))
}

fn decrypt_private_key(
    kek: &KeyEncryptionKey,
    key: &StoredSigningKey,
) -> Result<Vec<u8>, TokenError> {
    let decryption_error = || TokenError::KeyDecryption {
        kid: key.kid.clone(),
    };
    let sealed = STANDARD
        .decode(&key.encrypted_private_key)
        .map_err(|_| decryption_error())?;
    if sealed.len() < GCM_NONCE_BYTES + GCM_TAG_BYTES {
        return Err(decryption_error());
    }
    let (nonce, ciphertext) = sealed.split_at(GCM_NONCE_BYTES);
    let payload = Payload {
        msg: ciphertext,
        aad: key.kid.as_bytes(),
    };
    kek.cipher()
        .decrypt(Nonce::from_slice(nonce), payload)
        .map_err(|_| decryption_error())
}

/// Claims of an access token, as the WorkOS SDK reads them. Absent options are left out of the
/// JSON, never written as `null`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AccessTokenClaims {
    /// Issuer URL.
    pub iss: String,
    /// User id, `user_…`.
    pub sub: String,
    /// Session id, `session_…`.
    pub sid: String,
    /// Unique token id.
    pub jti: String,
    /// Issued-at time in seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry time in seconds since the Unix epoch.
    pub exp: i64,
    /// Time of the last active authentication in seconds since the Unix epoch. Refreshes keep it.
    pub auth_time: i64,
    /// Organization the session is scoped to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub org_id: Option<String>,
    /// Slug of the membership role.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    /// Slugs of all roles of the membership.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub roles: Option<Vec<String>>,
    /// Permission slugs of the membership.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub permissions: Option<Vec<String>>,
    /// Lookup keys of the organization's active Stripe entitlements.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entitlements: Option<Vec<String>>,
}

#[derive(Serialize)]
struct JwtHeader<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// A decrypted and parsed key pair, with the ciphertext it came from so that a changed record
/// under the same `kid` is decrypted again.
struct CachedKeyPair {
    encrypted_private_key: String,
    key_pair: Arc<RsaKeyPair>,
}

/// Signs access tokens, decrypting and parsing each signing key once per process.
pub struct Signer {
    kek: KeyEncryptionKey,
    key_pairs: RwLock<HashMap<String, CachedKeyPair>>,
    rng: SystemRandom,
}

impl fmt::Debug for Signer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Signer")
            .field("cached_keys", &self.cached_key_count())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Creates a signer with an empty key cache.
    pub fn new(kek: KeyEncryptionKey) -> Self {
        Self {
            kek,
            key_pairs: RwLock::new(HashMap::new()),
            rng: SystemRandom::new(),
        }
    }

    /// Signs `claims` as an RS256 JWT with header `{"alg":"RS256","typ":"JWT","kid"}`.
    ///
    /// The key is used whatever its status. Callers pick it with [`active_key`].
    ///
    /// # Errors
    /// [`TokenError::UnsupportedAlgorithm`], [`TokenError::KeyDecryption`],
    /// [`TokenError::InvalidPrivateKey`] or [`TokenError::Signing`].
    pub fn sign(
        &self,
        key: &StoredSigningKey,
        claims: &AccessTokenClaims,
    ) -> Result<String, TokenError> {
        if key.alg != RS256 {
            return Err(TokenError::UnsupportedAlgorithm {
                kid: key.kid.clone(),
                alg: key.alg.clone(),
            });
        }
        let key_pair = self.key_pair(key)?;

        let header = JwtHeader {
            alg: RS256,
            typ: "JWT",
            kid: &key.kid,
        };
        let mut token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut token);

        let mut signature = vec![0u8; key_pair.public_modulus_len()];
        key_pair
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| TokenError::Signing {
                kid: key.kid.clone(),
            })?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// Returns the parsed key pair of `key`, from the cache or by decrypting it.
    fn key_pair(&self, key: &StoredSigningKey) -> Result<Arc<RsaKeyPair>, TokenError> {
        {
            // A poisoned lock still holds a consistent map: entries are inserted whole.
            let cache = self
                .key_pairs
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(cached) = cache.get(&key.kid)
                && cached.encrypted_private_key == key.encrypted_private_key
            {
                return Ok(Arc::clone(&cached.key_pair));
            }
        }

        let pkcs8 = decrypt_private_key(&self.kek, key)?;
        let key_pair =
            RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| TokenError::InvalidPrivateKey {
                kid: key.kid.clone(),
            })?;
        let key_pair = Arc::new(key_pair);
        let mut cache = self
            .key_pairs
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            key.kid.clone(),
            CachedKeyPair {
                encrypted_private_key: key.encrypted_private_key.clone(),
                key_pair: Arc::clone(&key_pair),
            },
        );
        Ok(key_pair)
    }

    fn cached_key_count(&self) -> usize {
        self.key_pairs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Builds the JWKS document `{"keys":[{kty,n,e,kid,alg,use}]}` for every key given, in order.
///
/// Callers pass the keys that verifiers must accept: `Next`, `Active` and `Previous`.
pub fn jwks(keys: &[StoredSigningKey]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "kty": "RSA",
                "n": key.n,
                "e": key.e,
                "kid": key.kid,
                "alg": key.alg,
                "use": "sig",
            })
        })
        .collect();
    json!({ "keys": keys })
}

/// Returns the key that signs new tokens: the `Active` key, or the most recently activated one
/// if several are `Active`.
pub fn active_key(keys: &[StoredSigningKey]) -> Option<&StoredSigningKey> {
    keys.iter()
        .filter(|key| key.status == SigningKeyStatus::Active)
        .max_by_key(|key| key.status_changed_at)
}

/// Decodes the claims of a JWT without checking its signature or expiry.
///
/// Use it only to read hints such as `org_id` from a presented token, never to authorize.
///
/// # Errors
/// [`TokenError::MalformedToken`] unless the token has three dot-separated segments with a
/// base64url payload, and [`TokenError::Json`] when the payload lacks required claims.
pub fn decode_claims_unverified(token: &str) -> Result<AccessTokenClaims, TokenError> {
    let mut segments = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(TokenError::MalformedToken(
            "expected three dot-separated segments",
        ));
    };
    let payload = BASE64URL_LENIENT
        .decode(payload)
        .map_err(|_| TokenError::MalformedToken("payload is not base64url"))?;
    Ok(serde_json::from_slice(&payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};

    fn sample_claims() -> AccessTokenClaims {
        let now = Utc::now().timestamp();
        AccessTokenClaims {
            iss: "https://auth.example.test".to_owned(),
            sub: "user_01".to_owned(),
            sid: "session_01".to_owned(),
            jti: "01JTESTJTI".to_owned(),
            iat: now,
            exp: now + 300,
            auth_time: now - 60,
            org_id: Some("org_01".to_owned()),
            role: Some("member".to_owned()),
            roles: Some(vec!["member".to_owned()]),
            permissions: Some(Vec::new()),
            entitlements: Some(vec!["audit-logs".to_owned()]),
        }
    }

    /// Verifies `token` with jsonwebtoken against the RSA key of `kid` in `jwks`.
    fn verify_with_jwks(
        token: &str,
        jwks: &Value,
    ) -> Result<AccessTokenClaims, jsonwebtoken::errors::Error> {
        let header = decode_header(token)?;
        let kid = header.kid.expect("token has a kid");
        let jwk = jwks["keys"]
            .as_array()
            .expect("keys array")
            .iter()
            .find(|jwk| jwk["kid"] == kid.as_str())
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidSignature)?;
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().expect("n"),
            jwk["e"].as_str().expect("e"),
        )?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        decode::<AccessTokenClaims>(token, &key, &validation).map(|data| data.claims)
    }

    #[test]
    fn sign_verifies_with_jwks() {
        let kek = KeyEncryptionKey::generate();
        let key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let claims = sample_claims();
        let token = Signer::new(kek).sign(&key, &claims).expect("sign");

        let verified = verify_with_jwks(&token, &jwks(std::slice::from_ref(&key))).expect("verify");
        assert_eq!(verified, claims);
    }

    #[test]
    fn sign_writes_expected_header() {
        let kek = KeyEncryptionKey::generate();
        let key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let token = Signer::new(kek).sign(&key, &sample_claims()).expect("sign");
        let header_b64 = token.split('.').next().expect("header segment");
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).expect("base64url"))
                .expect("header JSON");
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": key.kid})
        );
    }

    #[test]
    fn token_fails_with_other_key_set() {
        let kek = KeyEncryptionKey::generate();
        let signing = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let mut other = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        // Same kid, different key material: only the signature check can reject it.
        other.kid = signing.kid.clone();
        let token = Signer::new(kek)
            .sign(&signing, &sample_claims())
            .expect("sign");

        let error = verify_with_jwks(&token, &jwks(&[other])).expect_err("must not verify");
        assert_eq!(
            error.kind(),
            &jsonwebtoken::errors::ErrorKind::InvalidSignature
        );
    }

    #[test]
    fn generated_key_is_rsa_2048() {
        let kek = KeyEncryptionKey::generate();
        let key = generate_signing_key(&kek, SigningKeyStatus::Next).expect("generate");
        assert_eq!(URL_SAFE_NO_PAD.decode(&key.n).expect("n").len(), 256);
        assert_eq!(key.e, "AQAB");
        assert_eq!(key.alg, "RS256");
        assert!(key.kid.starts_with("key_"));
        assert!(ulid::Ulid::from_string(&key.kid["key_".len()..]).is_ok());
        assert_eq!(key.status, SigningKeyStatus::Next);
    }

    #[test]
    fn private_key_needs_same_kek() {
        let kek = KeyEncryptionKey::generate();
        let key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let result = Signer::new(KeyEncryptionKey::generate()).sign(&key, &sample_claims());
        assert!(matches!(result, Err(TokenError::KeyDecryption { .. })));
    }

    #[test]
    fn private_key_bound_to_kid() {
        let kek = KeyEncryptionKey::generate();
        let mut key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        key.kid = format!("key_{}", ulid::Ulid::new());
        let result = Signer::new(kek).sign(&key, &sample_claims());
        assert!(matches!(result, Err(TokenError::KeyDecryption { .. })));
    }

    #[test]
    fn damaged_private_key_rejected() {
        let kek = KeyEncryptionKey::generate();
        let mut key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let signer = Signer::new(kek);
        for damaged in ["", "AAAA", "not base64!"] {
            key.encrypted_private_key = damaged.to_owned();
            assert!(
                matches!(
                    signer.sign(&key, &sample_claims()),
                    Err(TokenError::KeyDecryption { .. })
                ),
                "encrypted_private_key {damaged:?}"
            );
        }
    }

    #[test]
    fn signer_caches_key_pair() {
        let kek = KeyEncryptionKey::generate();
        let first = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let second = generate_signing_key(&kek, SigningKeyStatus::Next).expect("generate");
        let signer = Signer::new(kek);
        signer.sign(&first, &sample_claims()).expect("sign");
        signer.sign(&first, &sample_claims()).expect("sign");
        assert_eq!(signer.cached_key_count(), 1);
        signer.sign(&second, &sample_claims()).expect("sign");
        assert_eq!(signer.cached_key_count(), 2);
    }

    #[test]
    fn signer_rereads_changed_record() {
        let kek = KeyEncryptionKey::generate();
        let original = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let signer = Signer::new(kek.clone());
        signer.sign(&original, &sample_claims()).expect("sign");

        // Another record under the same kid, e.g. after a store was restored.
        let replacement_pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate");
        let public_key = PublicKeyComponents::<Vec<u8>>::from(replacement_pair.public_key());
        let mut replacement = original.clone();
        replacement.n = URL_SAFE_NO_PAD.encode(&public_key.n);
        replacement.encrypted_private_key = encrypt_private_key(
            &kek,
            &original.kid,
            replacement_pair.as_der().expect("pkcs8").as_ref(),
        )
        .expect("encrypt");

        let token = signer.sign(&replacement, &sample_claims()).expect("sign");
        assert!(verify_with_jwks(&token, &jwks(std::slice::from_ref(&replacement))).is_ok());
    }

    #[test]
    fn sign_rejects_other_algorithm() {
        let kek = KeyEncryptionKey::generate();
        let mut key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        key.alg = "HS256".to_owned();
        let result = Signer::new(kek).sign(&key, &sample_claims());
        assert!(matches!(
            result,
            Err(TokenError::UnsupportedAlgorithm { .. })
        ));
    }

    #[test]
    fn claims_omit_absent_options() {
        let claims = AccessTokenClaims {
            org_id: None,
            role: None,
            roles: None,
            permissions: None,
            entitlements: None,
            ..sample_claims()
        };
        let value = serde_json::to_value(&claims).expect("serialize");
        let object = value.as_object().expect("object");
        let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["auth_time", "exp", "iat", "iss", "jti", "sid", "sub"]
        );
        assert!(object.values().all(|value| !value.is_null()));
    }

    #[test]
    fn claims_keep_empty_entitlements() {
        let claims = AccessTokenClaims {
            entitlements: Some(Vec::new()),
            ..sample_claims()
        };
        let value = serde_json::to_value(&claims).expect("serialize");
        assert_eq!(value["entitlements"], json!([]));
    }

    #[test]
    fn debug_hides_key_material() {
        let kek = KeyEncryptionKey::generate();
        let key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");

        let kek_debug = format!("{kek:?}");
        assert_eq!(kek_debug, "KeyEncryptionKey(..)");

        let key_debug = format!("{key:?}");
        assert!(key_debug.contains(&key.kid));
        assert!(!key_debug.contains(&key.encrypted_private_key));
        assert!(!key_debug.contains(&key.encrypted_private_key[..16]));
        assert!(!key_debug.contains("encrypted_private_key"));

        let signer = Signer::new(kek);
        signer.sign(&key, &sample_claims()).expect("sign");
        let signer_debug = format!("{signer:?}");
        assert_eq!(signer_debug, "Signer { cached_keys: 1, .. }");
    }

    #[test]
    fn kek_base64_round_trip() {
        let kek = KeyEncryptionKey::generate();
        let encoded = kek.to_base64();
        let decoded = KeyEncryptionKey::from_base64(&encoded).expect("decode");
        assert_eq!(decoded.0, kek.0);
        let unpadded = encoded.trim_end_matches('=');
        assert_eq!(
            KeyEncryptionKey::from_base64(unpadded).expect("decode").0,
            kek.0
        );
    }

    #[test]
    fn kek_rejects_bad_input() {
        for input in [
            "",
            "not base64!",
            &STANDARD.encode([0u8; 31]),
            &STANDARD.encode([0u8; 33]),
        ] {
            assert!(
                matches!(
                    KeyEncryptionKey::from_base64(input),
                    Err(TokenError::InvalidKeyEncryptionKey(_))
                ),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn jwks_lists_every_key() {
        let kek = KeyEncryptionKey::generate();
        let keys = [
            generate_signing_key(&kek, SigningKeyStatus::Next).expect("generate"),
            generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate"),
            generate_signing_key(&kek, SigningKeyStatus::Previous).expect("generate"),
        ];
        let document = jwks(&keys);
        let published = document["keys"].as_array().expect("keys array");
        assert_eq!(published.len(), 3);
        for (jwk, key) in published.iter().zip(&keys) {
            assert_eq!(
                jwk,
                &json!({
                    "kty": "RSA",
                    "n": key.n,
                    "e": key.e,
                    "kid": key.kid,
                    "alg": "RS256",
                    "use": "sig",
                })
            );
        }
    }

    #[test]
    fn active_key_picks_latest_active() {
        let kek = KeyEncryptionKey::generate();
        let next = generate_signing_key(&kek, SigningKeyStatus::Next).expect("generate");
        let mut older = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        older.status_changed_at -= chrono::Duration::minutes(5);
        let newer = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let previous = generate_signing_key(&kek, SigningKeyStatus::Previous).expect("generate");

        let keys = [next.clone(), older, newer.clone(), previous.clone()];
        assert_eq!(active_key(&keys).map(|key| &key.kid), Some(&newer.kid));
        assert!(active_key(&[next, previous]).is_none());
    }

    #[test]
    fn decode_unverified_reads_claims() {
        let kek = KeyEncryptionKey::generate();
        let key = generate_signing_key(&kek, SigningKeyStatus::Active).expect("generate");
        let claims = sample_claims();
        let token = Signer::new(kek).sign(&key, &claims).expect("sign");
        assert_eq!(decode_claims_unverified(&token).expect("decode"), claims);
    }

    #[test]
    fn decode_unverified_rejects_malformed() {
        for token in ["", "a.b", "a.b.c.d", "a.!!!.c"] {
            assert!(
                matches!(
                    decode_claims_unverified(token),
                    Err(TokenError::MalformedToken(_))
                ),
                "token {token:?}"
            );
        }
        let not_claims = format!(
            "e30.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"sub":"user_01"}"#)
        );
        assert!(matches!(
            decode_claims_unverified(&not_claims),
            Err(TokenError::Json(_))
        ));
    }
}
