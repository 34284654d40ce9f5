//! Environments and API keys on DynamoDB.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{DynamoStore, backend, from_item, string, to_item};
use crate::store::keys::{self, PK, SK};
use crate::store::{Environment, EnvironmentStore, StoreError, StoreResult};

/// The record behind an API key: which environment it opens.
#[derive(Serialize, Deserialize)]
struct ApiKeyRecord {
    environment_id: String,
}

#[derive(Serialize, Deserialize)]
struct EnvironmentListing {
    environment_id: String,
}

#[async_trait]
impl EnvironmentStore for DynamoStore {
    async fn create_environment(
        &self,
        environment: &Environment,
        api_key_hash: &str,
    ) -> StoreResult<()> {
        let environment_item = to_item(
            &keys::environment_partition(&environment.id),
            keys::ENVIRONMENT_SORT,
            environment,
        )?;
        let api_key_item = to_item(
            &keys::api_key_partition(api_key_hash),
            keys::API_KEY_SORT,
            &ApiKeyRecord {
                environment_id: environment.id.clone(),
            },
        )?;
        let listing_item = to_item(
            keys::ENVIRONMENTS_PARTITION,
            &environment.id,
            &EnvironmentListing {
                environment_id: environment.id.clone(),
            },
        )?;
        self.client
            .transact_write_items()
            .transact_items(self.put_new(environment_item)?)
            .transact_items(self.put_new(api_key_item)?)
            .transact_items(self.put_new(listing_item)?)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_environment(&self, id: &str) -> StoreResult<Option<Environment>> {
        let item = self
            .get_item(&keys::environment_partition(id), keys::ENVIRONMENT_SORT)
            .await?;
        item.map(from_item).transpose()
    }

    async fn environment_id_for_api_key(&self, api_key_hash: &str) -> StoreResult<Option<String>> {
        let item = self
            .get_item(&keys::api_key_partition(api_key_hash), keys::API_KEY_SORT)
            .await?;
        let record: Option<ApiKeyRecord> = item.map(from_item).transpose()?;
        Ok(record.map(|record| record.environment_id))
    }

    async fn has_environments(&self) -> StoreResult<bool> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":pk", string(keys::ENVIRONMENTS_PARTITION))
            .projection_expression("#sk")
            .expression_attribute_names("#sk", SK)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(output.count() > 0)
    }
}

impl From<aws_sdk_dynamodb::error::BuildError> for StoreError {
    fn from(error: aws_sdk_dynamodb::error::BuildError) -> Self {
        StoreError::backend(error)
    }
}
