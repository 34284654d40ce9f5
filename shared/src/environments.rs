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

/// Creates an environment bound to a Stripe mode, with a new API key.
pub async fn create(store: &dyn Store, name: &str, mode: StripeMode) -> StoreResult<CreatedEnvironment> {
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
        signing_keys: Vec::new(),
    };
    store
        .create_environment(&environment, &ids::hash_secret(&api_key))
        .await?;
    tracing::info!(environment_id = %environment.id, mode = mode.as_str(), "environment created");
    Ok(CreatedEnvironment { environment, api_key })
}
