//! Idempotency records on DynamoDB, one partition per environment and key hash.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::{DynamoStore, backend, from_item, number, string, to_item};
use crate::store::keys::{self, PK, SK};
use crate::store::{IdempotencyRecord, IdempotencyStore, StoreError, StoreResult, StoredResponse};

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now_seconds: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let item = to_item(
            &keys::idempotency_partition(&record.environment_id, &record.key_hash),
            keys::IDEMPOTENCY_SORT,
            record,
        )?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR #expires_at <= :now \
                 OR (attribute_not_exists(#response) AND #locked_until <= :now)",
            )
            .expression_attribute_names("#expires_at", keys::TTL)
            .expression_attribute_names("#response", "response")
            .expression_attribute_names("#locked_until", "locked_until")
            .expression_attribute_values(":now", number(now_seconds))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(error) => match error.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failure)) => {
                    match failure.item().cloned() {
                        Some(existing) => Ok(Some(from_item(existing)?)),
                        None => Err(StoreError::Corrupt {
                            key: "idempotency record".into(),
                            reason: "condition failed without an existing item".into(),
                        }),
                    }
                }
                _ => Err(backend(error)),
            },
        }
    }

    async fn complete_idempotency_key(
        &self,
        environment_id: &str,
        key_hash: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        let value =
            dynamo_serde::to_attribute_value(response).map_err(|error| StoreError::Corrupt {
                key: "idempotency response".into(),
                reason: error.to_string(),
            })?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                PK,
                string(keys::idempotency_partition(environment_id, key_hash)),
            )
            .key(SK, string(keys::IDEMPOTENCY_SORT))
            .update_expression("SET #response = :response")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":response", value)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The record expired and was removed meanwhile: there is nothing left to complete.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn release_idempotency_key(
        &self,
        environment_id: &str,
        key_hash: &str,
    ) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(
                PK,
                string(keys::idempotency_partition(environment_id, key_hash)),
            )
            .key(SK, string(keys::IDEMPOTENCY_SORT))
            .condition_expression("attribute_not_exists(#response)")
            .expression_attribute_names("#response", "response")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(backend(error)),
        }
    }
}
