//! An in-memory Stripe emulator for tests and the local stack.
//!
//! It listens on 127.0.0.1 and speaks Stripe's wire format for the calls
//! this service makes:
//! - `GET /v1/entitlements/active_entitlements` and `POST /v1/customers`,
//!   `GET`/`DELETE /v1/customers/{id}`, authenticated with the platform
//!   secret key and scoped with `Stripe-Account`;
//! - Connect OAuth: `/oauth/authorize` (an HTML consent page),
//!   `/oauth/token` and `/oauth/deauthorize`;
//! - signed snapshot webhook events, sent on request of the control API.
//!
//! Tests drive it through the control API under `/_emulator/` (see the
//! `control` module and the crate README). Every API and OAuth response
//! carries a `Request-Id: req_…` header.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let emulator = stripe_emulator::start(stripe_emulator::EmulatorConfig::default(), 0).await?;
//! println!("Stripe emulator at {}", emulator.base_url);
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod api;
mod control;
mod error;
mod events;
mod ids;
mod oauth;
mod objects;
mod observe;
mod signature;
mod state;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::middleware;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use signature::sign_payload;

use state::AppState;

/// Stripe API version the emulator reports in events and `Stripe-Version`.
pub const API_VERSION: &str = "2026-09-30.endive";

/// Path prefix of the control API.
const CONTROL_PREFIX: &str = "/_emulator/";

/// Maximum time [`RunningEmulator::shutdown`] waits for open connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of the emulated Connect platform.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Secret key (`sk_test_…` or `sk_live_…`) that API and OAuth calls must present.
    pub platform_secret_key: String,
    /// Connect client id (`ca_…`) expected by `/oauth/authorize` and `/oauth/deauthorize`.
    pub client_id: String,
    /// Mode of the platform, reported as `livemode` on objects and tokens.
    pub livemode: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            platform_secret_key: "sk_test_emulator".to_owned(),
            client_id: "ca_emulator".to_owned(),
            livemode: false,
        }
    }
}

impl fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field(
                "platform_secret_key",
                &ids::redact_key(&self.platform_secret_key),
            )
            .field("client_id", &self.client_id)
            .field("livemode", &self.livemode)
            .finish()
    }
}

/// Emulator serving in a background task. Dropping it also stops the server.
#[derive(Debug)]
pub struct RunningEmulator {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:12111`.
    pub base_url: String,
    /// Address the server listens on.
    pub local_addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningEmulator {
    /// Stops accepting connections and waits up to 5 seconds for open
    /// connections to finish before aborting the server task.
    pub async fn shutdown(mut self) {
        if let Some(sender) = self.shutdown.take() {
            // The receiver is gone only if the server already stopped.
            let _ = sender.send(());
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task).await {
            Ok(Ok(Ok(()))) => tracing::info!(base_url = %self.base_url, "Stripe emulator stopped"),
            Ok(Ok(Err(error))) => tracing::error!(%error, "Stripe emulator server failed"),
            Ok(Err(error)) => tracing::error!(%error, "Stripe emulator task failed"),
            Err(_) => {
                tracing::warn!("Stripe emulator did not stop within 5 s, aborting it");
                self.task.abort();
            }
        }
    }
}

/// Starts the emulator on `127.0.0.1:port` (`0` picks a free port) and
/// returns once it accepts connections.
pub async fn start(config: EmulatorConfig, port: u16) -> anyhow::Result<RunningEmulator> {
    anyhow::ensure!(
        !config.platform_secret_key.is_empty(),
        "platform_secret_key must not be empty"
    );
    anyhow::ensure!(!config.client_id.is_empty(), "client_id must not be empty");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port} failed"))?;
    let local_addr = listener
        .local_addr()
        .context("reading the listening address failed")?;
    let base_url = format!("http://{local_addr}");
    let (shutdown, shutdown_signal) = oneshot::channel::<()>();
    let app = router(config);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped sender also means "stop".
                let _ = shutdown_signal.await;
            })
            .await
    });
    tracing::info!(%base_url, "Stripe emulator listening");
    Ok(RunningEmulator {
        base_url,
        local_addr,
        shutdown: Some(shutdown),
        task,
    })
}

/// Builds the emulator's router with fresh in-memory state, for serving it
/// yourself or calling it with `tower::ServiceExt::oneshot`.
pub fn router(config: EmulatorConfig) -> Router {
    let state = AppState::new(config);
    Router::new()
        .merge(api::routes(state.clone()))
        .merge(oauth::routes())
        .merge(control::routes())
        .fallback(api::unrecognized)
        .method_not_allowed_fallback(api::unrecognized)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}
