//! Stripe connections, webhook events and entitlement sets on DynamoDB.
//!
//! Every rule is a condition evaluated by DynamoDB, so concurrent Lambdas never apply an event
//! twice or let an older set overwrite a newer one:
//!
//! - A set is written with one `TransactWriteItems` of three steps. The organization item is
//!   updated on the condition `stripe_customer_id = :customer AND (no set OR set.read_at_ms <
//!   :read_at OR set.connection_id <> :connection)`. A condition check requires the account's
//!   record to be the current connection. The event is completed on the attempt's token.
//! - An event is claimed with a conditional `PutItem` that returns the stored record when the
//!   condition fails. A record carrying this attempt's own token means the SDK retried a write that
//!   had landed, which counts as success.
//! - Connecting and disconnecting update the environment's `stripe_connection` in place, with
//!   `UpdateItem`, so the other attributes of the environment item are left alone.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, Put,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use futures::StreamExt;
use serde::Serialize;
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo_serde;

use super::{
    DynamoStore, Item, backend, cancellation_reasons, condition_failed, from_item, number, string,
    string_attribute, to_item,
};
use crate::store::keys::{self, PK, SK, TTL};
use crate::store::{
    AccountConnection, ConnectOutcome, CustomerUnlink, EntitlementWrite, Environment, EventAttempt,
    EventClaim, EventCompletion, EventRecord, EventStatus, PURGE_PAGE_SIZE, PurgePage, StoreError,
    StoreResult, StoredAccount, StripeConnection, StripeStore, WriteOutcome,
};

/// How often a transaction that collided with another is retried inside the store.
const MAX_TRANSACTION_ATTEMPTS: usize = 3;

/// How many organization updates of a purge page run at once.
const PURGE_CONCURRENCY: usize = 16;

/// The `attribute_type` name of a DynamoDB NULL: serde writes `None` fields as NULL attributes.
const NULL_TYPE: &str = "NULL";

/// The update and condition that complete an event record, provided it is still the attempt's.
const COMPLETION_UPDATE: &str = "SET #status = :completed, #expires = :expires";
const COMPLETION_CONDITION: &str = "#token = :token";

/// The key and expression values of an event completion, for `UpdateItem` and transactions alike.
struct CompletionParts {
    key: Item,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl CompletionParts {
    fn new(completion: &EventCompletion<'_>) -> StoreResult<Self> {
        let (pk, sk) = event_keys(completion.attempt);
        let completed = EventRecord::completed(completion);
        Ok(CompletionParts {
            key: [(PK.to_owned(), string(pk)), (SK.to_owned(), string(sk))].into(),
            names: names(&[
                ("#status", "status"),
                ("#expires", TTL),
                ("#token", "token"),
            ]),
            values: [
                (":completed".to_owned(), attribute(&EventStatus::Completed)?),
                (":expires".to_owned(), number(completed.expires_at)),
                (":token".to_owned(), string(&completion.attempt.token)),
            ]
            .into(),
        })
    }
}

/// The meaning of a transaction step, used to read its cancellation reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Organization,
    CustomerClaim,
    Account,
    Event,
}

/// Converts a serializable value into an attribute value.
fn attribute<T: Serialize>(value: &T) -> StoreResult<AttributeValue> {
    dynamo_serde::to_attribute_value(value).map_err(|error| StoreError::Corrupt {
        key: String::new(),
        reason: error.to_string(),
    })
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(placeholder, name)| ((*placeholder).to_owned(), (*name).to_owned()))
        .collect()
}

fn event_keys(attempt: &EventAttempt) -> (String, String) {
    (
        keys::stripe_event_partition(&attempt.key.account_id, &attempt.key.event_id),
        keys::STRIPE_EVENT_SORT.to_owned(),
    )
}

impl DynamoStore {
    /// Builds a condition check that the account's record is still the live connection `connection`.
    fn current_connection_check(
        &self,
        connection: &AccountConnection,
    ) -> StoreResult<TransactWriteItem> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key(
                PK,
                string(keys::stripe_account_partition(
                    &connection.account_id,
                    connection.livemode,
                )),
            )
            .key(SK, string(keys::STRIPE_ACCOUNT_SORT))
            .condition_expression(
                "#connected = :true AND #environment = :environment AND #connection = :connection",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#connected", "connected"),
                ("#environment", "environment_id"),
                ("#connection", "connection_id"),
            ])))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":environment", string(&connection.environment_id))
            .expression_attribute_values(":connection", string(&connection.connection_id))
            .build()?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Builds the update that marks an event completed, provided the record is still the attempt's.
    fn completion_update(&self, completion: &EventCompletion<'_>) -> StoreResult<Update> {
        let parts = CompletionParts::new(completion)?;
        Ok(Update::builder()
            .table_name(&self.table)
            .set_key(Some(parts.key))
            .update_expression(COMPLETION_UPDATE)
            .condition_expression(COMPLETION_CONDITION)
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values(Some(parts.values))
            .build()?)
    }

    /// Runs an event transaction and maps its cancellation reasons to a [`WriteOutcome`].
    /// `organization_outcome` reads the organization's old item when its condition failed.
    async fn run_event_transaction(
        &self,
        steps: Vec<(Step, TransactWriteItem)>,
        organization_outcome: impl Fn(Option<&Item>) -> WriteOutcome,
    ) -> StoreResult<WriteOutcome> {
        let (meanings, items): (Vec<Step>, Vec<TransactWriteItem>) = steps.into_iter().unzip();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(error) = result else {
            return Ok(WriteOutcome::Applied);
        };
        let Some(reasons) = cancellation_reasons(&error) else {
            return Err(backend(error));
        };
        let failed = |step: Step| -> Option<&CancellationReason> {
            reasons
                .iter()
                .zip(&meanings)
                .find(|(reason, meaning)| **meaning == step && condition_failed(reason))
                .map(|(reason, _)| reason)
        };
        // A lost lease matters most: the event belongs to another delivery, whatever else changed.
        if failed(Step::Event).is_some() {
            return Ok(WriteOutcome::LeaseLost);
        }
        if failed(Step::Account).is_some() {
            return Ok(WriteOutcome::ConnectionChanged);
        }
        if let Some(reason) = failed(Step::Organization) {
            return Ok(organization_outcome(reason.item()));
        }
        if failed(Step::CustomerClaim).is_some() {
            return Ok(WriteOutcome::CustomerNotLinked);
        }
        if reasons
            .iter()
            .any(|reason| reason.code() == Some("TransactionConflict"))
        {
            return Ok(WriteOutcome::Conflict);
        }
        Err(backend(error))
    }

    /// Runs a transaction. Returns `Ok(Err(reasons))` when DynamoDB cancelled it, with one reason
    /// per step in order.
    async fn run_checked_transaction(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> StoreResult<Result<(), Vec<CancellationReason>>> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(error) => match cancellation_reasons(&error) {
                Some(reasons) => Ok(Err(reasons.to_vec())),
                None => Err(backend(error)),
            },
        }
    }

    /// Removes one organization's set if it was read under `connection_id`. Returns whether it did.
    async fn remove_set(
        &self,
        partition: &str,
        sort_key: &str,
        connection_id: &str,
    ) -> StoreResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, string(partition))
            .key(SK, string(sort_key))
            .update_expression("REMOVE #entitlements SET #version = #version + :one")
            .condition_expression("#entitlements.#connection = :connection")
            .set_expression_attribute_names(Some(names(&[
                ("#entitlements", "entitlements"),
                ("#connection", "connection_id"),
                ("#version", "version"),
            ])))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":connection", string(connection_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(error) => Err(backend(error)),
        }
    }

    /// Connects on top of the environment's connection as read (`current`). Returns `None` when the
    /// environment changed since it was read, so the caller reads it again.
    async fn try_connect(
        &self,
        environment_id: &str,
        connection: &StripeConnection,
        current: Option<&StripeConnection>,
    ) -> StoreResult<Option<ConnectOutcome>> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PK, string(keys::environment_partition(environment_id)))
            .key(SK, string(keys::ENVIRONMENT_SORT))
            .update_expression("SET #stripe = :stripe")
            .expression_attribute_names("#stripe", "stripe_connection")
            .expression_attribute_values(":stripe", attribute(connection)?);
        update = match current {
            None => update
                .condition_expression("attribute_exists(#pk) AND (attribute_not_exists(#stripe) OR attribute_type(#stripe, :null))")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":null", string(NULL_TYPE)),
            Some(current) => update
                .condition_expression("#stripe.#connection = :current")
                .expression_attribute_names("#connection", "connection_id")
                .expression_attribute_values(":current", string(&current.connection_id)),
        };
        let account_item = to_item(
            &keys::stripe_account_partition(&connection.account_id, connection.livemode),
            keys::STRIPE_ACCOUNT_SORT,
            &StoredAccount::connected(environment_id, connection),
        )?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(account_item))
            .condition_expression(
                "attribute_not_exists(#pk) OR #connected = :false OR #environment = :environment",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#pk", PK),
                ("#connected", "connected"),
                ("#environment", "environment_id"),
            ])))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":environment", string(environment_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?;
        let items = vec![
            TransactWriteItem::builder().update(update.build()?).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        let reasons = match self.run_checked_transaction(items).await? {
            Ok(()) => {
                let replaced = current
                    .filter(|current| current.connection_id != connection.connection_id)
                    .map(|current| current.connection_id.clone());
                return Ok(Some(ConnectOutcome::Connected { replaced }));
            }
            Err(reasons) => reasons,
        };
        if let Some(owner) = reasons.get(1).filter(|reason| condition_failed(reason)) {
            let environment_id = owner
                .item()
                .and_then(|item| string_attribute(item, "environment_id"))
                .unwrap_or_default();
            return Ok(Some(ConnectOutcome::AccountTaken { environment_id }));
        }
        // The environment changed since it was read, or the transaction collided with another.
        Ok(None)
    }

    async fn read_environment(&self, environment_id: &str) -> StoreResult<Option<Environment>> {
        let item = self
            .get_item(
                &keys::environment_partition(environment_id),
                keys::ENVIRONMENT_SORT,
            )
            .await?;
        item.map(from_item).transpose()
    }
}

#[async_trait]
impl StripeStore for DynamoStore {
    async fn connect_stripe(
        &self,
        environment_id: &str,
        connection: &StripeConnection,
    ) -> StoreResult<ConnectOutcome> {
        for _ in 0..MAX_TRANSACTION_ATTEMPTS {
            let Some(environment) = self.read_environment(environment_id).await? else {
                return Ok(ConnectOutcome::EnvironmentNotFound);
            };
            if environment.mode.is_live() != connection.livemode {
                return Ok(ConnectOutcome::ModeMismatch);
            }
            if let Some(existing) = &environment.stripe_connection
                && existing.account_id != connection.account_id
            {
                return Ok(ConnectOutcome::EnvironmentConnected {
                    account_id: existing.account_id.clone(),
                });
            }
            if let Some(outcome) = self
                .try_connect(
                    environment_id,
                    connection,
                    environment.stripe_connection.as_ref(),
                )
                .await?
            {
                return Ok(outcome);
            }
        }
        Err(StoreError::Contended {
            entity: "environment",
            id: environment_id.to_owned(),
        })
    }

    async fn disconnect_stripe(
        &self,
        connection: &AccountConnection,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(
                PK,
                string(keys::environment_partition(&connection.environment_id)),
            )
            .key(SK, string(keys::ENVIRONMENT_SORT))
            .update_expression("REMOVE #stripe")
            .condition_expression("#stripe.#connection = :connection")
            .expression_attribute_names("#stripe", "stripe_connection")
            .expression_attribute_names("#connection", "connection_id")
            .expression_attribute_values(":connection", string(&connection.connection_id))
            .build()?;
        let live = StoredAccount {
            account_id: connection.account_id.clone(),
            livemode: connection.livemode,
            environment_id: connection.environment_id.clone(),
            connection_id: connection.connection_id.clone(),
            connected: true,
            expires_at: None,
        };
        let tombstone = to_item(
            &keys::stripe_account_partition(&connection.account_id, connection.livemode),
            keys::STRIPE_ACCOUNT_SORT,
            &live.tombstone(now_ms),
        )?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(tombstone))
            .condition_expression(
                "#connected = :true AND #environment = :environment AND #connection = :connection",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#connected", "connected"),
                ("#environment", "environment_id"),
                ("#connection", "connection_id"),
            ])))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":environment", string(&connection.environment_id))
            .expression_attribute_values(":connection", string(&connection.connection_id))
            .build()?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        for _ in 0..MAX_TRANSACTION_ATTEMPTS {
            match self.run_checked_transaction(items.clone()).await? {
                Ok(()) => return Ok(true),
                Err(reasons) if reasons.iter().any(condition_failed) => return Ok(false),
                Err(_) => continue,
            }
        }
        Err(StoreError::Contended {
            entity: "stripe connection",
            id: connection.connection_id.clone(),
        })
    }

    async fn stripe_account(
        &self,
        account_id: &str,
        livemode: bool,
    ) -> StoreResult<Option<AccountConnection>> {
        let item = self
            .get_item(
                &keys::stripe_account_partition(account_id, livemode),
                keys::STRIPE_ACCOUNT_SORT,
            )
            .await?;
        let stored: Option<StoredAccount> = item.map(from_item).transpose()?;
        Ok(stored.map(AccountConnection::from))
    }

    async fn purge_entitlements(
        &self,
        environment_id: &str,
        connection_id: &str,
        cursor: Option<&str>,
    ) -> StoreResult<PurgePage> {
        let partition = keys::environment_partition(environment_id);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .filter_expression("#entitlements.#connection = :connection")
            .projection_expression("#sk")
            .set_expression_attribute_names(Some(names(&[
                ("#pk", PK),
                ("#sk", SK),
                ("#entitlements", "entitlements"),
                ("#connection", "connection_id"),
            ])))
            .expression_attribute_values(":pk", string(&partition))
            .expression_attribute_values(":prefix", string(keys::ORGANIZATION_PREFIX))
            .expression_attribute_values(":connection", string(connection_id))
            .limit(i32::try_from(PURGE_PAGE_SIZE).unwrap_or(i32::MAX))
            .consistent_read(true);
        if let Some(cursor) = cursor {
            let start: Item = [
                (PK.to_owned(), string(&partition)),
                (SK.to_owned(), string(cursor)),
            ]
            .into();
            request = request.set_exclusive_start_key(Some(start));
        }
        let output = request.send().await.map_err(backend)?;
        let next_cursor = output
            .last_evaluated_key()
            .and_then(|key| string_attribute(key, SK));
        let sort_keys: Vec<String> = output
            .items()
            .iter()
            .filter_map(|item| string_attribute(item, SK))
            .collect();

        let partition = partition.as_str();
        let results: Vec<StoreResult<bool>> =
            futures::stream::iter(sort_keys)
                .map(|sort_key| async move {
                    self.remove_set(partition, &sort_key, connection_id).await
                })
                .buffer_unordered(PURGE_CONCURRENCY)
                .collect()
                .await;
        let mut removed = 0;
        for result in results {
            if result? {
                removed += 1;
            }
        }
        Ok(PurgePage {
            removed,
            next_cursor,
        })
    }

    async fn organization_for_customer(
        &self,
        environment_id: &str,
        customer_id: &str,
    ) -> StoreResult<Option<String>> {
        let item = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::customer_sort(customer_id),
            )
            .await?;
        Ok(item.and_then(|item| string_attribute(&item, "organization_id")))
    }

    async fn apply_entitlements(&self, write: &EntitlementWrite<'_>) -> StoreResult<WriteOutcome> {
        let connection = write.connection;
        let update = Update::builder()
            .table_name(&self.table)
            .key(
                PK,
                string(keys::environment_partition(&connection.environment_id)),
            )
            .key(SK, string(keys::organization_sort(write.organization_id)))
            .update_expression("SET #entitlements = :set, #version = #version + :one")
            .condition_expression(
                "#customer = :customer AND (attribute_not_exists(#entitlements) \
                 OR attribute_type(#entitlements, :null) \
                 OR #entitlements.#read_at < :read_at \
                 OR #entitlements.#connection <> :connection)",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#customer", "stripe_customer_id"),
                ("#entitlements", "entitlements"),
                ("#read_at", "read_at_ms"),
                ("#connection", "connection_id"),
                ("#version", "version"),
            ])))
            .expression_attribute_values(":set", attribute(write.set)?)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":customer", string(write.customer_id))
            .expression_attribute_values(":null", string(NULL_TYPE))
            .expression_attribute_values(":read_at", number(write.set.read_at_ms))
            .expression_attribute_values(":connection", string(&connection.connection_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?;
        let mut steps = vec![
            (
                Step::Organization,
                TransactWriteItem::builder().update(update).build(),
            ),
            (Step::Account, self.current_connection_check(connection)?),
        ];
        if let Some(completion) = &write.event {
            let update = self.completion_update(completion)?;
            steps.push((
                Step::Event,
                TransactWriteItem::builder().update(update).build(),
            ));
        }
        let customer_id = write.customer_id;
        self.run_event_transaction(steps, |old| {
            let still_linked = old
                .and_then(|item| string_attribute(item, "stripe_customer_id"))
                .is_some_and(|linked| linked == customer_id);
            if still_linked {
                WriteOutcome::NewerSetStored
            } else {
                WriteOutcome::CustomerNotLinked
            }
        })
        .await
    }

    async fn unlink_customer(&self, unlink: &CustomerUnlink<'_>) -> StoreResult<WriteOutcome> {
        let connection = unlink.connection;
        let partition = keys::environment_partition(&connection.environment_id);
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, string(&partition))
            .key(SK, string(keys::organization_sort(unlink.organization_id)))
            .update_expression("REMOVE #customer, #entitlements SET #version = #version + :one")
            .condition_expression("#customer = :customer")
            .set_expression_attribute_names(Some(names(&[
                ("#customer", "stripe_customer_id"),
                ("#entitlements", "entitlements"),
                ("#version", "version"),
            ])))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":customer", string(unlink.customer_id))
            .build()?;
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, string(&partition))
            .key(SK, string(keys::customer_sort(unlink.customer_id)))
            .condition_expression("attribute_not_exists(#pk) OR #organization = :organization")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#organization", "organization_id")
            .expression_attribute_values(":organization", string(unlink.organization_id))
            .build()?;
        let mut steps = vec![
            (
                Step::Organization,
                TransactWriteItem::builder().update(update).build(),
            ),
            (
                Step::CustomerClaim,
                TransactWriteItem::builder().delete(delete).build(),
            ),
            (Step::Account, self.current_connection_check(connection)?),
        ];
        if let Some(completion) = &unlink.event {
            let update = self.completion_update(completion)?;
            steps.push((
                Step::Event,
                TransactWriteItem::builder().update(update).build(),
            ));
        }
        self.run_event_transaction(steps, |_| WriteOutcome::CustomerNotLinked)
            .await
    }

    async fn begin_event(&self, attempt: &EventAttempt) -> StoreResult<EventClaim> {
        let (pk, sk) = event_keys(attempt);
        let item = to_item(&pk, &sk, &EventRecord::processing(attempt))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#pk) OR (#status = :processing AND #lease < :now)",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#pk", PK),
                ("#status", "status"),
                ("#lease", "lease_expires_at_ms"),
            ])))
            .expression_attribute_values(":processing", attribute(&EventStatus::Processing)?)
            .expression_attribute_values(":now", number(attempt.started_at_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(EventClaim::Claimed),
            Err(error) => error,
        };
        let Some(PutItemError::ConditionalCheckFailedException(failed)) = error.as_service_error()
        else {
            return Err(backend(error));
        };
        let Some(old) = failed.item() else {
            return Err(StoreError::Corrupt {
                key: format!("{pk}/{sk}"),
                reason: "the condition failed but DynamoDB returned no item".into(),
            });
        };
        let record: EventRecord = from_item(old.clone())?;
        Ok(match record.status {
            EventStatus::Completed => EventClaim::Completed,
            // The SDK retried a write of this attempt that had landed.
            EventStatus::Processing if record.token == attempt.token => EventClaim::Claimed,
            EventStatus::Processing => EventClaim::InProgress {
                lease_expires_at_ms: record.lease_expires_at_ms,
            },
        })
    }

    async fn complete_event(
        &self,
        completion: &EventCompletion<'_>,
        connection: Option<&AccountConnection>,
    ) -> StoreResult<WriteOutcome> {
        if let Some(connection) = connection {
            let steps = vec![
                (
                    Step::Event,
                    TransactWriteItem::builder()
                        .update(self.completion_update(completion)?)
                        .build(),
                ),
                (Step::Account, self.current_connection_check(connection)?),
            ];
            return self
                .run_event_transaction(steps, |_| WriteOutcome::CustomerNotLinked)
                .await;
        }
        let parts = CompletionParts::new(completion)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(parts.key))
            .update_expression(COMPLETION_UPDATE)
            .condition_expression(COMPLETION_CONDITION)
            .set_expression_attribute_names(Some(parts.names))
            .set_expression_attribute_values(Some(parts.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(WriteOutcome::LeaseLost)
            }
            Err(error) => Err(backend(error)),
        }
    }

    async fn release_event(&self, attempt: &EventAttempt) -> StoreResult<()> {
        let (pk, sk) = event_keys(attempt);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, string(pk))
            .key(SK, string(sk))
            .condition_expression("#token = :token AND #status = :processing")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", string(&attempt.token))
            .expression_attribute_values(":processing", attribute(&EventStatus::Processing)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(backend(error)),
        }
    }
}
