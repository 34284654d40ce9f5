//! The sealed `wos-session` cookie of the WorkOS Node SDK (`@workos-inc/node` 12.x).
//!
//! The SDK seals its session with iron "Fe26.2" (the hapi/iron v2 format, as implemented by the
//! `iron-webcrypto` package the SDK bundles) and appends its own `~2` version marker:
//!
//! ```text
//! Fe26.2*1*<encryption salt>*<iv>*<ciphertext>*<expiration>*<hmac salt>*<hmac digest>~2
//! ```
//!
//! - Both salts are 32 random bytes written as 64 lowercase hex characters. The hex text itself,
//!   as UTF-8 bytes, is the PBKDF2 salt.
//! - The encryption key is PBKDF2-HMAC-SHA1 over the password with 1 iteration and 32 bytes of
//!   output. The cipher is AES-256-CBC with PKCS#7 padding and a random 16-byte IV.
//! - The integrity key is derived the same way with its own salt. The digest is HMAC-SHA256 over
//!   the first six fields joined with `*`, including the trailing `*` before the empty expiration.
//! - IV, ciphertext and digest are base64url without padding. The plaintext is the
//!   `JSON.stringify` output of the session object.
//!
//! The SDK seals with password id `1` and an empty expiration, so a cookie never expires by
//! itself. The session ends when its refresh token stops working.

use std::time::{SystemTime, UNIX_EPOCH};

use aes::Aes256;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Name of the cookie in which the SDK's framework integrations store the sealed session.
pub const COOKIE_NAME: &str = "wos-session";

/// Minimum password length in UTF-16 code units, because the SDK measures JavaScript string length.
const MIN_PASSWORD_LENGTH: usize = 32;
const MAC_PREFIX: &str = "Fe26.2";
/// The only password id the SDK seals with and looks up when unsealing.
const PASSWORD_ID: &str = "1";
const VERSION_DELIMITER: char = '~';
const CURRENT_MAJOR_VERSION: i64 = 2;
const SALT_BYTES: usize = 32;
const IV_BYTES: usize = 16;
const KEY_BYTES: usize = 32;
const PBKDF2_ITERATIONS: u32 = 1;
/// Clock skew that iron allows before it treats a non-empty expiration as passed.
const TIMESTAMP_SKEW_MS: u128 = 60_000;

type Aes256CbcEncryptor = cbc::Encryptor<Aes256>;
type Aes256CbcDecryptor = cbc::Decryptor<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Base64url without padding for output. Decoding also accepts padding and non-zero trailing
/// bits, because the SDK decodes with the lenient `atob`.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Errors of sealing and unsealing. Messages never contain the cookie, the password or the data.
#[derive(Debug, thiserror::Error)]
pub enum CookieError {
    /// The password is shorter than the SDK's minimum.
    #[error(
        "cookie password is too short: {length} characters, at least {MIN_PASSWORD_LENGTH} required"
    )]
    PasswordTooShort {
        /// Length of the rejected password in UTF-16 code units.
        length: usize,
    },
    /// The cookie does not have the Fe26.2 layout.
    #[error("malformed sealed cookie: {0}")]
    Malformed(&'static str),
    /// The expiration field is neither empty nor a positive decimal integer.
    #[error("malformed sealed cookie: invalid expiration")]
    InvalidExpiration,
    /// The expiration field lies more than 60 seconds in the past.
    #[error("sealed cookie has expired")]
    Expired,
    /// The cookie names a password id other than `1`.
    #[error("sealed cookie names an unknown password id; only id \"1\" is supported")]
    UnknownPasswordId,
    /// The HMAC digest does not match, because of a wrong password or a changed cookie.
    #[error("sealed cookie failed the integrity check (wrong password or modified cookie)")]
    BadMac,
    /// AES-256-CBC decryption or PKCS#7 unpadding failed.
    #[error("sealed cookie could not be decrypted")]
    Decrypt,
    /// The decrypted plaintext is not JSON.
    #[error("sealed cookie data is not valid JSON")]
    Json(#[source] serde_json::Error),
}

/// Session object that the SDK seals (`SessionCookieData` in `@workos-inc/node`).
///
/// Absent optional fields are left out of the JSON, as `JSON.stringify` drops `undefined`.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SessionCookieData {
    /// Access token (JWT) of the session.
    pub access_token: String,
    /// Refresh token that the SDK sends to renew the session.
    pub refresh_token: String,
    /// User in the SDK's camelCase form, see [`user_to_cookie_json`].
    pub user: Value,
    /// `org_id` claim of the access token, which the SDK reads without verifying the token.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub organization_id: Option<String>,
    /// `authentication_method` of the authenticate response, e.g. `Password`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub authentication_method: Option<String>,
    /// `{email, reason}` of an impersonating administrator.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub impersonator: Option<Value>,
}

/// Seals `data` into an SDK-compatible `wos-session` value: Fe26.2, password id `1`, empty
/// expiration and the `~2` suffix.
///
/// # Errors
/// [`CookieError::PasswordTooShort`] if `password` has fewer than 32 characters.
pub fn seal(password: &str, data: &Value) -> Result<String, CookieError> {
    check_password_length(password)?;
    let plaintext = serde_json::to_string(data).map_err(CookieError::Json)?;

    let encryption_salt = random_hex_salt();
    let mut iv = [0u8; IV_BYTES];
    rand::rng().fill_bytes(&mut iv);
    let encryption_key = derive_key(password, &encryption_salt);
    let ciphertext = Aes256CbcEncryptor::new(&encryption_key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());

    // The empty string after the last `*` is the expiration: the SDK seals with ttl 0.
    let mac_base = format!(
        "{MAC_PREFIX}*{PASSWORD_ID}*{encryption_salt}*{}*{}*",
        BASE64URL.encode(iv),
        BASE64URL.encode(&ciphertext),
    );
    let hmac_salt = random_hex_salt();
    let digest = hmac_digest(password, &hmac_salt, &mac_base);

    Ok(format!(
        "{mac_base}*{hmac_salt}*{}{VERSION_DELIMITER}{CURRENT_MAJOR_VERSION}",
        BASE64URL.encode(digest),
    ))
}

/// Unseals a `wos-session` value the way the SDK's `unsealData` does.
///
/// The checks run in iron's order: component count, prefix, expiration, password id, password
/// length, HMAC (compared in constant time), decryption, JSON. A plaintext of `null` becomes `{}`.
/// After `~2` or without a suffix the data is returned as is. After any other `~N` suffix the
/// SDK reads the data as an older layout, so the `persistent` member is returned when it is
/// present and not `null`.
///
/// # Errors
/// Every [`CookieError`] except those of sealing. The SDK itself reports `Malformed`
/// (component count or prefix), `Expired`, `UnknownPasswordId` and `BadMac` as an empty session
/// `{}`, and throws the others.
pub fn unseal(password: &str, sealed: &str) -> Result<Value, CookieError> {
    // Like the SDK's `split("~")`: the text before the first `~` is the seal, the text between
    // the first and a possible second `~` is the version, and anything later is ignored.
    let mut sections = sealed.split(VERSION_DELIMITER);
    let seal_body = sections.next().unwrap_or_default();
    let version = sections.next();

    let components: Vec<&str> = seal_body.split('*').collect();
    let [
        prefix,
        password_id,
        encryption_salt,
        iv_b64,
        ciphertext_b64,
        expiration,
        hmac_salt,
        digest_b64,
    ] = components[..]
    else {
        return Err(CookieError::Malformed(
            "expected 8 `*`-separated components",
        ));
    };
    if prefix != MAC_PREFIX {
        return Err(CookieError::Malformed("wrong prefix, expected Fe26.2"));
    }
    check_expiration(expiration)?;
    if password_id != PASSWORD_ID {
        return Err(CookieError::UnknownPasswordId);
    }
    check_password_length(password)?;

    let mac_base =
        format!("{prefix}*{password_id}*{encryption_salt}*{iv_b64}*{ciphertext_b64}*{expiration}");
    let presented_digest = BASE64URL
        .decode(digest_b64)
        .map_err(|_| CookieError::Malformed("HMAC digest is not base64url"))?;
    // iron replaces an empty salt with a random one, so such a digest can never match.
    if hmac_salt.is_empty() {
        return Err(CookieError::BadMac);
    }
    let expected_digest = hmac_digest(password, hmac_salt, &mac_base);
    if !bool::from(expected_digest.as_slice().ct_eq(&presented_digest)) {
        return Err(CookieError::BadMac);
    }

    let plaintext = decrypt(password, encryption_salt, iv_b64, ciphertext_b64)?;
    // The SDK decodes with a non-fatal TextDecoder, which replaces invalid UTF-8.
    let text = String::from_utf8_lossy(&plaintext);
    let data = match serde_json::from_str::<Value>(&text).map_err(CookieError::Json)? {
        Value::Null => Value::Object(Map::new()),
        data => data,
    };

    match version {
        None => Ok(data),
        Some(version) if parse_js_int(version) == Some(CURRENT_MAJOR_VERSION) => Ok(data),
        Some(_) => Ok(take_persistent(data)),
    }
}

/// Converts a WorkOS API user (snake_case) into the SDK's camelCase `User`, as the SDK's
/// `deserializeUser` does before sealing.
///
/// - `object`, `id`, `email`, `emailVerified`, `firstName`, `lastName`, `profilePictureUrl` and
///   `locale` are copied, and left out when missing.
/// - `name` and `externalId` default to `null`, `metadata` to `{}`.
/// - `createdAt`, `updatedAt` and a non-null `lastSignInAt` pass through JavaScript's `Date`, so
///   they become `YYYY-MM-DDTHH:mm:ss.sssZ` in UTC, or `null` when the value is not a valid date.
pub fn user_to_cookie_json(user: &Value) -> Value {
    let field = |name: &str| user.get(name);
    let mut out = Map::new();
    insert_if_present(&mut out, "object", field("object"));
    insert_if_present(&mut out, "id", field("id"));
    insert_if_present(&mut out, "email", field("email"));
    insert_if_present(&mut out, "emailVerified", field("email_verified"));
    out.insert("name".to_owned(), non_null_or(field("name"), Value::Null));
    insert_if_present(&mut out, "firstName", field("first_name"));
    insert_if_present(&mut out, "profilePictureUrl", field("profile_picture_url"));
    insert_if_present(&mut out, "lastName", field("last_name"));
    let last_sign_in_at = match field("last_sign_in_at") {
        None | Some(Value::Null) => Value::Null,
        Some(value) => js_date_json(Some(value)),
    };
    out.insert("lastSignInAt".to_owned(), last_sign_in_at);
    insert_if_present(&mut out, "locale", field("locale"));
    out.insert("createdAt".to_owned(), js_date_json(field("created_at")));
    out.insert("updatedAt".to_owned(), js_date_json(field("updated_at")));
    out.insert(
        "externalId".to_owned(),
        non_null_or(field("external_id"), Value::Null),
    );
    out.insert(
        "metadata".to_owned(),
        non_null_or(field("metadata"), Value::Object(Map::new())),
    );
    Value::Object(out)
}

fn insert_if_present(out: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    if let Some(value) = value {
        out.insert(key.to_owned(), value.clone());
    }
}

/// Returns `value` unless it is missing or `null` (JavaScript's `??`).
fn non_null_or(value: Option<&Value>, default: Value) -> Value {
    match value {
        None | Some(Value::Null) => default,
        Some(value) => value.clone(),
    }
}

fn check_password_length(password: &str) -> Result<(), CookieError> {
    let length = password.encode_utf16().count();
    if length < MIN_PASSWORD_LENGTH {
        return Err(CookieError::PasswordTooShort { length });
    }
    Ok(())
}

/// Applies iron's expiration rule: empty means none, otherwise a positive integer of
/// milliseconds since the Unix epoch that must not lie more than 60 seconds in the past.
fn check_expiration(expiration: &str) -> Result<(), CookieError> {
    if expiration.is_empty() {
        return Ok(());
    }
    let is_positive_integer =
        !expiration.starts_with('0') && expiration.bytes().all(|byte| byte.is_ascii_digit());
    if !is_positive_integer {
        return Err(CookieError::InvalidExpiration);
    }
    // Only an overflow can fail here, and a number that large is far in the future.
    let Ok(expires_at_ms) = expiration.parse::<u128>() else {
        return Ok(());
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis());
    if expires_at_ms <= now_ms.saturating_sub(TIMESTAMP_SKEW_MS) {
        return Err(CookieError::Expired);
    }
    Ok(())
}

fn random_hex_salt() -> String {
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    hex::encode(salt)
}

fn derive_key(password: &str, salt: &str) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha1>(
        password.as_bytes(),
        salt.as_bytes(),
        PBKDF2_ITERATIONS,
        &mut key,
    );
    key
}

fn hmac_digest(password: &str, salt: &str, mac_base: &str) -> Vec<u8> {
    let key = derive_key(password, salt);
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(mac_base.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn decrypt(
    password: &str,
    salt: &str,
    iv_b64: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, CookieError> {
    // iron replaces an empty salt with a random one, so decryption cannot succeed.
    if salt.is_empty() {
        return Err(CookieError::Decrypt);
    }
    let iv = BASE64URL
        .decode(iv_b64)
        .map_err(|_| CookieError::Malformed("IV is not base64url"))?;
    let iv: [u8; IV_BYTES] = iv.try_into().map_err(|_| CookieError::Decrypt)?;
    let ciphertext = BASE64URL
        .decode(ciphertext_b64)
        .map_err(|_| CookieError::Malformed("ciphertext is not base64url"))?;
    let key = derive_key(password, salt);
    Aes256CbcDecryptor::new(&key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext)
        .map_err(|_| CookieError::Decrypt)
}

/// Returns `data.persistent ?? data`.
fn take_persistent(data: Value) -> Value {
    match data {
        Value::Object(mut object) => match object.remove("persistent") {
            Some(persistent) if !persistent.is_null() => persistent,
            Some(persistent) => {
                object.insert("persistent".to_owned(), persistent);
                Value::Object(object)
            }
            None => Value::Object(object),
        },
        other => other,
    }
}

/// Parses like JavaScript's `parseInt(text, 10)`: leading whitespace, an optional sign, then as
/// many decimal digits as follow. Returns `None` where JavaScript returns `NaN`.
fn parse_js_int(text: &str) -> Option<i64> {
    let text = text.trim_start();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits_end = unsigned
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(unsigned.len());
    let digits = &unsigned[..digits_end];
    if digits.is_empty() {
        return None;
    }
    // A number too large for i64 is certainly not 2, which is all callers compare against.
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

/// Renders what `JSON.stringify(new Date(value))` produces: an ISO 8601 UTC string with
/// milliseconds, or `null` for an invalid date.
///
/// Strings are read as RFC 3339 date-times or `YYYY-MM-DD` dates (UTC). Numbers are milliseconds
/// since the Unix epoch, `null` is the epoch itself and a missing value is an invalid date, as in
/// JavaScript.
// NOTE: JavaScript's `Date` also accepts other string formats (e.g. RFC 2822), and it writes
// years outside 0..=9999 in an extended form. Both become `null` here. WorkOS sends RFC 3339.
fn js_date_json(value: Option<&Value>) -> Value {
    // The largest time value a JavaScript `Date` can hold, in milliseconds.
    const MAX_JS_TIME_MS: f64 = 8.64e15;
    let millis = match value {
        None => None,
        Some(Value::Null) => Some(0),
        Some(Value::Bool(flag)) => Some(i64::from(*flag)),
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|ms| ms.is_finite() && ms.abs() <= MAX_JS_TIME_MS)
            // Truncation is what JavaScript's TimeClip does, and the range check keeps it exact.
            .map(|ms| ms.trunc() as i64),
        Some(Value::String(text)) => parse_js_date_string(text),
        Some(Value::Array(_) | Value::Object(_)) => None,
    };
    millis
        .and_then(chrono::DateTime::<chrono::Utc>::from_timestamp_millis)
        .filter(|date| (0..=9999).contains(&chrono::Datelike::year(date)))
        .map_or(Value::Null, |date| {
            Value::String(date.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        })
}

fn parse_js_date_string(text: &str) -> Option<i64> {
    if let Ok(date_time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(date_time.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PASSWORD: &str = "a-cookie-password-of-at-least-32-characters";
    const OTHER_PASSWORD: &str = "another-cookie-password-of-32-characters!";

    fn sample_data() -> Value {
        json!({
            "accessToken": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
            "refreshToken": "rt_01",
            "user": {"object": "user", "id": "user_01", "email": "a@example.com"},
            "organizationId": "org_01",
        })
    }

    /// Splits a sealed value into its 8 fields and its version suffix.
    fn fields(sealed: &str) -> (Vec<String>, String) {
        let (body, version) = sealed.split_once('~').expect("sealed value has a ~ suffix");
        (
            body.split('*').map(str::to_owned).collect(),
            version.to_owned(),
        )
    }

    fn join(fields: &[String], suffix: &str) -> String {
        format!("{}{suffix}", fields.join("*"))
    }

    /// Seals `data` with an arbitrary expiration field, computing a valid HMAC for it.
    fn seal_with_expiration(data: &Value, expiration: &str) -> String {
        let sealed = seal(PASSWORD, data).expect("seal");
        let (mut parts, _) = fields(&sealed);
        parts[5] = expiration.to_owned();
        let mac_base = parts[..6].join("*");
        parts[7] = BASE64URL.encode(hmac_digest(PASSWORD, &parts[6], &mac_base));
        join(&parts, "~2")
    }

    #[test]
    fn seal_round_trip() {
        let data = sample_data();
        let sealed = seal(PASSWORD, &data).expect("seal");
        assert_eq!(unseal(PASSWORD, &sealed).expect("unseal"), data);
    }

    #[test]
    fn seal_layout_matches_sdk() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        let (parts, version) = fields(&sealed);
        assert_eq!(version, "2");
        assert_eq!(parts.len(), 8);
        assert_eq!(parts[0], "Fe26.2");
        assert_eq!(parts[1], "1");
        for salt in [&parts[2], &parts[6]] {
            assert_eq!(salt.len(), 64);
            assert!(
                salt.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
        assert_eq!(parts[3].len(), 22, "16-byte IV in unpadded base64url");
        assert_eq!(parts[5], "", "expiration is empty");
        assert_eq!(parts[7].len(), 43, "32-byte digest in unpadded base64url");
        assert!(!sealed.contains('='));
    }

    #[test]
    fn seal_is_randomized() {
        let data = sample_data();
        let first = seal(PASSWORD, &data).expect("seal");
        let second = seal(PASSWORD, &data).expect("seal");
        assert_ne!(first, second);
    }

    #[test]
    fn unseal_rejects_each_tampered_field() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        let (parts, _) = fields(&sealed);
        for index in [2, 3, 4, 6, 7] {
            let mut changed = parts.clone();
            // Swapping the first character keeps the field in its alphabet.
            let first = changed[index].remove(0);
            let replacement = if first == 'a' { 'b' } else { 'a' };
            changed[index].insert(0, replacement);
            let result = unseal(PASSWORD, &join(&changed, "~2"));
            assert!(
                matches!(result, Err(CookieError::BadMac)),
                "field {index}: {result:?}"
            );
        }
    }

    #[test]
    fn unseal_rejects_changed_prefix() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        let changed = sealed.replacen("Fe26.2", "Fe26.1", 1);
        assert!(matches!(
            unseal(PASSWORD, &changed),
            Err(CookieError::Malformed(_))
        ));
    }

    #[test]
    fn unseal_rejects_changed_password_id() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        let (mut parts, _) = fields(&sealed);
        parts[1] = "2".to_owned();
        assert!(matches!(
            unseal(PASSWORD, &join(&parts, "~2")),
            Err(CookieError::UnknownPasswordId)
        ));
        parts[1] = String::new();
        assert!(matches!(
            unseal(PASSWORD, &join(&parts, "~2")),
            Err(CookieError::UnknownPasswordId)
        ));
    }

    #[test]
    fn unseal_rejects_added_expiration() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        let (mut parts, _) = fields(&sealed);
        parts[5] = "99999999999999".to_owned();
        assert!(matches!(
            unseal(PASSWORD, &join(&parts, "~2")),
            Err(CookieError::BadMac)
        ));
    }

    #[test]
    fn unseal_rejects_wrong_password() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        assert!(matches!(
            unseal(OTHER_PASSWORD, &sealed),
            Err(CookieError::BadMac)
        ));
    }

    #[test]
    fn short_password_rejected() {
        let short = "x".repeat(31);
        assert!(matches!(
            seal(&short, &sample_data()),
            Err(CookieError::PasswordTooShort { length: 31 })
        ));
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        assert!(matches!(
            unseal(&short, &sealed),
            Err(CookieError::PasswordTooShort { length: 31 })
        ));
        assert!(seal(&"x".repeat(32), &sample_data()).is_ok());
    }

    #[test]
    fn password_length_counts_utf16_units() {
        // 16 characters outside the BMP are 32 UTF-16 code units, as JavaScript counts them.
        let astral = "😀".repeat(16);
        assert!(seal(&astral, &sample_data()).is_ok());
        // 31 two-byte characters are 62 UTF-8 bytes but only 31 code units.
        let short = "é".repeat(31);
        assert!(matches!(
            seal(&short, &sample_data()),
            Err(CookieError::PasswordTooShort { length: 31 })
        ));
    }

    #[test]
    fn unseal_rejects_wrong_component_count() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        let (parts, _) = fields(&sealed);
        let seven = join(&parts[..7], "~2");
        assert!(matches!(
            unseal(PASSWORD, &seven),
            Err(CookieError::Malformed(_))
        ));
        let mut nine = parts.clone();
        nine.push("extra".to_owned());
        assert!(matches!(
            unseal(PASSWORD, &join(&nine, "~2")),
            Err(CookieError::Malformed(_))
        ));
        assert!(matches!(
            unseal(PASSWORD, ""),
            Err(CookieError::Malformed(_))
        ));
    }

    #[test]
    fn unseal_rejects_past_expiration() {
        let data = sample_data();
        let two_minutes_ago = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis()
            - 120_000;
        let sealed = seal_with_expiration(&data, &two_minutes_ago.to_string());
        assert!(matches!(
            unseal(PASSWORD, &sealed),
            Err(CookieError::Expired)
        ));
    }

    #[test]
    fn unseal_accepts_future_expiration() {
        let data = sample_data();
        let in_an_hour = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis()
            + 3_600_000;
        let sealed = seal_with_expiration(&data, &in_an_hour.to_string());
        assert_eq!(unseal(PASSWORD, &sealed).expect("unseal"), data);
        // Within the 60-second skew iron allows.
        let just_passed = in_an_hour - 3_600_000 - 30_000;
        let sealed = seal_with_expiration(&data, &just_passed.to_string());
        assert_eq!(unseal(PASSWORD, &sealed).expect("unseal"), data);
    }

    #[test]
    fn unseal_rejects_invalid_expiration() {
        for expiration in ["0", "012", "-5", "12a", "1.5"] {
            let sealed = seal_with_expiration(&sample_data(), expiration);
            assert!(
                matches!(
                    unseal(PASSWORD, &sealed),
                    Err(CookieError::InvalidExpiration)
                ),
                "expiration {expiration:?}"
            );
        }
    }

    #[test]
    fn unseal_suffix_two_returns_data() {
        let data = json!({"persistent": {"inner": true}, "accessToken": "a"});
        let sealed = seal(PASSWORD, &data).expect("seal");
        assert!(sealed.ends_with("~2"));
        assert_eq!(unseal(PASSWORD, &sealed).expect("unseal"), data);
    }

    #[test]
    fn unseal_without_suffix_returns_data() {
        let data = json!({"persistent": {"inner": true}, "accessToken": "a"});
        let sealed = seal(PASSWORD, &data).expect("seal");
        let bare = sealed.strip_suffix("~2").expect("~2 suffix");
        assert_eq!(unseal(PASSWORD, bare).expect("unseal"), data);
    }

    #[test]
    fn unseal_other_suffix_uses_persistent() {
        let data = json!({"persistent": {"inner": true}, "accessToken": "a"});
        let sealed = seal(PASSWORD, &data).expect("seal");
        let bare = sealed.strip_suffix("~2").expect("~2 suffix");
        for suffix in ["~1", "~3", "~", "~x", "~-2"] {
            assert_eq!(
                unseal(PASSWORD, &format!("{bare}{suffix}")).expect("unseal"),
                json!({"inner": true}),
                "suffix {suffix:?}"
            );
        }
    }

    #[test]
    fn unseal_other_suffix_without_persistent() {
        let data = json!({"accessToken": "a", "persistent": null});
        let sealed = seal(PASSWORD, &data).expect("seal");
        let bare = sealed.strip_suffix("~2").expect("~2 suffix");
        assert_eq!(
            unseal(PASSWORD, &format!("{bare}~1")).expect("unseal"),
            data
        );
    }

    #[test]
    fn unseal_suffix_parsed_like_parse_int() {
        let data = json!({"persistent": {"inner": true}, "accessToken": "a"});
        let sealed = seal(PASSWORD, &data).expect("seal");
        let bare = sealed.strip_suffix("~2").expect("~2 suffix");
        for suffix in ["~02", "~2abc", "~ 2", "~+2", "~2~9"] {
            assert_eq!(
                unseal(PASSWORD, &format!("{bare}{suffix}")).expect("unseal"),
                data,
                "suffix {suffix:?}"
            );
        }
    }

    #[test]
    fn unseal_null_plaintext_is_empty_object() {
        let sealed = seal(PASSWORD, &Value::Null).expect("seal");
        assert_eq!(unseal(PASSWORD, &sealed).expect("unseal"), json!({}));
    }

    #[test]
    fn unseal_reports_non_json_plaintext() {
        // Seal bytes that are not JSON by reusing the sealing steps with a raw plaintext.
        let salt = random_hex_salt();
        let iv = [7u8; IV_BYTES];
        let key = derive_key(PASSWORD, &salt);
        let ciphertext =
            Aes256CbcEncryptor::new(&key.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(b"{");
        let mac_base = format!(
            "Fe26.2*1*{salt}*{}*{}*",
            BASE64URL.encode(iv),
            BASE64URL.encode(&ciphertext)
        );
        let hmac_salt = random_hex_salt();
        let digest = BASE64URL.encode(hmac_digest(PASSWORD, &hmac_salt, &mac_base));
        let sealed = format!("{mac_base}*{hmac_salt}*{digest}~2");
        assert!(matches!(
            unseal(PASSWORD, &sealed),
            Err(CookieError::Json(_))
        ));
    }

    #[test]
    fn unseal_reports_bad_padding() {
        let salt = random_hex_salt();
        let iv = BASE64URL.encode([1u8; IV_BYTES]);
        // 15 bytes is not a whole AES block.
        let ciphertext = BASE64URL.encode([2u8; 15]);
        let mac_base = format!("Fe26.2*1*{salt}*{iv}*{ciphertext}*");
        let hmac_salt = random_hex_salt();
        let digest = BASE64URL.encode(hmac_digest(PASSWORD, &hmac_salt, &mac_base));
        let sealed = format!("{mac_base}*{hmac_salt}*{digest}~2");
        assert!(matches!(
            unseal(PASSWORD, &sealed),
            Err(CookieError::Decrypt)
        ));
    }

    #[test]
    fn error_messages_hide_inputs() {
        let sealed = seal(PASSWORD, &sample_data()).expect("seal");
        let error = unseal(OTHER_PASSWORD, &sealed).expect_err("wrong password");
        let message = error.to_string();
        assert!(!message.contains(OTHER_PASSWORD));
        assert!(!message.contains(&sealed[..20]));
    }

    #[test]
    fn session_cookie_data_omits_absent_fields() {
        let data = SessionCookieData {
            access_token: "at".to_owned(),
            refresh_token: "rt".to_owned(),
            user: json!({"id": "user_01"}),
            organization_id: None,
            authentication_method: Some("Password".to_owned()),
            impersonator: None,
        };
        let value = serde_json::to_value(&data).expect("serialize");
        assert_eq!(
            value,
            json!({
                "accessToken": "at",
                "refreshToken": "rt",
                "user": {"id": "user_01"},
                "authenticationMethod": "Password",
            })
        );
    }

    #[test]
    fn user_to_cookie_json_full_user() {
        let user = json!({
            "object": "user",
            "id": "user_01",
            "email": "a@example.com",
            "email_verified": true,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "name": "Ada Lovelace",
            "profile_picture_url": "https://example.com/a.png",
            "last_sign_in_at": "2026-01-02T03:04:05Z",
            "locale": "en-GB",
            "created_at": "2026-01-01T00:00:00.000Z",
            "updated_at": "2026-01-01T01:00:00.123456+01:00",
            "external_id": "ext_1",
            "metadata": {"plan": "pro"},
        });
        assert_eq!(
            user_to_cookie_json(&user),
            json!({
                "object": "user",
                "id": "user_01",
                "email": "a@example.com",
                "emailVerified": true,
                "name": "Ada Lovelace",
                "firstName": "Ada",
                "profilePictureUrl": "https://example.com/a.png",
                "lastName": "Lovelace",
                "lastSignInAt": "2026-01-02T03:04:05.000Z",
                "locale": "en-GB",
                "createdAt": "2026-01-01T00:00:00.000Z",
                "updatedAt": "2026-01-01T00:00:00.123Z",
                "externalId": "ext_1",
                "metadata": {"plan": "pro"},
            })
        );
    }

    #[test]
    fn user_to_cookie_json_sparse_user() {
        let user = json!({
            "object": "user",
            "id": "user_02",
            "email": "b@example.com",
            "email_verified": false,
            "first_name": null,
            "last_name": null,
            "profile_picture_url": null,
            "last_sign_in_at": null,
            "locale": null,
            "created_at": "2026-01-01",
            "updated_at": "not a date",
        });
        assert_eq!(
            user_to_cookie_json(&user),
            json!({
                "object": "user",
                "id": "user_02",
                "email": "b@example.com",
                "emailVerified": false,
                "name": null,
                "firstName": null,
                "profilePictureUrl": null,
                "lastName": null,
                "lastSignInAt": null,
                "locale": null,
                "createdAt": "2026-01-01T00:00:00.000Z",
                "updatedAt": null,
                "externalId": null,
                "metadata": {},
            })
        );
    }

    #[test]
    fn js_date_json_follows_javascript() {
        assert_eq!(js_date_json(None), Value::Null);
        assert_eq!(
            js_date_json(Some(&Value::Null)),
            json!("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            js_date_json(Some(&json!(1_767_225_600_123_i64))),
            json!("2026-01-01T00:00:00.123Z")
        );
        assert_eq!(js_date_json(Some(&json!(9e15))), Value::Null);
        assert_eq!(js_date_json(Some(&json!({}))), Value::Null);
    }

    #[test]
    fn parse_js_int_cases() {
        assert_eq!(parse_js_int("2"), Some(2));
        assert_eq!(parse_js_int("  2x"), Some(2));
        assert_eq!(parse_js_int("-2"), Some(-2));
        assert_eq!(parse_js_int(""), None);
        assert_eq!(parse_js_int("x2"), None);
        assert_eq!(parse_js_int("99999999999999999999"), Some(i64::MAX));
    }
}
