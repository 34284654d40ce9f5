//! The local stack: every function's router in one process, on the embedded store or on DynamoDB.
//! What runs here is the code that runs on Lambda; only the store and the listener differ.

pub mod secrets;
pub mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use shared::config::{Config, Secret};
use shared::environments;
use shared::state::AppState;
use shared::store::{DynamoStore, EmbeddedStore, Store, StripeMode};
use shared::tokens::KeyEncryptionKey;

/// Where the local stack keeps its data and how it listens.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub data_dir: PathBuf,
    pub dynamodb_endpoint: Option<String>,
    pub credentials_file: Option<PathBuf>,
}

/// Merges every function's router behind the shared request-ID layer and JSON fallbacks.
pub fn app(state: AppState) -> Router {
    let router = Router::new()
        .merge(stripe_connect::router(state.clone()))
        .merge(stripe_webhooks::router(state.clone()))
        .merge(organizations::router(state.clone()))
        .merge(sessions::router(state));
    shared::http::with_common_layers(router)
}

/// Opens the store the options select: DynamoDB at an endpoint (creating the table when missing)
/// or the embedded store in the data folder.
pub async fn open_store(options: &Options, config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match &options.dynamodb_endpoint {
        Some(endpoint) => {
            let store = DynamoStore::connect(config.table_name.clone(), Some(endpoint), None).await;
            let definition = table::parse_table_definition(table::TEMPLATE)?;
            if table::ensure_table(store.client(), &config.table_name, &definition).await? {
                tracing::info!(table = %config.table_name, "table created");
            }
            Ok(Arc::new(store))
        }
        None => {
            let store =
                EmbeddedStore::open(&options.data_dir.join("store")).with_context(|| {
                    format!(
                        "cannot open the embedded store in {}",
                        options.data_dir.display()
                    )
                })?;
            Ok(Arc::new(store))
        }
    }
}

/// Parses `KEY_ENCRYPTION_KEY`, which [`local_config`] always fills in.
pub fn key_encryption_key(config: &Config) -> anyhow::Result<KeyEncryptionKey> {
    let secret = config.require_key_encryption_key()?;
    KeyEncryptionKey::from_base64(secret.expose()).context("KEY_ENCRYPTION_KEY is invalid")
}

/// Fills in the secrets a developer need not set locally, from a file in the data folder.
pub fn local_config(options: &Options, mut config: Config) -> anyhow::Result<Config> {
    let local = secrets::load_or_create(&options.data_dir)?;
    if config.key_encryption_key.is_none() {
        config.key_encryption_key = Some(Secret::new(local.key_encryption_key));
    }
    if config.cookie_password.is_none() {
        config.cookie_password = Some(Secret::new(local.cookie_password));
    }
    Ok(config)
}

/// The credentials of the environment the local stack created on first start.
#[derive(Debug, serde::Serialize)]
pub struct Credentials {
    pub api_key: String,
    pub client_id: String,
    pub base_url: String,
}

/// Creates a first environment, with its first signing key, when the store has none, and
/// returns its credentials.
pub async fn first_environment(
    store: &dyn Store,
    base_url: &str,
    kek: &KeyEncryptionKey,
) -> anyhow::Result<Option<Credentials>> {
    if store.has_environments().await? {
        return Ok(None);
    }
    let created =
        environments::create_with_signing_key(store, "local", StripeMode::Test, kek).await?;
    Ok(Some(Credentials {
        api_key: created.api_key,
        client_id: created.environment.id,
        base_url: base_url.to_owned(),
    }))
}

/// Binds the listener on loopback.
pub async fn bind(port: u16) -> anyhow::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}; pass another --port"))?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}
