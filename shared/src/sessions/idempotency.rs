//! `Idempotency-Key` on POST routes: the first request with a key runs and its response is
//! stored for [`RETENTION`]; a later request with the same key in the same environment gets the
//! stored response again, marked with `Idempotent-Replayed: true`. A sign-in response is kept
//! only for `REFRESH_GRACE_SECONDS`: a later replay would hand out a refresh token that may have
//! rotated since, and whose use would then revoke the session.
//!
//! - The Node SDK sends an `Idempotency-Key` (`retry-<uuid>` unless the caller gives one) on every
//!   POST and keeps it across its retries, so a retried create or sign-in does not run twice.
//! - A key reused with another method, path or body is rejected with a 422.
//! - A key whose first request is still running gets a 409. The lock lapses after [`LOCK`], so a
//!   crashed request does not block the key for a day.
//! - 5xx responses are not stored, so a retry after a server error runs again.
//! - Stored bodies are encrypted with AES-256-GCM under a key derived from `KEY_ENCRYPTION_KEY`:
//!   a sign-in response contains a refresh token, which must not sit in the table in clear. The
//!   request fingerprint is a keyed hash for the same reason (a body may contain a password).
//!
//! The refresh grant does not use these records: its retries are answered from the session item
//! itself (see [`super::refresh`]), which keeps a refresh at one round trip.

use std::future::Future;
use std::time::Duration;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rand::RngCore;
use sha2::Sha256;

use super::Sessions;
use super::refresh_token::SessionSecrets;
use crate::error::ApiError;
use crate::ids;
use crate::store::{IdempotencyRecord, StoredResponse};

/// How long a response stays available for replay.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a request that has not finished keeps its key.
pub const LOCK: Duration = Duration::from_secs(60);
/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest accepted key, in bytes.
pub const MAX_KEY_BYTES: usize = 255;
/// Largest response body that is stored for replay.
const MAX_STORED_BODY_BYTES: usize = 256 * 1024;
const NONCE_BYTES: usize = 12;

/// Reads the `Idempotency-Key` header: absent is `None`; an empty, over-long or non-ASCII key is
/// a 400.
pub fn key_from_headers(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let invalid = || ApiError::BadRequest {
        code: "idempotency_key_invalid",
        message: format!(
            "The Idempotency-Key header must be 1 to {MAX_KEY_BYTES} printable ASCII characters."
        ),
    };
    let key = value.to_str().map_err(|_| invalid())?.trim();
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && key.bytes().all(|byte| byte.is_ascii_graphic());
    if !valid {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

fn fingerprint(secrets: &SessionSecrets, method: &Method, path: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secrets.fingerprint)
        .expect("HMAC accepts any key length");
    mac.update(method.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(path.as_bytes());
    mac.update(&[0]);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn associated_data(environment_id: &str, key_hash: &str) -> String {
    format!("{environment_id}/{key_hash}")
}

fn encrypt(
    secrets: &SessionSecrets,
    associated: &str,
    plaintext: &[u8],
) -> Result<String, ApiError> {
    let cipher = Aes256Gcm::new(&secrets.idempotency_encryption.into());
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: associated.as_bytes(),
            },
        )
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("encrypting a stored response failed")))?;
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ciphertext);
    Ok(STANDARD.encode(sealed))
}

fn decrypt(secrets: &SessionSecrets, associated: &str, sealed: &str) -> Result<Vec<u8>, ApiError> {
    let failed = || ApiError::Internal(anyhow::anyhow!("a stored response could not be decrypted"));
    let sealed = STANDARD.decode(sealed).map_err(|_| failed())?;
    if sealed.len() < NONCE_BYTES {
        return Err(failed());
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
    Aes256Gcm::new(&secrets.idempotency_encryption.into())
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: associated.as_bytes(),
            },
        )
        .map_err(|_| failed())
}

/// The request a key is used for.
#[derive(Debug, Clone, Copy)]
pub struct KeyedRequest<'a> {
    pub environment_id: &'a str,
    pub key: Option<&'a str>,
    pub method: &'a Method,
    pub path: &'a str,
    pub body: &'a [u8],
    /// How long the response stays available for replay: [`RETENTION`], or less for a response
    /// whose content goes stale sooner.
    pub retention: Duration,
}

/// Runs `operation` once per key: stores its response, or replays the stored one.
pub async fn run<F, Fut>(sessions: &Sessions, request: KeyedRequest<'_>, operation: F) -> Response
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(key) = request.key else {
        return operation().await;
    };
    let key_hash = ids::hash_secret(key);
    let fingerprint = fingerprint(
        &sessions.secrets,
        request.method,
        request.path,
        request.body,
    );
    let associated = associated_data(request.environment_id, &key_hash);
    let now = chrono::Utc::now().timestamp();
    let record = IdempotencyRecord {
        environment_id: request.environment_id.to_owned(),
        key_hash: key_hash.clone(),
        fingerprint: fingerprint.clone(),
        expires_at: now + i64::try_from(request.retention.as_secs()).unwrap_or(i64::MAX),
        locked_until: now + i64::try_from(LOCK.as_secs()).unwrap_or(i64::MAX),
        response: None,
    };
    let store = &sessions.state.store;
    match store.claim_idempotency_key(&record, now).await {
        Err(error) => ApiError::from(error).into_response(),
        Ok(Some(existing)) => replay(sessions, &existing, &fingerprint, &associated),
        Ok(None) => {
            let response = operation().await;
            store_response(
                sessions,
                request.environment_id,
                &key_hash,
                &associated,
                response,
            )
            .await
        }
    }
}

fn replay(
    sessions: &Sessions,
    existing: &IdempotencyRecord,
    fingerprint: &str,
    associated: &str,
) -> Response {
    if existing.fingerprint != fingerprint {
        return ApiError::invalid_field(
            "Idempotency-Key",
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request; send a new key.",
        )
        .into_response();
    }
    let Some(stored) = &existing.response else {
        return ApiError::Conflict {
            code: "idempotency_key_in_use",
            message: "A request with this Idempotency-Key is still in progress; retry later."
                .into(),
        }
        .into_response();
    };
    let body = match &stored.body {
        Some(sealed) => match decrypt(&sessions.secrets, associated, sealed) {
            Ok(body) => Some(body),
            Err(error) => return error.into_response(),
        },
        None => None,
    };
    tracing::info!(
        status = stored.status,
        "replayed a stored response for a repeated Idempotency-Key"
    );
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = match body {
        Some(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        None => Response::new(Body::empty()),
    };
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

async fn store_response(
    sessions: &Sessions,
    environment_id: &str,
    key_hash: &str,
    associated: &str,
    response: Response,
) -> Response {
    let store = &sessions.state.store;
    if response.status().is_server_error() {
        if let Err(error) = store
            .release_idempotency_key(environment_id, key_hash)
            .await
        {
            tracing::error!(%error, "could not release an Idempotency-Key after a server error");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_STORED_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            if let Err(release_error) = store
                .release_idempotency_key(environment_id, key_hash)
                .await
            {
                tracing::error!(error = %release_error, "could not release an Idempotency-Key");
            }
            return ApiError::Internal(anyhow::anyhow!(
                "response body could not be read for storing: {error}"
            ))
            .into_response();
        }
    };
    let sealed = if bytes.is_empty() {
        Ok(None)
    } else {
        encrypt(&sessions.secrets, associated, &bytes).map(Some)
    };
    match sealed {
        Ok(body) => {
            let stored = StoredResponse {
                status: parts.status.as_u16(),
                body,
            };
            if let Err(error) = store
                .complete_idempotency_key(environment_id, key_hash, &stored)
                .await
            {
                // The response still goes out; the key's lock lapses and a retry runs again.
                tracing::error!(%error, "could not store the response of an Idempotency-Key");
            }
        }
        Err(error) => {
            tracing::error!(%error, "could not encrypt the response of an Idempotency-Key")
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::KeyEncryptionKey;

    #[test]
    fn stored_body_round_trips_and_binds_record() {
        let secrets = SessionSecrets::derive(&KeyEncryptionKey::generate());
        let sealed = encrypt(&secrets, "client_1/abc", b"{\"refresh_token\":\"x\"}").unwrap();
        assert!(!sealed.contains("refresh_token"));
        assert_eq!(
            decrypt(&secrets, "client_1/abc", &sealed).unwrap(),
            b"{\"refresh_token\":\"x\"}"
        );
        assert!(decrypt(&secrets, "client_2/abc", &sealed).is_err());
    }

    #[test]
    fn fingerprint_covers_method_path_and_body() {
        let secrets = SessionSecrets::derive(&KeyEncryptionKey::generate());
        let base = fingerprint(&secrets, &Method::POST, "/a", b"{}");
        assert_eq!(base, fingerprint(&secrets, &Method::POST, "/a", b"{}"));
        assert_ne!(base, fingerprint(&secrets, &Method::PUT, "/a", b"{}"));
        assert_ne!(base, fingerprint(&secrets, &Method::POST, "/b", b"{}"));
        assert_ne!(base, fingerprint(&secrets, &Method::POST, "/a", b"{ }"));
    }

    #[test]
    fn key_header_rules() {
        let mut headers = HeaderMap::new();
        assert_eq!(key_from_headers(&headers).unwrap(), None);
        headers.insert(HEADER, HeaderValue::from_static("retry-1"));
        assert_eq!(
            key_from_headers(&headers).unwrap().as_deref(),
            Some("retry-1")
        );
        headers.insert(HEADER, HeaderValue::from_static(" "));
        assert!(key_from_headers(&headers).is_err());
        headers.insert(
            HEADER,
            HeaderValue::from_str(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap(),
        );
        assert!(key_from_headers(&headers).is_err());
    }
}
