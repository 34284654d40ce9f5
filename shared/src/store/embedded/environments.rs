//! Environments and API keys in the embedded store.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{EmbeddedStore, Write, key, to_value};
use crate::store::keys;
use crate::store::{Environment, EnvironmentStore, StoreError, StoreResult};

#[derive(Serialize, Deserialize)]
struct ApiKeyRecord {
    environment_id: String,
}

#[async_trait]
impl EnvironmentStore for EmbeddedStore {
    async fn create_environment(
        &self,
        environment: &Environment,
        api_key_hash: &str,
    ) -> StoreResult<()> {
        let mut items = self.items();
        let environment_key = key(
            keys::environment_partition(&environment.id),
            keys::ENVIRONMENT_SORT,
        );
        let api_key_key = key(keys::api_key_partition(api_key_hash), keys::API_KEY_SORT);
        let listing_key = key(keys::ENVIRONMENTS_PARTITION, environment.id.clone());
        for existing in [&environment_key, &api_key_key, &listing_key] {
            if items.raw(&existing.0, &existing.1).is_some() {
                return Err(StoreError::Taken {
                    field: "environment",
                    value: environment.id.clone(),
                    owner_id: environment.id.clone(),
                });
            }
        }
        let api_key_record = to_value(&ApiKeyRecord {
            environment_id: environment.id.clone(),
        })?;
        items.commit(vec![
            Write::Put(environment_key, to_value(environment)?),
            Write::Put(api_key_key, api_key_record.clone()),
            Write::Put(listing_key, api_key_record),
        ])
    }

    async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>> {
        self.items()
            .get(&keys::environment_partition(id), keys::ENVIRONMENT_SORT)
    }

    async fn environment_id_for_api_key(&self, api_key_hash: &str) -> StoreResult<Option<String>> {
        let record: Option<ApiKeyRecord> = self
            .items()
            .get(&keys::api_key_partition(api_key_hash), keys::API_KEY_SORT)?;
        Ok(record.map(|record| record.environment_id))
    }

    async fn has_environments(&self) -> StoreResult<bool> {
        let listed: Vec<serde_json::Value> =
            self.items()
                .query(keys::ENVIRONMENTS_PARTITION, "", true, None, 1)?;
        Ok(!listed.is_empty())
    }
}
