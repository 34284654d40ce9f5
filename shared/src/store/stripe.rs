//! Stripe connections, processed webhook events and entitlement sets: the records and the
//! [`StripeStore`] trait that both store implementations provide.
//!
//! - A connection maps a Stripe account in one mode (test or live) to the environment it is
//!   connected to. It is written together with the environment's `stripe_connection`, so the two
//!   always agree, and it is unique per account and mode. Disconnecting keeps the record as a
//!   tombstone (`connected: false`) that remembers which environment and connection it ended, so a
//!   retried deauthorization can still finish deleting that connection's data.
//! - An event record makes each webhook event take effect once. A delivery claims it with a
//!   lease. A duplicate finds it completed (a no-op) or in progress (retry later). A delivery that
//!   died leaves a lease that a later delivery takes over once it expires.
//! - Entitlement sets live on the organization item (`Organization::entitlements`) and are found
//!   through the customer claim item that linking writes. A set replaces the stored one only when
//!   its Stripe read started later, or when the stored one belongs to an earlier connection.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{EntitlementSet, StoreResult, StripeConnection};

/// How long a completed event record is kept: Stripe resends an event for up to 30 days.
pub const EVENT_RETENTION_SECONDS: i64 = 30 * 24 * 3600;

/// How many organizations one page of [`StripeStore::purge_entitlements`] reads.
pub const PURGE_PAGE_SIZE: usize = 100;

/// How long a disconnected account's tombstone is kept, long enough for every retry of the
/// deauthorization event that ended it.
pub const TOMBSTONE_RETENTION_SECONDS: i64 = 30 * 24 * 3600;

/// The environment a Stripe account is connected to in one mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountConnection {
    /// The connected account (`acct_…`).
    pub account_id: String,
    pub livemode: bool,
    pub environment_id: String,
    /// The [`StripeConnection::connection_id`] of the connection this record describes.
    pub connection_id: String,
    /// `false` once the connection ended, when the record only names the data to delete.
    pub connected: bool,
}

impl AccountConnection {
    /// Builds the record of an environment's current connection.
    pub fn of(environment_id: &str, connection: &StripeConnection) -> Self {
        AccountConnection {
            account_id: connection.account_id.clone(),
            livemode: connection.livemode,
            environment_id: environment_id.to_owned(),
            connection_id: connection.connection_id.clone(),
            connected: true,
        }
    }
}

/// The result of [`StripeStore::connect_stripe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// The environment is connected. `replaced` is the connection ID of an earlier connection of
    /// the same account that this one replaced, whose sets no longer count and can be purged.
    Connected { replaced: Option<String> },
    /// The account is already connected, in this mode, to another environment.
    AccountTaken { environment_id: String },
    /// The environment is connected to another account; disconnect it first.
    EnvironmentConnected { account_id: String },
    /// The connection's mode differs from the environment's.
    ModeMismatch,
    /// No environment has this ID.
    EnvironmentNotFound,
}

/// One page of [`StripeStore::purge_entitlements`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgePage {
    /// How many organizations lost their set in this page.
    pub removed: usize,
    /// The cursor of the next page, or `None` when the whole environment was read.
    pub next_cursor: Option<String>,
}

/// Identifies one webhook event: Stripe event IDs are unique per account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventKey {
    /// The connected account of the event.
    pub account_id: String,
    pub event_id: String,
}

/// One delivery's attempt to process an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAttempt {
    pub key: EventKey,
    pub event_type: String,
    /// A random value of this attempt, stored in the record. It distinguishes this attempt's own
    /// write (for example one the SDK retried after it had landed) from another delivery's.
    pub token: String,
    /// When the attempt started, in milliseconds since the epoch.
    pub started_at_ms: i64,
    /// How long the attempt holds the event before another delivery may take it over.
    pub lease_ms: i64,
}

impl EventAttempt {
    /// When this attempt's lease expires, in milliseconds since the epoch.
    pub fn lease_expires_at_ms(&self) -> i64 {
        self.started_at_ms.saturating_add(self.lease_ms)
    }
}

/// The state of an event record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Processing,
    Completed,
}

/// An event record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub account_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: EventStatus,
    /// The token of the attempt that holds or completed the event.
    pub token: String,
    /// Until when a processing attempt holds the event, in milliseconds since the epoch.
    pub lease_expires_at_ms: i64,
    /// When the record expires (epoch seconds), the table's TTL attribute.
    pub expires_at: i64,
}

impl EventRecord {
    /// Builds the record an attempt writes when it claims an event.
    pub fn processing(attempt: &EventAttempt) -> Self {
        EventRecord {
            account_id: attempt.key.account_id.clone(),
            event_id: attempt.key.event_id.clone(),
            event_type: attempt.event_type.clone(),
            status: EventStatus::Processing,
            token: attempt.token.clone(),
            lease_expires_at_ms: attempt.lease_expires_at_ms(),
            expires_at: attempt.started_at_ms / 1000 + EVENT_RETENTION_SECONDS,
        }
    }

    /// Builds the record of an event that the completion's attempt processed.
    pub fn completed(completion: &EventCompletion<'_>) -> Self {
        EventRecord {
            status: EventStatus::Completed,
            expires_at: completion.completed_at_ms / 1000 + EVENT_RETENTION_SECONDS,
            ..EventRecord::processing(completion.attempt)
        }
    }

    /// Returns whether `attempt` may claim the event over this record.
    pub fn claimable_by(&self, attempt: &EventAttempt) -> bool {
        self.status == EventStatus::Processing && self.lease_expires_at_ms < attempt.started_at_ms
    }
}

/// The result of [`StripeStore::begin_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventClaim {
    /// This attempt holds the event: it was new, its earlier holder's lease expired, or the
    /// record is this attempt's own.
    Claimed,
    /// The event was processed before; a duplicate delivery changes nothing.
    Completed,
    /// Another delivery holds the event until `lease_expires_at_ms`.
    InProgress { lease_expires_at_ms: i64 },
}

/// An event attempt to complete in the same write as its effect.
#[derive(Debug, Clone, Copy)]
pub struct EventCompletion<'a> {
    pub attempt: &'a EventAttempt,
    /// When the effect is written, in milliseconds since the epoch; the record expires
    /// [`EVENT_RETENTION_SECONDS`] later.
    pub completed_at_ms: i64,
}

/// A set to store on the organization that links `customer_id`.
#[derive(Debug, Clone, Copy)]
pub struct EntitlementWrite<'a> {
    /// The connection the set was read under; the write fails when it is no longer current.
    pub connection: &'a AccountConnection,
    pub organization_id: &'a str,
    pub customer_id: &'a str,
    /// The set, whose `connection_id` is `connection.connection_id`.
    pub set: &'a EntitlementSet,
    /// The event to complete with the write, if any.
    pub event: Option<EventCompletion<'a>>,
}

/// An organization to unlink from a customer that Stripe deleted.
#[derive(Debug, Clone, Copy)]
pub struct CustomerUnlink<'a> {
    /// The connection the deletion event came through; the write fails when it is no longer current.
    pub connection: &'a AccountConnection,
    pub organization_id: &'a str,
    pub customer_id: &'a str,
    /// The event to complete with the write, if any.
    pub event: Option<EventCompletion<'a>>,
}

/// The result of a conditional write for an event: [`StripeStore::apply_entitlements`] and
/// [`StripeStore::unlink_customer`]. Nothing is written unless it is `Applied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Applied,
    /// A set read at the same time or later is stored, under the current connection.
    NewerSetStored,
    /// The organization does not exist or no longer links the customer.
    CustomerNotLinked,
    /// The account is no longer connected to the environment under this connection.
    ConnectionChanged,
    /// The event record is no longer this attempt's: another delivery took the event over.
    LeaseLost,
    /// The write collided with a concurrent transaction on the same items; retrying may succeed.
    Conflict,
}

/// Stripe connections, webhook events and entitlement sets.
#[async_trait]
pub trait StripeStore: Send + Sync {
    /// Connects an environment to a Stripe account: sets the environment's `stripe_connection` and
    /// the account's connection record together, provided no other environment holds the account
    /// in this mode and the environment is not connected to another account.
    async fn connect_stripe(
        &self,
        environment_id: &str,
        connection: &StripeConnection,
    ) -> StoreResult<ConnectOutcome>;

    /// Ends a connection: clears the environment's `stripe_connection` and turns the account's
    /// record into a tombstone, in one write. From then on no set read under that connection
    /// counts for the claim. Returns `false` when the connection was not current (already ended
    /// or replaced). The sets themselves are deleted by [`Self::purge_entitlements`].
    async fn disconnect_stripe(
        &self,
        connection: &AccountConnection,
        now_ms: i64,
    ) -> StoreResult<bool>;

    /// Reads the connection record of an account in one mode, tombstones included.
    async fn stripe_account(
        &self,
        account_id: &str,
        livemode: bool,
    ) -> StoreResult<Option<AccountConnection>>;

    /// Removes, from one page of an environment's organizations, every set read under
    /// `connection_id`, bumping each organization's version. Start with `cursor: None` and repeat
    /// with the returned cursor until it is `None`.
    async fn purge_entitlements(
        &self,
        environment_id: &str,
        connection_id: &str,
        cursor: Option<&str>,
    ) -> StoreResult<PurgePage>;

    /// Returns the ID of the organization that links a Stripe customer in an environment.
    async fn organization_for_customer(
        &self,
        environment_id: &str,
        customer_id: &str,
    ) -> StoreResult<Option<String>>;

    /// Stores a set on the organization, and completes the event when one is given, in one write.
    /// The write happens only when the organization still links the customer, the connection is
    /// current, the event is still this attempt's, and the stored set (if any) was read earlier or
    /// under another connection.
    async fn apply_entitlements(&self, write: &EntitlementWrite<'_>) -> StoreResult<WriteOutcome>;

    /// Unlinks an organization from a customer: removes its `stripe_customer_id`, its set and the
    /// customer claim, and completes the event when one is given, in one write. The conditions are
    /// those of [`Self::apply_entitlements`] without the set's.
    async fn unlink_customer(&self, unlink: &CustomerUnlink<'_>) -> StoreResult<WriteOutcome>;

    /// Claims an event for an attempt: creates its record, or takes over a processing record whose
    /// lease expired before the attempt started.
    async fn begin_event(&self, attempt: &EventAttempt) -> StoreResult<EventClaim>;

    /// Marks an event completed, provided the record is still the attempt's (else `LeaseLost`)
    /// and, when `connection` is given, the account is still connected under it (else
    /// `ConnectionChanged`). Completing an event twice with the same attempt is `Applied`.
    async fn complete_event(
        &self,
        completion: &EventCompletion<'_>,
        connection: Option<&AccountConnection>,
    ) -> StoreResult<WriteOutcome>;

    /// Deletes the record of an attempt that failed, so the next delivery can claim the event at
    /// once. Does nothing when the record is not the attempt's.
    async fn release_event(&self, attempt: &EventAttempt) -> StoreResult<()>;
}

/// A connection record as both implementations store it: a tombstone carries the table's TTL
/// attribute, so it disappears once every retry of the event that ended it is over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredAccount {
    pub account_id: String,
    pub livemode: bool,
    pub environment_id: String,
    pub connection_id: String,
    pub connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl StoredAccount {
    /// Builds the record of a live connection.
    pub fn connected(environment_id: &str, connection: &StripeConnection) -> Self {
        let record = AccountConnection::of(environment_id, connection);
        StoredAccount {
            account_id: record.account_id,
            livemode: record.livemode,
            environment_id: record.environment_id,
            connection_id: record.connection_id,
            connected: true,
            expires_at: None,
        }
    }

    /// Returns whether this record is the live connection `connection`.
    pub fn is_current(&self, connection: &AccountConnection) -> bool {
        self.connected
            && self.environment_id == connection.environment_id
            && self.connection_id == connection.connection_id
    }

    /// Builds the tombstone this record becomes when its connection ends at `now_ms`.
    pub fn tombstone(&self, now_ms: i64) -> Self {
        StoredAccount {
            connected: false,
            expires_at: Some(now_ms / 1000 + TOMBSTONE_RETENTION_SECONDS),
            ..self.clone()
        }
    }
}

impl From<StoredAccount> for AccountConnection {
    fn from(stored: StoredAccount) -> Self {
        AccountConnection {
            account_id: stored.account_id,
            livemode: stored.livemode,
            environment_id: stored.environment_id,
            connection_id: stored.connection_id,
            connected: stored.connected,
        }
    }
}
