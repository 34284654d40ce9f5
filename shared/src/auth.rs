//! API-key authentication: `Authorization: Bearer sk_…`, looked up by the key's SHA-256 hash.

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use crate::error::ApiError;
use crate::ids::hash_secret;
use crate::state::AppState;

/// The environment an API key opened. Extracting it rejects the request with a 401 when the key is
/// missing or unknown.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub environment_id: String,
}

/// Returns the bearer token of an `Authorization` header value, if it has one.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let token = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .ok_or(ApiError::Unauthorized)?;
        let environment_id = state
            .store
            .environment_id_for_api_key(&hash_secret(token))
            .await?
            .ok_or_else(|| {
                tracing::info!("rejected an unknown API key");
                ApiError::Unauthorized
            })?;
        tracing::Span::current().record("environment_id", environment_id.as_str());
        Ok(Authenticated { environment_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_parses_scheme_case_insensitively() {
        assert_eq!(bearer_token("Bearer sk_abc"), Some("sk_abc"));
        assert_eq!(bearer_token("bearer sk_abc"), Some("sk_abc"));
        assert_eq!(bearer_token("Basic sk_abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("sk_abc"), None);
    }
}
