//! Sessions, pending authentications, the batched refresh read and signing-key updates on
//! DynamoDB.
//!
//! A rotation is one `UpdateItem` whose condition requires the presented token to be current. It
//! returns the old item both when it applies (`ReturnValues=ALL_OLD`) and when its condition fails
//! (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), so the caller learns in the same round trip
//! whether the token was current, previous or unknown, without a separate read.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::{DynamoStore, Item, backend, from_item, number, string, string_attribute, to_item};
use crate::store::keys::{self, PK, SK};
use crate::store::{
    ContextKeys, PendingAuthentication, Rotation, RotationOutcome, Session, SessionContext,
    SessionStore, StoreError, StoreResult,
};
use crate::tokens::StoredSigningKey;

/// How often a batch read retries the keys DynamoDB left unprocessed.
const MAX_BATCH_GET_ATTEMPTS: usize = 5;

fn attribute<T: Serialize>(value: &T, field: &str) -> StoreResult<AttributeValue> {
    dynamo_serde::to_attribute_value(value).map_err(|error| StoreError::Corrupt {
        key: field.to_owned(),
        reason: error.to_string(),
    })
}

/// Returns `Some` for a failed condition, with the old item DynamoDB sent (`None` inside when no
/// item existed), and `None` for any other error.
fn conditional_failure<R>(
    error: &SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError, R>,
) -> Option<Option<Item>> {
    match error.as_service_error()? {
        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(failure) => {
            Some(failure.item().cloned())
        }
        _ => None,
    }
}

impl DynamoStore {
    fn session_update(&self, environment_id: &str, session_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(
                PK,
                string(keys::session_partition(environment_id, session_id)),
            )
            .key(SK, string(keys::SESSION_SORT))
    }

    /// Sends a rotation update and maps its result to a [`RotationOutcome`].
    async fn send_rotation(&self, update: UpdateItemFluentBuilder) -> StoreResult<RotationOutcome> {
        let result = update
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let before = output.attributes.ok_or_else(|| StoreError::Corrupt {
                    key: "session".into(),
                    reason: "UpdateItem returned no old item".into(),
                })?;
                Ok(RotationOutcome::Rotated {
                    before: from_item(before)?,
                })
            }
            Err(error) => match conditional_failure(&error) {
                Some(current) => Ok(RotationOutcome::Rejected {
                    current: current.map(from_item).transpose()?,
                }),
                None => Err(backend(error)),
            },
        }
    }

    /// Runs `update`; a failed condition is `Ok(false)`.
    async fn conditional_update(&self, update: UpdateItemFluentBuilder) -> StoreResult<bool> {
        match update.send().await {
            Ok(_) => Ok(true),
            Err(error) if conditional_failure(&error).is_some() => Ok(false),
            Err(error) => Err(backend(error)),
        }
    }

    /// Reads items by key with `BatchGetItem` and strongly consistent reads, retrying what
    /// DynamoDB leaves unprocessed. Returns the items by `(pk, sk)`.
    async fn batch_get(
        &self,
        item_keys: Vec<(String, String)>,
    ) -> StoreResult<HashMap<(String, String), Item>> {
        let mut found = HashMap::new();
        if item_keys.is_empty() {
            return Ok(found);
        }
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for (pk, sk) in &item_keys {
            request = request.keys(HashMap::from([
                (PK.to_owned(), string(pk)),
                (SK.to_owned(), string(sk)),
            ]));
        }
        let mut pending = Some(request.build()?);
        for attempt in 0..MAX_BATCH_GET_ATTEMPTS {
            let Some(request) = pending.take() else {
                break;
            };
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(backend)?;
            for item in output
                .responses
                .and_then(|mut tables| tables.remove(&self.table))
                .unwrap_or_default()
            {
                let pk = string_attribute(&item, PK).unwrap_or_default();
                let sk = string_attribute(&item, SK).unwrap_or_default();
                found.insert((pk, sk), item);
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .filter(|unprocessed| !unprocessed.keys().is_empty());
            if pending.is_some() {
                tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
            }
        }
        if pending.is_some() {
            return Err(StoreError::Contended {
                entity: "batch read",
                id: "keys left unprocessed".into(),
            });
        }
        Ok(found)
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let item = to_item(
            &keys::session_partition(&session.environment_id, &session.id),
            keys::SESSION_SORT,
            session,
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

    async fn get_session(&self, environment_id: &str, id: &str) -> StoreResult<Option<Session>> {
        let item = self
            .get_item(
                &keys::session_partition(environment_id, id),
                keys::SESSION_SORT,
            )
            .await?;
        item.map(from_item).transpose()
    }

    async fn rotate_session(&self, rotation: &Rotation) -> StoreResult<RotationOutcome> {
        let mut set = vec![
            "#token_hash = :next_hash",
            "#previous_hash = :presented_hash",
            "#generation = :next_generation",
            "#rotated_at_ms = :rotated_at_ms",
        ];
        let mut update = self
            .session_update(&rotation.environment_id, &rotation.session_id)
            .condition_expression(
                "#token_hash = :presented_hash AND #generation = :generation AND #user_id = :user_id \
                 AND attribute_not_exists(#revoked_at) AND #expires_at > :now",
            )
            .expression_attribute_names("#token_hash", "token_hash")
            .expression_attribute_names("#previous_hash", "previous_hash")
            .expression_attribute_names("#generation", "generation")
            .expression_attribute_names("#rotated_at_ms", "rotated_at_ms")
            .expression_attribute_names("#previous_unconsumed", "previous_unconsumed")
            .expression_attribute_names("#user_id", "user_id")
            .expression_attribute_names("#revoked_at", "revoked_at")
            .expression_attribute_names("#expires_at", keys::TTL)
            .expression_attribute_values(":next_hash", string(&rotation.next_hash))
            .expression_attribute_values(":presented_hash", string(&rotation.presented_hash))
            .expression_attribute_values(":generation", number(rotation.presented_generation))
            .expression_attribute_values(":next_generation", number(rotation.presented_generation + 1))
            .expression_attribute_values(":rotated_at_ms", number(rotation.rotated_at_ms))
            .expression_attribute_values(":user_id", string(&rotation.user_id))
            .expression_attribute_values(":now", number(rotation.now_seconds()));
        if let Some(organization_id) = &rotation.organization_id {
            set.push("#organization_id = :organization_id");
            update = update
                .expression_attribute_names("#organization_id", "organization_id")
                .expression_attribute_values(":organization_id", string(organization_id));
        }
        let expression = format!("SET {} REMOVE #previous_unconsumed", set.join(", "));
        self.send_rotation(update.update_expression(expression))
            .await
    }

    async fn rerotate_session(&self, rotation: &Rotation) -> StoreResult<RotationOutcome> {
        let mut set = vec!["#rotated_at_ms = :rotated_at_ms"];
        let mut update = self
            .session_update(&rotation.environment_id, &rotation.session_id)
            .condition_expression(
                "#generation = :next_generation AND #previous_hash = :presented_hash \
                 AND #previous_unconsumed = :unconsumed AND #user_id = :user_id \
                 AND attribute_not_exists(#revoked_at) AND #expires_at > :now",
            )
            .expression_attribute_names("#previous_hash", "previous_hash")
            .expression_attribute_names("#generation", "generation")
            .expression_attribute_names("#rotated_at_ms", "rotated_at_ms")
            .expression_attribute_names("#previous_unconsumed", "previous_unconsumed")
            .expression_attribute_names("#user_id", "user_id")
            .expression_attribute_names("#revoked_at", "revoked_at")
            .expression_attribute_names("#expires_at", keys::TTL)
            .expression_attribute_values(":presented_hash", string(&rotation.presented_hash))
            .expression_attribute_values(
                ":next_generation",
                number(rotation.presented_generation + 1),
            )
            .expression_attribute_values(":rotated_at_ms", number(rotation.rotated_at_ms))
            .expression_attribute_values(":unconsumed", AttributeValue::Bool(true))
            .expression_attribute_values(":user_id", string(&rotation.user_id))
            .expression_attribute_values(":now", number(rotation.now_seconds()));
        if let Some(organization_id) = &rotation.organization_id {
            set.push("#organization_id = :organization_id");
            update = update
                .expression_attribute_names("#organization_id", "organization_id")
                .expression_attribute_values(":organization_id", string(organization_id));
        }
        let expression = format!("SET {} REMOVE #previous_unconsumed", set.join(", "));
        self.send_rotation(update.update_expression(expression))
            .await
    }

    async fn release_rotation(
        &self,
        environment_id: &str,
        session_id: &str,
        generation: u64,
        token_hash: &str,
        organization_id: Option<&str>,
    ) -> StoreResult<bool> {
        let mut update = self
            .session_update(environment_id, session_id)
            .condition_expression("#generation = :generation AND #token_hash = :token_hash")
            .expression_attribute_names("#generation", "generation")
            .expression_attribute_names("#token_hash", "token_hash")
            .expression_attribute_names("#previous_unconsumed", "previous_unconsumed")
            .expression_attribute_names("#organization_id", "organization_id")
            .expression_attribute_values(":generation", number(generation))
            .expression_attribute_values(":token_hash", string(token_hash))
            .expression_attribute_values(":unconsumed", AttributeValue::Bool(true));
        update = match organization_id {
            Some(organization_id) => update
                .update_expression(
                    "SET #previous_unconsumed = :unconsumed, #organization_id = :organization_id",
                )
                .expression_attribute_values(":organization_id", string(organization_id)),
            None => update.update_expression(
                "SET #previous_unconsumed = :unconsumed REMOVE #organization_id",
            ),
        };
        self.conditional_update(update).await
    }

    async fn revoke_session(
        &self,
        environment_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let update = self
            .session_update(environment_id, id)
            .update_expression("SET #revoked_at = if_not_exists(#revoked_at, :at)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#revoked_at", "revoked_at")
            .expression_attribute_values(":at", attribute(&at, "revoked_at")?);
        self.conditional_update(update).await
    }

    async fn read_session_context(
        &self,
        context_keys: &ContextKeys,
    ) -> StoreResult<SessionContext> {
        let partition = keys::environment_partition(&context_keys.environment_id);
        let api_key = context_keys
            .api_key_hash
            .as_ref()
            .map(|hash| (keys::api_key_partition(hash), keys::API_KEY_SORT.to_owned()));
        let environment = context_keys
            .environment
            .then(|| (partition.clone(), keys::ENVIRONMENT_SORT.to_owned()));
        let user = context_keys
            .user_id
            .as_ref()
            .map(|user_id| (partition.clone(), keys::user_sort(user_id)));
        let membership = context_keys
            .membership
            .as_ref()
            .map(|(user_id, organization_id)| {
                (
                    (
                        partition.clone(),
                        keys::membership_sort(user_id, organization_id),
                    ),
                    (partition.clone(), keys::organization_sort(organization_id)),
                )
            });

        let mut wanted: Vec<(String, String)> = Vec::with_capacity(5);
        wanted.extend(api_key.clone());
        wanted.extend(environment.clone());
        wanted.extend(user.clone());
        if let Some((membership_key, organization_key)) = &membership {
            wanted.push(membership_key.clone());
            wanted.push(organization_key.clone());
        }
        let mut found = self.batch_get(wanted).await?;

        let mut context = SessionContext::default();
        if let Some(item) = api_key.and_then(|key| found.remove(&key)) {
            context.api_key_environment_id = string_attribute(&item, "environment_id");
        }
        if let Some(item) = environment.and_then(|key| found.remove(&key)) {
            context.environment = Some(from_item(item)?);
        }
        if let Some(item) = user.and_then(|key| found.remove(&key)) {
            context.user = Some(from_item(item)?);
        }
        if let Some((membership_key, organization_key)) = membership {
            if let Some(item) = found.remove(&membership_key) {
                context.membership = Some(from_item(item)?);
            }
            if let Some(item) = found.remove(&organization_key) {
                context.organization = Some(from_item(item)?);
            }
        }
        Ok(context)
    }

    async fn create_pending_authentication(
        &self,
        pending: &PendingAuthentication,
    ) -> StoreResult<()> {
        let item = to_item(
            &keys::environment_partition(&pending.environment_id),
            &keys::pending_authentication_sort(&pending.token_hash),
            pending,
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

    async fn get_pending_authentication(
        &self,
        environment_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<PendingAuthentication>> {
        let item = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::pending_authentication_sort(token_hash),
            )
            .await?;
        let pending: Option<PendingAuthentication> = item.map(from_item).transpose()?;
        // DynamoDB deletes expired items late, so expiry is checked here too.
        let now = Utc::now().timestamp();
        Ok(pending.filter(|pending| pending.expires_at > now))
    }

    async fn consume_pending_authentication(
        &self,
        environment_id: &str,
        token_hash: &str,
        now_seconds: i64,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, string(keys::environment_partition(environment_id)))
            .key(SK, string(keys::pending_authentication_sort(token_hash)))
            .condition_expression("attribute_exists(pk) AND #expires_at > :now")
            .expression_attribute_names("#expires_at", keys::TTL)
            .expression_attribute_values(":now", number(now_seconds))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn replace_signing_keys(
        &self,
        environment_id: &str,
        current: &[StoredSigningKey],
        next: &[StoredSigningKey],
    ) -> StoreResult<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, string(keys::environment_partition(environment_id)))
            .key(SK, string(keys::ENVIRONMENT_SORT))
            .update_expression("SET #keys = :next")
            .expression_attribute_names("#keys", "signing_keys")
            .expression_attribute_values(":next", attribute(&next, "signing_keys")?);
        // List equality compares every element, so the write applies only to the list as read.
        update = if current.is_empty() {
            update
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(#keys) OR size(#keys) = :zero)",
                )
                .expression_attribute_values(":zero", number(0))
        } else {
            update
                .condition_expression("attribute_exists(pk) AND #keys = :current")
                .expression_attribute_values(":current", attribute(&current, "signing_keys")?)
        };
        self.conditional_update(update).await
    }
}
