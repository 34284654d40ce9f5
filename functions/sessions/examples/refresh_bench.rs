//! Measures the refresh grant end to end: latency (p50, p99), throughput, and the service's CPU
//! time per refresh.
//!
//! The benchmark starts itself a second time as the service (`--serve`). That process seeds a
//! store with an environment (a signing key, a Stripe connection), a user, and an organization
//! with an entitlement set and a membership. Then it serves the sessions router on 127.0.0.1. The
//! first process is the load generator. Each refresh names its organization, as the SDK's cookie refresh
//! does, and uses the refresh token the previous one returned. CPU time is read from the service's
//! `/proc/<pid>/task/*/schedstat`, so it counts the service process alone. The service stops when
//! the load generator closes its standard input, or after 15 minutes.
//!
//! ```text
//! cargo run --release -p sessions --example refresh_bench -- --store file
//! cargo run --release -p sessions --example refresh_bench -- --store dynamodb \
//!     --dynamodb-endpoint http://127.0.0.1:PORT --table-name TABLE
//! ```
//!
//! The DynamoDB table must exist (`admin create-table`). Logging is off in the service unless
//! `RUST_LOG` is set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use shared::config::Config;
use shared::ids;
use shared::state::AppState;
use shared::store::{
    DynamoStore, EmbeddedStore, EntitlementSet, Environment, Membership, Organization, Store,
    StripeConnection, StripeMode, User,
};
use shared::tokens::{KeyEncryptionKey, Signer, SigningKeyStatus, generate_signing_key};

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const PASSWORD: &str = "benchmark password";
/// How long the service runs at most, so a crashed load generator never leaves it behind.
const SERVICE_LIFETIME: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// The embedded store in memory only.
    Memory,
    /// The embedded store with its database file, as the local stack runs it.
    File,
    /// DynamoDB at --dynamodb-endpoint.
    Dynamodb,
}

/// Benchmarks the refresh grant against a service process on 127.0.0.1.
#[derive(Debug, Parser)]
struct Args {
    /// The store the service uses.
    #[arg(long, value_enum, default_value = "file")]
    store: StoreKind,
    /// The DynamoDB endpoint, such as DynamoDB Local.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    /// The DynamoDB table; it must exist.
    #[arg(long, default_value = shared::config::DEFAULT_TABLE_NAME)]
    table_name: String,
    /// Untimed refreshes before the measured phases.
    #[arg(long, default_value_t = 200)]
    warm_up: usize,
    /// Refreshes of the latency phase, sent one at a time.
    #[arg(long, default_value_t = 2_000)]
    latency_refreshes: usize,
    /// Refreshes of the throughput phase, spread over --concurrency sessions.
    #[arg(long, default_value_t = 8_000)]
    throughput_refreshes: usize,
    /// Sessions refreshing concurrently in the throughput phase.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Time limit of each measured phase, in seconds; a phase stops early when it is reached.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// The Tokio runtime of the service: `current-thread`, as the Lambda function runs, or
    /// `multi-thread`, as the local stack runs.
    #[arg(long, value_enum, default_value = "current-thread")]
    service_runtime: RuntimeKind,
    /// Runs as the service process (started by the benchmark itself).
    #[arg(long, hide = true)]
    serve: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RuntimeKind {
    CurrentThread,
    MultiThread,
}

fn main() -> BenchResult<()> {
    let args = Args::parse();
    if args.serve {
        let runtime = match args.service_runtime {
            RuntimeKind::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            RuntimeKind::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?,
        };
        runtime.block_on(serve(&args))
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(load(&args))
    }
}

// ---------------------------------------------------------------------------------------------
// The service process.

fn bench_config() -> Config {
    let kek = KeyEncryptionKey::generate().to_base64();
    let values: HashMap<&str, String> = HashMap::from([
        ("KEY_ENCRYPTION_KEY", kek),
        (
            "COOKIE_PASSWORD",
            "benchmark-cookie-password-0123456789abcdef".to_owned(),
        ),
    ]);
    Config::from_lookup(|name| values.get(name).cloned()).expect("benchmark configuration is valid")
}

async fn open_store(args: &Args, data_dir: &std::path::Path) -> BenchResult<Arc<dyn Store>> {
    Ok(match args.store {
        StoreKind::Memory => Arc::new(EmbeddedStore::in_memory()),
        StoreKind::File => Arc::new(EmbeddedStore::open(data_dir)?),
        StoreKind::Dynamodb => {
            let endpoint = args
                .dynamodb_endpoint
                .as_deref()
                .ok_or("--store dynamodb needs --dynamodb-endpoint")?;
            Arc::new(DynamoStore::connect(args.table_name.clone(), Some(endpoint), None).await)
        }
    })
}

/// Writes an environment, a user, an organization with entitlements and a membership.
async fn seed(store: &dyn Store, kek: &KeyEncryptionKey) -> BenchResult<Value> {
    let api_key = ids::new_secret("sk_test_");
    let now = Utc::now();
    let connection_id = "conn_benchmark".to_owned();
    let environment = Environment {
        id: ids::new_id("client"),
        name: "benchmark".into(),
        mode: StripeMode::Test,
        created_at: now,
        stripe_connection: Some(StripeConnection {
            account_id: "acct_benchmark".into(),
            livemode: false,
            scope: "read_write".into(),
            connected_at: now,
            connection_id: connection_id.clone(),
        }),
        entitlements_enabled: true,
        signing_keys: vec![generate_signing_key(kek, SigningKeyStatus::Active)?],
    };
    store
        .create_environment(&environment, &ids::hash_secret(&api_key))
        .await?;

    let email = format!("bench-{}@example.com", ids::new_id("run").to_lowercase());
    let user = User {
        id: ids::new_id("user"),
        environment_id: environment.id.clone(),
        email: email.clone(),
        email_verified: true,
        first_name: Some("Bench".into()),
        last_name: None,
        name: None,
        profile_picture_url: None,
        locale: None,
        external_id: None,
        metadata: Default::default(),
        password_hash: Some(shared::sessions::users::hash_password(PASSWORD.to_owned()).await?),
        last_sign_in_at: None,
        created_at: now,
        updated_at: now,
    };
    store.create_user(&user).await?;

    let organization = Organization {
        id: ids::new_id("org"),
        environment_id: environment.id.clone(),
        name: "Benchmark".into(),
        external_id: None,
        metadata: Default::default(),
        domains: Vec::new(),
        stripe_customer_id: Some("cus_benchmark".into()),
        entitlements: Some(EntitlementSet {
            lookup_keys: vec!["audit-logs".into(), "seats".into(), "sso".into()],
            read_at_ms: now.timestamp_millis(),
            connection_id,
        }),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store.create_organization(&organization).await?;
    let membership = Membership {
        id: ids::new_id("om"),
        environment_id: environment.id.clone(),
        user_id: user.id.clone(),
        organization_id: organization.id.clone(),
        role_slugs: vec!["member".into()],
        created_at: now,
        updated_at: now,
    };
    store.create_membership(&membership).await?;
    Ok(json!({
        "api_key": api_key,
        "client_id": environment.id,
        "email": email,
        "organization_id": organization.id,
    }))
}

async fn serve(args: &Args) -> BenchResult<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        shared::logging::init();
    }
    let data_dir = std::env::temp_dir().join(format!("refresh-bench-{}", std::process::id()));
    let store = open_store(args, &data_dir).await?;
    let config = bench_config();
    let kek = KeyEncryptionKey::from_base64(
        config
            .key_encryption_key
            .as_ref()
            .map(|secret| secret.expose())
            .unwrap_or_default(),
    )?;
    let seeded = seed(store.as_ref(), &kek).await?;
    let state = AppState::new(store, config).with_signer(Some(Arc::new(Signer::new(kek))));
    let router = shared::http::with_common_layers(sessions::try_router(state)?);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let mut announcement = seeded;
    announcement["port"] = json!(listener.local_addr()?.port());
    println!("{announcement}");
    std::io::stdout().flush()?;

    // Stops when the load generator closes stdin, or after the lifetime limit.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = stop.send(());
    });
    let shutdown = async move {
        tokio::select! {
            _ = stopped => {}
            _ = tokio::time::sleep(SERVICE_LIFETIME) => {}
        }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    if args.store == StoreKind::File {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The load generator.

/// The service process, stopped when dropped.
struct Service {
    child: Child,
    seeded: Value,
    base_url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        // Closing stdin stops the service; the wait reaps it.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(args: &Args) -> BenchResult<Self> {
        let store = args
            .store
            .to_possible_value()
            .map(|value| value.get_name().to_owned())
            .ok_or("store has no name")?;
        let service_runtime = args
            .service_runtime
            .to_possible_value()
            .map(|value| value.get_name().to_owned())
            .ok_or("runtime has no name")?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--serve")
            .args(["--store", &store])
            .args(["--service-runtime", &service_runtime])
            .args(["--table-name", &args.table_name]);
        if let Some(endpoint) = &args.dynamodb_endpoint {
            command.args(["--dynamodb-endpoint", endpoint]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("service stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let seeded: Value = serde_json::from_str(&line)
            .map_err(|error| format!("service did not start: {error}: {line:?}"))?;
        let base_url = format!("http://127.0.0.1:{}", seeded["port"]);
        Ok(Service {
            child,
            seeded,
            base_url,
        })
    }

    /// Nanoseconds of CPU time the service's threads have used so far.
    fn cpu_time(&self) -> BenchResult<u64> {
        let tasks = PathBuf::from(format!("/proc/{}/task", self.child.id()));
        let mut total = 0u64;
        for task in std::fs::read_dir(tasks)? {
            let path = task?.path().join("schedstat");
            // A thread may end between the listing and the read.
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            total += text
                .split_whitespace()
                .next()
                .and_then(|field| field.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(total)
    }

    fn field(&self, name: &str) -> String {
        self.seeded[name].as_str().unwrap_or_default().to_owned()
    }
}

/// One session's refresh loop.
struct Refresher {
    http: reqwest::Client,
    url: String,
    body: Value,
}

impl Refresher {
    async fn sign_in(service: &Service, http: &reqwest::Client) -> BenchResult<Self> {
        let url = format!("{}/user_management/authenticate", service.base_url);
        let response = http
            .post(&url)
            .bearer_auth(service.field("api_key"))
            .json(&json!({
                "grant_type": "password",
                "client_id": service.field("client_id"),
                "email": service.field("email"),
                "password": PASSWORD,
            }))
            .send()
            .await?;
        let status = response.status();
        let login: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("sign-in failed with {status}: {login}").into());
        }
        let body = json!({
            "grant_type": "refresh_token",
            "client_id": service.field("client_id"),
            "client_secret": service.field("api_key"),
            "refresh_token": login["refresh_token"],
            "organization_id": service.field("organization_id"),
        });
        Ok(Refresher {
            http: http.clone(),
            url,
            body,
        })
    }

    /// Refreshes once and returns how long it took.
    async fn refresh(&mut self) -> BenchResult<Duration> {
        let started = Instant::now();
        let response = self.http.post(&self.url).json(&self.body).send().await?;
        let status = response.status();
        let reply: Value = response.json().await?;
        let elapsed = started.elapsed();
        if !status.is_success() || reply["access_token"].as_str().is_none() {
            return Err(format!("refresh failed with {status}: {reply}").into());
        }
        if reply["organization_id"] != self.body["organization_id"] {
            return Err(format!("refresh returned another organization: {reply}").into());
        }
        self.body["refresh_token"] = reply["refresh_token"].clone();
        Ok(elapsed)
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
    sorted[index.min(sorted.len() - 1)]
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn load(args: &Args) -> BenchResult<()> {
    let service = Service::start(args)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let deadline = Duration::from_secs(args.max_seconds);

    let mut single = Refresher::sign_in(&service, &http).await?;
    for _ in 0..args.warm_up {
        single.refresh().await?;
    }

    // Latency: one refresh at a time.
    let cpu_before = service.cpu_time()?;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(args.latency_refreshes);
    while latencies.len() < args.latency_refreshes && started.elapsed() < deadline {
        latencies.push(single.refresh().await?);
    }
    let latency_cpu = service.cpu_time()? - cpu_before;
    latencies.sort_unstable();
    let sequential = latencies.len();

    // Throughput: several sessions refreshing at once.
    let mut refreshers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        refreshers.push(Refresher::sign_in(&service, &http).await?);
    }
    let per_session = args.throughput_refreshes.div_ceil(args.concurrency);
    let cpu_before = service.cpu_time()?;
    let started = Instant::now();
    let tasks = refreshers.into_iter().map(|mut refresher| {
        tokio::spawn(async move {
            let mut done = 0usize;
            while done < per_session && started.elapsed() < deadline {
                refresher.refresh().await?;
                done += 1;
            }
            BenchResult::Ok(done)
        })
    });
    let mut concurrent = 0usize;
    for task in futures::future::join_all(tasks).await {
        concurrent += task??;
    }
    let wall = started.elapsed();
    let throughput_cpu = service.cpu_time()? - cpu_before;

    let store = match args.store {
        StoreKind::Memory => "embedded (memory)",
        StoreKind::File => "embedded (file)",
        StoreKind::Dynamodb => "DynamoDB Local",
    };
    println!(
        "store: {store}, service runtime: {:?}",
        args.service_runtime
    );
    println!(
        "sequential: {sequential} refreshes, p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms, service CPU {:.3} ms per refresh",
        milliseconds(percentile(&latencies, 0.50)),
        milliseconds(percentile(&latencies, 0.99)),
        latencies
            .iter()
            .map(|duration| milliseconds(*duration))
            .sum::<f64>()
            / sequential as f64,
        latency_cpu as f64 / 1e6 / sequential as f64,
    );
    println!(
        "concurrent: {concurrent} refreshes over {} sessions in {:.2} s, {:.0} refreshes/s, service CPU {:.3} ms per refresh",
        args.concurrency,
        wall.as_secs_f64(),
        concurrent as f64 / wall.as_secs_f64(),
        throughput_cpu as f64 / 1e6 / concurrent as f64,
    );
    Ok(())
}
