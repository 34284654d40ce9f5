//! The cookie route (`GET /api/entitlements` unless `ENTITLEMENTS_PATH` sets another path). A
//! browser sends its `wos-session` cookie, sealed with `COOKIE_PASSWORD` as the WorkOS Node SDK
//! seals it. The route refreshes the session and returns the new token's entitlements and a new
//! sealed cookie that the SDK's `loadSealedSession` reads back.
//!
//! - The refresh keeps the cookie's `organizationId`, so it takes one DynamoDB round trip like
//!   the SDK's own cookie refresh.
//! - The body is `{"entitlements": [...]}`, or `{"entitlements": null}` when the new token carries
//!   no claim (not scoped to an organization, Stripe not connected, or no customer linked).
//! - The response sets `wos-session=…; Path=/; HttpOnly; Secure; SameSite=Lax` and
//!   `Cache-Control: no-store`.
//! - A missing cookie, a cookie that does not unseal (tampered, sealed with another password,
//!   malformed) and a refresh token the service rejects all get a 401 `{message, code}` with
//!   `code` `no_session_cookie_provided`, `invalid_session_cookie` or `invalid_grant`. A failed
//!   refresh does not clear the cookie: a concurrent request may just have set a newer one.
//!
//! Cookies are read from every `Cookie` header, each possibly carrying several cookies; API
//! Gateway's HTTP API joins its `cookies` array into one such header. When several `wos-session`
//! cookies arrive, the first that unseals is used.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, json};

use super::refresh::{self, Caller, RefreshRequest};
use super::{Sessions, users};
use crate::cookie::{self, COOKIE_NAME, SessionCookieData};
use crate::error::ApiError;

/// The attributes of the cookie the route sets.
pub const COOKIE_ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Lax";

fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Authentication {
        status: StatusCode::UNAUTHORIZED,
        code,
        message: message.into(),
        extra: Map::new(),
    }
}

/// Returns every `wos-session` value of the request's `Cookie` headers, in order.
pub fn session_cookies(headers: &HeaderMap) -> Vec<String> {
    // Lossy decoding keeps a cookie with stray non-ASCII bytes visible, so it is reported as
    // invalid rather than as missing.
    let headers: Vec<String> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    headers
        .iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == COOKIE_NAME).then(|| {
                let value = value.trim();
                // RFC 6265 allows a value in double quotes.
                value
                    .strip_prefix('"')
                    .and_then(|inner| inner.strip_suffix('"'))
                    .unwrap_or(value)
                    .to_owned()
            })
        })
        .filter(|value| !value.is_empty())
        .collect()
}

/// The result of a cookie refresh.
#[derive(Debug, Clone)]
pub struct CookieRefresh {
    pub entitlements: Option<Vec<String>>,
    /// The full `Set-Cookie` value.
    pub set_cookie: String,
}

/// Unseals the first `wos-session` cookie that opens with the password.
fn unseal_session(password: &str, headers: &HeaderMap) -> Result<SessionCookieData, ApiError> {
    let cookies = session_cookies(headers);
    if cookies.is_empty() {
        return Err(unauthorized(
            "no_session_cookie_provided",
            format!("No {COOKIE_NAME} cookie was sent; sign in first."),
        ));
    }
    for sealed in &cookies {
        let data = cookie::unseal(password, sealed)
            .ok()
            .and_then(|value| serde_json::from_value::<SessionCookieData>(value).ok());
        if let Some(data) = data {
            return Ok(data);
        }
    }
    tracing::info!(
        cookies = cookies.len(),
        "no session cookie could be unsealed"
    );
    Err(unauthorized(
        "invalid_session_cookie",
        format!("The {COOKIE_NAME} cookie is invalid; sign in again."),
    ))
}

/// Refreshes the session of the request's cookie.
pub async fn refresh_cookie(
    sessions: &Sessions,
    headers: &HeaderMap,
) -> Result<CookieRefresh, ApiError> {
    let password = sessions
        .state
        .config
        .require_cookie_password()
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error)))?
        .expose()
        .to_owned();
    let data = unseal_session(&password, headers)?;
    let request = RefreshRequest {
        caller: Caller::Cookie,
        refresh_token: data.refresh_token,
        organization_id: data.organization_id,
    };
    let refreshed = refresh::refresh(sessions, &request)
        .await
        .map_err(|error| match error {
            ApiError::OAuth {
                error: "invalid_grant",
                description,
                ..
            } => unauthorized("invalid_grant", description),
            ApiError::OAuth { .. } => unauthorized(
                "invalid_session_cookie",
                format!("The {COOKIE_NAME} cookie is invalid; sign in again."),
            ),
            other => other,
        })?;

    let cookie_data = SessionCookieData {
        access_token: refreshed.issued.token.clone(),
        refresh_token: refreshed.refresh_token.clone(),
        user: cookie::user_to_cookie_json(&users::to_json(&refreshed.user)),
        organization_id: refreshed.issued.claims.org_id.clone(),
        authentication_method: Some(refreshed.authentication_method.clone()),
        impersonator: None,
    };
    let value = serde_json::to_value(&cookie_data)
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error)))?;
    let sealed = cookie::seal(&password, &value)
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error)))?;
    Ok(CookieRefresh {
        entitlements: refreshed.issued.claims.entitlements.clone(),
        set_cookie: format!("{COOKIE_NAME}={sealed}; {COOKIE_ATTRIBUTES}"),
    })
}

/// Handles the cookie route and renders the response.
pub async fn handle(sessions: &Sessions, headers: &HeaderMap) -> Response {
    let refreshed = match refresh_cookie(sessions, headers).await {
        Ok(refreshed) => refreshed,
        Err(error) => return error.into_response(),
    };
    let mut response = Json(json!({ "entitlements": refreshed.entitlements })).into_response();
    match HeaderValue::from_str(&refreshed.set_cookie) {
        Ok(value) => {
            response
                .headers_mut()
                .insert(http::header::SET_COOKIE, value);
        }
        Err(error) => {
            return ApiError::Internal(anyhow::anyhow!(
                "sealed cookie is not a valid header value: {error}"
            ))
            .into_response();
        }
    }
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_from_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_static("a=1; wos-session=first"),
        );
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_static("wos-session=\"second\";b=2"),
        );
        headers.append(
            http::header::COOKIE,
            HeaderValue::from_static("wos-session-other=x; wos-session="),
        );
        assert_eq!(
            session_cookies(&headers),
            vec!["first".to_owned(), "second".to_owned()]
        );
    }
}
