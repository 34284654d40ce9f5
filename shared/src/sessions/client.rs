//! The client check of `POST /user_management/authenticate`.
//!
//! The Node SDK sends its API key twice: as `Authorization: Bearer` and as `client_secret`. Either
//! alone is accepted; when both are present they must be equal. `client_id` is the environment ID,
//! and it must name the environment the API key belongs to:
//!
//! - no API key, or an unknown one: 401 (the SDK raises its `UnauthorizedException`);
//! - a bearer key and a different `client_secret`: 401 `{error: "invalid_client"}`;
//! - no `client_id`: 400 `{error: "invalid_request"}`;
//! - a `client_id` of another (or no) environment: 400 `{error: "invalid_client"}`, so the SDK's
//!   `OauthException` carries the reason instead of a bare "Unauthorized".

use http::StatusCode;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;

/// The API key and client ID of an authenticate request.
#[derive(Clone)]
pub struct ClientCredentials {
    pub api_key: String,
    pub client_id: String,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Returns the hash under which the API key is stored.
    pub fn api_key_hash(&self) -> String {
        ids::hash_secret(&self.api_key)
    }
}

fn invalid_client(status: StatusCode, description: impl Into<String>) -> ApiError {
    ApiError::OAuth {
        status,
        error: "invalid_client",
        description: description.into(),
    }
}

/// Picks the API key and checks the form of `client_id`, without reading the store.
pub fn credentials(
    bearer: Option<&str>,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Result<ClientCredentials, ApiError> {
    let api_key = match (bearer, client_secret) {
        (Some(bearer), Some(secret)) => {
            if !bool::from(bearer.as_bytes().ct_eq(secret.as_bytes())) {
                return Err(invalid_client(
                    StatusCode::UNAUTHORIZED,
                    "client_secret does not match the API key in the Authorization header.",
                ));
            }
            bearer
        }
        (Some(key), None) | (None, Some(key)) => key,
        (None, None) => return Err(ApiError::Unauthorized),
    };
    let Some(client_id) = client_id else {
        return Err(ApiError::invalid_request("client_id is required."));
    };
    if !ids::is_id(client_id, "client") {
        return Err(unknown_client(client_id));
    }
    Ok(ClientCredentials {
        api_key: api_key.to_owned(),
        client_id: client_id.to_owned(),
    })
}

fn unknown_client(client_id: &str) -> ApiError {
    invalid_client(
        StatusCode::BAD_REQUEST,
        format!(
            "client_id '{}' is not the client ID of the API key's environment.",
            crate::error::echoed(client_id)
        ),
    )
}

/// Checks the environment an API key resolved to (`None` for an unknown key) against the
/// request's `client_id`.
pub fn check(
    api_key_environment_id: Option<&str>,
    credentials: &ClientCredentials,
) -> Result<(), ApiError> {
    let Some(environment_id) = api_key_environment_id else {
        tracing::info!("rejected an unknown API key");
        return Err(ApiError::Unauthorized);
    };
    if environment_id != credentials.client_id {
        return Err(unknown_client(&credentials.client_id));
    }
    Ok(())
}

/// Looks the API key up and checks it against `client_id`. Returns the environment ID.
pub async fn authenticate(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<String, ApiError> {
    let environment_id = state
        .store
        .environment_id_for_api_key(&credentials.api_key_hash())
        .await?;
    check(environment_id.as_deref(), credentials)?;
    tracing::Span::current().record("environment_id", credentials.client_id.as_str());
    Ok(credentials.client_id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "client_01JD3YF4QX6W2N8V0Z5K7M9PAB";

    #[test]
    fn bearer_and_secret_must_agree() {
        assert!(credentials(Some("sk_a"), Some(CLIENT), Some("sk_a")).is_ok());
        let error = credentials(Some("sk_a"), Some(CLIENT), Some("sk_b")).unwrap_err();
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn either_key_source_suffices() {
        assert_eq!(
            credentials(None, Some(CLIENT), Some("sk_a"))
                .unwrap()
                .api_key,
            "sk_a"
        );
        assert_eq!(
            credentials(Some("sk_a"), Some(CLIENT), None)
                .unwrap()
                .api_key,
            "sk_a"
        );
        assert_eq!(
            credentials(None, Some(CLIENT), None).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn client_id_is_required_and_well_formed() {
        assert_eq!(
            credentials(Some("sk_a"), None, None).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            credentials(Some("sk_a"), Some("client_123"), None)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn check_compares_environments() {
        let credentials = credentials(Some("sk_a"), Some(CLIENT), None).unwrap();
        assert!(check(Some(CLIENT), &credentials).is_ok());
        assert_eq!(
            check(None, &credentials).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            check(Some("client_01JD3YF4QX6W2N8V0Z5K7M9PAC"), &credentials)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
    }
}
