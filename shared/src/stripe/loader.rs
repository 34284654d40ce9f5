//! Loads a customer's entitlements from Stripe when an organization links to it, so the first
//! token after linking already carries them.

use std::sync::Arc;

use async_trait::async_trait;

use super::StripeClient;
use crate::entitlements::{EntitlementLoader, normalize};
use crate::store::{EntitlementSet, Environment};

/// Attempts per page while linking: one retry, 1 s later, because a link without a set shows no
/// claim until the next event for that customer, which may be long in coming.
const LINK_ATTEMPTS: u32 = 2;

/// The [`EntitlementLoader`] that reads from Stripe under the environment's current connection.
#[derive(Debug, Clone)]
pub struct StripeEntitlementLoader {
    client: Arc<StripeClient>,
}

impl StripeEntitlementLoader {
    pub fn new(client: Arc<StripeClient>) -> Self {
        StripeEntitlementLoader { client }
    }
}

#[async_trait]
impl EntitlementLoader for StripeEntitlementLoader {
    async fn load_for_link(
        &self,
        environment: &Environment,
        customer_id: &str,
    ) -> Option<EntitlementSet> {
        let connection = environment.stripe_connection.as_ref()?;
        if !environment.entitlements_enabled {
            return None;
        }
        // The set is versioned by when this read started: a webhook that read Stripe later wins.
        let read_at_ms = chrono::Utc::now().timestamp_millis();
        match self
            .client
            .list_active_entitlements(&connection.account_id, customer_id, LINK_ATTEMPTS)
            .await
        {
            Ok(lookup_keys) => Some(EntitlementSet {
                lookup_keys: normalize(lookup_keys),
                read_at_ms,
                connection_id: connection.connection_id.clone(),
            }),
            Err(error) => {
                tracing::warn!(
                    environment_id = %environment.id,
                    stripe_account = %connection.account_id,
                    stripe_customer_id = customer_id,
                    transient = error.is_transient(),
                    error = %error,
                    "listing the customer's entitlements from Stripe failed"
                );
                None
            }
        }
    }
}
