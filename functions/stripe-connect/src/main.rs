//! Lambda entry point of the stripe-connect function. It runs on Tokio's current-thread runtime:
//! Lambda sends a process one request at a time, and that runtime spends less CPU per request
//! (measured on the sessions function: BENCHMARKS.md).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let state = shared::state::AppState::from_env().await?;
    let router = shared::http::with_common_layers(stripe_connect::router(state));
    lambda_http::run(router).await
}
