//! `admin`: operator commands against a deployed table, DynamoDB Local or the embedded store.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use local_stack::table;
use shared::environments;
use shared::store::{DynamoStore, EmbeddedStore, Store, StripeMode};

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

    /// Use the local stack's embedded store in this data folder instead of DynamoDB.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,

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
    /// Creates an environment and prints its API key and client ID once, as JSON.
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
        Command::CreateEnvironment { name, mode } => {
            let store: Box<dyn Store> = match &args.data_dir {
                Some(dir) => Box::new(EmbeddedStore::open(&dir.join("store"))?),
                None => Box::new(
                    DynamoStore::connect(
                        args.table_name.clone(),
                        args.dynamodb_endpoint.as_deref(),
                        None,
                    )
                    .await,
                ),
            };
            let mode = match mode {
                Mode::Test => StripeMode::Test,
                Mode::Live => StripeMode::Live,
            };
            let created = environments::create(store.as_ref(), &name, mode).await?;
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
    }
    Ok(())
}
