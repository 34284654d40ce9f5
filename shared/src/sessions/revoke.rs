//! `POST /user_management/sessions/revoke`: ends a session, so its refresh token stops working.
//! Access tokens already issued stay valid until they expire.

use serde::Deserialize;

use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;

/// The body of `POST /user_management/sessions/revoke`.
#[derive(Debug, Deserialize)]
pub struct RevokeSession {
    pub session_id: String,
}

/// Revokes a session of the environment, or a 404 when it does not exist there. Revoking a
/// revoked session succeeds and keeps the first revocation time.
pub async fn revoke(
    state: &AppState,
    environment_id: &str,
    request: &RevokeSession,
) -> Result<(), ApiError> {
    let session_id = request.session_id.as_str();
    if !ids::is_id(session_id, "session")
        || !state
            .store
            .revoke_session(environment_id, session_id, chrono::Utc::now())
            .await?
    {
        return Err(ApiError::not_found("Session", session_id));
    }
    tracing::info!(session_id, "session revoked");
    Ok(())
}
