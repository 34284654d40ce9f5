//! Users in the WorkOS API: the create body, field rules, password hashing and the
//! snake_case `user` object.
//!
//! Passwords are hashed with Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes, 1 lane)
//! on a blocking thread. An email address is unique per environment, compared in lowercase. A
//! taken address gets the error WorkOS returns for it: HTTP 400 with code `user_creation_error`
//! and `errors: [{code: "email_not_available"}]`, which the Node SDK raises as a
//! `BadRequestException`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use argon2::password_hash::SaltString;
use argon2::{Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier};
use chrono::Utc;
use http::StatusCode;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use unicode_normalization::UnicodeNormalization;

use crate::error::ApiError;
use crate::ids;
use crate::organizations::timestamp;
use crate::state::AppState;
use crate::store::{StoreError, User};
use crate::validate;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes; it bounds the work of hashing a request.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest accepted email address, in characters (the SMTP path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest accepted URL of a profile picture, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// Most memory an imported Argon2 hash may ask for, in KiB (64 MiB, the default of PHP and
/// argon2-cffi and libsodium's interactive limit).
pub const MAX_IMPORTED_MEMORY_KIB: u32 = 65_536;
/// Most passes an imported Argon2 hash may ask for.
pub const MAX_IMPORTED_PASSES: u32 = 10;
/// Most lanes an imported Argon2 hash may ask for.
pub const MAX_IMPORTED_LANES: u32 = 8;
/// Most work (memory in KiB times passes) of one imported hash check: 64 MiB with 4 passes.
pub const MAX_IMPORTED_WORK: u64 = 65_536 * 4;

/// The body of `POST /user_management/users`.
#[derive(Debug, Deserialize)]
pub struct CreateUser {
    pub email: String,
    #[serde(default)]
    pub password: Option<String>,
    /// A hash to import instead of a password; only `password_hash_type: "argon2"` (a PHC
    /// string) is supported.
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub password_hash_type: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub profile_picture_url: Option<String>,
}

/// A hash that no password matches, verified when the email is unknown so that an unknown
/// address takes as long as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let mut password = [0u8; 32];
    rand::rng().fill_bytes(&mut password);
    hash_password_blocking(&password).ok()
});

fn hash_password_blocking(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default()
        .hash_password(password, &salt)?
        .to_string())
}

/// Hashes a password with Argon2id on a blocking thread.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password_blocking(password.as_bytes()))
        .await
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error)))?
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("password hashing failed: {error}")))
}

/// Checks a password against a user's stored hash on a blocking thread. A missing user or a user
/// without a password is checked against a dummy hash and never matches.
pub async fn verify_password(user: Option<&User>, password: String) -> bool {
    let stored = user.and_then(|user| user.password_hash.clone());
    let has_password = stored.is_some();
    let result = tokio::task::spawn_blocking(move || {
        let Some(hash) = stored.or_else(|| DUMMY_HASH.clone()) else {
            return false;
        };
        let Ok(parsed) = PasswordHash::new(&hash) else {
            return false;
        };
        // A hash stored before the import limits existed could still cost more than a request
        // may spend: it never matches.
        if !within_cost_limits(&parsed) {
            return false;
        }
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await;
    has_password && result.unwrap_or(false)
}

/// Checks an email address: one `@`, a non-empty local part, a domain with a dot, no spaces or
/// control characters, at most [`MAX_EMAIL_CHARS`] characters. Returns it trimmed.
pub fn email(value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    let invalid = || {
        ApiError::invalid_field(
            "email",
            "email_invalid",
            "email must be an email address such as 'marcelina@example.com'.",
        )
    };
    if trimmed.is_empty() {
        return Err(ApiError::invalid_field(
            "email",
            "email_required",
            "email must not be empty.",
        ));
    }
    if trimmed.chars().count() > MAX_EMAIL_CHARS {
        return Err(ApiError::invalid_field(
            "email",
            "email_too_long",
            format!("email must be at most {MAX_EMAIL_CHARS} characters."),
        ));
    }
    if trimmed
        .chars()
        .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(invalid());
    }
    // Addresses are compared in lowercase, so a compatibility character that lowercases or
    // normalizes to another (the Kelvin sign to `k`), a decomposed accent, or an invisible
    // character would let two spellings of one address belong to different users.
    if trimmed.chars().any(is_invisible) || !trimmed.nfkc().eq(trimmed.chars()) {
        return Err(ApiError::invalid_field(
            "email",
            "email_not_normalized",
            "email must be in Unicode normalization form NFKC and contain no invisible \
             characters (zero-width or bidirectional controls).",
        ));
    }
    let Some((local, domain)) = trimmed.split_once('@') else {
        return Err(invalid());
    };
    let domain_valid = !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty());
    if local.is_empty() || !domain_valid {
        return Err(invalid());
    }
    Ok(trimmed.to_owned())
}

/// Returns whether a character is invisible in text: Unicode's `Default_Ignorable_Code_Point`
/// set (zero-width characters, joiners, variation selectors, tags, the soft hyphen, the byte
/// order mark) and the bidirectional controls, which that set includes.
fn is_invisible(character: char) -> bool {
    matches!(
        character,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Trims an optional name; an empty one counts as absent.
fn optional_name(field: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) => validate::name(field, name).map(Some),
    }
}

fn password(value: &str) -> Result<(), ApiError> {
    if value.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid_field(
            "password",
            "password_too_short",
            format!("password must be at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    if value.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid_field(
            "password",
            "password_too_long",
            format!("password must be at most {MAX_PASSWORD_BYTES} bytes."),
        ));
    }
    Ok(())
}

/// Checks an imported hash: only Argon2 PHC strings are accepted.
fn imported_hash(hash: &str, hash_type: Option<&str>) -> Result<String, ApiError> {
    if hash_type != Some("argon2") {
        return Err(ApiError::invalid_field(
            "password_hash_type",
            "password_hash_type_unsupported",
            "password_hash_type must be 'argon2'; other imported hash types are not supported by this service.",
        ));
    }
    let parsed = PasswordHash::new(hash).map_err(|_| {
        ApiError::invalid_field(
            "password_hash",
            "password_hash_invalid",
            "password_hash must be an Argon2 hash in PHC string format ('$argon2id$v=19$…').",
        )
    })?;
    if !is_verifiable(&parsed) || Params::try_from(&parsed).is_err() {
        return Err(ApiError::invalid_field(
            "password_hash",
            "password_hash_invalid",
            "password_hash must be an Argon2 hash in PHC string format ('$argon2id$v=19$…').",
        ));
    }
    if !within_cost_limits(&parsed) {
        return Err(ApiError::invalid_field(
            "password_hash",
            "password_hash_too_costly",
            format!(
                "password_hash asks for more work than this service checks per sign-in: at most \
                 m={MAX_IMPORTED_MEMORY_KIB} (KiB), t={MAX_IMPORTED_PASSES}, \
                 p={MAX_IMPORTED_LANES}, and m×t at most {MAX_IMPORTED_WORK}."
            ),
        ));
    }
    Ok(hash.to_owned())
}

/// Returns whether a parsed PHC string is an Argon2 hash that a password can match: a known
/// variant and version, a salt of at least 8 bytes, and an output of at least 4 bytes.
fn is_verifiable(hash: &PasswordHash<'_>) -> bool {
    let variant = matches!(hash.algorithm.as_str(), "argon2d" | "argon2i" | "argon2id");
    let version = matches!(hash.version, None | Some(0x10) | Some(0x13));
    // Base64 without padding: 8 bytes take 11 characters.
    let salt = hash.salt.is_some_and(|salt| salt.as_str().len() >= 11);
    let output = hash.hash.is_some_and(|output| output.len() >= 4);
    variant && version && salt && output
}

/// Returns whether checking a password against `hash` stays within the import limits, so that
/// one sign-in cannot take seconds or hundreds of MiB.
fn within_cost_limits(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    params.m_cost() <= MAX_IMPORTED_MEMORY_KIB
        && params.t_cost() <= MAX_IMPORTED_PASSES
        && params.p_cost() <= MAX_IMPORTED_LANES
        && u64::from(params.m_cost()) * u64::from(params.t_cost()) <= MAX_IMPORTED_WORK
}

fn email_not_available() -> ApiError {
    let mut extra = Map::new();
    extra.insert(
        "errors".into(),
        json!([{ "field": "email", "code": "email_not_available", "message": "This email is not available." }]),
    );
    // WorkOS returns, for a taken address, with a 400 that carries `code` and `errors`.
    ApiError::Authentication {
        status: StatusCode::BAD_REQUEST,
        code: "user_creation_error",
        message: "Could not create user.".into(),
        extra,
    }
}

/// Creates a user in an environment.
pub async fn create(
    state: &AppState,
    environment_id: &str,
    request: CreateUser,
) -> Result<User, ApiError> {
    let email = email(&request.email)?;
    let first_name = optional_name("first_name", request.first_name.as_deref())?;
    let last_name = optional_name("last_name", request.last_name.as_deref())?;
    let name = optional_name("name", request.name.as_deref())?;
    if let Some(external_id) = &request.external_id {
        validate::external_id(external_id)?;
    }
    let metadata = request.metadata.unwrap_or_default();
    validate::metadata(&metadata)?;
    if let Some(url) = &request.profile_picture_url
        && (url.chars().count() > MAX_URL_CHARS || url::Url::parse(url).is_err())
    {
        return Err(ApiError::invalid_field(
            "profile_picture_url",
            "profile_picture_url_invalid",
            format!(
                "profile_picture_url must be an absolute URL of at most {MAX_URL_CHARS} characters."
            ),
        ));
    }
    let password_hash = match (&request.password, &request.password_hash) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field(
                "password_hash",
                "password_and_hash_exclusive",
                "Pass either password or password_hash, not both.",
            ));
        }
        (Some(plain), None) => {
            password(plain)?;
            Some(hash_password(plain.clone()).await?)
        }
        (None, Some(hash)) => Some(imported_hash(hash, request.password_hash_type.as_deref())?),
        (None, None) => None,
    };

    let now = Utc::now();
    let user = User {
        id: ids::new_id("user"),
        environment_id: environment_id.to_owned(),
        email,
        email_verified: request.email_verified.unwrap_or(false),
        first_name,
        last_name,
        name,
        profile_picture_url: request.profile_picture_url,
        locale: None,
        external_id: request.external_id,
        metadata,
        password_hash,
        last_sign_in_at: None,
        created_at: now,
        updated_at: now,
    };
    match state.store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Taken { field: "email", .. }) => return Err(email_not_available()),
        Err(error) => return Err(error.into()),
    }
    tracing::info!(user_id = %user.id, "user created");
    Ok(user)
}

/// Reads a user, or a 404 when it does not exist in this environment.
pub async fn get(state: &AppState, environment_id: &str, id: &str) -> Result<User, ApiError> {
    if !ids::is_id(id, "user") {
        return Err(ApiError::not_found("User", id));
    }
    state
        .store
        .get_user(environment_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("User", id))
}

/// Deletes a user with its memberships, or a 404. Its sessions can no longer refresh.
pub async fn delete(state: &AppState, environment_id: &str, id: &str) -> Result<(), ApiError> {
    if !ids::is_id(id, "user") || !state.store.delete_user(environment_id, id).await? {
        return Err(ApiError::not_found("User", id));
    }
    tracing::info!(user_id = %id, "user deleted");
    Ok(())
}

/// Renders the WorkOS `user` object (snake_case). The password hash is never part of it.
pub fn to_json(user: &User) -> Value {
    json!({
        "object": "user",
        "id": user.id,
        "email": user.email,
        "email_verified": user.email_verified,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "name": user.name,
        "profile_picture_url": user.profile_picture_url,
        "last_sign_in_at": user.last_sign_in_at.as_ref().map(timestamp),
        "locale": user.locale,
        "external_id": user.external_id,
        "metadata": user.metadata,
        "created_at": timestamp(&user.created_at),
        "updated_at": timestamp(&user.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_accepts_and_trims() {
        assert_eq!(email(" Ada@Example.com ").unwrap(), "Ada@Example.com");
    }

    #[test]
    fn email_rejects_malformed() {
        for value in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@example..com",
        ] {
            assert!(email(value).is_err(), "{value:?}");
        }
        assert!(email(&format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS))).is_err());
    }

    #[test]
    fn email_look_alikes_rejected() {
        for value in [
            "victim@\u{212A}elvin.com",
            "cafe\u{0301}@example.com",
            "zw\u{200B}@example.com",
            "rtl\u{202E}@example.com",
            "a\u{061C}b@example.com",
            "a\u{034F}b@example.com",
            "a\u{FE0F}b@example.com",
            "a\u{E0041}b@example.com",
            "\u{FF41}da@example.com",
        ] {
            let error = email(value).expect_err(value);
            assert!(
                format!("{error:?}").contains("email_not_normalized"),
                "{value:?}: {error:?}"
            );
        }
        assert_eq!(email("café@example.com").unwrap(), "café@example.com");
        assert_eq!(email("x@straße.de").unwrap(), "x@straße.de");
    }

    #[test]
    fn password_length_limits() {
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn imported_hash_needs_argon2() {
        let hash = hash_password_blocking(b"correct horse").unwrap();
        assert!(imported_hash(&hash, Some("argon2")).is_ok());
        assert!(imported_hash(&hash, Some("bcrypt")).is_err());
        assert!(imported_hash("not a hash", Some("argon2")).is_err());
    }

    #[test]
    fn imported_hash_must_verify() {
        let salt = "c29tZXNhbHRzb21lc2FsdA";
        let output = "RdescudvJCsgt3ub+b+dWRWJTmaaJObGQmKmkyEXVBw";
        let valid = format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${output}");
        assert!(imported_hash(&valid, Some("argon2")).is_ok());
        for hash in [
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}"),
            format!("$argon2id$v=19$m=19456,t=2,p=1$AAAA${output}"),
            format!("$argon2id$v=99$m=19456,t=2,p=1${salt}${output}"),
            format!("$argon2x$v=19$m=19456,t=2,p=1${salt}${output}"),
        ] {
            let error = imported_hash(&hash, Some("argon2")).expect_err(&hash);
            assert!(
                format!("{error:?}").contains("password_hash_invalid"),
                "{hash}: {error:?}"
            );
        }
    }

    #[test]
    fn imported_hash_cost_limits() {
        let salt_and_hash = "c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObGQmKmkyEXVBw";
        let cases = [
            ("m=65536,t=4,p=1", true),
            ("m=65536,t=3,p=4", true),
            ("m=19456,t=10,p=8", true),
            ("m=262144,t=4,p=1", false),
            ("m=65536,t=5,p=1", false),
            ("m=4096,t=11,p=1", false),
            ("m=65536,t=1,p=9", false),
        ];
        for (params, accepted) in cases {
            let hash = format!("$argon2id$v=19${params}${salt_and_hash}");
            let result = imported_hash(&hash, Some("argon2"));
            assert_eq!(result.is_ok(), accepted, "{params}");
            if let Err(error) = result {
                assert!(
                    format!("{error:?}").contains("password_hash_too_costly"),
                    "{params}"
                );
            }
        }
    }

    #[tokio::test]
    async fn costly_stored_hash_never_matches() {
        // Eleven passes over 8 KiB: cheap to compute here, but over the pass limit.
        let params = Params::new(8, MAX_IMPORTED_PASSES + 1, 1, None).unwrap();
        let hasher = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        let hash = hasher
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let now = Utc::now();
        let user = User {
            id: "user_1".into(),
            environment_id: "client_1".into(),
            email: "ada@example.com".into(),
            email_verified: false,
            first_name: None,
            last_name: None,
            name: None,
            profile_picture_url: None,
            locale: None,
            external_id: None,
            metadata: BTreeMap::new(),
            password_hash: Some(hash),
            last_sign_in_at: None,
            created_at: now,
            updated_at: now,
        };
        assert!(!verify_password(Some(&user), "correct horse".into()).await);
    }

    #[tokio::test]
    async fn verify_password_matches_only_its_hash() {
        let now = Utc::now();
        let user = User {
            id: "user_1".into(),
            environment_id: "client_1".into(),
            email: "ada@example.com".into(),
            email_verified: false,
            first_name: None,
            last_name: None,
            name: None,
            profile_picture_url: None,
            locale: None,
            external_id: None,
            metadata: BTreeMap::new(),
            password_hash: Some(hash_password("correct horse".into()).await.unwrap()),
            last_sign_in_at: None,
            created_at: now,
            updated_at: now,
        };
        assert!(verify_password(Some(&user), "correct horse".into()).await);
        assert!(!verify_password(Some(&user), "wrong horse".into()).await);
        assert!(!verify_password(None, "correct horse".into()).await);
        let without = User {
            password_hash: None,
            ..user
        };
        assert!(!verify_password(Some(&without), "correct horse".into()).await);
    }
}
