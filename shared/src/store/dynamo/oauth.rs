//! OAuth states and the entitlements toggle on DynamoDB. Consuming a state and recording its
//! outcome are single `UpdateItem` requests whose conditions make them happen once.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::{DynamoStore, backend, from_item, number, string, to_item};
use crate::store::keys::{self, PK, SK};
use crate::store::{
    ConnectStore, Environment, OAuthConsumption, OAuthOutcome, OAuthState, StateConsumption,
    StoreError, StoreResult,
};

fn to_attribute<T: serde::Serialize>(
    value: &T,
    what: &str,
) -> StoreResult<aws_sdk_dynamodb::types::AttributeValue> {
    dynamo_serde::to_attribute_value(value).map_err(|error| StoreError::Corrupt {
        key: what.to_owned(),
        reason: error.to_string(),
    })
}

/// Whether an `UpdateItem` failed on its condition; returns the item as it was, if any.
fn failed_condition<R>(
    error: &aws_sdk_dynamodb::error::SdkError<UpdateItemError, R>,
) -> Option<Option<super::Item>> {
    match error.as_service_error()? {
        UpdateItemError::ConditionalCheckFailedException(failed) => Some(failed.item().cloned()),
        _ => None,
    }
}

#[async_trait]
impl ConnectStore for DynamoStore {
    async fn create_oauth_state(&self, state: &OAuthState) -> StoreResult<()> {
        let item = to_item(
            &keys::oauth_state_partition(&state.state_hash),
            keys::OAUTH_STATE_SORT,
            state,
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_oauth_state(
        &self,
        state_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<OAuthState>> {
        let item = self
            .get_item(
                &keys::oauth_state_partition(state_hash),
                keys::OAUTH_STATE_SORT,
            )
            .await?;
        let state: Option<OAuthState> = item.map(from_item).transpose()?;
        Ok(state.filter(|state| !state.is_expired(now_ms)))
    }

    async fn consume_oauth_state(
        &self,
        state_hash: &str,
        consumption: &OAuthConsumption,
        now_ms: i64,
    ) -> StoreResult<StateConsumption> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, string(keys::oauth_state_partition(state_hash)))
            .key(SK, string(keys::OAUTH_STATE_SORT))
            .update_expression("SET consumption = :consumption")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(consumption) AND expires_at > :now",
            )
            .expression_attribute_values(":consumption", to_attribute(consumption, "consumption")?)
            .expression_attribute_values(":now", number(now_ms.div_euclid(1000)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.ok_or_else(|| StoreError::Corrupt {
                    key: keys::oauth_state_partition(state_hash),
                    reason: "UpdateItem returned no attributes".into(),
                })?;
                Ok(StateConsumption::Consumed(from_item(item)?))
            }
            Err(error) => {
                let Some(old_item) = failed_condition(&error) else {
                    return Err(backend(error));
                };
                let Some(old_item) = old_item else {
                    return Ok(StateConsumption::NotFound);
                };
                let stored: OAuthState = from_item(old_item)?;
                if stored.is_expired(now_ms) {
                    Ok(StateConsumption::Expired)
                } else {
                    Ok(StateConsumption::AlreadyConsumed(stored))
                }
            }
        }
    }

    async fn record_oauth_outcome(
        &self,
        state_hash: &str,
        claim_id: &str,
        outcome: &OAuthOutcome,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, string(keys::oauth_state_partition(state_hash)))
            .key(SK, string(keys::OAUTH_STATE_SORT))
            .update_expression("SET consumption.outcome = :outcome")
            .condition_expression(
                "consumption.claim_id = :claim AND attribute_not_exists(consumption.outcome)",
            )
            .expression_attribute_values(":outcome", to_attribute(outcome, "outcome")?)
            .expression_attribute_values(":claim", string(claim_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if failed_condition(&error).is_some() => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    async fn set_entitlements_enabled(
        &self,
        environment_id: &str,
        enabled: bool,
    ) -> StoreResult<Option<Environment>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, string(keys::environment_partition(environment_id)))
            .key(SK, string(keys::ENVIRONMENT_SORT))
            .update_expression("SET entitlements_enabled = :enabled")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":enabled",
                aws_sdk_dynamodb::types::AttributeValue::Bool(enabled),
            )
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => output.attributes.map(from_item).transpose(),
            Err(error) if failed_condition(&error).is_some() => Ok(None),
            Err(error) => Err(backend(error)),
        }
    }
}
