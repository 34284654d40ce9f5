//! `local-stack`: serves every function on 127.0.0.1 on the embedded store (or DynamoDB with
//! `--dynamodb-endpoint`), creating a first environment on an empty store.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use local_stack::{
    Options, app, bind, first_environment, key_encryption_key, local_config, open_store,
};
use shared::config::{Config, Secret};
use shared::state::AppState;

/// Runs the whole service locally. Flags override the environment variables of the same meaning.
#[derive(Debug, Parser)]
#[command(name = "local-stack", version)]
struct Args {
    /// TCP port on 127.0.0.1 (0 picks a free port).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,

    /// Folder of the embedded store and of the generated local secrets.
    #[arg(long, env = "DATA_DIR", default_value = ".local/data")]
    data_dir: PathBuf,

    /// Use DynamoDB at this endpoint (for example DynamoDB Local) instead of the embedded store.
    #[arg(long, env = "DYNAMODB_ENDPOINT")]
    dynamodb_endpoint: Option<String>,

    /// On first start with an empty store, also write the new environment's credentials here as
    /// JSON: {"api_key", "client_id", "base_url"}.
    #[arg(long)]
    credentials_file: Option<PathBuf>,

    /// Which Stripe to talk to: `emulator` starts the built-in Stripe emulator on 127.0.0.1 and
    /// points the service at it; `real` uses the STRIPE_* variables as they are. Defaults to
    /// `emulator` unless STRIPE_SECRET_KEY is set.
    #[arg(long, value_enum, env = "LOCAL_STRIPE")]
    stripe: Option<StripeTarget>,

    /// Port of the built-in Stripe emulator on 127.0.0.1 (0 picks a free port).
    #[arg(long, env = "LOCAL_STRIPE_EMULATOR_PORT", default_value_t = 12111)]
    stripe_emulator_port: u16,
}

/// The Stripe the local stack talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StripeTarget {
    Emulator,
    Real,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::logging::init();
    let args = Args::parse();
    let options = Options {
        port: args.port,
        data_dir: args.data_dir,
        dynamodb_endpoint: args.dynamodb_endpoint,
        credentials_file: args.credentials_file,
    };

    let mut config = Config::from_env()?;
    config.dynamodb_endpoint = options.dynamodb_endpoint.clone();
    let mut config = local_config(&options, config)?;
    let store = open_store(&options, &config).await?;

    let (listener, address) = bind(options.port).await?;
    let base_url = format!("http://{address}");
    if config.stripe.redirect_uri.is_none() {
        config.stripe.redirect_uri = Some(format!("{base_url}/stripe/oauth/callback"));
    }
    let target = args
        .stripe
        .unwrap_or(if config.stripe.secret_key.is_some() {
            StripeTarget::Real
        } else {
            StripeTarget::Emulator
        });
    let emulator = match target {
        StripeTarget::Emulator => {
            Some(start_emulator(&mut config, args.stripe_emulator_port, &options).await?)
        }
        StripeTarget::Real => None,
    };
    let kek = key_encryption_key(&config)?;
    if let Some(credentials) = first_environment(store.as_ref(), &base_url, &kek).await? {
        let json = serde_json::to_string_pretty(&credentials)?;
        println!("Created a first environment. Its API key is shown only now:\n{json}");
        if let Some(path) = &options.credentials_file {
            std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("Wrote the credentials to {}", path.display());
        }
    }

    let store_description = match &options.dynamodb_endpoint {
        Some(endpoint) => format!("DynamoDB at {endpoint}, table {}", config.table_name),
        None => format!("the embedded store in {}", options.data_dir.display()),
    };
    println!("Serving on {base_url} with {store_description}.");
    println!(
        "Point the WorkOS Node SDK at it: new WorkOS(apiKey, {{ apiHostname: '127.0.0.1', port: {}, https: false, clientId }})",
        address.port()
    );
    println!("Or: curl -H 'Authorization: Bearer <api_key>' {base_url}/organizations");
    if let Some(emulator) = &emulator {
        println!(
            "Stripe emulator on {} (platform key {EMULATOR_SECRET_KEY}, client ID {EMULATOR_CLIENT_ID}); \
             its events go to {base_url}/webhooks/stripe signed with the secret in {}.",
            emulator.base_url,
            options.data_dir.join("local-secrets.json").display()
        );
    }

    let signer = shared::state::signer_from_config(&config)?;
    let state = AppState::new(store, config).with_signer(signer);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    if let Some(emulator) = emulator {
        emulator.shutdown().await;
    }
    println!("Local stack stopped.");
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM, the signal that process managers send.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the stack");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

const EMULATOR_SECRET_KEY: &str = "sk_test_emulator";
const EMULATOR_CLIENT_ID: &str = "ca_emulator";

/// Starts the Stripe emulator and points the configuration at it: API and Connect base URLs, the
/// platform key and client ID, and the local webhook secret unless STRIPE_WEBHOOK_SECRETS is set.
async fn start_emulator(
    config: &mut Config,
    port: u16,
    options: &Options,
) -> anyhow::Result<stripe_emulator::RunningEmulator> {
    let emulator = stripe_emulator::start(
        stripe_emulator::EmulatorConfig {
            platform_secret_key: EMULATOR_SECRET_KEY.into(),
            client_id: EMULATOR_CLIENT_ID.into(),
            livemode: false,
        },
        port,
    )
    .await
    .with_context(|| format!("cannot start the Stripe emulator on 127.0.0.1:{port}; pass another --stripe-emulator-port"))?;
    let base = format!("{}/", emulator.base_url);
    config.stripe.api_base = base.clone();
    config.stripe.connect_base = base;
    config.stripe.secret_key = Some(Secret::new(EMULATOR_SECRET_KEY));
    config.stripe.client_id = Some(EMULATOR_CLIENT_ID.into());
    if config.stripe.webhook_secrets.is_empty() {
        let local = local_stack::secrets::load_or_create(&options.data_dir)?;
        config.stripe.webhook_secrets = vec![Secret::new(local.webhook_secret)];
    }
    Ok(emulator)
}
