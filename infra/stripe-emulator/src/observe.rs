//! Middleware in front of every Stripe API and OAuth route (everything
//! outside `/_emulator/`). For each request it
//! - assigns a `req_…` id and returns it in the `Request-Id` header,
//! - appends an entry to the request log (never secret values),
//! - applies the first matching injected failure or delay,
//! - renders [`ApiError`] bodies with the request id in `request_log_url`.

use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{ApiError, InjectedError};
use crate::state::{AppState, RequestRecord};
use crate::{API_VERSION, CONTROL_PREFIX, ids};

/// Header carrying the request id, as Stripe sends it.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
/// Header selecting the connected account of an API request.
pub(crate) const STRIPE_ACCOUNT: HeaderName = HeaderName::from_static("stripe-account");
const STRIPE_VERSION: HeaderName = HeaderName::from_static("stripe-version");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Maximum request body size accepted by the API and OAuth routes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Query parameters whose values never enter the request log.
const SECRET_QUERY_KEYS: &[&str] = &["code", "client_secret", "refresh_token", "access_token"];

/// Observes one API or OAuth request; control routes pass through untouched.
pub(crate) async fn observe(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with(CONTROL_PREFIX) {
        return next.run(request).await;
    }
    let request_id = ids::request_id();
    let livemode = state.config().livemode;
    let (parts, body) = request.into_parts();

    let body = to_bytes(body, MAX_BODY_BYTES).await;
    let record = describe(&parts, body.as_ref().ok());
    let echoed = EchoedHeaders {
        stripe_account: record.stripe_account.clone(),
        stripe_version: record.stripe_version.clone(),
    };
    let path = parts.uri.path().to_owned();
    let (seq, rule) = {
        let mut store = state.lock();
        let seq = store.record_request(record);
        (seq, store.take_failure(&path))
    };
    let injected = rule.is_some();

    let mut response = match (body, rule) {
        (Err(_), _) => ApiError::MalformedRequest {
            reason: format!("the body exceeds {MAX_BODY_BYTES} bytes"),
        }
        .render(&request_id, livemode),
        (Ok(body), Some(rule)) => {
            tracing::info!(
                path = %path,
                status = rule.status,
                delay_ms = rule.delay_ms,
                "applying injected failure"
            );
            if rule.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(rule.delay_ms)).await;
            }
            match StatusCode::from_u16(rule.status) {
                Ok(status) if status != StatusCode::OK => {
                    ApiError::Injected(InjectedError::for_status(
                        status,
                        rule.stripe_should_retry,
                        rule.rate_limited_reason,
                    ))
                    .render(&request_id, livemode)
                }
                _ => run_handler(parts, body, next, &request_id, livemode).await,
            }
        }
        (Ok(body), None) => run_handler(parts, body, next, &request_id, livemode).await,
    };

    add_response_headers(&mut response, &request_id, &path, &echoed);
    state
        .lock()
        .finish_request(seq, response.status().as_u16(), injected);
    response
}

/// Request headers that `/v1` responses echo back.
struct EchoedHeaders {
    stripe_account: Option<String>,
    stripe_version: Option<String>,
}

async fn run_handler(
    parts: Parts,
    body: Bytes,
    next: Next,
    request_id: &str,
    livemode: bool,
) -> Response {
    let mut response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        response = error.render(request_id, livemode);
    }
    response
}

/// Adds `Request-Id`, and on `/v1` responses the `Stripe-Version` and
/// `Stripe-Account` headers that Stripe echoes.
fn add_response_headers(
    response: &mut Response,
    request_id: &str,
    path: &str,
    echoed: &EchoedHeaders,
) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, value);
    }
    if !path.starts_with("/v1/") {
        return;
    }
    let version = echoed.stripe_version.as_deref().unwrap_or(API_VERSION);
    if let Ok(value) = HeaderValue::from_str(version) {
        headers.insert(STRIPE_VERSION, value);
    }
    if let Some(account) = &echoed.stripe_account
        && let Ok(value) = HeaderValue::from_str(account)
    {
        headers.insert(STRIPE_ACCOUNT, value);
    }
}

/// Builds the log entry of a request. `body` is `None` when it was too large.
fn describe(parts: &Parts, body: Option<&Bytes>) -> RequestRecord {
    let header_text = |name: &HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (query, query_params) = redacted_query(parts.uri.query());
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| authorization_scheme(value.as_bytes()));
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let form_fields = match body {
        Some(body) if is_form => form_field_names(body),
        _ => Vec::new(),
    };
    RequestRecord {
        seq: 0,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        query_params,
        stripe_account: header_text(&STRIPE_ACCOUNT),
        stripe_version: header_text(&STRIPE_VERSION),
        authorization,
        idempotency_key: parts.headers.contains_key(IDEMPOTENCY_KEY),
        form_fields,
        status: None,
        injected: false,
    }
}

fn authorization_scheme(value: &[u8]) -> &'static str {
    let lower = value.to_ascii_lowercase();
    if lower.starts_with(b"bearer ") {
        "bearer"
    } else if lower.starts_with(b"basic ") {
        "basic"
    } else {
        "other"
    }
}

/// Returns the query string and its decoded pairs, with the values of
/// [`SECRET_QUERY_KEYS`] replaced by `[redacted]`.
fn redacted_query(query: Option<&str>) -> (Option<String>, Vec<(String, String)>) {
    let Some(raw) = query else {
        return (None, Vec::new());
    };
    let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
    let mut redacted = false;
    for (key, value) in &mut pairs {
        if SECRET_QUERY_KEYS.contains(&key.as_str()) {
            *value = "[redacted]".to_owned();
            redacted = true;
        }
    }
    let query = if redacted {
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    } else {
        raw.to_owned()
    };
    (Some(query), pairs)
}

/// Returns the distinct field names of a form-encoded body, in order.
fn form_field_names(body: &[u8]) -> Vec<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for (name, _) in pairs {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_query_hides_codes() {
        let (query, pairs) = redacted_query(Some("code=ac_secret&state=xyz"));
        let query = query.unwrap_or_default();
        assert!(!query.contains("ac_secret"), "{query}");
        assert!(query.contains("state=xyz"), "{query}");
        assert_eq!(pairs[0], ("code".to_owned(), "[redacted]".to_owned()));
    }

    #[test]
    fn redacted_query_keeps_plain_query_verbatim() {
        let (query, pairs) = redacted_query(Some("customer=cus_1&expand[]=data.feature"));
        assert_eq!(
            query.as_deref(),
            Some("customer=cus_1&expand[]=data.feature")
        );
        assert_eq!(pairs.len(), 2);
    }

    #[test]
    fn form_field_names_are_distinct_and_ordered() {
        let names = form_field_names(b"grant_type=authorization_code&code=ac_1&code=ac_2");
        assert_eq!(names, vec!["grant_type".to_owned(), "code".to_owned()]);
    }
}
