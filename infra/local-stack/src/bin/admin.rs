//! `admin`: operator commands against a deployed table, DynamoDB Local or the embedded store.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use clap::{Parser, Subcommand, ValueEnum};
use local_stack::table;
use shared::environments;
use shared::sessions::signing_keys;
use shared::store::{DynamoStore, EmbeddedStore, Store, StripeMode};
use shared::tokens::{KeyEncryptionKey, SigningKeyStatus, StoredSigningKey};

#[derive(Debug, Parser)]
#[command(
    name = "admin",
    version,
    about = "Administers environments and the table"
)]
struct Args {
    /// The DynamoDB table.
    #[arg(long, env = "TABLE_NAME", default_value = shared::config::DEFAULT_TABLE_NAME, global = true)]
    table_name: String,

    /// A DynamoDB endpoint override, such as DynamoDB Local.
    #[arg(long, env = "DYNAMODB_ENDPOINT", global = true)]
    dynamodb_endpoint: Option<String>,

    /// The local stack's data folder: its embedded store (unless --dynamodb-endpoint is given)
    /// and its generated KEY_ENCRYPTION_KEY.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,

    /// The key that encrypts signing keys at rest (base64 of 32 bytes). Without it, the local
    /// stack's generated key in --data-dir is used.
    #[arg(
        long,
        env = "KEY_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true
    )]
    key_encryption_key: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Test,
    Live,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates an environment with its first signing key (which needs KEY_ENCRYPTION_KEY) and
    /// prints its API key and client ID once, as JSON.
    CreateEnvironment {
        /// A name for people, such as "production".
        #[arg(long)]
        name: String,
        /// The Stripe mode the environment is bound to.
        #[arg(long, value_enum, default_value = "test")]
        mode: Mode,
    },
    /// Creates the table from template.yaml's definition, unless it exists (DynamoDB only).
    CreateTable,
    /// Lists and rotates an environment's access-token signing keys.
    SigningKeys {
        #[command(subcommand)]
        action: SigningKeyAction,
    },
}

#[derive(Debug, Subcommand)]
enum SigningKeyAction {
    /// Prints the keys (kid, status, times) as JSON; private keys are never printed.
    List {
        /// The environment's client ID (`client_…`).
        #[arg(long)]
        environment: String,
    },
    /// Adds a Next key: published in the JWKS, not yet signing.
    Add {
        /// The environment's client ID (`client_…`).
        #[arg(long)]
        environment: String,
    },
    /// Makes the Next key Active; the Active key becomes Previous.
    Promote {
        /// The environment's client ID (`client_…`).
        #[arg(long)]
        environment: String,
        /// Promote even if the Next key was published less than 10 minutes ago, the longest
        /// time a verifier caches the JWKS.
        #[arg(long)]
        force: bool,
    },
    /// Removes a Previous key (or an unused Next key) from the environment and its JWKS.
    Retire {
        /// The environment's client ID (`client_…`).
        #[arg(long)]
        environment: String,
        /// The key ID (`key_…`).
        #[arg(long)]
        kid: String,
        /// The maximum access-token lifetime in seconds: a Previous key is kept at least this
        /// long after it stopped signing.
        #[arg(long, env = "ACCESS_TOKEN_TTL_SECONDS", default_value_t = 300)]
        access_token_ttl_seconds: u64,
        /// Retire even if tokens signed with the key may not have expired yet.
        #[arg(long)]
        force: bool,
    },
}

/// Opens the store the global flags select: DynamoDB when an endpoint is given, else the embedded
/// store of --data-dir, else DynamoDB as the AWS configuration finds it.
async fn open_store(args: &Args) -> anyhow::Result<Box<dyn Store>> {
    Ok(match (&args.dynamodb_endpoint, &args.data_dir) {
        (None, Some(dir)) => Box::new(EmbeddedStore::open(&dir.join("store"))?),
        _ => Box::new(
            DynamoStore::connect(
                args.table_name.clone(),
                args.dynamodb_endpoint.as_deref(),
                None,
            )
            .await,
        ),
    })
}

/// Reads the key-encryption key: `--key-encryption-key` or `KEY_ENCRYPTION_KEY`, or with
/// `--data-dir` the local stack's generated one, so keys added here are readable by that stack.
fn key_encryption_key(args: &Args) -> anyhow::Result<KeyEncryptionKey> {
    let encoded = match (&args.key_encryption_key, &args.data_dir) {
        (Some(encoded), _) => encoded.clone(),
        (None, Some(dir)) => local_stack::secrets::load_or_create(dir)?.key_encryption_key,
        (None, None) => anyhow::bail!(
            "KEY_ENCRYPTION_KEY is not set; set it to the deployment's key (or pass --key-encryption-key), \
             or pass the local stack's --data-dir to use its generated key"
        ),
    };
    KeyEncryptionKey::from_base64(&encoded).context("KEY_ENCRYPTION_KEY is invalid")
}

fn key_json(key: &StoredSigningKey) -> serde_json::Value {
    let status = match key.status {
        SigningKeyStatus::Next => "next",
        SigningKeyStatus::Active => "active",
        SigningKeyStatus::Previous => "previous",
    };
    serde_json::json!({
        "kid": key.kid,
        "alg": key.alg,
        "status": status,
        "created_at": key.created_at,
        "status_changed_at": key.status_changed_at,
    })
}

async fn run_signing_keys(
    args: &Args,
    action: &SigningKeyAction,
) -> anyhow::Result<serde_json::Value> {
    let store = open_store(args).await?;
    let store = store.as_ref();
    let now = chrono::Utc::now();
    Ok(match action {
        SigningKeyAction::List { environment } => {
            let keys = signing_keys::list(store, environment).await?;
            serde_json::json!({ "environment": environment, "keys": keys.iter().map(key_json).collect::<Vec<_>>() })
        }
        SigningKeyAction::Add { environment } => {
            let kek = key_encryption_key(args)?;
            let added = signing_keys::add(store, &kek, environment).await?;
            serde_json::json!({ "environment": environment, "added": key_json(&added) })
        }
        SigningKeyAction::Promote { environment, force } => {
            let promotion = signing_keys::promote(store, environment, *force, now).await?;
            serde_json::json!({
                "environment": environment,
                "active": key_json(&promotion.active),
                "previous": promotion.previous.as_ref().map(key_json),
            })
        }
        SigningKeyAction::Retire {
            environment,
            kid,
            access_token_ttl_seconds,
            force,
        } => {
            let ttl = Duration::from_secs(*access_token_ttl_seconds);
            let retired = signing_keys::retire(store, environment, kid, ttl, *force, now).await?;
            serde_json::json!({ "environment": environment, "retired": key_json(&retired) })
        }
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::logging::init();
    let args = Args::parse();
    match args.command {
        Command::CreateTable => {
            let store = DynamoStore::connect(
                args.table_name.clone(),
                args.dynamodb_endpoint.as_deref(),
                None,
            )
            .await;
            let definition = table::parse_table_definition(table::TEMPLATE)?;
            let created =
                table::ensure_table(store.client(), &args.table_name, &definition).await?;
            println!(
                "{}",
                serde_json::json!({ "table": args.table_name, "created": created })
            );
        }
        Command::CreateEnvironment { ref name, mode } => {
            let store = open_store(&args).await?;
            let kek = key_encryption_key(&args)?;
            let mode = match mode {
                Mode::Test => StripeMode::Test,
                Mode::Live => StripeMode::Live,
            };
            let created =
                environments::create_with_signing_key(store.as_ref(), name, mode, &kek).await?;
            println!(
                "{}",
                serde_json::json!({
                    "api_key": created.api_key,
                    "client_id": created.environment.id,
                    "name": created.environment.name,
                    "mode": mode.as_str(),
                })
            );
        }
        Command::SigningKeys { ref action } => {
            println!("{}", run_signing_keys(&args, action).await?);
        }
    }
    Ok(())
}
