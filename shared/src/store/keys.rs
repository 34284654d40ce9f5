//! Partition and sort keys of the single table, shared by both store implementations.
//!
//! Items that belong to an environment live in its partition `ENV#<environment id>`, so listing and
//! uniqueness are per environment by construction. Lookups by a secret (API keys) get a partition of
//! their own, keyed by the secret's hash.

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// The TTL attribute (epoch seconds); DynamoDB deletes an item some time after it passes.
pub const TTL: &str = "expires_at";

pub fn environment_partition(environment_id: &str) -> String {
    format!("ENV#{environment_id}")
}

/// Sort key of the environment record itself.
pub const ENVIRONMENT_SORT: &str = "ENVIRONMENT";

pub fn api_key_partition(api_key_hash: &str) -> String {
    format!("APIKEY#{api_key_hash}")
}

/// Sort key of an API key record.
pub const API_KEY_SORT: &str = "APIKEY";

/// Prefix of every organization sort key; ULID IDs make them sort by creation time.
pub const ORGANIZATION_PREFIX: &str = "ORG#";

pub fn organization_sort(organization_id: &str) -> String {
    format!("{ORGANIZATION_PREFIX}{organization_id}")
}

/// Sort key of the claim that makes an external ID unique within an environment.
pub fn external_id_sort(external_id: &str) -> String {
    format!("EXTERNALID#{external_id}")
}

/// Sort key of the claim that links a Stripe customer to one organization of an environment.
pub fn customer_sort(customer_id: &str) -> String {
    format!("CUSTOMER#{customer_id}")
}

/// Partition listing every environment, for administration.
pub const ENVIRONMENTS_PARTITION: &str = "ENVIRONMENTS";

/// Partition of the record that maps a Stripe account, in one mode, to the environment it is
/// connected to. The mode is part of the key because one account has separate test and live data.
pub fn stripe_account_partition(account_id: &str, livemode: bool) -> String {
    let mode = if livemode { "live" } else { "test" };
    format!("STRIPEACCOUNT#{account_id}#{mode}")
}

/// Sort key of a Stripe account's connection record.
pub const STRIPE_ACCOUNT_SORT: &str = "CONNECTION";

/// Partition of the record of one webhook event. Each event gets a partition of its own, so the
/// event records spread over the table.
pub fn stripe_event_partition(account_id: &str, event_id: &str) -> String {
    format!("STRIPEEVENT#{account_id}#{event_id}")
}

/// Sort key of a webhook event record.
pub const STRIPE_EVENT_SORT: &str = "EVENT";

/// Prefix of every user sort key, in the environment's partition.
pub const USER_PREFIX: &str = "USER#";

pub fn user_sort(user_id: &str) -> String {
    format!("{USER_PREFIX}{user_id}")
}

/// Sort key of the claim that makes an email address unique within an environment. The address
/// is lowercased by the caller.
pub fn email_sort(lowercase_email: &str) -> String {
    format!("EMAIL#{lowercase_email}")
}

/// Prefix of the sort keys of one user's memberships.
pub fn membership_prefix(user_id: &str) -> String {
    format!("MEMBERSHIP#{user_id}#")
}

/// Sort key of a membership. It is built from the user and organization IDs, so a refresh reads
/// the membership by key, and a user has at most one membership per organization.
pub fn membership_sort(user_id: &str, organization_id: &str) -> String {
    format!("{}{organization_id}", membership_prefix(user_id))
}

/// Sort key of the item that resolves a membership ID to its user and organization.
pub fn membership_id_sort(membership_id: &str) -> String {
    format!("MEMBERSHIPID#{membership_id}")
}

/// Sort key of a pending authentication, by the hash of its token.
pub fn pending_authentication_sort(token_hash: &str) -> String {
    format!("PENDINGAUTH#{token_hash}")
}

/// Partition of one session. Each session has its own partition, so refresh writes spread over
/// the table. The environment is part of the key, so a session is never found from another one.
pub fn session_partition(environment_id: &str, session_id: &str) -> String {
    format!("SESSION#{environment_id}#{session_id}")
}

/// Sort key of a session item.
pub const SESSION_SORT: &str = "SESSION";

/// Partition of the record of one `Idempotency-Key` (by its hash) in one environment.
pub fn idempotency_partition(environment_id: &str, key_hash: &str) -> String {
    format!("IDEMPOTENCY#{environment_id}#{key_hash}")
}

/// Sort key of an idempotency record.
pub const IDEMPOTENCY_SORT: &str = "IDEMPOTENCY";

/// Partition of an OAuth state record, keyed by the hash of the state: the OAuth callback knows
/// only the state, not the environment.
pub fn oauth_state_partition(state_hash: &str) -> String {
    format!("OAUTHSTATE#{state_hash}")
}

/// Sort key of an OAuth state record.
pub const OAUTH_STATE_SORT: &str = "OAUTHSTATE";
