//! Errors that reach API clients, in the two body shapes the WorkOS API uses: `{message, code,
//! errors?}` for most failures and the OAuth `{error, error_description}` for grant failures.
//!
//! Expected failures (bad input, not found, conflict) become 4xx bodies that name the field. Only the
//! unexpected becomes an opaque 500, whose cause chain is logged once here, never sent.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::store::StoreError;

/// One failed requirement in a 422 body, as the WorkOS SDKs read it (`errors[].field`, `.code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
}

/// Maximum length, in characters, of a request value that an error message repeats in full.
pub const MAX_ECHOED_CHARS: usize = 256;

/// Returns a request value for an error message, cut to [`MAX_ECHOED_CHARS`] characters with a
/// trailing `…`, so that a request cannot make its error reply carry a large body back.
pub fn echoed(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

/// An error returned by a route, rendered in the WorkOS shape by [`IntoResponse`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with `{message, code}`, for a body that is not JSON or a request that cannot be parsed.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },

    /// 401; the SDKs raise their fixed "Unauthorized" exception and read nothing from the body.
    #[error("missing or invalid API key")]
    Unauthorized,

    /// 404 with `{message, code, entity_id?}`.
    #[error("{message}")]
    NotFound {
        message: String,
        entity_id: Option<String>,
    },

    /// 409 with `{message, code}`.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    /// 413 for a body over the size limit.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },

    /// 422 with `{message, code, errors: [{field, code}]}`.
    #[error("{message}")]
    Validation {
        message: String,
        errors: Vec<FieldError>,
    },

    /// An OAuth grant failure `{error, error_description}` (RFC 6749 section 5.2).
    #[error("{error}: {description}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: String,
    },

    /// An authentication failure with a `code` and extra fields, such as
    /// `organization_selection_required` with its `pending_authentication_token`.
    #[error("{message}")]
    Authentication {
        status: StatusCode,
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },

    /// 503 with `Retry-After`, for a dependency that failed in a way worth retrying.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u64,
    },

    /// Anything unexpected: a 500 whose cause is logged and never sent.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A 422 for one field, with a message that names it and a code the SDKs print.
    pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Self {
        ApiError::Validation {
            message: message.into(),
            errors: vec![FieldError {
                field: field.to_owned(),
                code: code.to_owned(),
            }],
        }
    }

    /// A 404 for an entity of `kind` (`"Organization"`) with the given ID.
    pub fn not_found(kind: &str, id: &str) -> Self {
        let id = echoed(id);
        ApiError::NotFound {
            message: format!("{kind} not found: '{id}'."),
            entity_id: Some(id),
        }
    }

    /// An OAuth `invalid_grant` with HTTP 400.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        ApiError::OAuth {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_grant",
            description: description.into(),
        }
    }

    /// An OAuth `invalid_request` with HTTP 400.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        ApiError::OAuth {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
        }
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::OAuth { status, .. } => *status,
            ApiError::Authentication { status, .. } => *status,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> Value {
        match self {
            ApiError::BadRequest { code, message } => json!({ "message": message, "code": code }),
            ApiError::Unauthorized => json!({
                "message": "Missing or invalid API key. Send it as 'Authorization: Bearer sk_…'.",
                "code": "unauthorized",
            }),
            ApiError::NotFound { message, entity_id } => {
                let mut body = json!({ "message": message, "code": "entity_not_found" });
                if let Some(id) = entity_id {
                    body["entity_id"] = json!(id);
                }
                body
            }
            ApiError::Conflict { code, message } => json!({ "message": message, "code": code }),
            ApiError::PayloadTooLarge { limit } => json!({
                "message": format!("The request body exceeds the limit of {limit} bytes."),
                "code": "payload_too_large",
            }),
            ApiError::Validation { message, errors } => json!({
                "message": message,
                "code": "invalid_request_parameters",
                "errors": errors,
            }),
            ApiError::OAuth {
                error, description, ..
            } => json!({ "error": error, "error_description": description }),
            ApiError::Authentication {
                code,
                message,
                extra,
                ..
            } => {
                let mut body = extra.clone();
                body.insert("code".into(), json!(code));
                body.insert("message".into(), json!(message));
                Value::Object(body)
            }
            ApiError::Unavailable { message, .. } => {
                json!({ "message": message, "code": "service_unavailable" })
            }
            ApiError::Internal(_) => json!({
                "message": "An internal error occurred. Retry the request; if it keeps failing, report the X-Request-ID header.",
                "code": "internal_error",
            }),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(source) => {
                tracing::error!(error = format!("{source:#}"), "request failed");
            }
            ApiError::Unavailable { message, .. } => {
                tracing::warn!(%message, "dependency unavailable");
            }
            _ => {}
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if let ApiError::Unavailable {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Internal(anyhow::Error::new(error))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        ApiError::Internal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(error: ApiError) -> (StatusCode, Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn not_found_echo_bounded() {
        let (_, short) = render(ApiError::not_found("Organization", "org_1")).await;
        assert_eq!(short["entity_id"], "org_1");

        let long_id = "o".repeat(60_000);
        let (status, body) = render(ApiError::not_found("Organization", &long_id)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let entity_id = body["entity_id"].as_str().unwrap();
        assert_eq!(entity_id.chars().count(), MAX_ECHOED_CHARS + 1);
        assert!(entity_id.ends_with('…'));
        assert!(body["message"].as_str().unwrap().len() < 1_000);
    }

    #[test]
    fn echoed_cuts_on_characters() {
        assert_eq!(
            echoed("é".repeat(MAX_ECHOED_CHARS).as_str()),
            "é".repeat(MAX_ECHOED_CHARS)
        );
        let long = echoed(&"é".repeat(MAX_ECHOED_CHARS + 5));
        assert_eq!(long, format!("{}…", "é".repeat(MAX_ECHOED_CHARS)));
    }

    #[tokio::test]
    async fn validation_error_names_field() {
        let (status, body) = render(ApiError::invalid_field(
            "name",
            "name_required",
            "name is required.",
        ))
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], "name");
        assert_eq!(body["errors"][0]["code"], "name_required");
        assert_eq!(body["message"], "name is required.");
    }

    #[tokio::test]
    async fn oauth_error_uses_flat_shape() {
        let (status, body) = render(ApiError::invalid_grant("Invalid refresh token.")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_description"], "Invalid refresh token.");
        assert!(body.get("code").is_none());
    }

    #[tokio::test]
    async fn internal_error_hides_cause() {
        let (status, body) = render(ApiError::Internal(anyhow::anyhow!("secret detail"))).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("secret detail"));
        assert_eq!(body["code"], "internal_error");
    }
}
