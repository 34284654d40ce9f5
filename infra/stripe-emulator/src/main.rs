//! `stripe-emulator` binary: serves the Stripe emulator on 127.0.0.1 until
//! Ctrl-C, printing its base URL on standard output once it listens.

use clap::Parser;
use stripe_emulator::EmulatorConfig;
use tracing_subscriber::EnvFilter;

/// Stripe emulator for tests and the local stack (listens on 127.0.0.1 only).
#[derive(Debug, Parser)]
#[command(name = "stripe-emulator", version)]
struct Args {
    /// TCP port on 127.0.0.1; 0 picks a free port.
    #[arg(long, env = "STRIPE_EMULATOR_PORT", default_value_t = 12111)]
    port: u16,
    /// Platform secret key that API and OAuth requests must present.
    #[arg(
        long,
        env = "STRIPE_EMULATOR_PLATFORM_SECRET_KEY",
        default_value = "sk_test_emulator",
        hide_env_values = true
    )]
    platform_secret_key: String,
    /// Connect client id (ca_…) of the platform.
    #[arg(long, env = "STRIPE_EMULATOR_CLIENT_ID", default_value = "ca_emulator")]
    client_id: String,
    /// Report objects, tokens and events as live mode.
    #[arg(long, env = "STRIPE_EMULATOR_LIVEMODE")]
    livemode: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = EmulatorConfig {
        platform_secret_key: args.platform_secret_key,
        client_id: args.client_id,
        livemode: args.livemode,
    };
    let emulator = stripe_emulator::start(config, args.port).await?;
    println!("{}", emulator.base_url);
    tokio::signal::ctrl_c().await?;
    tracing::info!("Ctrl-C received, stopping");
    emulator.shutdown().await;
    Ok(())
}
