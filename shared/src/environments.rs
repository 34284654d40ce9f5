//! Creating environments: each gets an API key, shown once and stored only as its hash.

use chrono::Utc;

use crate::ids;
use crate::store::{Environment, Store, StoreResult, StripeMode};

/// A new environment and the API key that opens it.
pub struct CreatedEnvironment {
    pub environment: Environment,
    /// The API key (`sk_…`), returned once and never stored in clear.
    pub api_key: String,
}

impl std::fmt::Debug for CreatedEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEnvironment")
            .field("environment", &self.environment)
            .field("api_key", &"sk_…")
            .finish()
    }
}

/// Error of creating an environment with its signing key.
#[derive(Debug, thiserror::Error)]
pub enum CreateEnvironmentError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot create the first signing key: {0}")]
    SigningKey(#[from] crate::tokens::TokenError),
}

/// Creates an environment bound to a Stripe mode, with a new API key and a first `Active` RSA
/// signing key encrypted under `kek`, so it can issue access tokens at once.
pub async fn create_with_signing_key(
    store: &dyn Store,
    name: &str,
    mode: StripeMode,
    kek: &crate::tokens::KeyEncryptionKey,
) -> Result<CreatedEnvironment, CreateEnvironmentError> {
    let key = crate::tokens::generate_signing_key(kek, crate::tokens::SigningKeyStatus::Active)?;
    let kid = key.kid.clone();
    let created = create_with_keys(store, name, mode, vec![key]).await?;
    tracing::info!(environment_id = %created.environment.id, kid = %kid, "first signing key created");
    Ok(created)
}

/// Creates an environment bound to a Stripe mode, with a new API key and no signing key. Such an
/// environment issues no access tokens until an operator adds and promotes a key
/// (`admin signing-keys add`, then `promote`); [`create_with_signing_key`] is the usual way.
pub async fn create(
    store: &dyn Store,
    name: &str,
    mode: StripeMode,
) -> StoreResult<CreatedEnvironment> {
    create_with_keys(store, name, mode, Vec::new()).await
}

async fn create_with_keys(
    store: &dyn Store,
    name: &str,
    mode: StripeMode,
    signing_keys: Vec<crate::tokens::StoredSigningKey>,
) -> StoreResult<CreatedEnvironment> {
    let prefix = match mode {
        StripeMode::Test => "sk_test_",
        StripeMode::Live => "sk_live_",
    };
    let api_key = ids::new_secret(prefix);
    let environment = Environment {
        id: ids::new_id("client"),
        name: name.to_owned(),
        mode,
        created_at: Utc::now(),
        stripe_connection: None,
        entitlements_enabled: true,
        signing_keys,
    };
    store
        .create_environment(&environment, &ids::hash_secret(&api_key))
        .await?;
    tracing::info!(environment_id = %environment.id, mode = mode.as_str(), "environment created");
    Ok(CreatedEnvironment {
        environment,
        api_key,
    })
}
