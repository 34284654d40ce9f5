//! Stripe connections, webhook events and entitlement sets in the embedded store. Every method
//! runs under the store's lock, so its checks and writes are one atomic step, as the conditions of
//! the DynamoDB implementation are.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EmbeddedStore, Items, Write, key, to_value};
use crate::store::keys;
use crate::store::{
    AccountConnection, ConnectOutcome, CustomerUnlink, EntitlementWrite, Environment, EventAttempt,
    EventClaim, EventCompletion, EventRecord, EventStatus, Organization, PURGE_PAGE_SIZE,
    PurgePage, StoreError, StoreResult, StoredAccount, StripeConnection, StripeStore, WriteOutcome,
};

/// The customer claim that organization linking writes.
#[derive(Serialize, Deserialize)]
struct CustomerClaim {
    organization_id: String,
}

fn event_key(attempt: &EventAttempt) -> (String, String) {
    key(
        keys::stripe_event_partition(&attempt.key.account_id, &attempt.key.event_id),
        keys::STRIPE_EVENT_SORT,
    )
}

fn account_key(account_id: &str, livemode: bool) -> (String, String) {
    key(
        keys::stripe_account_partition(account_id, livemode),
        keys::STRIPE_ACCOUNT_SORT,
    )
}

impl Items {
    /// Checks what every event write requires: the event record is still the attempt's, and the
    /// account is still connected under `connection`. Returns the outcome that stops the write.
    fn check_event_write(
        &self,
        connection: &AccountConnection,
        event: Option<&EventCompletion<'_>>,
    ) -> StoreResult<Option<WriteOutcome>> {
        if let Some(completion) = event {
            let (pk, sk) = event_key(completion.attempt);
            let record: Option<EventRecord> = self.get(&pk, &sk)?;
            if record.is_none_or(|record| record.token != completion.attempt.token) {
                return Ok(Some(WriteOutcome::LeaseLost));
            }
        }
        let (pk, sk) = account_key(&connection.account_id, connection.livemode);
        let stored: Option<StoredAccount> = self.get(&pk, &sk)?;
        if stored.is_none_or(|stored| !stored.is_current(connection)) {
            return Ok(Some(WriteOutcome::ConnectionChanged));
        }
        Ok(None)
    }

    /// Reads the organization that must link `customer_id`, or `None` when it does not.
    fn linked_organization(
        &self,
        environment_id: &str,
        organization_id: &str,
        customer_id: &str,
    ) -> StoreResult<Option<Organization>> {
        let organization: Option<Organization> = self.get(
            &keys::environment_partition(environment_id),
            &keys::organization_sort(organization_id),
        )?;
        Ok(organization
            .filter(|organization| organization.stripe_customer_id.as_deref() == Some(customer_id)))
    }
}

fn organization_write(organization: &Organization) -> StoreResult<Write> {
    Ok(Write::Put(
        key(
            keys::environment_partition(&organization.environment_id),
            keys::organization_sort(&organization.id),
        ),
        to_value(organization)?,
    ))
}

fn completion_write(event: Option<&EventCompletion<'_>>) -> StoreResult<Option<Write>> {
    event
        .map(|completion| {
            let record = to_value(&EventRecord::completed(completion))?;
            Ok(Write::Put(event_key(completion.attempt), record))
        })
        .transpose()
}

#[async_trait]
impl StripeStore for EmbeddedStore {
    async fn connect_stripe(
        &self,
        environment_id: &str,
        connection: &StripeConnection,
    ) -> StoreResult<ConnectOutcome> {
        let mut items = self.items();
        let environment_key = key(
            keys::environment_partition(environment_id),
            keys::ENVIRONMENT_SORT,
        );
        let Some(environment_item) = items.raw(&environment_key.0, &environment_key.1).cloned()
        else {
            return Ok(ConnectOutcome::EnvironmentNotFound);
        };
        let environment: Environment = items
            .get(&environment_key.0, &environment_key.1)?
            .ok_or_else(|| StoreError::Corrupt {
                key: format!("{}/{}", environment_key.0, environment_key.1),
                reason: "environment disappeared under the lock".into(),
            })?;
        if environment.mode.is_live() != connection.livemode {
            return Ok(ConnectOutcome::ModeMismatch);
        }
        let replaced = match &environment.stripe_connection {
            Some(existing) if existing.account_id != connection.account_id => {
                return Ok(ConnectOutcome::EnvironmentConnected {
                    account_id: existing.account_id.clone(),
                });
            }
            Some(existing) if existing.connection_id != connection.connection_id => {
                Some(existing.connection_id.clone())
            }
            _ => None,
        };

        let account_key = account_key(&connection.account_id, connection.livemode);
        let stored: Option<StoredAccount> = items.get(&account_key.0, &account_key.1)?;
        if let Some(stored) = stored
            && stored.connected
            && stored.environment_id != environment_id
        {
            return Ok(ConnectOutcome::AccountTaken {
                environment_id: stored.environment_id,
            });
        }

        // Only the connection field changes, so attributes other code stores on the environment
        // item stay as they are.
        let mut environment_item = environment_item;
        if let Value::Object(fields) = &mut environment_item {
            fields.insert("stripe_connection".into(), to_value(connection)?);
        }
        items.commit(vec![
            Write::Put(environment_key, environment_item),
            Write::Put(
                account_key,
                to_value(&StoredAccount::connected(environment_id, connection))?,
            ),
        ])?;
        Ok(ConnectOutcome::Connected { replaced })
    }

    async fn disconnect_stripe(
        &self,
        connection: &AccountConnection,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut items = self.items();
        let environment_key = key(
            keys::environment_partition(&connection.environment_id),
            keys::ENVIRONMENT_SORT,
        );
        let Some(mut environment_item) = items.raw(&environment_key.0, &environment_key.1).cloned()
        else {
            return Ok(false);
        };
        let current = environment_item
            .get("stripe_connection")
            .and_then(|value| value.get("connection_id"))
            .and_then(Value::as_str);
        if current != Some(connection.connection_id.as_str()) {
            return Ok(false);
        }
        let account_key = account_key(&connection.account_id, connection.livemode);
        let stored: Option<StoredAccount> = items.get(&account_key.0, &account_key.1)?;
        let Some(stored) = stored.filter(|stored| stored.is_current(connection)) else {
            return Ok(false);
        };

        if let Value::Object(fields) = &mut environment_item {
            fields.insert("stripe_connection".into(), Value::Null);
        }
        items.commit(vec![
            Write::Put(environment_key, environment_item),
            Write::Put(account_key, to_value(&stored.tombstone(now_ms))?),
        ])?;
        Ok(true)
    }

    async fn stripe_account(
        &self,
        account_id: &str,
        livemode: bool,
    ) -> StoreResult<Option<AccountConnection>> {
        let (pk, sk) = account_key(account_id, livemode);
        let stored: Option<StoredAccount> = self.items().get(&pk, &sk)?;
        Ok(stored.map(AccountConnection::from))
    }

    async fn purge_entitlements(
        &self,
        environment_id: &str,
        connection_id: &str,
        cursor: Option<&str>,
    ) -> StoreResult<PurgePage> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        let organizations: Vec<Organization> = items.query(
            &partition,
            keys::ORGANIZATION_PREFIX,
            true,
            cursor,
            PURGE_PAGE_SIZE,
        )?;
        let next_cursor = (organizations.len() == PURGE_PAGE_SIZE)
            .then(|| {
                organizations
                    .last()
                    .map(|organization| keys::organization_sort(&organization.id))
            })
            .flatten();

        let mut writes = Vec::new();
        for mut organization in organizations {
            let stale = organization
                .entitlements
                .as_ref()
                .is_some_and(|set| set.connection_id == connection_id);
            if stale {
                organization.entitlements = None;
                organization.version += 1;
                writes.push(organization_write(&organization)?);
            }
        }
        let removed = writes.len();
        items.commit(writes)?;
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
        let claim: Option<CustomerClaim> = self.items().get(
            &keys::environment_partition(environment_id),
            &keys::customer_sort(customer_id),
        )?;
        Ok(claim.map(|claim| claim.organization_id))
    }

    async fn apply_entitlements(&self, write: &EntitlementWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut items = self.items();
        if let Some(outcome) = items.check_event_write(write.connection, write.event.as_ref())? {
            return Ok(outcome);
        }
        let Some(mut organization) = items.linked_organization(
            &write.connection.environment_id,
            write.organization_id,
            write.customer_id,
        )?
        else {
            return Ok(WriteOutcome::CustomerNotLinked);
        };
        let newer_stored = organization.entitlements.as_ref().is_some_and(|stored| {
            stored.connection_id == write.connection.connection_id
                && stored.read_at_ms >= write.set.read_at_ms
        });
        if newer_stored {
            return Ok(WriteOutcome::NewerSetStored);
        }

        organization.entitlements = Some(write.set.clone());
        organization.version += 1;
        let mut writes = vec![organization_write(&organization)?];
        writes.extend(completion_write(write.event.as_ref())?);
        items.commit(writes)?;
        Ok(WriteOutcome::Applied)
    }

    async fn unlink_customer(&self, unlink: &CustomerUnlink<'_>) -> StoreResult<WriteOutcome> {
        let mut items = self.items();
        if let Some(outcome) = items.check_event_write(unlink.connection, unlink.event.as_ref())? {
            return Ok(outcome);
        }
        let environment_id = &unlink.connection.environment_id;
        let Some(mut organization) = items.linked_organization(
            environment_id,
            unlink.organization_id,
            unlink.customer_id,
        )?
        else {
            return Ok(WriteOutcome::CustomerNotLinked);
        };

        organization.stripe_customer_id = None;
        organization.entitlements = None;
        organization.version += 1;
        let mut writes = vec![organization_write(&organization)?];
        let claim_key = key(
            keys::environment_partition(environment_id),
            keys::customer_sort(unlink.customer_id),
        );
        let claim: Option<CustomerClaim> = items.get(&claim_key.0, &claim_key.1)?;
        if claim.is_some_and(|claim| claim.organization_id == unlink.organization_id) {
            writes.push(Write::Delete(claim_key));
        }
        writes.extend(completion_write(unlink.event.as_ref())?);
        items.commit(writes)?;
        Ok(WriteOutcome::Applied)
    }

    async fn begin_event(&self, attempt: &EventAttempt) -> StoreResult<EventClaim> {
        let mut items = self.items();
        let (pk, sk) = event_key(attempt);
        let existing: Option<EventRecord> = items.get(&pk, &sk)?;
        match existing {
            Some(record) if record.status == EventStatus::Completed => {
                return Ok(EventClaim::Completed);
            }
            Some(record) if record.token == attempt.token => return Ok(EventClaim::Claimed),
            Some(record) if !record.claimable_by(attempt) => {
                return Ok(EventClaim::InProgress {
                    lease_expires_at_ms: record.lease_expires_at_ms,
                });
            }
            _ => {}
        }
        let record = to_value(&EventRecord::processing(attempt))?;
        items.commit(vec![Write::Put((pk, sk), record)])?;
        Ok(EventClaim::Claimed)
    }

    async fn complete_event(
        &self,
        completion: &EventCompletion<'_>,
        connection: Option<&AccountConnection>,
    ) -> StoreResult<WriteOutcome> {
        let mut items = self.items();
        let (pk, sk) = event_key(completion.attempt);
        let existing: Option<EventRecord> = items.get(&pk, &sk)?;
        if existing.is_none_or(|record| record.token != completion.attempt.token) {
            return Ok(WriteOutcome::LeaseLost);
        }
        if let Some(connection) = connection
            && let Some(outcome) = items.check_event_write(connection, None)?
        {
            return Ok(outcome);
        }
        let record = to_value(&EventRecord::completed(completion))?;
        items.commit(vec![Write::Put((pk, sk), record)])?;
        Ok(WriteOutcome::Applied)
    }

    async fn release_event(&self, attempt: &EventAttempt) -> StoreResult<()> {
        let mut items = self.items();
        let (pk, sk) = event_key(attempt);
        let existing: Option<EventRecord> = items.get(&pk, &sk)?;
        if existing.is_some_and(|record| {
            record.token == attempt.token && record.status == EventStatus::Processing
        }) {
            items.commit(vec![Write::Delete((pk, sk))])?;
        }
        Ok(())
    }
}
