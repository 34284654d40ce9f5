//! Domain records as stored. The same serde shapes are written by both store implementations.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The Stripe mode an environment is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StripeMode {
    Test,
    Live,
}

impl StripeMode {
    /// The mode of Stripe objects with this `livemode` flag.
    pub fn from_livemode(livemode: bool) -> Self {
        if livemode {
            StripeMode::Live
        } else {
            StripeMode::Test
        }
    }

    pub fn is_live(self) -> bool {
        self == StripeMode::Live
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StripeMode::Test => "test",
            StripeMode::Live => "live",
        }
    }
}

/// The Stripe account an environment is connected to through Connect OAuth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeConnection {
    /// The connected account (`acct_…`), Stripe's `stripe_user_id`.
    pub account_id: String,
    pub livemode: bool,
    pub scope: String,
    pub connected_at: DateTime<Utc>,
    /// A new value on every connection, so data written under an earlier connection of the same
    /// account is never mistaken for current data.
    pub connection_id: String,
}

/// An isolated tenant of the service: its API keys, client ID, signing keys, organizations, users,
/// sessions and Stripe connection belong to it alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// The environment ID, which is also its client ID (`client_…`).
    pub id: String,
    pub name: String,
    pub mode: StripeMode,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub stripe_connection: Option<StripeConnection>,
    /// Whether tokens carry the `entitlements` claim while Stripe is connected.
    #[serde(default = "default_true")]
    pub entitlements_enabled: bool,
    /// Signing keys (`Next`, `Active`, `Previous`) with their encrypted private halves.
    #[serde(default)]
    pub signing_keys: Vec<crate::tokens::StoredSigningKey>,
}

impl PartialEq for Environment {
    /// Compares the serialized forms, because signing keys do not implement `PartialEq`.
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

fn default_true() -> bool {
    true
}

/// A domain of an organization, in the WorkOS `organization_domain` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationDomain {
    pub id: String,
    pub domain: String,
    /// `verified` or `pending`.
    pub state: String,
}

/// The active entitlements of an organization's Stripe customer, as last read from Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementSet {
    /// Sorted, de-duplicated feature lookup keys.
    pub lookup_keys: Vec<String>,
    /// When the read from Stripe started, in milliseconds since the epoch. A set is only replaced by
    /// one read later, so an older view of Stripe never overwrites a newer one.
    pub read_at_ms: i64,
    /// The [`StripeConnection::connection_id`] the set was read under.
    pub connection_id: String,
}

/// An organization of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub environment_id: String,
    pub name: String,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub domains: Vec<OrganizationDomain>,
    #[serde(default)]
    pub stripe_customer_id: Option<String>,
    #[serde(default)]
    pub entitlements: Option<EntitlementSet>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every write; writes are conditional on the version they read.
    pub version: u64,
}

/// Sort order of a list, by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

/// A page request in the WorkOS style: at most one of `before` and `after`, both object IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: usize,
    pub before: Option<String>,
    pub after: Option<String>,
    pub order: Order,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            limit: 10,
            before: None,
            after: None,
            order: Order::Desc,
        }
    }
}

/// A page of results with the cursors of WorkOS `list_metadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// The ID to pass as `before` for the previous page, when there is one.
    pub before: Option<String>,
    /// The ID to pass as `after` for the next page, when there is one.
    pub after: Option<String>,
}

impl ListQuery {
    /// Whether the store reads the sort key range in ascending order for this query: a `before`
    /// cursor reads backwards from the cursor and the page is reversed afterwards.
    pub fn scan_ascending(&self) -> bool {
        (self.order == Order::Asc) != self.before.is_some()
    }

    /// The cursor the read starts after, if any.
    pub fn cursor(&self) -> Option<&str> {
        self.before.as_deref().or(self.after.as_deref())
    }

    /// Builds the page from up to `limit + 1` records read in [`Self::scan_ascending`] order.
    pub fn finish_page<T>(&self, mut fetched: Vec<T>, id: impl Fn(&T) -> &str) -> Page<T> {
        let more = fetched.len() > self.limit;
        fetched.truncate(self.limit);
        let first_id = |data: &[T]| data.first().map(|record| id(record).to_owned());
        let last_id = |data: &[T]| data.last().map(|record| id(record).to_owned());
        if self.before.is_some() {
            fetched.reverse();
            Page {
                before: if more { first_id(&fetched) } else { None },
                after: last_id(&fetched),
                data: fetched,
            }
        } else {
            Page {
                before: if self.after.is_some() {
                    first_id(&fetched)
                } else {
                    None
                },
                after: if more { last_id(&fetched) } else { None },
                data: fetched,
            }
        }
    }
}
