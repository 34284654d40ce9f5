//! Users and memberships on DynamoDB, in the environment's partition.
//!
//! An email address is claimed by an `EMAIL#<lowercase address>` item written in the same
//! transaction as the user, so two users of an environment never share an address.
//!
//! A membership is keyed by user and organization (`MEMBERSHIP#<user>#<organization>`), so a
//! refresh reads it by key and a user has one membership per organization. A `MEMBERSHIPID#<id>`
//! item resolves the membership ID that the API uses.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    ConditionCheck, Delete, DeleteRequest, TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::{
    DynamoStore, Item, backend, cancellation_reasons, condition_failed, from_item, string,
    string_attribute, to_item,
};
use crate::store::keys::{self, PK, SK};
use crate::store::{Membership, MembershipCreation, StoreError, StoreResult, User, UserStore};

/// How often a transaction that conflicted with another one is tried again.
const MAX_TRANSACTION_ATTEMPTS: usize = 3;
/// The maximum number of items in one `BatchWriteItem` request.
const MAX_BATCH_WRITE_ITEMS: usize = 25;
/// How often a batch write retries the items DynamoDB left unprocessed.
const MAX_BATCH_WRITE_ATTEMPTS: usize = 5;

/// The item that claims an email address for one user.
#[derive(Serialize, Deserialize)]
struct EmailClaim {
    user_id: String,
}

/// The item that resolves a membership ID to the key of the membership.
#[derive(Serialize, Deserialize)]
struct MembershipPointer {
    user_id: String,
    organization_id: String,
}

impl DynamoStore {
    /// Builds a transaction step that requires an item to exist.
    fn require_item(&self, pk: &str, sk: &str) -> StoreResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, string(pk))
            .key(SK, string(sk))
            .condition_expression("attribute_exists(pk)")
            .build()?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Reads every item of a partition whose sort key starts with `prefix`, following pages.
    pub(super) async fn query_prefix(&self, pk: &str, prefix: &str) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start_key: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", string(pk))
                .expression_attribute_values(":prefix", string(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(backend)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Deletes items by key with `BatchWriteItem`, retrying what DynamoDB leaves unprocessed.
    async fn delete_keys(&self, item_keys: Vec<(String, String)>) -> StoreResult<()> {
        for chunk in item_keys.chunks(MAX_BATCH_WRITE_ITEMS) {
            let mut requests = chunk
                .iter()
                .map(|(pk, sk)| {
                    let delete = DeleteRequest::builder()
                        .key(PK, string(pk))
                        .key(SK, string(sk))
                        .build()?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<StoreResult<Vec<WriteRequest>>>()?;
            for attempt in 0..MAX_BATCH_WRITE_ATTEMPTS {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(backend)?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
            }
            if !requests.is_empty() {
                return Err(StoreError::Contended {
                    entity: "batch delete",
                    id: format!("{} items left unprocessed", requests.len()),
                });
            }
        }
        Ok(())
    }

    async fn read_membership_pointer(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<MembershipPointer>> {
        let item = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::membership_id_sort(id),
            )
            .await?;
        item.map(from_item).transpose()
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let partition = keys::environment_partition(&user.environment_id);
        let user_item = to_item(&partition, &keys::user_sort(&user.id), user)?;
        let claim_item = to_item(
            &partition,
            &keys::email_sort(&user.email.to_lowercase()),
            &EmailClaim {
                user_id: user.id.clone(),
            },
        )?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(self.put_new(user_item)?)
            .transact_items(self.put_new(claim_item)?)
            .send()
            .await;
        let Err(error) = result else {
            return Ok(());
        };
        let Some(reasons) = cancellation_reasons(&error) else {
            return Err(backend(error));
        };
        if let Some(claim) = reasons.get(1).filter(|reason| condition_failed(reason)) {
            let owner_id = claim
                .item()
                .and_then(|item| string_attribute(item, "user_id"))
                .unwrap_or_default();
            return Err(StoreError::Taken {
                field: "email",
                value: user.email.clone(),
                owner_id,
            });
        }
        Err(StoreError::Contended {
            entity: "user",
            id: user.id.clone(),
        })
    }

    async fn get_user(&self, environment_id: &str, id: &str) -> StoreResult<Option<User>> {
        let item = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::user_sort(id),
            )
            .await?;
        item.map(from_item).transpose()
    }

    async fn get_user_by_email(
        &self,
        environment_id: &str,
        email: &str,
    ) -> StoreResult<Option<User>> {
        let lowercase = email.to_lowercase();
        let claim = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::email_sort(&lowercase),
            )
            .await?;
        let Some(claim) = claim.map(from_item::<EmailClaim>).transpose()? else {
            return Ok(None);
        };
        let user = self.get_user(environment_id, &claim.user_id).await?;
        // The claim and the user are written and deleted together, so they agree unless a write
        // landed between the two reads.
        Ok(user.filter(|user| user.email.to_lowercase() == lowercase))
    }

    async fn record_sign_in(
        &self,
        environment_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let at = dynamo_serde::to_attribute_value(at).map_err(|error| StoreError::Corrupt {
            key: format!("user {id}"),
            reason: error.to_string(),
        })?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, string(keys::environment_partition(environment_id)))
            .key(SK, string(keys::user_sort(id)))
            .update_expression("SET #at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#at", "last_sign_in_at")
            .expression_attribute_values(":at", at)
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

    async fn delete_user(&self, environment_id: &str, id: &str) -> StoreResult<bool> {
        let partition = keys::environment_partition(environment_id);
        let Some(user) = self.get_user(environment_id, id).await? else {
            return Ok(false);
        };
        let delete_user = Delete::builder()
            .table_name(&self.table)
            .key(PK, string(&partition))
            .key(SK, string(keys::user_sort(id)))
            .condition_expression("attribute_exists(pk)")
            .build()?;
        let delete_claim = Delete::builder()
            .table_name(&self.table)
            .key(PK, string(&partition))
            .key(SK, string(keys::email_sort(&user.email.to_lowercase())))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", string(id))
            .build()?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete_user).build())
            .transact_items(TransactWriteItem::builder().delete(delete_claim).build())
            .send()
            .await;
        if let Err(error) = result {
            return match cancellation_reasons(&error) {
                // Deleted by a concurrent request.
                Some(reasons) if reasons.first().is_some_and(condition_failed) => Ok(false),
                Some(_) => Err(StoreError::Contended {
                    entity: "user",
                    id: id.to_owned(),
                }),
                None => Err(backend(error)),
            };
        }

        // The user is gone, so its memberships no longer grant anything. Deleting them afterwards
        // keeps the user's own delete in one transaction, however many memberships it had.
        let memberships = self
            .query_prefix(&partition, &keys::membership_prefix(id))
            .await?;
        let mut item_keys = Vec::with_capacity(memberships.len() * 2);
        for item in memberships {
            let membership: Membership = from_item(item)?;
            item_keys.push((
                partition.clone(),
                keys::membership_sort(id, &membership.organization_id),
            ));
            item_keys.push((partition.clone(), keys::membership_id_sort(&membership.id)));
        }
        self.delete_keys(item_keys).await?;
        Ok(true)
    }

    async fn create_membership(&self, membership: &Membership) -> StoreResult<MembershipCreation> {
        let partition = keys::environment_partition(&membership.environment_id);
        let membership_item = to_item(
            &partition,
            &keys::membership_sort(&membership.user_id, &membership.organization_id),
            membership,
        )?;
        let pointer_item = to_item(
            &partition,
            &keys::membership_id_sort(&membership.id),
            &MembershipPointer {
                user_id: membership.user_id.clone(),
                organization_id: membership.organization_id.clone(),
            },
        )?;
        for _ in 0..MAX_TRANSACTION_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .transact_items(
                    self.require_item(&partition, &keys::user_sort(&membership.user_id))?,
                )
                .transact_items(self.require_item(
                    &partition,
                    &keys::organization_sort(&membership.organization_id),
                )?)
                .transact_items(self.put_new(membership_item.clone())?)
                .transact_items(self.put_new(pointer_item.clone())?)
                .send()
                .await;
            let Err(error) = result else {
                return Ok(MembershipCreation::Created);
            };
            let Some(reasons) = cancellation_reasons(&error) else {
                return Err(backend(error));
            };
            let failed = |index: usize| reasons.get(index).is_some_and(condition_failed);
            if failed(0) {
                return Ok(MembershipCreation::UserNotFound);
            }
            if failed(1) {
                return Ok(MembershipCreation::OrganizationNotFound);
            }
            if let Some(existing) = reasons.get(2).filter(|reason| condition_failed(reason)) {
                let membership_id = existing
                    .item()
                    .and_then(|item| string_attribute(item, "id"))
                    .unwrap_or_default();
                return Ok(MembershipCreation::AlreadyExists { membership_id });
            }
            // Cancelled without a failed condition: a conflict with a concurrent transaction.
        }
        Err(StoreError::Contended {
            entity: "membership",
            id: membership.id.clone(),
        })
    }

    async fn get_membership(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Membership>> {
        let Some(pointer) = self.read_membership_pointer(environment_id, id).await? else {
            return Ok(None);
        };
        let membership = self
            .get_membership_for(environment_id, &pointer.user_id, &pointer.organization_id)
            .await?;
        Ok(membership.filter(|membership| membership.id == id))
    }

    async fn get_membership_for(
        &self,
        environment_id: &str,
        user_id: &str,
        organization_id: &str,
    ) -> StoreResult<Option<Membership>> {
        let item = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::membership_sort(user_id, organization_id),
            )
            .await?;
        item.map(from_item).transpose()
    }

    async fn list_user_memberships(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<Membership>> {
        let items = self
            .query_prefix(
                &keys::environment_partition(environment_id),
                &keys::membership_prefix(user_id),
            )
            .await?;
        items.into_iter().map(from_item).collect()
    }

    async fn delete_membership(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Membership>> {
        let partition = keys::environment_partition(environment_id);
        let Some(pointer) = self.read_membership_pointer(environment_id, id).await? else {
            return Ok(None);
        };
        let sort = keys::membership_sort(&pointer.user_id, &pointer.organization_id);
        let membership = self
            .get_membership_for(environment_id, &pointer.user_id, &pointer.organization_id)
            .await?
            .filter(|membership| membership.id == id);
        let delete_pointer = Delete::builder()
            .table_name(&self.table)
            .key(PK, string(&partition))
            .key(SK, string(keys::membership_id_sort(id)))
            .condition_expression("attribute_exists(pk)")
            .build()?;
        let mut transaction = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete_pointer).build());
        if membership.is_some() {
            let delete_membership = Delete::builder()
                .table_name(&self.table)
                .key(PK, string(&partition))
                .key(SK, string(sort))
                .condition_expression("attribute_exists(pk) AND #id = :id")
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":id", string(id))
                .build()?;
            transaction = transaction.transact_items(
                TransactWriteItem::builder()
                    .delete(delete_membership)
                    .build(),
            );
        }
        match transaction.send().await {
            Ok(_) => Ok(membership),
            Err(error) => match cancellation_reasons(&error) {
                // Deleted by a concurrent request.
                Some(reasons) if reasons.iter().any(condition_failed) => Ok(None),
                Some(_) => Err(StoreError::Contended {
                    entity: "membership",
                    id: id.to_owned(),
                }),
                None => Err(backend(error)),
            },
        }
    }
}
