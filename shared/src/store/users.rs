//! Records and store traits behind the sessions function: users, organization memberships,
//! sessions and their refresh-token rotation, pending authentications, idempotency records, and
//! the conditional update of an environment's signing keys.
//!
//! Users and memberships live in their environment's partition. Each session and each
//! idempotency record gets a partition of its own (whose key still names the environment), so the
//! writes of many concurrent refreshes spread over the table instead of one hot partition.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Environment, Organization, StoreResult};
use crate::tokens::StoredSigningKey;

/// A user of an environment.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `user_<ULID>`.
    pub id: String,
    pub environment_id: String,
    /// The address as given at creation, trimmed. Uniqueness is checked on its lowercase form.
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Argon2id hash in PHC string format; absent for a user without a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for User {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password hash and personal data stay out of logs.
        formatter
            .debug_struct("User")
            .field("id", &self.id)
            .field("environment_id", &self.environment_id)
            .finish_non_exhaustive()
    }
}

/// A user's membership in an organization of the same environment. Its status is always
/// `active`: a removed membership is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// `om_<ULID>`.
    pub id: String,
    pub environment_id: String,
    pub user_id: String,
    pub organization_id: String,
    /// Role slugs, never empty. The first is the membership's primary `role`.
    pub role_slugs: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Membership {
    /// Returns the primary role slug.
    pub fn role(&self) -> &str {
        self.role_slugs.first().map_or("member", String::as_str)
    }
}

/// Outcome of [`UserStore::create_membership`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipCreation {
    Created,
    UserNotFound,
    OrganizationNotFound,
    /// The user already belongs to the organization through this membership.
    AlreadyExists {
        membership_id: String,
    },
}

/// A signed-in session and the state of its refresh-token chain.
///
/// Only hashes of refresh tokens are stored. `token_hash` is the hash of the one token that may
/// rotate the session now (generation `generation`); `previous_hash` is the hash of the token that
/// produced it, kept so that a repeated use is distinguished from an unknown token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// `session_<ULID>`.
    pub id: String,
    pub environment_id: String,
    pub user_id: String,
    /// The organization the session is scoped to now: the one of the most recent token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// The WorkOS `authentication_method` of the sign-in, such as `Password`.
    pub authentication_method: String,
    /// The sign-in time in epoch seconds, the `auth_time` claim of every token of the session.
    pub auth_time: i64,
    pub created_at: DateTime<Utc>,
    /// When the session ends, in epoch seconds. Also the table's TTL attribute, but DynamoDB
    /// deletes expired items late, so every read checks it.
    pub expires_at: i64,
    /// SHA-256 (hex) of the current refresh token.
    pub token_hash: String,
    /// The generation of the current refresh token: 0 at sign-in, one more per rotation.
    pub generation: u64,
    /// SHA-256 (hex) of the refresh token of the previous generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_hash: Option<String>,
    /// When the current refresh token was issued, in epoch milliseconds; also the issue time of
    /// the access token issued with it.
    pub rotated_at_ms: i64,
    /// Set when the request that rotated to the current generation failed afterwards, so its
    /// client never received the new pair: the previous token may then rotate again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub previous_unconsumed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl fmt::Debug for Session {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Session")
            .field("id", &self.id)
            .field("environment_id", &self.environment_id)
            .field("user_id", &self.user_id)
            .field("organization_id", &self.organization_id)
            .field("generation", &self.generation)
            .field("revoked", &self.revoked_at.is_some())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Returns whether the session can still issue tokens at `now_seconds`.
    pub fn is_live(&self, now_seconds: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now_seconds
    }
}

/// One rotation of a session's refresh token, applied only when the presented token is current.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub environment_id: String,
    pub session_id: String,
    pub user_id: String,
    /// Hash and generation of the presented token.
    pub presented_hash: String,
    pub presented_generation: u64,
    /// Hash of the token of generation `presented_generation + 1`.
    pub next_hash: String,
    pub rotated_at_ms: i64,
    /// The organization of the new token, when the request names one; otherwise the session keeps
    /// its organization.
    pub organization_id: Option<String>,
}

impl Rotation {
    /// Returns the epoch seconds of the rotation, against which session expiry is checked.
    pub fn now_seconds(&self) -> i64 {
        self.rotated_at_ms.div_euclid(1000)
    }
}

/// Outcome of a rotation attempt.
#[derive(Debug, Clone)]
pub enum RotationOutcome {
    /// The presented token was current and the session is rotated; `before` is the session as it
    /// was before the write.
    Rotated { before: Session },
    /// The session was not changed; `current` is the session as stored, if it exists.
    Rejected { current: Option<Session> },
}

/// The items one refresh reads, all by key, in one batch.
#[derive(Debug, Clone, Default)]
pub struct ContextKeys {
    pub environment_id: String,
    /// The hash of the API key the request presented.
    pub api_key_hash: Option<String>,
    /// Whether to read the environment item (with its signing keys and Stripe connection).
    pub environment: bool,
    pub user_id: Option<String>,
    /// `(user_id, organization_id)`: reads the membership and the organization.
    pub membership: Option<(String, String)>,
}

/// The records a [`ContextKeys`] read found.
#[derive(Debug, Clone, Default)]
pub struct SessionContext {
    /// The environment the presented API key belongs to.
    pub api_key_environment_id: Option<String>,
    pub environment: Option<Environment>,
    pub user: Option<User>,
    pub membership: Option<Membership>,
    pub organization: Option<Organization>,
}

/// A sign-in waiting for the user to choose one of several organizations.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAuthentication {
    /// SHA-256 (hex) of the pending authentication token.
    pub token_hash: String,
    pub environment_id: String,
    pub user_id: String,
    pub authentication_method: String,
    /// Epoch seconds; the TTL attribute.
    pub expires_at: i64,
}

impl fmt::Debug for PendingAuthentication {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PendingAuthentication")
            .field("environment_id", &self.environment_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// A response kept for replay under an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    /// The body, encrypted (see `shared::sessions::idempotency`), or absent for an empty body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// The record of one `Idempotency-Key` in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub environment_id: String,
    /// SHA-256 (hex) of the key.
    pub key_hash: String,
    /// A keyed hash of the method, path and body of the request that first used the key.
    pub fingerprint: String,
    /// Epoch seconds after which the record is void; the TTL attribute.
    pub expires_at: i64,
    /// Epoch seconds until which a request without a stored response keeps the key. A later
    /// request may take it over, so a crashed request does not block the key for a day.
    pub locked_until: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<StoredResponse>,
}

/// Users and their organization memberships.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user. Fails with [`super::StoreError::Taken`] (`field` `"email"`) when another
    /// user of the environment has the same email address, compared in lowercase.
    async fn create_user(&self, user: &User) -> StoreResult<()>;

    async fn get_user(&self, environment_id: &str, id: &str) -> StoreResult<Option<User>>;

    /// Finds a user by email address, case-insensitively.
    async fn get_user_by_email(
        &self,
        environment_id: &str,
        email: &str,
    ) -> StoreResult<Option<User>>;

    /// Sets `last_sign_in_at`. Does nothing when the user no longer exists.
    async fn record_sign_in(
        &self,
        environment_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Deletes a user with its email claim, then its memberships. Returns `false` when it did not
    /// exist. Sessions stay stored but can no longer refresh.
    async fn delete_user(&self, environment_id: &str, id: &str) -> StoreResult<bool>;

    /// Creates a membership, provided the user and the organization exist and the user has no
    /// membership in the organization yet. All three are conditions of the same write.
    async fn create_membership(&self, membership: &Membership) -> StoreResult<MembershipCreation>;

    async fn get_membership(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Membership>>;

    /// Reads the user's membership in an organization.
    async fn get_membership_for(
        &self,
        environment_id: &str,
        user_id: &str,
        organization_id: &str,
    ) -> StoreResult<Option<Membership>>;

    /// Lists every membership of a user, ordered by organization ID.
    async fn list_user_memberships(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<Membership>>;

    /// Deletes a membership and returns it, or `None` when it did not exist.
    async fn delete_membership(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Membership>>;
}

/// Sessions, their refresh-token rotation, pending authentications, the batched read of a
/// refresh, and signing-key updates.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session; its ID is new, so this never overwrites one.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;

    async fn get_session(&self, environment_id: &str, id: &str) -> StoreResult<Option<Session>>;

    /// Rotates a session in one conditional write: the presented token must be the current one,
    /// of the same user, and the session neither revoked nor expired at the rotation time. The
    /// write sets the next token's hash, keeps the presented one as previous, clears
    /// `previous_unconsumed`, and sets the organization when the rotation names one.
    async fn rotate_session(&self, rotation: &Rotation) -> StoreResult<RotationOutcome>;

    /// Rotates again from a previous token whose rotation was marked unconsumed: the session must
    /// be at generation `presented_generation + 1` with `previous_hash` equal to the presented
    /// hash and `previous_unconsumed` set. The token hashes stay as they are.
    async fn rerotate_session(&self, rotation: &Rotation) -> StoreResult<RotationOutcome>;

    /// Marks the rotation to `generation` as unconsumed, because its response never reached the
    /// client, and restores the organization the session had before it. Applies only while the
    /// session is still at that generation with that token hash; returns whether it applied.
    async fn release_rotation(
        &self,
        environment_id: &str,
        session_id: &str,
        generation: u64,
        token_hash: &str,
        organization_id: Option<&str>,
    ) -> StoreResult<bool>;

    /// Revokes a session, keeping the time of an earlier revocation. Returns `false` when the
    /// session does not exist.
    async fn revoke_session(
        &self,
        environment_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Reads the records a refresh needs, by key, in one batch.
    async fn read_session_context(&self, keys: &ContextKeys) -> StoreResult<SessionContext>;

    async fn create_pending_authentication(
        &self,
        pending: &PendingAuthentication,
    ) -> StoreResult<()>;

    /// Reads an unexpired pending authentication.
    async fn get_pending_authentication(
        &self,
        environment_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<PendingAuthentication>>;

    /// Deletes a pending authentication if it exists and has not expired at `now_seconds`.
    /// Returns whether this call consumed it, so exactly one of concurrent calls succeeds.
    async fn consume_pending_authentication(
        &self,
        environment_id: &str,
        token_hash: &str,
        now_seconds: i64,
    ) -> StoreResult<bool>;

    /// Replaces an environment's signing keys with `next`, provided they are still `current`.
    /// Returns `false` when they changed since they were read, or the environment is gone.
    async fn replace_signing_keys(
        &self,
        environment_id: &str,
        current: &[StoredSigningKey],
        next: &[StoredSigningKey],
    ) -> StoreResult<bool>;
}

/// Responses stored under `Idempotency-Key`s.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Takes a key for a request: writes `record` unless a live record exists (one with a
    /// response, or one whose lock has not expired at `now_seconds`). Returns `None` when this
    /// call took the key, or the existing record.
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now_seconds: i64,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    /// Stores the response of the request that has the key.
    async fn complete_idempotency_key(
        &self,
        environment_id: &str,
        key_hash: &str,
        response: &StoredResponse,
    ) -> StoreResult<()>;

    /// Deletes a record without a response, so a retry runs the request again.
    async fn release_idempotency_key(
        &self,
        environment_id: &str,
        key_hash: &str,
    ) -> StoreResult<()>;
}
