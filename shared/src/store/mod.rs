//! The store every function shares: domain types, the [`Store`] traits, and two implementations.
//!
//! [`DynamoStore`] keeps everything in one DynamoDB table; [`EmbeddedStore`] keeps the same items in
//! memory and in a file, for the local stack. Both lay items out under the keys of [`keys`], and one
//! contract test suite runs against both. Every uniqueness rule and state transition is a condition
//! on the write, so concurrent Lambdas never lose an update.

pub mod dynamo;
pub mod embedded;
pub mod keys;
mod oauth;
mod stripe;
mod types;
mod users;

use async_trait::async_trait;

pub use self::oauth::*;
pub use self::stripe::*;
pub use dynamo::DynamoStore;
pub use embedded::EmbeddedStore;
pub use types::*;
pub use users::*;

/// A store failure. Expected outcomes (not found, a taken unique value) are return values of the
/// trait methods, so this enum only carries what callers cannot act on, plus conflicts.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (an external ID, a Stripe customer) already belongs to another record.
    #[error("{field} {value:?} already belongs to {owner_id}")]
    Taken {
        field: &'static str,
        value: String,
        owner_id: String,
    },

    /// A record was changed by another request between read and write too many times in a row.
    #[error("{entity} {id} was modified concurrently; retry the request")]
    Contended { entity: &'static str, id: String },

    /// The backend failed: a DynamoDB error or a file error of the embedded store.
    /// The message includes the cause, so the cause is not also a `source`, which would print
    /// it twice in an error chain.
    #[error("store backend failed: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),

    /// A stored item could not be read back.
    #[error("stored item {key} is invalid: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Environments and their API keys.
#[async_trait]
pub trait EnvironmentStore: Send + Sync {
    /// Creates an environment together with its first API key, stored by its hash.
    async fn create_environment(
        &self,
        environment: &Environment,
        api_key_hash: &str,
    ) -> StoreResult<()>;

    /// Reads an environment by ID (which is also its client ID).
    async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>>;

    /// Resolves an API key, given as its hash, to the ID of the environment it belongs to.
    async fn environment_id_for_api_key(&self, api_key_hash: &str) -> StoreResult<Option<String>>;

    /// Returns `true` when at least one environment exists.
    async fn has_environments(&self) -> StoreResult<bool>;
}

/// Organizations, their external IDs and their Stripe customer links.
#[async_trait]
pub trait OrganizationStore: Send + Sync {
    /// Creates an organization. Fails with [`StoreError::Taken`] when its external ID or Stripe
    /// customer already belongs to another organization of the environment.
    async fn create_organization(&self, organization: &Organization) -> StoreResult<()>;

    async fn get_organization(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Organization>>;

    async fn get_organization_by_external_id(
        &self,
        environment_id: &str,
        external_id: &str,
    ) -> StoreResult<Option<Organization>>;

    async fn list_organizations(
        &self,
        environment_id: &str,
        query: &ListQuery,
    ) -> StoreResult<Page<Organization>>;

    /// Writes `updated` over `current`, provided the stored record still has `current.version`.
    /// Moves the external-ID and customer claims when they change. Returns `Ok(false)` when the
    /// record changed or disappeared since it was read, so the caller can read again and retry.
    async fn replace_organization(
        &self,
        current: &Organization,
        updated: &Organization,
    ) -> StoreResult<bool>;

    /// Deletes an organization with its external-ID and customer claims. Returns `false` when it
    /// did not exist.
    async fn delete_organization(&self, environment_id: &str, id: &str) -> StoreResult<bool>;
}

/// Everything the functions need from storage.
pub trait Store:
    EnvironmentStore
    + OrganizationStore
    + UserStore
    + SessionStore
    + IdempotencyStore
    + StripeStore
    + ConnectStore
{
}

impl<
    T: EnvironmentStore
        + OrganizationStore
        + UserStore
        + SessionStore
        + IdempotencyStore
        + StripeStore
        + ConnectStore,
> Store for T
{
}
