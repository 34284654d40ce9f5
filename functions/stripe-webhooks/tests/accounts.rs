//! `account.application.deauthorized`, `customer.deleted`, and entitlement events that Stripe
//! rejects after the platform lost access to the account, at the route, on every backend of the
//! run.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{Stack, backends, customer_id, lookup_keys};
use http::StatusCode;
use serde_json::json;
use shared::entitlements::claim;
use shared::store::{StripeConnection, keys};

/// Reads every item of an environment's partition straight from DynamoDB and returns the sort
/// keys of those that still hold an entitlement set.
async fn items_with_sets(stack: &Stack, environment_id: &str) -> Vec<String> {
    let (store, _) = stack.dynamo.as_ref().expect("DynamoDB backend");
    let mut with_sets = Vec::new();
    let mut start = None;
    loop {
        let output = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(keys::environment_partition(environment_id)),
            )
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .expect("query the environment partition");
        for item in output.items() {
            if item.get("entitlements").is_some_and(|value| value.is_m()) {
                with_sets.push(item["sk"].as_s().expect("sort key").clone());
            }
        }
        match output.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return with_sets,
        }
    }
}

#[tokio::test]
async fn deauthorization_disconnects_and_deletes() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let mut organizations = Vec::new();
        for count in 1..=3 {
            let customer = customer_id();
            let organization = stack
                .organization(&connection.environment_id, Some(&customer))
                .await;
            stack
                .set_entitlements(&connection.account_id, &customer, &lookup_keys(count))
                .await;
            let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
            assert_eq!(
                stack.deliver(payload, Some(&signature)).await.result(),
                "applied",
                "{backend}"
            );
            organizations.push((organization, customer));
        }
        if backend == "dynamodb" {
            let stored = items_with_sets(&stack, &connection.environment_id).await;
            assert_eq!(
                stored.len(),
                3,
                "{backend}: the scan sees the sets before the event"
            );
        }

        let (payload, signature) = stack
            .event(json!({ "type": "account.application.deauthorized", "account": connection.account_id }))
            .await;
        let delivery = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.result(), "applied", "{backend}");

        let environment = stack
            .store()
            .get_environment(&connection.environment_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            environment.stripe_connection, None,
            "{backend}: the connection ended"
        );
        let record = stack
            .store()
            .stripe_account(&connection.account_id, false)
            .await
            .unwrap()
            .expect("tombstone");
        assert!(!record.connected, "{backend}");
        for (organization, customer) in &organizations {
            let stored = stack.reload(organization).await;
            assert_eq!(
                claim(&environment, Some(&stored)),
                None,
                "{backend}: tokens omit the claim"
            );
            assert_eq!(stored.entitlements, None, "{backend}: the set is deleted");
            assert_eq!(
                stored.stripe_customer_id.as_deref(),
                Some(customer.as_str()),
                "{backend}: the app's link stays"
            );
        }
        if backend == "dynamodb" {
            let stored = items_with_sets(&stack, &connection.environment_id).await;
            assert!(
                stored.is_empty(),
                "{backend}: sets left in the partition: {stored:?}"
            );
        }

        let duplicate = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(duplicate.result(), "duplicate", "{backend}");
        let (organization, customer) = &organizations[0];
        let (payload, signature) = stack.summary_event(&connection.account_id, customer).await;
        let later = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            later.reason(),
            "account_not_connected",
            "{backend}: {:?}",
            later.body
        );
        assert_eq!(
            stack.reload(organization).await.entitlements,
            None,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn deauthorization_retry_finishes_purge() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(2))
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        assert_eq!(
            stack.deliver(payload, Some(&signature)).await.result(),
            "applied"
        );

        // A delivery that ended the connection and died before deleting the data.
        let now_ms = chrono::Utc::now().timestamp_millis();
        assert!(
            stack
                .store()
                .disconnect_stripe(&connection, now_ms)
                .await
                .unwrap()
        );
        assert!(
            stack.reload(&organization).await.entitlements.is_some(),
            "{backend}"
        );

        let (payload, signature) = stack
            .event(json!({ "type": "account.application.deauthorized", "account": connection.account_id }))
            .await;
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.result(),
            "applied",
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(
            stack.reload(&organization).await.entitlements,
            None,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn deauthorization_of_unknown_account_ignored() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let account = stack.create_account(false).await;
        let (payload, signature) = stack
            .event(json!({ "type": "account.application.deauthorized", "account": account }))
            .await;
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.reason(), "account_not_connected", "{backend}");
    }
}

#[tokio::test]
async fn customer_deletion_unlinks() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(2))
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        assert_eq!(
            stack.deliver(payload, Some(&signature)).await.result(),
            "applied"
        );
        let before = stack.reload(&organization).await;

        let (payload, signature) = stack
            .event(json!({ "type": "customer.deleted", "account": connection.account_id, "customer": customer }))
            .await;
        let delivery = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.result(), "applied", "{backend}");

        let after = stack.reload(&organization).await;
        assert_eq!(after.stripe_customer_id, None, "{backend}");
        assert_eq!(after.entitlements, None, "{backend}");
        assert_eq!(after.version, before.version + 1, "{backend}");
        let linked = stack
            .store()
            .organization_for_customer(&connection.environment_id, &customer)
            .await
            .unwrap();
        assert_eq!(linked, None, "{backend}: the customer claim is gone");
        let environment = stack
            .store()
            .get_environment(&connection.environment_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim(&environment, Some(&after)), None, "{backend}");

        let duplicate = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(duplicate.result(), "duplicate", "{backend}");
    }
}

#[tokio::test]
async fn deletion_of_unlinked_customer_ignored() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        stack
            .set_entitlements(&connection.account_id, &customer, &[])
            .await;
        let (payload, signature) = stack
            .event(json!({ "type": "customer.deleted", "account": connection.account_id, "customer": customer }))
            .await;
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.reason(), "customer_not_linked", "{backend}");
    }
}

#[tokio::test]
async fn revoked_account_event_acknowledged() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(2))
            .await;
        // The first event caches the account's connection in the processor.
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        assert_eq!(
            stack.deliver(payload, Some(&signature)).await.result(),
            "applied",
            "{backend}"
        );

        // `DELETE /stripe/connection` runs outside the processor, so its cache still contains the
        // connection.
        let status = stack.disconnect(&connection.environment_id).await;
        assert_eq!(status["connected"], false, "{backend}: {status}");
        assert!(
            !stack.emulator_connected(&connection.account_id).await,
            "{backend}: the disconnect deauthorized the account on Stripe"
        );
        let disconnected = stack.reload(&organization).await;
        assert_eq!(disconnected.entitlements, None, "{backend}");

        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        if let Some((_, recorder)) = &stack.dynamo {
            recorder.take();
        }
        let delivery = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.result(), "ignored", "{backend}");
        assert_eq!(delivery.reason(), "account_not_connected", "{backend}");
        if let Some((_, recorder)) = &stack.dynamo {
            let operations: Vec<String> = recorder
                .take()
                .into_iter()
                .map(|request| request.operation)
                .collect();
            let reads = operations
                .iter()
                .filter(|operation| *operation == "GetItem")
                .count();
            assert_eq!(
                reads, 2,
                "{backend}: the customer link and one uncached account read: {operations:?}"
            );
            assert_eq!(operations.len(), 4, "{backend}: {operations:?}");
            assert_eq!(
                operations.last().map(String::as_str),
                Some("UpdateItem"),
                "{backend}: only the event record is written: {operations:?}"
            );
        }

        let requests = stack.list_requests().await;
        assert_eq!(
            requests.len(),
            2,
            "{backend}: one Stripe read per event: {requests:?}"
        );
        assert_eq!(
            requests[1]["status"], 403,
            "{backend}: the cached connection made the processor read Stripe"
        );
        let after = stack.reload(&organization).await;
        assert_eq!(after.entitlements, None, "{backend}: no set written");
        assert_eq!(after.version, disconnected.version, "{backend}");

        let again = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            again.result(),
            "duplicate",
            "{backend}: the ignored event is recorded"
        );
    }
}

#[tokio::test]
async fn rejection_while_connected_not_acknowledged() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(2))
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        assert_eq!(
            stack.deliver(payload, Some(&signature)).await.result(),
            "applied",
            "{backend}"
        );
        let before = stack.reload(&organization).await;

        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(3))
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        stack.fail_next_lists(403, 1).await;
        let failed = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(
            failed.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{backend}: the store still shows the account connected: {:?}",
            failed.body
        );
        assert_eq!(
            stack.reload(&organization).await,
            before,
            "{backend}: nothing written"
        );
        let requests = stack.list_requests().await;
        assert_eq!(
            requests.len(),
            2,
            "{backend}: Stripe is not read again under the same connection: {requests:?}"
        );
        assert_eq!(requests[1]["status"], 403, "{backend}");

        let retried = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(retried.result(), "applied", "{backend}: {:?}", retried.body);
        let stored = stack
            .reload(&organization)
            .await
            .entitlements
            .expect("set stored");
        assert_eq!(stored.lookup_keys, lookup_keys(3), "{backend}");
    }
}

#[tokio::test]
async fn rejection_after_reconnect_reads_again() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(1))
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        assert_eq!(
            stack.deliver(payload, Some(&signature)).await.result(),
            "applied",
            "{backend}"
        );

        // The account is connected again behind the cache's back, and Stripe rejects the read
        // made under the cached connection.
        let again = StripeConnection {
            account_id: connection.account_id.clone(),
            livemode: false,
            scope: "read_write".into(),
            connected_at: chrono::Utc::now(),
            connection_id: shared::ids::new_id("conn"),
        };
        stack
            .store()
            .connect_stripe(&connection.environment_id, &again)
            .await
            .expect("reconnect");
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(2))
            .await;
        stack.fail_next_lists(403, 1).await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.result(),
            "applied",
            "{backend}: {:?}",
            delivery.body
        );
        let stored = stack
            .reload(&organization)
            .await
            .entitlements
            .expect("set stored");
        assert_eq!(
            stored.connection_id, again.connection_id,
            "{backend}: read under the new connection"
        );
        assert_eq!(stored.lookup_keys, lookup_keys(2), "{backend}");
        let requests = stack.list_requests().await;
        assert_eq!(requests.len(), 3, "{backend}: {requests:?}");
        assert_eq!(requests[1]["status"], 403, "{backend}");
        assert_eq!(requests[2]["status"], 200, "{backend}");
    }
}
