//! The webhook processor: verifies a delivery, claims its event, applies it, and returns the
//! outcome or error that sets the route's status.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tracing::Instrument;

use super::connections::ConnectionCache;
use super::event::{self, Event, EventAction, EventParseError};
use super::signature::{self, SignatureError};
use crate::entitlements::normalize;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{
    AccountConnection, CustomerUnlink, EntitlementSet, EntitlementWrite, EventAttempt, EventClaim,
    EventCompletion, EventKey, StoreError, WriteOutcome,
};
use crate::stripe::StripeError;

/// How long a delivery's lease on an event lasts before another delivery may take the event
/// over. It must exceed the longest processing time, so the function's timeout has to stay below
/// it.
pub const EVENT_LEASE: Duration = Duration::from_secs(60);

/// How often one delivery re-reads and retries after a concurrent change (a new connection, a
/// moved customer link, a colliding transaction) before it returns 503.
const MAX_ROUNDS: usize = 3;

/// Attempts per Stripe page within one delivery: Stripe redelivers the event after a 5xx, so the
/// delivery itself does not wait between attempts.
const STRIPE_ATTEMPTS: u32 = 1;

/// `Retry-After` of a 503 for a failed dependency, in seconds.
const RETRY_AFTER_SECONDS: u64 = 60;

/// The reason an event was acknowledged without a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The service does not handle this event type.
    UnhandledType,
    /// The event comes from the platform's own account, not a connected one.
    PlatformEvent,
    /// No environment is connected to the event's account in the event's mode.
    AccountNotConnected,
    /// No organization links the event's customer.
    CustomerNotLinked,
    /// The stored set was read from Stripe at the same time or later.
    NewerSetStored,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::UnhandledType => "unhandled_event_type",
            IgnoreReason::PlatformEvent => "platform_event",
            IgnoreReason::AccountNotConnected => "account_not_connected",
            IgnoreReason::CustomerNotLinked => "customer_not_linked",
            IgnoreReason::NewerSetStored => "newer_set_stored",
        }
    }
}

/// The outcome of a verified delivery; every outcome gets a 200 response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The event's effect was written.
    Applied,
    /// The event was processed before; nothing changed.
    Duplicate,
    /// The event needed no change.
    Ignored(IgnoreReason),
}

impl WebhookOutcome {
    /// Builds the body of the 200 response.
    pub fn to_json(self) -> serde_json::Value {
        let (result, reason) = match self {
            WebhookOutcome::Applied => ("applied", None),
            WebhookOutcome::Duplicate => ("duplicate", None),
            WebhookOutcome::Ignored(reason) => ("ignored", Some(reason.as_str())),
        };
        let mut body = serde_json::json!({ "received": true, "result": result });
        if let Some(reason) = reason {
            body["reason"] = reason.into();
        }
        body
    }
}

/// A delivery that was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 400: the signature is missing or invalid.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// 400: the body is not an event, or a handled event lacks a field it needs.
    #[error(transparent)]
    Payload(#[from] EventParseError),
    /// 500: `STRIPE_WEBHOOK_SECRETS` is empty, so nothing can be verified.
    #[error("no webhook signing secret is configured; set STRIPE_WEBHOOK_SECRETS")]
    SecretsNotConfigured,
    /// 500: a handled event needs Stripe, but `STRIPE_SECRET_KEY` is not set.
    #[error("no Stripe client is configured; set STRIPE_SECRET_KEY")]
    StripeNotConfigured,
    /// 503: another delivery is processing the event.
    #[error("event {event_id} is being processed by another delivery; retry later")]
    InProgress {
        event_id: String,
        retry_after_secs: u64,
    },
    /// 503: another delivery took the event over while this one worked on it.
    #[error("event {event_id} was taken over by another delivery; retry later")]
    LeaseLost { event_id: String },
    /// 503: the records kept changing under this delivery.
    #[error("the records of event {event_id} kept changing concurrently; retry later")]
    Contended { event_id: String },
    /// 503: Stripe failed in a way worth retrying.
    #[error("reading entitlements from Stripe failed: {0}")]
    StripeUnavailable(#[source] StripeError),
    /// 500: Stripe rejected the request while the store still shows the account connected. The
    /// event is not acknowledged, so Stripe retries it until the cause is fixed or a later event
    /// (deauthorization, deletion) makes it moot. A rejection after the connection ended is not
    /// an error (see [`access_may_be_revoked`]).
    #[error("reading entitlements from Stripe failed: {0}")]
    StripeRejected(#[source] StripeError),
    /// 500: the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Signature(error) => ApiError::BadRequest {
                code: "invalid_signature",
                message: format!("The Stripe signature is invalid: {error}."),
            },
            WebhookError::Payload(error) => ApiError::BadRequest {
                code: "invalid_event",
                message: format!("The event cannot be read: {error}."),
            },
            WebhookError::InProgress {
                retry_after_secs, ..
            } => ApiError::Unavailable {
                message: error.to_string(),
                retry_after_secs,
            },
            WebhookError::LeaseLost { .. }
            | WebhookError::Contended { .. }
            | WebhookError::StripeUnavailable(_) => ApiError::Unavailable {
                message: error.to_string(),
                retry_after_secs: RETRY_AFTER_SECONDS,
            },
            WebhookError::SecretsNotConfigured
            | WebhookError::StripeNotConfigured
            | WebhookError::StripeRejected(_)
            | WebhookError::Store(_) => ApiError::Internal(anyhow::Error::new(error)),
        }
    }
}

/// The end of a flow, and whether its last write already completed the event.
enum Finish {
    /// The event was completed before this delivery.
    Duplicate,
    /// The flow's write completed the event.
    Completed(WebhookOutcome),
    /// The flow wrote nothing that completes the event; the processor completes it.
    NeedsCompletion(WebhookOutcome),
}

/// The connection and customer link a flow starts from.
struct Resolved {
    /// The live connection of the account, or `None` when it is not connected.
    connection: Option<AccountConnection>,
    /// The organization linking the customer, when it was read with the connection.
    organization_id: Option<Option<String>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Returns whether a permanent Stripe error can mean that the platform no longer has access to
/// the connected account. That is any 403, Stripe's status for a key that lacks permission and
/// the one a revoked `Stripe-Account` gets, and the code `account_invalid` with any status.
/// Such an error makes the processor read the account's record again, bypassing the cache, and
/// acknowledge the event as [`IgnoreReason::AccountNotConnected`] when the connection ended.
/// Other rejections (401 for the platform key, 400, 404 for the customer) do not concern the
/// connection and stay [`WebhookError::StripeRejected`].
fn access_may_be_revoked(error: &StripeError) -> bool {
    match error {
        StripeError::Api { status, code, .. } => {
            *status == 403 || code.as_deref() == Some("account_invalid")
        }
        _ => false,
    }
}

/// A Stripe rejection that [`access_may_be_revoked`] matched, and the connection it happened under.
struct Rejection {
    connection_id: String,
    error: StripeError,
}

/// Logs an event acknowledged as [`IgnoreReason::AccountNotConnected`] after Stripe rejected
/// access to its account in this delivery.
fn log_ended_connection(finish: &Finish, rejection: &Mutex<Option<Rejection>>) {
    let not_connected = matches!(
        finish,
        Finish::NeedsCompletion(WebhookOutcome::Ignored(IgnoreReason::AccountNotConnected))
    );
    if not_connected && let Some(rejection) = lock(rejection).take() {
        // The `stripe_event` span carries the event ID and the account ID.
        tracing::info!(
            stripe_status = rejection.error.status(),
            "Stripe rejected access to the account and its connection has ended, so the event is acknowledged without a change"
        );
    }
}

/// Locks a mutex of one delivery. Its value has no invariant that a panic could break halfway.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Reads a claim. Returns `None` when this attempt holds the event's lease, the finish of a
/// duplicate, or a 503 while another delivery holds the lease.
fn claimed(attempt: &EventAttempt, claim: EventClaim) -> Result<Option<Finish>, WebhookError> {
    match claim {
        EventClaim::Claimed => Ok(None),
        EventClaim::Completed => Ok(Some(Finish::Duplicate)),
        EventClaim::InProgress {
            lease_expires_at_ms,
        } => {
            let remaining_ms =
                u64::try_from(lease_expires_at_ms.saturating_sub(now_ms())).unwrap_or(0);
            Err(WebhookError::InProgress {
                event_id: attempt.key.event_id.clone(),
                retry_after_secs: remaining_ms.div_ceil(1_000).max(1),
            })
        }
    }
}

/// Processes Stripe webhook deliveries; one per process, shared by all requests.
pub struct WebhookProcessor {
    state: AppState,
    connections: ConnectionCache,
    lease: Duration,
}

impl WebhookProcessor {
    pub fn new(state: AppState) -> Self {
        WebhookProcessor {
            state,
            connections: ConnectionCache::default(),
            lease: EVENT_LEASE,
        }
    }

    /// Verifies and processes one delivery: its `Stripe-Signature` header and its raw body.
    pub async fn handle(
        &self,
        signature: Option<&str>,
        payload: &[u8],
    ) -> Result<WebhookOutcome, WebhookError> {
        let secrets = &self.state.config.stripe.webhook_secrets;
        if secrets.is_empty() {
            return Err(WebhookError::SecretsNotConfigured);
        }
        if let Err(error) =
            signature::verify(signature, payload, secrets, chrono::Utc::now().timestamp())
        {
            tracing::warn!(reason = %error, "rejected a webhook delivery with an invalid signature");
            return Err(error.into());
        }
        let event = event::parse(payload).inspect_err(|error| {
            tracing::warn!(reason = %error, "rejected a signed webhook delivery whose body cannot be read");
        })?;

        let span = tracing::info_span!(
            "stripe_event",
            event_id = %event.id,
            event_type = %event.event_type,
            stripe_account = event.account.as_deref().unwrap_or(""),
            environment_id = tracing::field::Empty,
        );
        let result = self.dispatch(&event).instrument(span.clone()).await;
        span.in_scope(|| match &result {
            Ok(WebhookOutcome::Ignored(IgnoreReason::UnhandledType)) => {
                tracing::debug!("ignored an event of a type the service does not handle");
            }
            Ok(WebhookOutcome::Ignored(reason)) => {
                tracing::info!(reason = reason.as_str(), "event ignored")
            }
            Ok(WebhookOutcome::Applied) => tracing::info!("event applied"),
            Ok(WebhookOutcome::Duplicate) => tracing::info!("duplicate event acknowledged"),
            Err(error) => {
                tracing::warn!(error = %error, "event not processed; Stripe will redeliver it")
            }
        });
        result
    }

    async fn dispatch(&self, event: &Event) -> Result<WebhookOutcome, WebhookError> {
        if event.action == EventAction::Ignore {
            return Ok(WebhookOutcome::Ignored(IgnoreReason::UnhandledType));
        }
        let Some(account) = event.account.as_deref() else {
            return Ok(WebhookOutcome::Ignored(IgnoreReason::PlatformEvent));
        };
        let livemode = event
            .livemode
            .ok_or_else(|| EventParseError::MissingField {
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                field: "livemode",
            })?;
        let attempt = EventAttempt {
            key: EventKey {
                account_id: account.to_owned(),
                event_id: event.id.clone(),
            },
            event_type: event.event_type.clone(),
            token: ids::new_secret(""),
            started_at_ms: now_ms(),
            lease_ms: i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
        };
        let result = match &event.action {
            EventAction::UpdateEntitlements { customer_id } => {
                self.update_entitlements(&attempt, livemode, customer_id)
                    .await
            }
            EventAction::UnlinkCustomer { customer_id } => {
                self.unlink_customer(&attempt, livemode, customer_id).await
            }
            EventAction::DeauthorizeAccount => self.deauthorize(&attempt, livemode).await,
            EventAction::Ignore => return Ok(WebhookOutcome::Ignored(IgnoreReason::UnhandledType)),
        };
        self.finish(&attempt, result).await
    }

    /// Completes the event when the flow has not, or releases it when the flow failed, so that
    /// Stripe's next delivery can claim it at once.
    async fn finish(
        &self,
        attempt: &EventAttempt,
        result: Result<Finish, WebhookError>,
    ) -> Result<WebhookOutcome, WebhookError> {
        match result {
            Ok(Finish::Duplicate) => Ok(WebhookOutcome::Duplicate),
            Ok(Finish::Completed(outcome)) => Ok(outcome),
            Ok(Finish::NeedsCompletion(outcome)) => {
                let completion = EventCompletion {
                    attempt,
                    completed_at_ms: now_ms(),
                };
                match self.state.store.complete_event(&completion, None).await? {
                    WriteOutcome::Applied => Ok(outcome),
                    WriteOutcome::LeaseLost => Err(WebhookError::LeaseLost {
                        event_id: attempt.key.event_id.clone(),
                    }),
                    _ => Err(WebhookError::Contended {
                        event_id: attempt.key.event_id.clone(),
                    }),
                }
            }
            // Another delivery holds the record: it is not this attempt's to release.
            Err(error @ WebhookError::InProgress { .. }) => Err(error),
            Err(error) => {
                if let Err(release_error) = self.state.store.release_event(attempt).await {
                    tracing::warn!(
                        error = %release_error,
                        "releasing the event failed; the next delivery can take it over when the lease expires"
                    );
                }
                Err(error)
            }
        }
    }

    /// Reads the account's connection record, caching a live connection.
    async fn read_connection(
        &self,
        account_id: &str,
        livemode: bool,
    ) -> Result<Option<AccountConnection>, StoreError> {
        let record = self
            .state
            .store
            .stripe_account(account_id, livemode)
            .await?;
        match record {
            Some(record) => {
                self.connections.put(&record);
                Ok(record.connected.then_some(record))
            }
            None => {
                self.connections.remove(account_id, livemode);
                Ok(None)
            }
        }
    }

    /// Claims the event and, at the same time, finds the account's connection and (when the
    /// connection is cached) the organization linking the customer.
    async fn claim_and_resolve(
        &self,
        attempt: &EventAttempt,
        livemode: bool,
        customer_id: &str,
    ) -> Result<Result<Resolved, Finish>, WebhookError> {
        let account_id = &attempt.key.account_id;
        let cached = self.connections.get(account_id, livemode);
        let resolve = async {
            match cached {
                Some(connection) => {
                    let organization_id = self
                        .state
                        .store
                        .organization_for_customer(&connection.environment_id, customer_id)
                        .await?;
                    Ok::<_, StoreError>(Resolved {
                        connection: Some(connection),
                        organization_id: Some(organization_id),
                    })
                }
                None => Ok(Resolved {
                    connection: self.read_connection(account_id, livemode).await?,
                    organization_id: None,
                }),
            }
        };
        let (claim, resolved) = tokio::join!(self.state.store.begin_event(attempt), resolve);
        match claimed(attempt, claim?)? {
            Some(finish) => Ok(Err(finish)),
            None => Ok(Ok(resolved?)),
        }
    }

    /// Runs `write` for the organization linking the customer, re-reading the connection or the
    /// link when a concurrent change made the write fail.
    async fn with_linked_organization<F, Fut>(
        &self,
        attempt: &EventAttempt,
        livemode: bool,
        customer_id: &str,
        mut write: F,
    ) -> Result<Finish, WebhookError>
    where
        F: FnMut(AccountConnection, String) -> Fut,
        Fut: Future<Output = Result<Result<Finish, WriteOutcome>, WebhookError>>,
    {
        let account_id = &attempt.key.account_id;
        let mut resolved = match self
            .claim_and_resolve(attempt, livemode, customer_id)
            .await?
        {
            Ok(resolved) => resolved,
            Err(finish) => return Ok(finish),
        };
        for _ in 0..MAX_ROUNDS {
            let Some(connection) = resolved.connection.clone() else {
                return Ok(Finish::NeedsCompletion(WebhookOutcome::Ignored(
                    IgnoreReason::AccountNotConnected,
                )));
            };
            tracing::Span::current().record("environment_id", connection.environment_id.as_str());
            let organization_id = match resolved.organization_id.take() {
                Some(found) => found,
                None => {
                    self.state
                        .store
                        .organization_for_customer(&connection.environment_id, customer_id)
                        .await?
                }
            };
            let outcome = match organization_id {
                Some(organization_id) => match write(connection, organization_id.clone()).await? {
                    Ok(finish) => return Ok(finish),
                    Err(outcome) => (outcome, Some(organization_id)),
                },
                None => {
                    // The link was read in the environment the connection names, which may come
                    // from the cache: the completion checks that it is still current.
                    // NOTE: a link saved while this event is processed can still store the set
                    // its own Stripe read got, and that read may have started before the change
                    // this event reports. The next event for the customer, or linking again,
                    // corrects it.
                    let completion = EventCompletion {
                        attempt,
                        completed_at_ms: now_ms(),
                    };
                    match self
                        .state
                        .store
                        .complete_event(&completion, Some(&connection))
                        .await?
                    {
                        WriteOutcome::Applied => {
                            tracing::info!(
                                stripe_customer_id = customer_id,
                                "no organization links the customer"
                            );
                            return Ok(Finish::Completed(WebhookOutcome::Ignored(
                                IgnoreReason::CustomerNotLinked,
                            )));
                        }
                        outcome => (outcome, None),
                    }
                }
            };
            match outcome {
                (WriteOutcome::ConnectionChanged, _) => {
                    tracing::debug!("the account's connection may have changed; reading it again");
                    self.connections.remove(account_id, livemode);
                    resolved.connection = self.read_connection(account_id, livemode).await?;
                }
                (WriteOutcome::Conflict, organization_id) => {
                    tracing::debug!("the write collided with a concurrent transaction; retrying");
                    resolved.organization_id = Some(organization_id);
                }
                (WriteOutcome::LeaseLost, _) => {
                    return Err(WebhookError::LeaseLost {
                        event_id: attempt.key.event_id.clone(),
                    });
                }
                (_, organization_id) => {
                    tracing::debug!(
                        organization_id = organization_id.as_deref().unwrap_or(""),
                        "the organization no longer links the customer; reading the link again"
                    );
                }
            }
        }
        Err(WebhookError::Contended {
            event_id: attempt.key.event_id.clone(),
        })
    }

    /// `entitlements.active_entitlement_summary.updated`: reads the customer's active
    /// entitlements from Stripe, never from the event (which carries at most 10), and stores them.
    async fn update_entitlements(
        &self,
        attempt: &EventAttempt,
        livemode: bool,
        customer_id: &str,
    ) -> Result<Finish, WebhookError> {
        // One Stripe read serves every round: it stays valid when only the link or the
        // connection record changed, because it reads the same account.
        let read: Mutex<Option<(i64, Vec<String>)>> = Mutex::new(None);
        let read = &read;
        let rejection: Mutex<Option<Rejection>> = Mutex::new(None);
        let rejection = &rejection;
        self.with_linked_organization(
            attempt,
            livemode,
            customer_id,
            |connection, organization_id| async move {
                let earlier = lock(read).clone();
                let (read_at_ms, lookup_keys) = match earlier {
                    Some(done) => done,
                    None => match self
                        .read_unless_rejected(&connection, customer_id, rejection)
                        .await?
                    {
                        Some(done) => {
                            *lock(read) = Some(done.clone());
                            done
                        }
                        // The loop reads the account's record again, bypassing the cache.
                        None => return Ok(Err(WriteOutcome::ConnectionChanged)),
                    },
                };
                let set = EntitlementSet {
                    lookup_keys,
                    read_at_ms,
                    connection_id: connection.connection_id.clone(),
                };
                let outcome = self
                    .state
                    .store
                    .apply_entitlements(&EntitlementWrite {
                        connection: &connection,
                        organization_id: &organization_id,
                        customer_id,
                        set: &set,
                        event: Some(EventCompletion {
                            attempt,
                            completed_at_ms: now_ms(),
                        }),
                    })
                    .await?;
                Ok(match outcome {
                    WriteOutcome::Applied => {
                        tracing::info!(
                            organization_id,
                            stripe_customer_id = customer_id,
                            entitlements = set.lookup_keys.len(),
                            read_at_ms,
                            "stored the customer's entitlements"
                        );
                        Ok(Finish::Completed(WebhookOutcome::Applied))
                    }
                    WriteOutcome::NewerSetStored => Ok(Finish::NeedsCompletion(
                        WebhookOutcome::Ignored(IgnoreReason::NewerSetStored),
                    )),
                    other => Err(other),
                })
            },
        )
        .await
        .inspect(|finish| log_ended_connection(finish, rejection))
    }

    /// Reads the customer's entitlements under `connection`, unless Stripe already rejected
    /// access under it in this delivery. Returns `None` after a rejection that
    /// [`access_may_be_revoked`] matches, and records it so that the caller reads the account's
    /// record again. A round under the same connection then fails with the recorded rejection
    /// without calling Stripe, and a round under a new connection calls Stripe again.
    async fn read_unless_rejected(
        &self,
        connection: &AccountConnection,
        customer_id: &str,
        rejection: &Mutex<Option<Rejection>>,
    ) -> Result<Option<(i64, Vec<String>)>, WebhookError> {
        let earlier = lock(rejection).take();
        if let Some(earlier) = earlier
            && earlier.connection_id == connection.connection_id
        {
            return Err(WebhookError::StripeRejected(earlier.error));
        }
        match self.read_entitlements(connection, customer_id).await {
            Ok(done) => Ok(Some(done)),
            Err(WebhookError::StripeRejected(error)) if access_may_be_revoked(&error) => {
                tracing::debug!(
                    error = %error,
                    "Stripe rejected access to the account; reading its connection record again"
                );
                *lock(rejection) = Some(Rejection {
                    connection_id: connection.connection_id.clone(),
                    error,
                });
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Lists the customer's active entitlements; returns when the read started and the sorted
    /// lookup keys.
    async fn read_entitlements(
        &self,
        connection: &AccountConnection,
        customer_id: &str,
    ) -> Result<(i64, Vec<String>), WebhookError> {
        let client = self
            .state
            .stripe
            .as_ref()
            .ok_or(WebhookError::StripeNotConfigured)?;
        // Sets are versioned by when the read started, so a read that began later always wins.
        let read_at_ms = now_ms();
        match client
            .list_active_entitlements(&connection.account_id, customer_id, STRIPE_ATTEMPTS)
            .await
        {
            Ok(lookup_keys) => Ok((read_at_ms, normalize(lookup_keys))),
            Err(error) if error.is_transient() => Err(WebhookError::StripeUnavailable(error)),
            Err(error) => {
                // A rejection may mean the connection ended; the retry reads the record again.
                self.connections
                    .remove(&connection.account_id, connection.livemode);
                Err(WebhookError::StripeRejected(error))
            }
        }
    }

    /// `customer.deleted`: unlinks the organization that links the customer and drops its set.
    async fn unlink_customer(
        &self,
        attempt: &EventAttempt,
        livemode: bool,
        customer_id: &str,
    ) -> Result<Finish, WebhookError> {
        self.with_linked_organization(
            attempt,
            livemode,
            customer_id,
            |connection, organization_id| async move {
                let outcome = self
                    .state
                    .store
                    .unlink_customer(&CustomerUnlink {
                        connection: &connection,
                        organization_id: &organization_id,
                        customer_id,
                        event: Some(EventCompletion {
                            attempt,
                            completed_at_ms: now_ms(),
                        }),
                    })
                    .await?;
                Ok(match outcome {
                    WriteOutcome::Applied => {
                        tracing::info!(
                            organization_id,
                            stripe_customer_id = customer_id,
                            "unlinked the organization from the deleted customer"
                        );
                        Ok(Finish::Completed(WebhookOutcome::Applied))
                    }
                    other => Err(other),
                })
            },
        )
        .await
    }

    /// `account.application.deauthorized`: ends the account's connection in the event's mode and
    /// deletes the entitlement data read under it. The event is trusted on its signature alone,
    /// because the account can no longer be read.
    ///
    /// NOTE: only the event's mode is disconnected. If Stripe sends the event for one mode while
    /// the account also backs an environment of the other mode, that environment keeps its
    /// connection until its own deauthorization event or `DELETE /stripe/connection`.
    async fn deauthorize(
        &self,
        attempt: &EventAttempt,
        livemode: bool,
    ) -> Result<Finish, WebhookError> {
        let store = &self.state.store;
        let account_id = &attempt.key.account_id;
        let (claim, record) = tokio::join!(
            store.begin_event(attempt),
            store.stripe_account(account_id, livemode)
        );
        if let Some(finish) = claimed(attempt, claim?)? {
            return Ok(finish);
        }
        self.connections.remove(account_id, livemode);
        let Some(record) = record? else {
            return Ok(Finish::NeedsCompletion(WebhookOutcome::Ignored(
                IgnoreReason::AccountNotConnected,
            )));
        };
        tracing::Span::current().record("environment_id", record.environment_id.as_str());

        // A tombstone means an earlier delivery ended the connection and may have died before
        // deleting everything, so the purge runs again either way.
        if record.connected && store.disconnect_stripe(&record, now_ms()).await? {
            tracing::info!(
                connection_id = %record.connection_id,
                "ended the Stripe connection because the account deauthorized the platform"
            );
        }
        let mut removed = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = store
                .purge_entitlements(
                    &record.environment_id,
                    &record.connection_id,
                    cursor.as_deref(),
                )
                .await?;
            removed += page.removed;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        tracing::info!(
            connection_id = %record.connection_id,
            removed,
            "deleted the entitlement sets read under the ended connection"
        );
        Ok(Finish::NeedsCompletion(WebhookOutcome::Applied))
    }
}
