//! Issues access tokens: builds the claims from records read at issue time and signs them with
//! the environment's `Active` key.
//!
//! Nothing is carried over from an earlier token: role, permissions and `entitlements` come from
//! the membership, organization and environment passed in, which the caller has just read.
//!
//! The claims are a function of their inputs, because the `jti` is derived, not random. RS256
//! signatures (RSASSA-PKCS1-v1_5) are deterministic too. So issuing again with the same inputs
//! yields the same token byte for byte, which the refresh grace window relies on.

use serde_json::{Value, json};

use super::Sessions;
use super::users;
use crate::entitlements;
use crate::error::ApiError;
use crate::store::{Environment, Membership, Organization, User};
use crate::tokens::{AccessTokenClaims, active_key};

/// The organization a token is scoped to, with the membership that grants it.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub membership: &'a Membership,
    pub organization: &'a Organization,
}

/// Everything an access token is computed from.
#[derive(Debug, Clone, Copy)]
pub struct TokenInputs<'a> {
    pub environment: &'a Environment,
    pub session_id: &'a str,
    pub user_id: &'a str,
    /// Epoch seconds of the sign-in.
    pub auth_time: i64,
    /// The refresh-token generation the access token is issued with.
    pub generation: u64,
    /// Epoch milliseconds; `iat` is its whole seconds.
    pub issued_at_ms: i64,
    pub scope: Option<Scope<'a>>,
}

/// A signed access token and its claims.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub claims: AccessTokenClaims,
}

/// Builds the claims of an access token.
pub fn claims(sessions: &Sessions, inputs: &TokenInputs<'_>) -> AccessTokenClaims {
    let issued_at = inputs.issued_at_ms.div_euclid(1000);
    let lifetime =
        i64::try_from(sessions.state.config.access_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let scope = inputs.scope;
    AccessTokenClaims {
        iss: sessions.state.config.issuer.clone(),
        sub: inputs.user_id.to_owned(),
        sid: inputs.session_id.to_owned(),
        jti: sessions.secrets.access_token_id(
            inputs.session_id,
            inputs.generation,
            inputs.issued_at_ms,
        ),
        iat: issued_at,
        exp: issued_at.saturating_add(lifetime),
        auth_time: inputs.auth_time,
        org_id: scope.map(|scope| scope.organization.id.clone()),
        role: scope.map(|scope| scope.membership.role().to_owned()),
        roles: scope.map(|scope| scope.membership.role_slugs.clone()),
        // Roles carry no permissions in this service, so a scoped token lists none.
        permissions: scope.map(|_| Vec::new()),
        entitlements: entitlements::claim(
            inputs.environment,
            scope.map(|scope| scope.organization),
        ),
    }
}

/// Builds and signs an access token with the environment's `Active` key.
pub fn issue(sessions: &Sessions, inputs: &TokenInputs<'_>) -> Result<IssuedToken, ApiError> {
    let claims = claims(sessions, inputs);
    let key = active_key(&inputs.environment.signing_keys).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "environment {} has no Active signing key; add one with `admin signing-keys add` and `promote`",
            inputs.environment.id
        ))
    })?;
    let token = sessions
        .signer
        .sign(key, &claims)
        .map_err(|error| ApiError::Internal(anyhow::Error::new(error)))?;
    Ok(IssuedToken { token, claims })
}

/// Renders the body of a successful `POST /user_management/authenticate`.
pub fn authentication_response(
    user: &User,
    issued: &IssuedToken,
    refresh_token: &str,
    authentication_method: &str,
) -> Value {
    let mut body = json!({
        "user": users::to_json(user),
        "access_token": issued.token,
        "refresh_token": refresh_token,
        "authentication_method": authentication_method,
    });
    if let Some(organization_id) = &issued.claims.org_id {
        body["organization_id"] = json!(organization_id);
    }
    body
}
