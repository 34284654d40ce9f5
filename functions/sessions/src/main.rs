//! Lambda entry point of the sessions function. It refuses to start without a usable
//! `KEY_ENCRYPTION_KEY`, because it could sign no token.
//!
//! Lambda sends one request at a time to a process, so a single-threaded runtime serves it fully.
//! It also spends less CPU per refresh than the multi-threaded one, which hands each DynamoDB
//! response between threads: 8 to 19 % less in `examples/refresh_bench.rs` (BENCHMARKS.md).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let state = shared::state::AppState::from_env().await?;
    let router = shared::http::with_common_layers(sessions::try_router(state)?);
    lambda_http::run(router).await
}
