//! Error types and their wire formats: Stripe API errors (nested `error`
//! object), Connect OAuth errors (flat `error` + `error_description`) and
//! control API errors.
//!
//! API error bodies follow Stripe's practice of omitting absent fields:
//! `type`, `message` and `request_log_url` are always present, `code` and
//! `doc_url` only when the error has a code, and `param` only when the error
//! concerns one parameter. Keys are sorted alphabetically, as Stripe sends them.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::ids;

/// Header naming why Stripe rate-limited a request.
pub(crate) const RATE_LIMITED_REASON: HeaderName =
    HeaderName::from_static("stripe-rate-limited-reason");
/// Header telling clients whether Stripe advises a retry.
pub(crate) const SHOULD_RETRY: HeaderName = HeaderName::from_static("stripe-should-retry");

/// Message Stripe returns when no API key is sent.
const MISSING_API_KEY_MESSAGE: &str = "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Stripe API error (`{"error":{…}}`), returned by `/v1` handlers.
///
/// `IntoResponse` renders it with a fresh request id; the request observer
/// re-renders it with the id it sent in the `Request-Id` header.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{MISSING_API_KEY_MESSAGE}")]
    MissingApiKey,
    #[error("Invalid API Key provided: {redacted_key}")]
    InvalidApiKey { redacted_key: String },
    // Sources for wording, status, type and code (public reports of real
    // responses, no Stripe reference page states all four):
    // - message: quoted verbatim in github.com/letsrevel/revel-backend issue
    //   694, where stripe-python raised it as `PermissionError`;
    // - status and type: github.com/stripe/stripe-node issue 2246 shows a
    //   `StripePermissionError` for a similar key/account message with
    //   `statusCode: 403` and `rawType: 'invalid_request_error'`;
    // - code: Stripe's error-code list (read in a third-party copy) describes
    //   `account_invalid` as "The account ID provided as a value for the
    //   Stripe-Account header is invalid."
    #[error(
        "The provided key '{redacted_key}' does not have access to account '{account}' (or that account does not exist). Application access may have been revoked."
    )]
    AccountInvalid {
        redacted_key: String,
        account: String,
    },
    #[error("Missing required param: {param}.")]
    ParameterMissing { param: String },
    #[error("Received unknown parameter: {param}")]
    ParameterUnknown { param: String },
    #[error("Invalid integer: {value}")]
    InvalidInteger { param: String, value: String },
    #[error("This value must be greater than or equal to {min}.")]
    IntegerTooSmall { param: String, min: i64 },
    #[error("This value must be less than or equal to {max}.")]
    IntegerTooLarge { param: String, max: i64 },
    #[error("You may only specify one of these parameters: {first}, {second}.")]
    ConflictingParameters {
        first: &'static str,
        second: &'static str,
    },
    #[error("This property cannot be expanded ({path}).")]
    CannotExpand { path: String },
    #[error("No such {resource}: '{id}'")]
    ResourceMissing {
        resource: &'static str,
        id: String,
        param: &'static str,
    },
    #[error("Invalid request: {reason}")]
    MalformedRequest { reason: String },
    #[error(
        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
    )]
    IdempotencyKeyReused { key: String },
    #[error(
        "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
    )]
    UnrecognizedUrl { method: String, path: String },
    #[error("{}", .0.message)]
    Injected(InjectedError),
}

/// Error returned by a failure injection rule.
#[derive(Debug, Clone)]
pub(crate) struct InjectedError {
    pub(crate) status: StatusCode,
    pub(crate) error_type: &'static str,
    pub(crate) code: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) stripe_should_retry: Option<bool>,
    pub(crate) rate_limited_reason: Option<String>,
}

impl InjectedError {
    /// Builds Stripe's error for an injected HTTP status. `status` must be 4xx or 5xx.
    pub(crate) fn for_status(
        status: StatusCode,
        stripe_should_retry: Option<bool>,
        rate_limited_reason: Option<String>,
    ) -> Self {
        let (error_type, code, message) = match status.as_u16() {
            400 => (
                "invalid_request_error",
                None,
                "Invalid request (failure injected by the Stripe emulator).",
            ),
            401 => (
                "invalid_request_error",
                None,
                "Invalid API Key provided: (failure injected by the Stripe emulator)",
            ),
            402 => (
                "card_error",
                Some("card_declined"),
                "Your card was declined.",
            ),
            403 => (
                "invalid_request_error",
                Some("account_invalid"),
                "The provided key does not have access to this account (failure injected by the Stripe emulator). Application access may have been revoked.",
            ),
            404 => (
                "invalid_request_error",
                Some("resource_missing"),
                "No such object (failure injected by the Stripe emulator).",
            ),
            409 => (
                "idempotency_error",
                Some("idempotency_key_in_use"),
                "There is currently another in-progress request using this Stripe-Idempotency-Key. Please try again later.",
            ),
            // Stripe's rate-limit message; `rate_limit` is its error code for 429.
            429 => (
                "invalid_request_error",
                Some("rate_limit"),
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            ),
            code if code >= 500 => (
                "api_error",
                None,
                "An unknown error occurred (failure injected by the Stripe emulator).",
            ),
            _ => (
                "invalid_request_error",
                None,
                "Request failed (failure injected by the Stripe emulator).",
            ),
        };
        let rate_limited_reason = if status == StatusCode::TOO_MANY_REQUESTS {
            Some(rate_limited_reason.unwrap_or_else(|| "global-rate".to_owned()))
        } else {
            rate_limited_reason
        };
        Self {
            status,
            error_type,
            code,
            message: message.to_owned(),
            stripe_should_retry,
            rate_limited_reason,
        }
    }
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::MissingApiKey | Self::InvalidApiKey { .. } => StatusCode::UNAUTHORIZED,
            Self::AccountInvalid { .. } => StatusCode::FORBIDDEN,
            Self::ResourceMissing { .. } | Self::UnrecognizedUrl { .. } => StatusCode::NOT_FOUND,
            Self::Injected(injected) => injected.status,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            Self::IdempotencyKeyReused { .. } => "idempotency_error",
            Self::Injected(injected) => injected.error_type,
            _ => "invalid_request_error",
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            Self::AccountInvalid { .. } => Some("account_invalid"),
            Self::ParameterMissing { .. } => Some("parameter_missing"),
            Self::ParameterUnknown { .. } => Some("parameter_unknown"),
            Self::InvalidInteger { .. }
            | Self::IntegerTooSmall { .. }
            | Self::IntegerTooLarge { .. } => Some("parameter_invalid_integer"),
            Self::ResourceMissing { .. } => Some("resource_missing"),
            Self::Injected(injected) => injected.code,
            _ => None,
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::ParameterMissing { param }
            | Self::ParameterUnknown { param }
            | Self::InvalidInteger { param, .. }
            | Self::IntegerTooSmall { param, .. }
            | Self::IntegerTooLarge { param, .. } => Some(param),
            Self::ConflictingParameters { first, .. } => Some(first),
            Self::CannotExpand { .. } => Some("expand"),
            Self::ResourceMissing { param, .. } => Some(param),
            _ => None,
        }
    }

    /// Renders the Stripe error body and headers for `request_id`.
    pub(crate) fn render(&self, request_id: &str, livemode: bool) -> Response {
        let mut error = Map::new();
        if let Some(code) = self.code() {
            error.insert("code".into(), Value::from(code));
            error.insert(
                "doc_url".into(),
                Value::from(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        error.insert("message".into(), Value::from(self.to_string()));
        if let Some(param) = self.param() {
            error.insert("param".into(), Value::from(param));
        }
        let mode_path = if livemode { "" } else { "test/" };
        error.insert(
            "request_log_url".into(),
            Value::from(format!(
                "https://dashboard.stripe.com/{mode_path}logs/{request_id}?t={}",
                unix_now()
            )),
        );
        error.insert("type".into(), Value::from(self.error_type()));

        let mut response = (self.status(), Json(json!({ "error": error }))).into_response();
        if let Self::Injected(injected) = self {
            let headers = response.headers_mut();
            if let Some(retry) = injected.stripe_should_retry {
                headers.insert(SHOULD_RETRY, HeaderValue::from_static(bool_str(retry)));
            }
            if let Some(reason) = &injected.rate_limited_reason
                && let Ok(value) = HeaderValue::from_str(reason)
            {
                headers.insert(RATE_LIMITED_REASON, value);
            }
        }
        response
    }
}

fn bool_str(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.render(&ids::request_id(), false);
        response.extensions_mut().insert(self);
        response
    }
}

/// Connect OAuth error, rendered as Stripe's flat `{error, error_description}`.
///
/// Stripe does not document HTTP statuses for these endpoints. The emulator
/// uses 400, and 401 for a missing or wrong platform key.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{description}")]
    InvalidClient {
        description: String,
        unauthenticated: bool,
    },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    UnsupportedResponseType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidRedirectUri(String),
}

impl OAuthError {
    /// Returns the OAuth `error` code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient {
                unauthenticated: true,
                ..
            } => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Renders the error shown instead of a redirect by `/oauth/authorize`:
    /// `{error, error_description, state}` with `state` null when absent.
    pub(crate) fn render_with_state(&self, state: Option<&str>) -> Response {
        let body = json!({
            "error": self.code(),
            "error_description": self.to_string(),
            "state": state,
        });
        (self.status(), Json(body)).into_response()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code(),
            "error_description": self.to_string(),
        });
        (self.status(), Json(body)).into_response()
    }
}

/// Error of a control API route, rendered as `{"error": "<message>"}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}
