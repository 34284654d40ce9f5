//! Stripe webhooks: signature verification, lenient event parsing, and the processing that keeps
//! every organization's entitlement set current.
//!
//! # Statuses
//!
//! 400 only for a missing or invalid signature or an unreadable body; 200 for every verified
//! event that was applied, was a duplicate, or needed no change (unknown type, platform event,
//! account not connected in the event's mode, customer not linked, newer set stored); 503 while
//! another delivery holds the event or when Stripe or a concurrent change made the delivery fail
//! in a way worth retrying; 500 when Stripe rejected the request while the store still shows the
//! account connected, or the store failed. A verified event of a handled type is never
//! acknowledged before its effect is written.
//!
//! # Access revoked on Stripe
//!
//! When Stripe rejects the entitlement list with a 403 or the code `account_invalid`, the
//! platform may have lost access to the account, for example because another process ended the
//! connection while this one still caches it. The processor then drops the cached entry and reads
//! the account's record again. If the connection ended, the event is acknowledged as
//! `account_not_connected` and no set is written. If the account is connected under a new
//! connection, Stripe is read again under it. If the record still shows the same connection, the
//! delivery fails with 500 so that Stripe retries it.
//!
//! # Exactly-once effect
//!
//! Each event is recorded by (account, event ID) with a lease of [`EVENT_LEASE`]. The write that
//! applies an event also completes its record, in one transaction conditional on the attempt's
//! token, so an event that took effect is always recorded as completed. A failed delivery
//! releases its record so Stripe's retry can claim it at once; a delivery that died keeps its
//! record until the lease expires, and the next delivery then takes it over. Completed records
//! expire after 30 days, the longest Stripe resends an event.
//!
//! # Versioned sets
//!
//! `entitlements.active_entitlement_summary.updated` makes the processor list the customer's
//! active entitlements from Stripe (every page, `limit=100`, `Stripe-Account: <account>`) instead
//! of trusting the event, whose embedded list stops at 10. The set is stamped with the time the
//! read started, and replaces the stored set only when that is later, so a read that began
//! before a change never overwrites one that began after it, in whatever order deliveries land.
//! Environments with entitlements disabled keep receiving sets, so re-enabling shows current data.
//!
//! # DynamoDB requests per event
//!
//! Counted on DynamoDB Local by `functions/stripe-webhooks/tests/budget.rs`:
//!
//! | event | requests |
//! |---|---|
//! | applied, account cached (warm) | 3: `PutItem` claim and `GetItem` customer link, concurrently; `TransactWriteItems` |
//! | applied, account not cached (cold) | 4: `PutItem` claim and `GetItem` account, concurrently; `GetItem` customer link; `TransactWriteItems` |
//! | duplicate | 2: the `PutItem` claim fails; the read that ran with it is wasted |
//! | customer not linked, warm | 3: claim and link read; `TransactWriteItems` completing the event |
//! | Stripe rejected access and the connection ended, warm | 4: claim and link read; `GetItem` account; `UpdateItem` completing the event |
//! | unknown type or platform event | 0 |
//!
//! The cold path exceeds the budget of 3 by one read, once per account and process every
//! [`connections::CONNECTION_CACHE_TTL`]: the table has no index, so finding the environment of an
//! account and then the organization of a customer in that environment are two reads. A cached
//! entry is never trusted for a write, because every write carries a condition check on the
//! account's connection record.

pub mod connections;
pub mod event;
mod processor;
pub mod signature;

pub use processor::{EVENT_LEASE, IgnoreReason, WebhookError, WebhookOutcome, WebhookProcessor};
