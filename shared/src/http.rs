//! HTTP helpers every router uses: the `X-Request-ID` header and request span, a JSON body
//! extractor whose errors name the field, and JSON fallbacks for unknown paths and methods.

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use tracing::Instrument;

use crate::error::{ApiError, FieldError};

/// The largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The response header that carries the request ID, which the WorkOS SDKs copy into exceptions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Adds the request-ID middleware and the JSON fallbacks to a router.
pub fn with_common_layers(router: Router) -> Router {
    router
        .fallback(path_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(request_context))
}

/// Gives every request an ID, runs it inside a span that carries the ID, logs its outcome, and
/// returns the ID in `X-Request-ID`. Query strings are not logged: OAuth codes and states travel
/// in them.
async fn request_context(request: Request, next: Next) -> Response {
    let request_id = crate::ids::new_id("req");
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
        environment_id = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

async fn path_not_found() -> ApiError {
    ApiError::NotFound {
        message: "The requested path could not be found.".into(),
        entity_id: None,
    }
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({
        "message": "The method is not allowed on this path.",
        "code": "method_not_allowed",
    });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// A JSON request body. Invalid JSON is a 400; a value of the wrong type, a missing field or an
/// unknown enum value is a 422 naming the field's path; a body over [`MAX_BODY_BYTES`] is a 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request.into_body()).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads a body up to [`MAX_BODY_BYTES`].
pub async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        })
}

/// Parses a JSON object body with the error mapping of [`JsonBody`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde reads a struct from an array too, field by position, which would name fields `[0]`.
    if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::Validation {
            message: "The request body must be a JSON object, not an array.".into(),
            errors: vec![FieldError {
                field: "body".into(),
                code: "body_invalid".into(),
            }],
        });
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            Category::Data => {
                let field = if path == "." {
                    missing_field(&inner).unwrap_or_else(|| "body".into())
                } else {
                    match missing_field(&inner) {
                        Some(missing) => format!("{path}.{missing}"),
                        None => path,
                    }
                };
                ApiError::Validation {
                    message: format!(
                        "{field} is invalid: {}.",
                        strip_position(&inner.to_string())
                    ),
                    errors: vec![FieldError {
                        code: format!("{}_invalid", field.replace('.', "_")),
                        field,
                    }],
                }
            }
            Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
                code: "invalid_json",
                message: format!("The request body is not valid JSON: {inner}."),
            },
        }
    })
}

/// The field named by serde's "missing field `x`" message, which carries no path of its own.
fn missing_field(error: &serde_json::Error) -> Option<String> {
    let message = error.to_string();
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        metadata: Option<std::collections::BTreeMap<String, String>>,
    }

    fn field_of(error: ApiError) -> String {
        match error {
            ApiError::Validation { errors, .. } => errors[0].field.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn array_body_names_body() {
        let error = parse_json::<Body>(br#" ["a", null]"#).unwrap_err();
        assert_eq!(field_of(error), "body");
    }

    #[test]
    fn wrong_type_names_field() {
        let error = parse_json::<Body>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(field_of(error), "name");
    }

    #[test]
    fn nested_wrong_type_names_path() {
        let error = parse_json::<Body>(br#"{"name": "a", "metadata": {"k": 1}}"#).unwrap_err();
        assert_eq!(field_of(error), "metadata.k");
    }

    #[test]
    fn missing_field_is_named() {
        let error = parse_json::<Body>(br#"{}"#).unwrap_err();
        assert_eq!(field_of(error), "name");
    }

    #[test]
    fn malformed_json_is_bad_request() {
        let error = parse_json::<Body>(br#"{"name": "#).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}
