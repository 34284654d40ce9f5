//! `GET /sso/jwks/{client_id}`: the public keys of one environment, for verifying its access
//! tokens. The keys of other environments are never listed, so a token verifies only against its
//! own environment's JWKS.

use serde_json::Value;

use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::tokens;

/// Returns the JWKS document of an environment: its `Next`, `Active` and `Previous` keys, or a
/// 404 when the client ID names no environment.
pub async fn document(state: &AppState, client_id: &str) -> Result<Value, ApiError> {
    let not_found = || ApiError::NotFound {
        message: format!("No environment has client ID '{client_id}'."),
        entity_id: Some(client_id.to_owned()),
    };
    if !ids::is_id(client_id, "client") {
        return Err(not_found());
    }
    let environment = state
        .store
        .get_environment(client_id)
        .await?
        .ok_or_else(not_found)?;
    // Every stored key is Next, Active or Previous: a retired key is removed from the list.
    Ok(tokens::jwks(&environment.signing_keys))
}
