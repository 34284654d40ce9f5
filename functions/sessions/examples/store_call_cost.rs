//! Measures the CPU time of the two DynamoDB calls of a refresh, without HTTP or signing: the
//! batched read (`BatchGetItem` of the API key, environment, user, membership and organization)
//! and the conditional rotation (`UpdateItem`). It shows how much of a refresh's CPU time the AWS
//! SDK takes, in either Tokio runtime.
//!
//! ```text
//! cargo run --release -p sessions --example store_call_cost -- \
//!     --dynamodb-endpoint http://127.0.0.1:PORT --table-name TABLE
//! ```
//!
//! The table must exist (`admin create-table`). CPU time is the sum over this process's threads
//! of `/proc/self/task/*/schedstat`, so it includes the kernel's work for the loopback TCP traffic.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use shared::store::{ContextKeys, DynamoStore, Rotation, Store, StripeMode};
use shared::tokens::KeyEncryptionKey;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Times the refresh's DynamoDB calls one at a time.
#[derive(Debug, Parser)]
struct Args {
    /// The DynamoDB endpoint, such as DynamoDB Local.
    #[arg(long)]
    dynamodb_endpoint: String,
    /// The DynamoDB table; it must exist.
    #[arg(long, default_value = shared::config::DEFAULT_TABLE_NAME)]
    table_name: String,
    /// Timed calls of each kind, after as many untimed ones.
    #[arg(long, default_value_t = 2_000)]
    calls: usize,
}

/// Returns the nanoseconds of CPU time this process's threads have used so far.
fn cpu_time() -> BenchResult<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task")? {
        // A thread may end between the listing and the read.
        let Ok(text) = std::fs::read_to_string(task?.path().join("schedstat")) else {
            continue;
        };
        let on_cpu = text
            .split_whitespace()
            .next()
            .and_then(|field| field.parse::<u64>().ok());
        total += on_cpu.unwrap_or(0);
    }
    Ok(total)
}

/// Runs `call` untimed, then timed, `calls` times each, and prints CPU and wall time per call.
async fn measure<F, Fut>(name: &str, calls: usize, mut call: F) -> BenchResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = BenchResult<()>>,
{
    for _ in 0..calls {
        call().await?;
    }
    let cpu_before = cpu_time()?;
    let started = Instant::now();
    for _ in 0..calls {
        call().await?;
    }
    let cpu = (cpu_time()? - cpu_before) as f64 / 1e6 / calls as f64;
    let wall = started.elapsed().as_secs_f64() * 1e3 / calls as f64;
    println!("{name}: {cpu:.3} ms CPU, {wall:.3} ms wall per call");
    Ok(())
}

async fn run(args: &Args) -> BenchResult<()> {
    let endpoint = Some(args.dynamodb_endpoint.as_str());
    let store: Arc<dyn Store> =
        Arc::new(DynamoStore::connect(args.table_name.clone(), endpoint, None).await);
    let kek = KeyEncryptionKey::generate();
    let created = shared::environments::create_with_signing_key(
        store.as_ref(),
        "cost",
        StripeMode::Test,
        &kek,
    )
    .await?;
    let environment_id = created.environment.id.clone();
    let user_id = shared::ids::new_id("user");
    let organization_id = shared::ids::new_id("org");

    let full_read = ContextKeys {
        environment_id: environment_id.clone(),
        api_key_hash: Some(shared::ids::hash_secret(&created.api_key)),
        environment: true,
        user_id: Some(user_id.clone()),
        membership: Some((user_id.clone(), organization_id.clone())),
    };
    measure(
        "BatchGetItem of the five refresh items",
        args.calls,
        || async {
            store.read_session_context(&full_read).await?;
            Ok(())
        },
    )
    .await?;

    // A rotation of a session that does not exist fails its condition, a full round trip.
    let rotation = Rotation {
        environment_id,
        session_id: shared::ids::new_id("session"),
        user_id,
        presented_hash: "presented".into(),
        presented_generation: 0,
        next_hash: "next".into(),
        rotated_at_ms: chrono::Utc::now().timestamp_millis(),
        organization_id: Some(organization_id),
    };
    measure(
        "UpdateItem rotation (condition fails)",
        args.calls,
        || async {
            store.rotate_session(&rotation).await?;
            Ok(())
        },
    )
    .await
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    println!("current-thread runtime:");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(&args))?;
    println!("multi-thread runtime:");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(&args))
}
