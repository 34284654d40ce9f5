//! The state every router shares, built once when a function starts.

use std::sync::Arc;

use crate::config::Config;
use crate::entitlements::{EntitlementLoader, NoEntitlementLoader};
use crate::store::Store;

/// Clients, configuration and keys, shared by all requests of a process.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// Reads a customer's entitlements from Stripe when an organization links to it.
    pub entitlement_loader: Arc<dyn EntitlementLoader>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        AppState {
            store,
            config: Arc::new(config),
            entitlement_loader: Arc::new(NoEntitlementLoader),
        }
    }
}

impl AppState {
    /// Builds the state of a Lambda function from its environment: the configuration and a
    /// DynamoDB client. No network call happens here; the first request opens the connection.
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = Config::from_env()?;
        let store = crate::store::DynamoStore::connect(
            config.table_name.clone(),
            config.dynamodb_endpoint.as_deref(),
            None,
        )
        .await;
        Ok(AppState::new(Arc::new(store), config))
    }
}
