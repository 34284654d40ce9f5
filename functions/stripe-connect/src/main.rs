//! Lambda entry point of the stripe-connect function.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let state = shared::state::AppState::from_env().await?;
    let router = shared::http::with_common_layers(stripe_connect::router(state));
    lambda_http::run(router).await
}
