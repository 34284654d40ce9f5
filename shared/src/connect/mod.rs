//! Stripe Connect OAuth (Standard accounts): the connect link, the OAuth callback, the connection
//! status, the entitlements toggle and the disconnect.
//!
//! The flow: `POST /stripe/connect` issues a random, single-use `state` bound to the environment
//! and returns Stripe's authorize URL. Stripe sends the browser back to `STRIPE_REDIRECT_URI`
//! with `code` and `state`. The callback consumes the state with one conditional write before it
//! exchanges the code, exchanges the code once (Stripe revokes a connection whose code is
//! exchanged twice), checks the mode, stores the connection and shows an HTML page. The state
//! record keeps the outcome until it expires, so the same callback arriving again, concurrently or
//! later, shows the same page without a second exchange.
//!
//! - [`link`]: the connect link and its state.
//! - [`callback`]: the callback's rules and its pages.
//! - [`connection`]: status, toggle and disconnect.
//! - [`client`]: the HTTP client of Stripe's OAuth endpoints.
//! - [`pages`]: the HTML page type.
//! - [`platform`]: the platform configuration each step needs.

pub mod callback;
pub mod client;
pub mod connection;
pub mod link;
pub mod pages;
pub mod platform;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::error::ApiError;
use crate::store::StoreError;

pub use client::OAuthClient;
pub use platform::NotConfigured;

/// The error of the JSON routes: an [`ApiError`], or a missing platform variable.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// 503 with `{message, code: "stripe_connect_not_configured"}` naming the variables. A 5xx,
    /// because the client cannot fix it, and not a 500, whose body is opaque by design.
    #[error(transparent)]
    NotConfigured(#[from] NotConfigured),
}

impl From<StoreError> for ConnectError {
    fn from(error: StoreError) -> Self {
        ConnectError::Api(error.into())
    }
}

impl IntoResponse for ConnectError {
    fn into_response(self) -> Response {
        match self {
            ConnectError::Api(error) => error.into_response(),
            ConnectError::NotConfigured(error) => {
                let names: Vec<&str> = error
                    .missing
                    .iter()
                    .map(|variable| variable.name())
                    .collect();
                tracing::error!(missing = ?names, "Stripe Connect request rejected: platform not configured");
                let body = json!({
                    "message": error.message(),
                    "code": "stripe_connect_not_configured",
                });
                (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
            }
        }
    }
}

/// The current time in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
