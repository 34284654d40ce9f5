//! The state every router shares, built once when a function starts.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::entitlements::{EntitlementLoader, NoEntitlementLoader};
use crate::store::Store;
use crate::stripe::{StripeClient, StripeEntitlementLoader};
use crate::tokens::{KeyEncryptionKey, Signer};

/// Clients, configuration and keys, shared by all requests of a process.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// Reads a customer's entitlements from Stripe when an organization links to it.
    pub entitlement_loader: Arc<dyn EntitlementLoader>,
    /// The Stripe API client, when `STRIPE_SECRET_KEY` is set.
    pub stripe: Option<Arc<StripeClient>>,
    /// Signs access tokens with keys decrypted by `KEY_ENCRYPTION_KEY`; `None` when it is not set.
    pub signer: Option<Arc<Signer>>,
}

impl AppState {
    /// Builds the state, with a Stripe client when the configuration has a secret key. A key that
    /// cannot form a client (characters not allowed in a header) is logged as an error and leaves
    /// the state without Stripe; [`AppState::from_env`] fails instead.
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        let stripe = StripeClient::from_config(&config.stripe).unwrap_or_else(|error| {
            tracing::error!(%error, "STRIPE_SECRET_KEY is set but the Stripe client cannot be built");
            None
        });
        AppState::with_stripe(store, config, stripe.map(Arc::new))
    }

    /// Builds the state with the given Stripe client (or none); the entitlement loader reads
    /// through it.
    pub fn with_stripe(
        store: Arc<dyn Store>,
        config: Config,
        stripe: Option<Arc<StripeClient>>,
    ) -> Self {
        let entitlement_loader: Arc<dyn EntitlementLoader> = match &stripe {
            Some(client) => Arc::new(StripeEntitlementLoader::new(client.clone())),
            None => Arc::new(NoEntitlementLoader),
        };
        AppState {
            store,
            config: Arc::new(config),
            entitlement_loader,
            stripe,
            signer: None,
        }
    }

    /// Sets the signer of access tokens.
    pub fn with_signer(mut self, signer: Option<Arc<Signer>>) -> Self {
        self.signer = signer;
        self
    }
}

/// Builds the signer from `KEY_ENCRYPTION_KEY`, or `None` when it is not set. Parsing the key
/// decrypts nothing, so this stays cheap at start-up.
pub fn signer_from_config(config: &Config) -> Result<Option<Arc<Signer>>, ConfigError> {
    let Some(secret) = &config.key_encryption_key else {
        return Ok(None);
    };
    let kek =
        KeyEncryptionKey::from_base64(secret.expose()).map_err(|error| ConfigError::Invalid {
            name: "KEY_ENCRYPTION_KEY",
            reason: error.to_string(),
        })?;
    Ok(Some(Arc::new(Signer::new(kek))))
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
        let stripe = StripeClient::from_config(&config.stripe)?.map(Arc::new);
        let signer = signer_from_config(&config)?;
        Ok(AppState::with_stripe(Arc::new(store), config, stripe).with_signer(signer))
    }
}
