//! The `entitlements` claim and the seam through which linking a customer loads its entitlements.

use async_trait::async_trait;

use crate::store::{EntitlementSet, Environment, Organization};

/// Computes the `entitlements` claim of a token scoped to `organization`.
///
/// The claim is absent when the token has no organization, the environment has no connected Stripe
/// account or has entitlements disabled, the organization has no Stripe customer, or no set has
/// been read for that customer under the current connection (so an unknown set is never shown as
/// an empty one). Otherwise it is the sorted, de-duplicated list of lookup keys, possibly empty.
pub fn claim(
    environment: &Environment,
    organization: Option<&Organization>,
) -> Option<Vec<String>> {
    let organization = organization?;
    let connection = environment.stripe_connection.as_ref()?;
    if !environment.entitlements_enabled {
        return None;
    }
    organization.stripe_customer_id.as_ref()?;
    let set = organization.entitlements.as_ref()?;
    (set.connection_id == connection.connection_id).then(|| set.lookup_keys.clone())
}

/// Sorts and de-duplicates lookup keys, the form in which sets are stored.
pub fn normalize(mut lookup_keys: Vec<String>) -> Vec<String> {
    lookup_keys.sort();
    lookup_keys.dedup();
    lookup_keys
}

/// Reads a customer's active entitlements from Stripe when an organization links to it.
#[async_trait]
pub trait EntitlementLoader: Send + Sync {
    /// Returns the customer's current set, or `None` when it could not be read (no connection,
    /// entitlements disabled, or Stripe failed); the link is saved either way.
    async fn load_for_link(
        &self,
        environment: &Environment,
        customer_id: &str,
    ) -> Option<EntitlementSet>;
}

/// A loader that never loads, for stacks without a Stripe client.
pub struct NoEntitlementLoader;

#[async_trait]
impl EntitlementLoader for NoEntitlementLoader {
    async fn load_for_link(
        &self,
        _environment: &Environment,
        _customer_id: &str,
    ) -> Option<EntitlementSet> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StripeConnection, StripeMode};
    use chrono::Utc;

    fn environment(connected: bool, enabled: bool) -> Environment {
        Environment {
            id: "client_1".into(),
            name: "test".into(),
            mode: StripeMode::Test,
            created_at: Utc::now(),
            stripe_connection: connected.then(|| StripeConnection {
                account_id: "acct_1".into(),
                livemode: false,
                scope: "read_write".into(),
                connected_at: Utc::now(),
                connection_id: "conn_1".into(),
            }),
            entitlements_enabled: enabled,
            signing_keys: Vec::new(),
        }
    }

    fn organization(customer: Option<&str>, set: Option<(&[&str], &str)>) -> Organization {
        Organization {
            id: "org_1".into(),
            environment_id: "client_1".into(),
            name: "Acme".into(),
            external_id: None,
            metadata: Default::default(),
            domains: Vec::new(),
            stripe_customer_id: customer.map(str::to_owned),
            entitlements: set.map(|(keys, connection)| EntitlementSet {
                lookup_keys: keys.iter().map(|key| key.to_string()).collect(),
                read_at_ms: 1,
                connection_id: connection.into(),
            }),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        }
    }

    #[test]
    fn claim_present_when_linked_and_connected() {
        let org = organization(Some("cus_1"), Some((&["a", "b"], "conn_1")));
        assert_eq!(
            claim(&environment(true, true), Some(&org)),
            Some(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn claim_empty_when_nothing_active() {
        let org = organization(Some("cus_1"), Some((&[], "conn_1")));
        assert_eq!(claim(&environment(true, true), Some(&org)), Some(vec![]));
    }

    #[test]
    fn claim_absent_cases() {
        let linked = organization(Some("cus_1"), Some((&["a"], "conn_1")));
        assert_eq!(claim(&environment(true, true), None), None);
        assert_eq!(claim(&environment(false, true), Some(&linked)), None);
        assert_eq!(claim(&environment(true, false), Some(&linked)), None);
        let unlinked = organization(None, Some((&["a"], "conn_1")));
        assert_eq!(claim(&environment(true, true), Some(&unlinked)), None);
        let stale = organization(Some("cus_1"), Some((&["a"], "conn_old")));
        assert_eq!(claim(&environment(true, true), Some(&stale)), None);
        let unknown = organization(Some("cus_1"), None);
        assert_eq!(claim(&environment(true, true), Some(&unknown)), None);
    }

    #[test]
    fn normalize_sorts_and_dedups() {
        let keys = normalize(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(keys, vec!["a".to_owned(), "b".to_owned()]);
    }
}
