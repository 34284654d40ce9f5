//! Lambda entry point of the sessions function. It refuses to start without a usable
//! `KEY_ENCRYPTION_KEY`, because it could sign no token.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init();
    let state = shared::state::AppState::from_env().await?;
    let router = shared::http::with_common_layers(sessions::try_router(state)?);
    lambda_http::run(router).await
}
