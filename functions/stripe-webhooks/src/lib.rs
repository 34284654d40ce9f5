//! The `stripe-webhooks` function: `POST /webhooks/stripe`. The handler reads the raw body and
//! the `Stripe-Signature` header and hands both to `shared::webhooks`, which verifies, applies
//! and decides the status: 200 for a handled or ignored event, 400 for a bad signature or body,
//! 5xx for a failure worth Stripe's retry.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::HeaderMap;
use shared::error::ApiError;
use shared::state::AppState;
use shared::webhooks::WebhookProcessor;

/// The largest webhook body accepted. Stripe events are far smaller; the limit only bounds memory.
pub const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

/// The header that carries Stripe's signature.
const STRIPE_SIGNATURE: &str = "stripe-signature";

/// Builds the router of `POST /webhooks/stripe`.
pub fn router(state: AppState) -> Router {
    let processor = Arc::new(WebhookProcessor::new(state));
    Router::new()
        .route("/webhooks/stripe", post(receive))
        .with_state(processor)
}

async fn receive(
    State(processor): State<Arc<WebhookProcessor>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The raw bytes, exactly as signed: the body is never parsed and re-serialised before
    // verification. lambda_http has already decoded a base64-encoded API Gateway body.
    let payload = axum::body::to_bytes(body, MAX_WEBHOOK_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_WEBHOOK_BYTES,
        })?;
    let signature = headers
        .get(STRIPE_SIGNATURE)
        .and_then(|value| value.to_str().ok());
    let outcome = processor.handle(signature, &payload).await?;
    Ok(Json(outcome.to_json()).into_response())
}
