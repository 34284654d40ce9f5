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
