//! Users, organization memberships, sign-in and sessions, as the WorkOS user-management API
//! exposes them: the rules behind the `sessions` function.
//!
//! - [`users`] and [`memberships`]: the user and `organization_membership` objects.
//! - [`authenticate`]: `POST /user_management/authenticate` with the `password`,
//!   `refresh_token` and organization-selection grants, and the client check they share
//!   ([`client`]).
//! - [`refresh`]: refresh-token rotation with its grace window, reuse detection and organization
//!   switching; [`refresh_token`] is the token format.
//! - [`minting`]: access-token claims, including `entitlements`, and signing.
//! - [`cookie_refresh`]: the cookie route that refreshes a sealed `wos-session` cookie.
//! - [`idempotency`]: replay of stored responses under an `Idempotency-Key`.
//! - [`jwks`] and [`signing_keys`]: publication and rotation of signing keys.
//! - [`revoke`]: `POST /user_management/sessions/revoke`.

pub mod authenticate;
pub mod client;
pub mod cookie_refresh;
pub mod idempotency;
pub mod jwks;
pub mod memberships;
pub mod minting;
pub mod refresh;
pub mod refresh_token;
pub mod revoke;
pub mod signing_keys;
pub mod users;

use std::sync::Arc;

use crate::config::ConfigError;
use crate::state::AppState;
use crate::tokens::{KeyEncryptionKey, Signer};
use refresh_token::SessionSecrets;

/// Context shared by the sessions routes: the application state, the signer and the keys derived
/// from `KEY_ENCRYPTION_KEY`.
#[derive(Clone)]
pub struct Sessions {
    pub state: AppState,
    pub signer: Arc<Signer>,
    pub secrets: Arc<SessionSecrets>,
}

impl Sessions {
    /// Builds the context. Fails, naming the variable, when `KEY_ENCRYPTION_KEY` is missing or
    /// invalid, because no token can be signed without it.
    pub fn new(state: AppState) -> Result<Self, ConfigError> {
        let secret = state.config.require_key_encryption_key()?;
        let kek = KeyEncryptionKey::from_base64(secret.expose()).map_err(|error| {
            ConfigError::Invalid {
                name: "KEY_ENCRYPTION_KEY",
                reason: error.to_string(),
            }
        })?;
        let signer = match &state.signer {
            Some(signer) => signer.clone(),
            None => Arc::new(Signer::new(kek.clone())),
        };
        Ok(Sessions {
            signer,
            secrets: Arc::new(SessionSecrets::derive(&kek)),
            state,
        })
    }
}

/// Returns the current time in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl axum::extract::FromRef<Sessions> for AppState {
    fn from_ref(sessions: &Sessions) -> Self {
        sessions.state.clone()
    }
}
