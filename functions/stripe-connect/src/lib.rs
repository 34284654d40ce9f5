//! The `stripe-connect` function: the Stripe Connect OAuth routes.
//!
//! - `POST /stripe/connect` (API key): a connect link `{authorize_url, expires_at}`.
//! - `GET /stripe/oauth/callback` (the single-use `state`): Stripe's redirect, which gets an HTML
//!   page.
//! - `GET`, `PUT` and `DELETE /stripe/connection` (API key): the status, the
//!   `entitlements_enabled` toggle, and the disconnect.
//!
//! Handlers only translate HTTP; the rules live in `shared::connect`.

use std::sync::Arc;

use axum::extract::{FromRef, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use shared::auth::Authenticated;
use shared::connect::callback;
use shared::connect::connection::{self, UpdateConnection};
use shared::connect::link::{self, ConnectLinkRequest};
use shared::connect::{ConnectError, OAuthClient};
use shared::http::{JsonBody, parse_json, read_body};
use shared::state::AppState;

/// The state of the routes: the shared state and the OAuth client, built once per process.
#[derive(Clone)]
pub struct ConnectState {
    pub app: AppState,
    pub oauth: Arc<OAuthClient>,
}

impl FromRef<ConnectState> for AppState {
    fn from_ref(state: &ConnectState) -> Self {
        state.app.clone()
    }
}

/// Builds the router of the Stripe Connect routes.
pub fn router(state: AppState) -> Router {
    let oauth = Arc::new(OAuthClient::new(state.config.stripe.connect_base.clone()));
    Router::new()
        .route("/stripe/connect", post(create_link))
        .route("/stripe/oauth/callback", get(oauth_callback))
        .route(
            "/stripe/connection",
            get(connection_status)
                .put(update_connection)
                .delete(disconnect),
        )
        .with_state(ConnectState { app: state, oauth })
}

async fn create_link(
    State(state): State<ConnectState>,
    auth: Authenticated,
    body: axum::body::Body,
) -> Result<Response, ConnectError> {
    let bytes = read_body(body).await?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        parse_json::<ConnectLinkRequest>(&bytes)?;
    }
    let link = link::create(&state.app, &auth.environment_id).await?;
    Ok((StatusCode::CREATED, Json(link.to_json())).into_response())
}

async fn oauth_callback(State(state): State<ConnectState>, RawQuery(query): RawQuery) -> Response {
    let page = match callback::parse_params(query.as_deref()) {
        Ok(params) => callback::handle(&state.app, &state.oauth, params).await,
        Err(page) => page,
    };
    page.into_response()
}

async fn connection_status(
    State(state): State<ConnectState>,
    auth: Authenticated,
) -> Result<Response, ConnectError> {
    let status = connection::status(&state.app, &auth.environment_id).await?;
    Ok(Json(status).into_response())
}

async fn update_connection(
    State(state): State<ConnectState>,
    auth: Authenticated,
    JsonBody(request): JsonBody<UpdateConnection>,
) -> Result<Response, ConnectError> {
    let status = connection::update(&state.app, &auth.environment_id, request).await?;
    Ok(Json(status).into_response())
}

async fn disconnect(
    State(state): State<ConnectState>,
    auth: Authenticated,
) -> Result<Response, ConnectError> {
    let status = connection::disconnect(&state.app, &state.oauth, &auth.environment_id).await?;
    Ok(Json(status).into_response())
}
