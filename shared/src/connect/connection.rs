//! The connection of an environment as `GET`, `PUT` and `DELETE /stripe/connection` see it: the
//! status object, the `entitlements_enabled` toggle, and the disconnect.
//!
//! A disconnect first deauthorizes the account on Stripe. A failure there is logged and does not
//! stop it. It then ends the connection in one write, so the next tokens omit the `entitlements`
//! claim at once, and finally deletes the connection's entitlement sets page by page. When that
//! deletion is interrupted, the next `DELETE` finishes it: without a connection, it deletes every
//! set the environment still stores.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::client::OAuthClient;
use super::platform;
use super::{ConnectError, now_ms};
use crate::error::ApiError;
use crate::organizations::timestamp;
use crate::state::AppState;
use crate::store::{
    AccountConnection, Environment, ListQuery, Order, StoreError, StripeConnection,
};

/// Organizations read per page when looking for sets left by an interrupted disconnect.
const SWEEP_PAGE_SIZE: usize = 100;

/// The body of `PUT /stripe/connection`.
#[derive(Debug, Deserialize)]
pub struct UpdateConnection {
    /// Whether tokens carry the `entitlements` claim while Stripe is connected.
    pub entitlements_enabled: bool,
}

/// Renders the status object `{object: "stripe_connection", connected, account_id, livemode,
/// mode, connected_at, entitlements_enabled}`; the account fields are `null` when not connected.
pub fn status_json(environment: &Environment) -> Value {
    let connection = environment.stripe_connection.as_ref();
    json!({
        "object": "stripe_connection",
        "connected": connection.is_some(),
        "account_id": connection.map(|connection| connection.account_id.as_str()),
        "livemode": connection.map(|connection| connection.livemode),
        "mode": environment.mode.as_str(),
        "connected_at": connection.map(|connection| timestamp(&connection.connected_at)),
        "entitlements_enabled": environment.entitlements_enabled,
    })
}

async fn environment(state: &AppState, environment_id: &str) -> Result<Environment, ConnectError> {
    state
        .store
        .get_environment(environment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Environment", environment_id).into())
}

/// Returns the connection status of an environment.
pub async fn status(state: &AppState, environment_id: &str) -> Result<Value, ConnectError> {
    Ok(status_json(&environment(state, environment_id).await?))
}

/// Turns the `entitlements` claim on or off, and returns the new status.
pub async fn update(
    state: &AppState,
    environment_id: &str,
    request: UpdateConnection,
) -> Result<Value, ConnectError> {
    let environment = state
        .store
        .set_entitlements_enabled(environment_id, request.entitlements_enabled)
        .await?
        .ok_or_else(|| ApiError::not_found("Environment", environment_id))?;
    tracing::info!(
        entitlements_enabled = request.entitlements_enabled,
        "entitlements toggle set"
    );
    Ok(status_json(&environment))
}

/// Disconnects Stripe and deletes the environment's entitlement data, and returns the new status.
/// Repeating it is harmless, and finishes a deletion that an earlier call left unfinished.
pub async fn disconnect(
    state: &AppState,
    oauth: &OAuthClient,
    environment_id: &str,
) -> Result<Value, ConnectError> {
    let current = environment(state, environment_id).await?;
    let connection = current.stripe_connection.as_ref();
    let purged = match connection {
        Some(connection) => {
            deauthorize(state, oauth, environment_id, connection).await;
            end_connection(state, environment_id, connection).await?;
            purge_connection_sets(state, environment_id, &connection.connection_id).await
        }
        None => purge_stale_sets(state, environment_id).await,
    };
    let removed = purged.map_err(|error| {
        tracing::error!(error = %error, "deleting the entitlement data of a disconnected environment failed");
        ApiError::Unavailable {
            message: "Stripe is disconnected and tokens no longer carry entitlements, but deleting the stored entitlement data did not finish. Retry DELETE /stripe/connection to finish it.".into(),
            retry_after_secs: 5,
        }
    })?;
    match connection {
        Some(connection) => tracing::info!(
            account_id = %connection.account_id,
            connection_id = %connection.connection_id,
            organizations_cleared = removed,
            "Stripe disconnected and entitlement data deleted"
        ),
        None => tracing::info!(
            organizations_cleared = removed,
            "disconnect requested while not connected; leftover entitlement data deleted"
        ),
    }
    status(state, environment_id).await
}

/// Deauthorizes the account on Stripe. A failure is logged and the disconnect goes on, because the
/// local data must be deleted even when Stripe cannot be reached.
async fn deauthorize(
    state: &AppState,
    oauth: &OAuthClient,
    environment_id: &str,
    connection: &StripeConnection,
) {
    let (client_id, secret_key) = match platform::deauthorize_credentials(&state.config) {
        Ok(credentials) => credentials,
        Err(error) => {
            tracing::warn!(
                environment_id,
                account_id = %connection.account_id,
                connection_id = %connection.connection_id,
                error = %error,
                "Stripe account not deauthorized; disconnecting locally"
            );
            return;
        }
    };
    match oauth
        .deauthorize(secret_key, client_id, &connection.account_id)
        .await
    {
        Ok(()) => tracing::info!(
            environment_id,
            account_id = %connection.account_id,
            connection_id = %connection.connection_id,
            "Stripe account deauthorized"
        ),
        Err(error) => tracing::warn!(
            environment_id,
            account_id = %connection.account_id,
            connection_id = %connection.connection_id,
            failure = error.kind(),
            error = %error,
            "deauthorizing the Stripe account failed; disconnecting locally"
        ),
    }
}

/// Ends the connection in the store. A connection that ended meanwhile (a concurrent disconnect or
/// deauthorization event) is fine; one that is still current afterwards is an error.
async fn end_connection(
    state: &AppState,
    environment_id: &str,
    connection: &StripeConnection,
) -> Result<(), ConnectError> {
    let account = AccountConnection::of(environment_id, connection);
    if state.store.disconnect_stripe(&account, now_ms()).await? {
        return Ok(());
    }
    let still_current = state
        .store
        .get_environment(environment_id)
        .await?
        .and_then(|environment| environment.stripe_connection)
        .is_some_and(|current| current.connection_id == connection.connection_id);
    if still_current {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "the store did not end connection {} of environment {environment_id}",
            connection.connection_id
        ))
        .into());
    }
    tracing::info!(
        environment_id,
        connection_id = %connection.connection_id,
        "the connection had already ended"
    );
    Ok(())
}

/// Deletes, page by page, every set of an environment read under `connection_id`. Returns how
/// many organizations lost their set.
pub async fn purge_connection_sets(
    state: &AppState,
    environment_id: &str,
    connection_id: &str,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .store
            .purge_entitlements(environment_id, connection_id, cursor.as_deref())
            .await
            .inspect_err(|error| {
                tracing::error!(environment_id, connection_id, error = %error, "deleting entitlement sets failed");
            })?;
        removed += page.removed;
        match page.next_cursor {
            Some(next) if Some(&next) == cursor.as_ref() => {
                return Err(StoreError::Corrupt {
                    key: format!("purge cursor {next}"),
                    reason: "the store returned the same cursor twice".into(),
                });
            }
            Some(next) => cursor = Some(next),
            None => return Ok(removed),
        }
    }
}

/// Deletes every set of an environment that has no connection: sets left by a disconnect whose
/// deletion was interrupted. Returns how many organizations lost their set.
async fn purge_stale_sets(state: &AppState, environment_id: &str) -> Result<usize, StoreError> {
    let mut connection_ids = BTreeSet::new();
    let mut query = ListQuery {
        limit: SWEEP_PAGE_SIZE,
        before: None,
        after: None,
        order: Order::Asc,
    };
    loop {
        let page = state
            .store
            .list_organizations(environment_id, &query)
            .await?;
        connection_ids.extend(
            page.data
                .iter()
                .filter_map(|organization| organization.entitlements.as_ref())
                .map(|set| set.connection_id.clone()),
        );
        match page.after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    // A connection made while the organizations were read keeps its sets.
    if let Some(environment) = state.store.get_environment(environment_id).await?
        && let Some(connection) = environment.stripe_connection
    {
        connection_ids.remove(&connection.connection_id);
    }
    let mut removed = 0;
    for connection_id in &connection_ids {
        removed += purge_connection_sets(state, environment_id, connection_id).await?;
    }
    Ok(removed)
}
