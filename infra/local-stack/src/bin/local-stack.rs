//! `local-stack`: serves every function on 127.0.0.1 on the embedded store (or DynamoDB with
//! `--dynamodb-endpoint`), creating a first environment on an empty store.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use local_stack::{Options, app, bind, first_environment, key_encryption_key, local_config, open_store};
use shared::config::Config;
use shared::state::AppState;

/// Runs the whole service locally. Flags override the environment variables of the same meaning.
#[derive(Debug, Parser)]
#[command(name = "local-stack", version)]
struct Args {
    /// TCP port on 127.0.0.1.
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
    let config = local_config(&options, config)?;
    let store = open_store(&options, &config).await?;

    let (listener, address) = bind(options.port).await?;
    let base_url = format!("http://{address}");
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

    let signer = shared::state::signer_from_config(&config)?;
    let state = AppState::new(store, config).with_signer(signer);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
