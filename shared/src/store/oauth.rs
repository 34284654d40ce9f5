//! Records of the Stripe Connect OAuth flow that the connection store does not cover: the OAuth
//! `state` records and the environment's `entitlements_enabled` toggle, in the [`ConnectStore`]
//! trait that both store implementations provide.
//!
//! An OAuth state is stored under the SHA-256 hash of its value, bound to one environment, and
//! expires [`OAuthState::expires_at`] (the table's TTL attribute, checked explicitly as well,
//! because DynamoDB deletes expired items only eventually). A callback consumes it with one
//! conditional write. The record then stays until it expires and remembers which callback consumed
//! it and with what outcome, so the same callback arriving again gets the same answer without a
//! second code exchange.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Environment, StoreResult};

/// An issued OAuth `state`, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthState {
    /// Lowercase hex SHA-256 of the state value; the value itself is never stored.
    pub state_hash: String,
    /// The environment that asked for the connect link.
    pub environment_id: String,
    /// When the state was issued, in milliseconds since the epoch.
    pub created_at_ms: i64,
    /// The first second (epoch seconds) at which the state is no longer valid; also the table's
    /// TTL attribute.
    pub expires_at: i64,
    /// Set once a callback consumed the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumption: Option<OAuthConsumption>,
}

impl OAuthState {
    /// Whether the state is past its lifetime at `now_ms` (milliseconds since the epoch).
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at <= now_ms.div_euclid(1000)
    }
}

/// The callback that consumed a state, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthConsumption {
    /// Identifies the callback: a hash of its authorization code, or a fixed value for a denial.
    /// A later callback with the same fingerprint is the same callback arriving again.
    pub fingerprint: String,
    /// A random ID of the request that consumed the state. Only that request records the outcome.
    pub claim_id: String,
    /// When the state was consumed, in milliseconds since the epoch.
    pub consumed_at_ms: i64,
    /// The result, once the consuming request has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OAuthOutcome>,
}

/// The result of a callback, kept so that the same callback arriving again shows the same page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OAuthOutcome {
    /// The environment is connected to the account.
    Connected { account_id: String, livemode: bool },
    /// The user denied the authorization on Stripe.
    Cancelled,
    /// Stripe rejected the request with an OAuth error such as `invalid_grant`.
    StripeRejected { error: String, description: String },
    /// The code exchange failed in a way that leaves its result unknown (a timeout, a broken
    /// connection, an unreadable response). The code is never sent again.
    ExchangeFailed,
    /// Stripe connected an account in the other mode than the environment's.
    ModeMismatch { livemode: bool },
    /// The account is already connected, in this mode, to another environment.
    AccountTaken { account_id: String, livemode: bool },
    /// The environment is connected to another account.
    EnvironmentConnected { account_id: String },
    /// The environment was deleted after the connect link was issued.
    EnvironmentNotFound,
    /// An unexpected failure, logged with the request's ID.
    Failed,
}

/// The result of [`ConnectStore::consume_oauth_state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConsumption {
    /// This request consumed the state and must record the outcome. Contains the updated record.
    Consumed(OAuthState),
    /// A callback consumed the state before. Contains the record as stored.
    AlreadyConsumed(OAuthState),
    /// The state exists but its lifetime is over.
    Expired,
    /// No state has this hash.
    NotFound,
}

/// OAuth states and the environment's entitlements toggle.
#[async_trait]
pub trait ConnectStore: Send + Sync {
    /// Stores a new state. Fails when a state with the same hash exists, which 256 random bits make
    /// practically impossible.
    async fn create_oauth_state(&self, state: &OAuthState) -> StoreResult<()>;

    /// Reads a state by hash with a strongly consistent read; expired states count as absent.
    async fn get_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<OAuthState>>;

    /// Consumes a state in one conditional write: it must exist, be unexpired at `now_ms` and not
    /// be consumed yet. Of two concurrent callers exactly one gets [`StateConsumption::Consumed`].
    async fn consume_oauth_state(
        &self,
        state_hash: &str,
        consumption: &OAuthConsumption,
        now_ms: i64,
    ) -> StoreResult<StateConsumption>;

    /// Records the outcome of the request that consumed a state, once. Returns `false` when the
    /// state is gone, was consumed under another `claim_id`, or already has an outcome.
    async fn record_oauth_outcome(
        &self,
        state_hash: &str,
        claim_id: &str,
        outcome: &OAuthOutcome,
    ) -> StoreResult<bool>;

    /// Sets `entitlements_enabled` of an environment with a write of that one attribute, so it
    /// never overwrites a concurrent change of the connection. Returns the updated environment, or
    /// `None` when it does not exist.
    async fn set_entitlements_enabled(
        &self,
        environment_id: &str,
        enabled: bool,
    ) -> StoreResult<Option<Environment>>;
}
