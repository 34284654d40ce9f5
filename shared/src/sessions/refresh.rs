//! The refresh grant: single-use, rotated refresh tokens with a grace window, reuse detection and
//! organization switching, in one DynamoDB round trip when the request names its organization.
//!
//! # Storage
//!
//! A session item stores only hashes: of the current token and of the one before it. Tokens form
//! a one-way chain (see [`super::refresh_token`]): the successor of a token is an HMAC of it, so
//! it is recomputed rather than stored.
//!
//! # One round trip
//!
//! A refresh token carries the environment, session and user IDs in clear, and the request names
//! the client, the API key and usually the organization. So every key is known before the first
//! request, and the refresh sends two requests at once (`tokio::join!`):
//!
//! 1. the rotation, one conditional `UpdateItem` that applies only if the presented token is
//!    current, and returns the old item whether or not it applied;
//! 2. one `BatchGetItem` of the API key, the environment (signing keys, Stripe connection), the
//!    user, and, when the request names an organization, the membership and the organization.
//!
//! The API key is checked from that batch, not before it. Without `organization_id`, the
//! session's organization is known only from the rotation's response, so its membership and
//! organization take a second round trip.
//!
//! # Checks after a rotation
//!
//! The rotation is written before the checks that need the batch (API key, client ID, user,
//! membership). When one of them fails, or anything else fails after the rotation, the rotation is
//! marked unconsumed (`release_rotation`): the session keeps the new hash, but the presented token
//! may rotate again, to the same successor, at any time. A refused organization switch therefore
//! never burns the session, and a concurrent request that already received the successor keeps a
//! working token.
//!
//! # Repeated use
//!
//! When the presented token is the previous one (its hash is `previous_hash`):
//!
//! - within `REFRESH_GRACE_SECONDS` of the rotation (parallel tabs, or an SDK retry with its
//!   `Idempotency-Key`), the request gets the same pair again. The successor token is recomputed.
//!   The access token is issued again from the rotation's stored time, generation and
//!   organization, so it has the same bytes (see [`super::minting`]) unless the role,
//!   entitlements or signing key changed meanwhile. Then it carries the current values. This
//!   costs no request beyond the refresh's own. A repeat that names another organization than
//!   the first use gets `invalid_grant`, and the session stays;
//! - later, the session is revoked and the request gets `invalid_grant`, whatever
//!   `Idempotency-Key` it carries.
//!
//! An older token of the chain (proved by walking the chain forward to `previous_hash`) revokes
//! the session once the grace window of the latest rotation has passed; within it, it only gets
//! `invalid_grant`, because a burst of rotations could make it a legitimate late request. A token
//! that matches nothing is refused without touching the session, so a forged token cannot revoke
//! someone's session.

use super::client::{self, ClientCredentials};
use super::minting::{self, IssuedToken, Scope, TokenInputs};
use super::refresh_token::RefreshToken;
use super::{Sessions, now_ms};
use crate::error::ApiError;
use crate::ids;
use crate::store::{
    ContextKeys, Membership, Organization, Rotation, RotationOutcome, Session, SessionContext, User,
};

/// Maximum number of steps of the chain walk that proves an old token genuine: a 30-day session with 5-minute access
/// tokens rotates 8640 times.
const MAX_CHAIN_WALK: u64 = 10_000;

/// Sender of a refresh, which decides how it is authenticated.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The authenticate route: the API key and client ID are checked against the batch read.
    Client(ClientCredentials),
    /// The cookie route: the sealed cookie is the credential, and the environment is the token's.
    Cookie,
}

/// A refresh request.
#[derive(Debug, Clone)]
pub struct RefreshRequest {
    pub caller: Caller,
    pub refresh_token: String,
    /// The organization to scope the new token to; `None` keeps the session's.
    pub organization_id: Option<String>,
}

/// The result of a successful refresh.
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub user: User,
    pub issued: IssuedToken,
    pub refresh_token: String,
    pub authentication_method: String,
}

/// Everything fixed by the request and its token.
struct Attempt<'a> {
    sessions: &'a Sessions,
    request: &'a RefreshRequest,
    token: RefreshToken,
    next: RefreshToken,
    rotation: Rotation,
}

fn invalid_token() -> ApiError {
    ApiError::invalid_grant("Invalid refresh token.")
}

fn not_member(organization_id: &str) -> ApiError {
    ApiError::invalid_grant(format!(
        "The user is not a member of organization '{organization_id}'."
    ))
}

/// Runs the refresh grant.
pub async fn refresh(sessions: &Sessions, request: &RefreshRequest) -> Result<Refreshed, ApiError> {
    let Some(token) = RefreshToken::parse(&request.refresh_token) else {
        tracing::info!("rejected a malformed refresh token");
        return Err(invalid_token());
    };
    let api_key_hash = match &request.caller {
        Caller::Client(credentials) => {
            if credentials.client_id != token.environment_id {
                return Err(ApiError::invalid_grant(
                    "The refresh token was not issued to this client_id.",
                ));
            }
            Some(credentials.api_key_hash())
        }
        Caller::Cookie => None,
    };
    if let Some(organization_id) = &request.organization_id
        && !ids::is_id(organization_id, "org")
    {
        return Err(ApiError::invalid_request(
            "organization_id must be an organization ID such as 'org_01EHZNVPK3SFK441A1RGBFSHRT'.",
        ));
    }
    tracing::Span::current().record("environment_id", token.environment_id.as_str());

    let next = token.next(&sessions.secrets);
    let rotation = Rotation {
        environment_id: token.environment_id.clone(),
        session_id: token.session_id.clone(),
        user_id: token.user_id.clone(),
        presented_hash: token.hash(),
        presented_generation: token.generation,
        next_hash: next.hash(),
        rotated_at_ms: now_ms(),
        organization_id: request.organization_id.clone(),
    };
    let keys = ContextKeys {
        environment_id: token.environment_id.clone(),
        api_key_hash,
        environment: true,
        user_id: Some(token.user_id.clone()),
        membership: request
            .organization_id
            .clone()
            .map(|organization_id| (token.user_id.clone(), organization_id)),
    };
    let attempt = Attempt {
        sessions,
        request,
        token,
        next,
        rotation,
    };

    let store = &sessions.state.store;
    let (outcome, context) = tokio::join!(
        store.rotate_session(&attempt.rotation),
        store.read_session_context(&keys)
    );
    match outcome? {
        RotationOutcome::Rotated { before } => attempt.complete_rotation(before, context).await,
        RotationOutcome::Rejected { current } => {
            attempt.handle_rejection(current, context?, true).await
        }
    }
}

impl Attempt<'_> {
    fn environment_id(&self) -> &str {
        &self.token.environment_id
    }

    /// Checks the API key and client ID of a client caller against the batch read.
    fn check_caller(&self, context: &SessionContext) -> Result<(), ApiError> {
        match &self.request.caller {
            Caller::Client(credentials) => {
                client::check(context.api_key_environment_id.as_deref(), credentials)
            }
            Caller::Cookie => Ok(()),
        }
    }

    /// Finishes a rotation that applied, and marks it unconsumed when anything fails.
    async fn complete_rotation(
        &self,
        before: Session,
        context: Result<SessionContext, crate::store::StoreError>,
    ) -> Result<Refreshed, ApiError> {
        let result = match context {
            Ok(context) => self.issue_after_rotation(&before, context).await,
            Err(error) => Err(error.into()),
        };
        if result.is_err() {
            self.release(&before).await;
        }
        result
    }

    async fn issue_after_rotation(
        &self,
        before: &Session,
        context: SessionContext,
    ) -> Result<Refreshed, ApiError> {
        self.check_caller(&context)?;
        let organization_id = self
            .request
            .organization_id
            .clone()
            .or_else(|| before.organization_id.clone());
        let refreshed = self
            .issue(
                context,
                organization_id.as_deref(),
                self.rotation.rotated_at_ms,
                before,
            )
            .await?;
        tracing::info!(
            session_id = %self.token.session_id,
            user_id = %self.token.user_id,
            generation = self.next.generation,
            organization_id = refreshed.issued.claims.org_id.as_deref().unwrap_or("none"),
            "session refreshed"
        );
        Ok(refreshed)
    }

    /// Marks the rotation unconsumed so the presented token can rotate again.
    async fn release(&self, before: &Session) {
        let released = self
            .sessions
            .state
            .store
            .release_rotation(
                self.environment_id(),
                &self.token.session_id,
                self.next.generation,
                &self.rotation.next_hash,
                before.organization_id.as_deref(),
            )
            .await;
        match released {
            Ok(true) => {
                tracing::info!(session_id = %self.token.session_id, "refresh failed after rotating; rotation released")
            }
            Ok(false) => tracing::info!(
                session_id = %self.token.session_id,
                "refresh failed after rotating; the session rotated again meanwhile, nothing to release"
            ),
            Err(error) => tracing::error!(
                session_id = %self.token.session_id,
                error = %error,
                "refresh failed after rotating and the rotation could not be released"
            ),
        }
    }

    /// Decides what a presented token that did not rotate the session means.
    async fn handle_rejection(
        &self,
        current: Option<Session>,
        context: SessionContext,
        may_rerotate: bool,
    ) -> Result<Refreshed, ApiError> {
        let Some(session) = current else {
            tracing::info!(session_id = %self.token.session_id, "refresh token names no session");
            return Err(invalid_token());
        };
        self.check_caller(&context)?;
        let now_ms = self.rotation.rotated_at_ms;
        if session.user_id != self.token.user_id {
            tracing::warn!(session_id = %session.id, "refresh token names another user than its session");
            return Err(invalid_token());
        }
        if !session.is_live(now_ms.div_euclid(1000)) {
            tracing::info!(session_id = %session.id, revoked = session.revoked_at.is_some(), "refresh of an ended session");
            return Err(ApiError::invalid_grant("The session has ended."));
        }

        let is_previous = session.generation == self.token.generation + 1
            && session.previous_hash.as_deref() == Some(self.rotation.presented_hash.as_str());
        if is_previous {
            if session.previous_unconsumed && may_rerotate {
                return self.rerotate(context).await;
            }
            return self.repeat(session, context).await;
        }
        if self.token.generation + 1 < session.generation && self.is_ancestor(&session) {
            let since_rotation = now_ms - session.rotated_at_ms;
            if since_rotation >= self.grace_ms() {
                self.revoke_for_reuse(&session).await?;
            } else {
                tracing::info!(session_id = %session.id, "an older refresh token came within the grace window");
            }
            return Err(ApiError::invalid_grant(
                "The refresh token has already been used.",
            ));
        }
        tracing::warn!(session_id = %session.id, "refresh token does not belong to its session's chain");
        Err(invalid_token())
    }

    fn grace_ms(&self) -> i64 {
        i64::try_from(self.sessions.state.config.refresh_grace.as_millis()).unwrap_or(i64::MAX)
    }

    /// Replays the rotation of a previous token used again, or revokes the session.
    async fn repeat(
        &self,
        session: Session,
        context: SessionContext,
    ) -> Result<Refreshed, ApiError> {
        let since_rotation = self.rotation.rotated_at_ms - session.rotated_at_ms;
        if since_rotation >= self.grace_ms() {
            self.revoke_for_reuse(&session).await?;
            return Err(ApiError::invalid_grant(
                "The refresh token has already been used.",
            ));
        }
        // The pair to repeat is scoped to the organization of the first use. A request for
        // another one gets an error rather than a token for an organization it did not name.
        if let Some(requested) = &self.request.organization_id
            && session.organization_id.as_deref() != Some(requested.as_str())
        {
            tracing::info!(session_id = %session.id, "repeated refresh names another organization");
            return Err(ApiError::invalid_grant(format!(
                "The refresh token has already been used for another organization; refresh \
                 with the new refresh token to switch to '{requested}'."
            )));
        }
        if self.rotation.next_hash != session.token_hash {
            // The successor no longer matches: the chain key changed since the rotation.
            tracing::error!(session_id = %session.id, "recomputed refresh token does not match the stored hash");
            return Err(invalid_token());
        }
        let refreshed = self
            .issue(
                context,
                session.organization_id.as_deref(),
                session.rotated_at_ms,
                &session,
            )
            .await?;
        tracing::info!(
            session_id = %session.id,
            generation = session.generation,
            "repeated refresh answered with the same pair"
        );
        Ok(refreshed)
    }

    /// Rotates again from a token whose earlier rotation was released.
    async fn rerotate(&self, context: SessionContext) -> Result<Refreshed, ApiError> {
        match self
            .sessions
            .state
            .store
            .rerotate_session(&self.rotation)
            .await?
        {
            RotationOutcome::Rotated { before } => {
                self.complete_rotation(before, Ok(context)).await
            }
            RotationOutcome::Rejected { current } => {
                Box::pin(self.handle_rejection(current, context, false)).await
            }
        }
    }

    async fn revoke_for_reuse(&self, session: &Session) -> Result<(), ApiError> {
        self.sessions
            .state
            .store
            .revoke_session(&session.environment_id, &session.id, chrono::Utc::now())
            .await?;
        tracing::warn!(
            session_id = %session.id,
            user_id = %session.user_id,
            "refresh token reused after the grace window; session revoked"
        );
        Ok(())
    }

    /// Whether the presented token is an older generation of the session's chain: walking it
    /// forward must reach the previous token.
    fn is_ancestor(&self, session: &Session) -> bool {
        let steps = session.generation - 1 - self.token.generation;
        if steps > MAX_CHAIN_WALK {
            return false;
        }
        let mut token = self.token.clone();
        for _ in 0..steps {
            token = token.next(&self.sessions.secrets);
        }
        session.previous_hash.as_deref() == Some(token.hash().as_str())
    }

    /// Issues the access token of the successor generation, scoped to `organization_id`.
    async fn issue(
        &self,
        mut context: SessionContext,
        organization_id: Option<&str>,
        issued_at_ms: i64,
        session: &Session,
    ) -> Result<Refreshed, ApiError> {
        let Some(environment) = context.environment.take() else {
            tracing::warn!(environment_id = %self.environment_id(), "refresh for an environment that does not exist");
            return Err(invalid_token());
        };
        let Some(user) = context.user.take() else {
            tracing::info!(user_id = %self.token.user_id, "refresh for a deleted user");
            return Err(ApiError::invalid_grant(
                "The session's user no longer exists.",
            ));
        };
        let scope = self.scope(context, organization_id).await?;
        let inputs = TokenInputs {
            environment: &environment,
            session_id: &self.token.session_id,
            user_id: &self.token.user_id,
            auth_time: session.auth_time,
            generation: self.next.generation,
            issued_at_ms,
            scope: scope.as_ref().map(|(membership, organization)| Scope {
                membership,
                organization,
            }),
        };
        let issued = minting::issue(self.sessions, &inputs)?;
        Ok(Refreshed {
            user,
            issued,
            refresh_token: self.next.encode(),
            authentication_method: session.authentication_method.clone(),
        })
    }

    /// Returns the membership and organization for `organization_id`: from the batch when the
    /// request named that organization, otherwise from a second read.
    async fn scope(
        &self,
        context: SessionContext,
        organization_id: Option<&str>,
    ) -> Result<Option<(Membership, Organization)>, ApiError> {
        let Some(organization_id) = organization_id else {
            return Ok(None);
        };
        let read = if self.request.organization_id.as_deref() == Some(organization_id) {
            context
        } else {
            self.sessions
                .state
                .store
                .read_session_context(&ContextKeys {
                    environment_id: self.environment_id().to_owned(),
                    membership: Some((self.token.user_id.clone(), organization_id.to_owned())),
                    ..ContextKeys::default()
                })
                .await?
        };
        match (read.membership, read.organization) {
            (Some(membership), Some(organization)) => Ok(Some((membership, organization))),
            _ => {
                tracing::info!(
                    user_id = %self.token.user_id,
                    organization_id,
                    "refresh refused: no membership in the organization"
                );
                Err(not_member(organization_id))
            }
        }
    }
}
