//! Rotation of an environment's signing keys, for the admin CLI.
//!
//! A key moves `Next` → `Active` → `Previous` → removed:
//!
//! - [`add`] creates a `Next` key: published in the JWKS, not signing. At most one exists.
//! - [`promote`] makes the `Next` key `Active` and the old `Active` key `Previous`. Verifiers
//!   cache the JWKS (the Node SDK through jose, for up to [`JWKS_CACHE`]), so promotion is refused
//!   until the `Next` key has been published that long, unless forced.
//! - [`retire`] removes a `Previous` key once every token it signed has expired: its status must
//!   have changed at least the longest access-token lifetime ago, unless forced. A `Next` key,
//!   which never signed, may be removed at any time; the `Active` key never.
//!
//! Each change is a compare-and-set on the environment's key list, retried when a concurrent
//! change won.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{Store, StoreError};
use crate::tokens::{self, KeyEncryptionKey, SigningKeyStatus, StoredSigningKey, TokenError};

/// How long a JWKS may stay cached by a verifier: jose's default `cacheMaxAge`, 10 minutes.
pub const JWKS_CACHE: Duration = Duration::from_secs(600);
const MAX_ATTEMPTS: usize = 5;

/// Error of a signing-key change that was rejected or failed.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("no environment has client ID {0}")]
    EnvironmentNotFound(String),
    #[error("the environment already has a Next key, {0}; promote or retire it first")]
    NextKeyExists(String),
    #[error("the environment has no Next key; add one first")]
    NoNextKey,
    #[error("no key {0} in the environment")]
    KeyNotFound(String),
    #[error("key {0} is Active and signs tokens; promote another key before retiring it")]
    ActiveKey(String),
    #[error(
        "key {kid} changed status {elapsed_seconds} s ago; wait {wait_seconds} s more, or pass --force"
    )]
    TooRecent {
        kid: String,
        elapsed_seconds: i64,
        wait_seconds: i64,
    },
    #[error("the environment's keys kept changing concurrently; retry")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Lists an environment's signing keys.
pub async fn list(
    store: &dyn Store,
    environment_id: &str,
) -> Result<Vec<StoredSigningKey>, SigningKeyError> {
    Ok(store
        .get_environment(environment_id)
        .await?
        .ok_or_else(|| SigningKeyError::EnvironmentNotFound(environment_id.to_owned()))?
        .signing_keys)
}

/// Reads the keys, computes the next list with `change`, and writes it if the keys did not change
/// meanwhile. Returns what `change` returned.
async fn update<T>(
    store: &dyn Store,
    environment_id: &str,
    mut change: impl FnMut(&[StoredSigningKey]) -> Result<(Vec<StoredSigningKey>, T), SigningKeyError>,
) -> Result<T, SigningKeyError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = list(store, environment_id).await?;
        let (next, result) = change(&current)?;
        if store
            .replace_signing_keys(environment_id, &current, &next)
            .await?
        {
            return Ok(result);
        }
    }
    Err(SigningKeyError::Contended)
}

/// Adds a `Next` key.
pub async fn add(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    environment_id: &str,
) -> Result<StoredSigningKey, SigningKeyError> {
    // Generating an RSA key takes a while, so it happens once, outside the retry loop.
    let key = tokens::generate_signing_key(kek, SigningKeyStatus::Next)?;
    let added = update(store, environment_id, |current| {
        if let Some(existing) = current
            .iter()
            .find(|key| key.status == SigningKeyStatus::Next)
        {
            return Err(SigningKeyError::NextKeyExists(existing.kid.clone()));
        }
        let mut next = current.to_vec();
        next.push(key.clone());
        Ok((next, key.clone()))
    })
    .await?;
    tracing::info!(environment_id, kid = %added.kid, "Next signing key added");
    Ok(added)
}

fn elapsed_seconds(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - since).num_seconds()
}

fn require_age(
    key: &StoredSigningKey,
    minimum: Duration,
    now: DateTime<Utc>,
) -> Result<(), SigningKeyError> {
    let elapsed = elapsed_seconds(key.status_changed_at, now);
    let minimum = i64::try_from(minimum.as_secs()).unwrap_or(i64::MAX);
    if elapsed < minimum {
        return Err(SigningKeyError::TooRecent {
            kid: key.kid.clone(),
            elapsed_seconds: elapsed,
            wait_seconds: minimum - elapsed,
        });
    }
    Ok(())
}

/// The keys after a promotion.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub active: StoredSigningKey,
    pub previous: Option<StoredSigningKey>,
}

/// Promotes the `Next` key to `Active`; the `Active` key becomes `Previous`.
pub async fn promote(
    store: &dyn Store,
    environment_id: &str,
    force: bool,
    now: DateTime<Utc>,
) -> Result<Promotion, SigningKeyError> {
    let promotion = update(store, environment_id, |current| {
        let next_key = current
            .iter()
            .find(|key| key.status == SigningKeyStatus::Next)
            .ok_or(SigningKeyError::NoNextKey)?;
        if !force {
            require_age(next_key, JWKS_CACHE, now)?;
        }
        let mut promotion = Promotion {
            active: next_key.clone(),
            previous: None,
        };
        let mut keys = current.to_vec();
        for key in &mut keys {
            match key.status {
                SigningKeyStatus::Next => {
                    key.status = SigningKeyStatus::Active;
                    key.status_changed_at = now;
                    promotion.active = key.clone();
                }
                SigningKeyStatus::Active => {
                    key.status = SigningKeyStatus::Previous;
                    key.status_changed_at = now;
                    promotion.previous = Some(key.clone());
                }
                SigningKeyStatus::Previous => {}
            }
        }
        Ok((keys, promotion))
    })
    .await?;
    tracing::info!(
        environment_id,
        kid = %promotion.active.kid,
        previous_kid = promotion.previous.as_ref().map_or("none", |key| key.kid.as_str()),
        "signing key promoted"
    );
    Ok(promotion)
}

/// Removes a `Previous` (or `Next`) key. `access_token_ttl` is the longest lifetime of a token it
/// may have signed.
pub async fn retire(
    store: &dyn Store,
    environment_id: &str,
    kid: &str,
    access_token_ttl: Duration,
    force: bool,
    now: DateTime<Utc>,
) -> Result<StoredSigningKey, SigningKeyError> {
    let retired = update(store, environment_id, |current| {
        let key = current
            .iter()
            .find(|key| key.kid == kid)
            .ok_or_else(|| SigningKeyError::KeyNotFound(kid.to_owned()))?;
        match key.status {
            SigningKeyStatus::Active => return Err(SigningKeyError::ActiveKey(kid.to_owned())),
            SigningKeyStatus::Previous if !force => require_age(key, access_token_ttl, now)?,
            SigningKeyStatus::Previous | SigningKeyStatus::Next => {}
        }
        let retired = key.clone();
        let remaining = current
            .iter()
            .filter(|key| key.kid != kid)
            .cloned()
            .collect();
        Ok((remaining, retired))
    })
    .await?;
    tracing::info!(environment_id, kid, "signing key retired");
    Ok(retired)
}
