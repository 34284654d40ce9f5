//! OAuth states and the entitlements toggle in the embedded store, with the conditions of the
//! DynamoDB implementation checked under the store's lock.

use async_trait::async_trait;

use super::{EmbeddedStore, Write, key, to_value};
use crate::store::keys;
use crate::store::{
    ConnectStore, Environment, OAuthConsumption, OAuthOutcome, OAuthState, StateConsumption,
    StoreError, StoreResult,
};

/// Reads a state as stored, expired or not, so an expired state can be told from a missing one.
fn stored_state(items: &super::Items, state_hash: &str) -> StoreResult<Option<OAuthState>> {
    let partition = keys::oauth_state_partition(state_hash);
    let Some(item) = items
        .map
        .get(&key(partition.clone(), keys::OAUTH_STATE_SORT))
    else {
        return Ok(None);
    };
    serde_json::from_value(item.clone())
        .map(Some)
        .map_err(|error| StoreError::Corrupt {
            key: format!("{partition}/{}", keys::OAUTH_STATE_SORT),
            reason: error.to_string(),
        })
}

#[async_trait]
impl ConnectStore for EmbeddedStore {
    async fn create_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        let mut items = self.items();
        let state_key = key(
            keys::oauth_state_partition(&state.state_hash),
            keys::OAUTH_STATE_SORT,
        );
        if items.map.contains_key(&state_key) {
            return Err(StoreError::Taken {
                field: "state",
                value: state.state_hash.clone(),
                owner_id: state.environment_id.clone(),
            });
        }
        items.commit(vec![Write::Put(state_key, to_value(state)?)])
    }

    async fn get_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<OAuthState>> {
        let items = self.items();
        Ok(stored_state(&items, state_hash)?.filter(|state| !state.is_expired(now_ms)))
    }

    async fn consume_oauth_state(
        &self,
        state_hash: &str,
        consumption: &OAuthConsumption,
        now_ms: i64,
    ) -> StoreResult<StateConsumption> {
        let mut items = self.items();
        let Some(mut state) = stored_state(&items, state_hash)? else {
            return Ok(StateConsumption::NotFound);
        };
        if state.is_expired(now_ms) {
            return Ok(StateConsumption::Expired);
        }
        if state.consumption.is_some() {
            return Ok(StateConsumption::AlreadyConsumed(state));
        }
        state.consumption = Some(consumption.clone());
        let state_key = key(
            keys::oauth_state_partition(state_hash),
            keys::OAUTH_STATE_SORT,
        );
        items.commit(vec![Write::Put(state_key, to_value(&state)?)])?;
        Ok(StateConsumption::Consumed(state))
    }

    async fn record_oauth_outcome(
        &self,
        state_hash: &str,
        claim_id: &str,
        outcome: &OAuthOutcome,
    ) -> StoreResult<bool> {
        let mut items = self.items();
        let Some(mut state) = stored_state(&items, state_hash)? else {
            return Ok(false);
        };
        let Some(consumption) = state.consumption.as_mut() else {
            return Ok(false);
        };
        if consumption.claim_id != claim_id || consumption.outcome.is_some() {
            return Ok(false);
        }
        consumption.outcome = Some(outcome.clone());
        let state_key = key(
            keys::oauth_state_partition(state_hash),
            keys::OAUTH_STATE_SORT,
        );
        items.commit(vec![Write::Put(state_key, to_value(&state)?)])?;
        Ok(true)
    }

    async fn set_entitlements_enabled(
        &self,
        environment_id: &str,
        enabled: bool,
    ) -> StoreResult<Option<Environment>> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        // Only the one attribute changes, as with DynamoDB's `SET`; other attributes stay as stored.
        let Some(mut item) = items.raw(&partition, keys::ENVIRONMENT_SORT).cloned() else {
            return Ok(None);
        };
        let Some(attributes) = item.as_object_mut() else {
            return Err(StoreError::Corrupt {
                key: format!("{partition}/{}", keys::ENVIRONMENT_SORT),
                reason: "the environment item is not an object".into(),
            });
        };
        attributes.insert(
            "entitlements_enabled".into(),
            serde_json::Value::Bool(enabled),
        );
        let environment: Environment =
            serde_json::from_value(item.clone()).map_err(|error| StoreError::Corrupt {
                key: format!("{partition}/{}", keys::ENVIRONMENT_SORT),
                reason: error.to_string(),
            })?;
        items.commit(vec![Write::Put(
            key(partition, keys::ENVIRONMENT_SORT),
            item,
        )])?;
        Ok(Some(environment))
    }
}
