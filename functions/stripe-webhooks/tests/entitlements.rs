//! `entitlements.active_entitlement_summary.updated` at the route, on every backend of the run:
//! the stored set is Stripe's full list, an older read never overwrites a newer one, and each
//! event takes effect once.

mod common;

use common::{Stack, backends, customer_id, lookup_keys};
use http::StatusCode;
use serde_json::{Value, json};
use shared::entitlements::claim;
use shared::organizations::UpdateOrganization;
use shared::store::{EventAttempt, EventClaim, EventKey};
use shared::webhooks::EVENT_LEASE;

fn event_id(payload: &str) -> String {
    let event: Value = serde_json::from_str(payload).expect("event JSON");
    event["id"].as_str().expect("event id").to_owned()
}

fn query_param<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["query_params"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str())
}

#[tokio::test]
async fn all_25_entitlements_stored() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        let keys = lookup_keys(25);
        stack
            .set_entitlements(&connection.account_id, &customer, &keys)
            .await;

        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        let event: Value = serde_json::from_str(&payload).unwrap();
        let embedded = event["data"]["object"]["entitlements"]["data"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(
            embedded, 10,
            "{backend}: the event embeds only 10 entitlements"
        );

        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.result(), "applied", "{backend}");

        let stored = stack
            .reload(&organization)
            .await
            .entitlements
            .expect("set stored");
        assert_eq!(stored.lookup_keys, keys, "{backend}");
        assert_eq!(stored.connection_id, connection.connection_id, "{backend}");
        let environment = stack
            .store()
            .get_environment(&connection.environment_id)
            .await
            .unwrap()
            .unwrap();
        let organization = stack.reload(&organization).await;
        assert_eq!(
            claim(&environment, Some(&organization)),
            Some(keys),
            "{backend}"
        );

        let requests = stack.list_requests().await;
        assert_eq!(requests.len(), 1, "{backend}: {requests:?}");
        assert_eq!(query_param(&requests[0], "limit"), Some("100"), "{backend}");
        assert_eq!(
            query_param(&requests[0], "customer"),
            Some(customer.as_str()),
            "{backend}"
        );
        assert_eq!(
            requests[0]["stripe_account"],
            connection.account_id.as_str(),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn every_page_read() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        let keys = lookup_keys(205);
        stack
            .set_entitlements(&connection.account_id, &customer, &keys)
            .await;

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
        assert_eq!(stored.lookup_keys, keys, "{backend}");

        let requests = stack.list_requests().await;
        assert_eq!(
            requests.len(),
            3,
            "{backend}: 205 entitlements take 3 pages of 100"
        );
        assert_eq!(
            query_param(&requests[0], "starting_after"),
            None,
            "{backend}"
        );
        for request in &requests {
            assert_eq!(query_param(request, "limit"), Some("100"), "{backend}");
            assert_eq!(
                request["stripe_account"],
                connection.account_id.as_str(),
                "{backend}: every page names the connected account"
            );
        }
        assert!(
            query_param(&requests[1], "starting_after").is_some(),
            "{backend}"
        );
        assert!(
            query_param(&requests[2], "starting_after").is_some(),
            "{backend}"
        );
        assert_ne!(
            query_param(&requests[1], "starting_after"),
            query_param(&requests[2], "starting_after"),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn out_of_order_keeps_newer_set() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        let older = vec!["basic".to_owned()];
        let newer = vec!["basic".to_owned(), "premium".to_owned()];

        stack
            .set_entitlements(&connection.account_id, &customer, &older)
            .await;
        let (first_payload, first_signature) =
            stack.summary_event(&connection.account_id, &customer).await;
        let hold = stack.hold_next_stripe_response();

        // The first delivery reads the older state and is held before it can write. Meanwhile
        // the state changes, and the second delivery reads and writes the newer state.
        let first = stack.deliver(first_payload, Some(&first_signature));
        let second = async {
            hold.reached.await.expect("the first Stripe read arrives");
            stack
                .set_entitlements(&connection.account_id, &customer, &newer)
                .await;
            let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
            let delivery = stack.deliver(payload, Some(&signature)).await;
            let _ = hold.release.send(());
            delivery
        };
        let (first, second) = tokio::join!(first, second);

        assert_eq!(second.result(), "applied", "{backend}: {:?}", second.body);
        assert_eq!(first.status, StatusCode::OK, "{backend}: {:?}", first.body);
        assert_eq!(first.result(), "ignored", "{backend}: {:?}", first.body);
        assert_eq!(first.reason(), "newer_set_stored", "{backend}");
        let stored = stack
            .reload(&organization)
            .await
            .entitlements
            .expect("set stored");
        assert_eq!(
            stored.lookup_keys, newer,
            "{backend}: the older read must not overwrite the newer one"
        );
    }
}

#[tokio::test]
async fn duplicate_applies_once() {
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

        let first = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(first.result(), "applied", "{backend}: {:?}", first.body);
        let version = stack.reload(&organization).await.version;

        let second = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(second.status, StatusCode::OK, "{backend}");
        assert_eq!(second.result(), "duplicate", "{backend}: {:?}", second.body);
        assert_eq!(
            stack.reload(&organization).await.version,
            version,
            "{backend}: nothing written"
        );
        assert_eq!(
            stack.list_requests().await.len(),
            1,
            "{backend}: Stripe read once"
        );
    }
}

#[tokio::test]
async fn delivery_during_processing_gets_503() {
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
        let hold = stack.hold_next_stripe_response();

        let first = stack.deliver(payload.clone(), Some(&signature));
        let second = async {
            hold.reached.await.expect("the first Stripe read arrives");
            let delivery = stack.deliver(payload.clone(), Some(&signature)).await;
            let _ = hold.release.send(());
            delivery
        };
        let (first, second) = tokio::join!(first, second);

        assert_eq!(first.result(), "applied", "{backend}: {:?}", first.body);
        assert_eq!(
            second.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{backend}: {:?}",
            second.body
        );
        let retry_after: u64 = second.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (1..=EVENT_LEASE.as_secs()).contains(&retry_after),
            "{backend}: Retry-After {retry_after}"
        );
        assert_eq!(
            stack.reload(&organization).await.version,
            organization.version + 1,
            "{backend}"
        );

        let third = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(third.result(), "duplicate", "{backend}");
    }
}

#[tokio::test]
async fn concurrent_deliveries_apply_once() {
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

        let (first, second) = tokio::join!(
            stack.deliver(payload.clone(), Some(&signature)),
            stack.deliver(payload, Some(&signature)),
        );
        let applied = [&first, &second]
            .iter()
            .filter(|delivery| delivery.result() == "applied")
            .count();
        assert_eq!(applied, 1, "{backend}: {first:?} {second:?}");
        for delivery in [&first, &second] {
            let accepted = delivery.result() == "applied"
                || delivery.result() == "duplicate"
                || delivery.status == StatusCode::SERVICE_UNAVAILABLE;
            assert!(accepted, "{backend}: {delivery:?}");
        }
        assert_eq!(
            stack.reload(&organization).await.version,
            organization.version + 1,
            "{backend}: exactly one write"
        );
    }
}

#[tokio::test]
async fn expired_lease_taken_over() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(3))
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;

        // A delivery that claimed the event two leases ago and died.
        let lease_ms = i64::try_from(EVENT_LEASE.as_millis()).unwrap();
        let dead = EventAttempt {
            key: EventKey {
                account_id: connection.account_id.clone(),
                event_id: event_id(&payload),
            },
            event_type: common::SUMMARY_UPDATED.into(),
            token: "dead-delivery".into(),
            started_at_ms: chrono::Utc::now().timestamp_millis() - 2 * lease_ms,
            lease_ms,
        };
        assert_eq!(
            stack.store().begin_event(&dead).await.unwrap(),
            EventClaim::Claimed
        );

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
        assert_eq!(stored.lookup_keys, lookup_keys(3), "{backend}");
    }
}

#[tokio::test]
async fn live_lease_blocks_delivery() {
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

        let lease_ms = i64::try_from(EVENT_LEASE.as_millis()).unwrap();
        let busy = EventAttempt {
            key: EventKey {
                account_id: connection.account_id.clone(),
                event_id: event_id(&payload),
            },
            event_type: common::SUMMARY_UPDATED.into(),
            token: "busy-delivery".into(),
            started_at_ms: chrono::Utc::now().timestamp_millis(),
            lease_ms,
        };
        assert_eq!(
            stack.store().begin_event(&busy).await.unwrap(),
            EventClaim::Claimed
        );

        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{backend}: {:?}",
            delivery.body
        );
        assert!(delivery.headers.contains_key("retry-after"), "{backend}");
        assert_eq!(
            stack.reload(&organization).await.entitlements,
            None,
            "{backend}"
        );
        assert!(
            stack.list_requests().await.is_empty(),
            "{backend}: Stripe is not read"
        );
    }
}

#[tokio::test]
async fn stripe_failure_then_retry_succeeds() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack
            .organization(&connection.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(4))
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;

        stack.fail_next_lists(500, 1).await;
        let failed = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(
            failed.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{backend}: {:?}",
            failed.body
        );
        assert_eq!(
            stack.reload(&organization).await.entitlements,
            None,
            "{backend}"
        );
        let requests = stack.list_requests().await;
        assert_eq!(requests.len(), 1, "{backend}");
        assert_eq!(
            requests[0]["status"], 500,
            "{backend}: the emulator failed the read"
        );

        // Stripe's retry claims the released event at once.
        let retried = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(retried.result(), "applied", "{backend}: {:?}", retried.body);
        let stored = stack
            .reload(&organization)
            .await
            .entitlements
            .expect("set stored");
        assert_eq!(stored.lookup_keys, lookup_keys(4), "{backend}");
    }
}

#[tokio::test]
async fn stripe_rejection_is_not_acknowledged() {
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

        stack.fail_next_lists(401, 1).await;
        let failed = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(
            failed.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{backend}: an event that could not be applied must not be acknowledged"
        );
        assert_eq!(
            stack.reload(&organization).await.entitlements,
            None,
            "{backend}"
        );
        let retried = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(retried.result(), "applied", "{backend}: {:?}", retried.body);
    }
}

#[tokio::test]
async fn unlinked_customer_loaded_on_link() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack.organization(&connection.environment_id, None).await;
        let keys = lookup_keys(12);
        stack
            .set_entitlements(&connection.account_id, &customer, &keys)
            .await;
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;

        let delivery = stack.deliver(payload.clone(), Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.result(), "ignored", "{backend}");
        assert_eq!(delivery.reason(), "customer_not_linked", "{backend}");
        let unchanged = stack.reload(&organization).await;
        assert_eq!(unchanged.entitlements, None, "{backend}");
        assert_eq!(unchanged.version, organization.version, "{backend}");
        assert!(
            stack.list_requests().await.is_empty(),
            "{backend}: no Stripe read for an unlinked customer"
        );
        let again = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            again.result(),
            "duplicate",
            "{backend}: the ignored event is recorded"
        );

        let request = UpdateOrganization {
            stripe_customer_id: Some(Some(customer.clone())),
            ..UpdateOrganization::default()
        };
        let linked = shared::organizations::update(
            &stack.state,
            &connection.environment_id,
            &organization.id,
            request,
        )
        .await
        .expect("link the customer");
        let set = linked.entitlements.expect("linking loads the set");
        assert_eq!(set.lookup_keys, keys, "{backend}");
        assert_eq!(set.connection_id, connection.connection_id, "{backend}");
        let stored = stack.reload(&organization).await;
        assert_eq!(stored.entitlements, Some(set), "{backend}");
    }
}

#[tokio::test]
async fn link_fails_softly_when_stripe_fails() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let customer = customer_id();
        let organization = stack.organization(&connection.environment_id, None).await;
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(2))
            .await;

        stack.fail_next_lists(403, 1).await;
        let request = UpdateOrganization {
            stripe_customer_id: Some(Some(customer.clone())),
            ..UpdateOrganization::default()
        };
        let linked = shared::organizations::update(
            &stack.state,
            &connection.environment_id,
            &organization.id,
            request,
        )
        .await
        .expect("the link is saved even when Stripe fails");
        assert_eq!(
            linked.stripe_customer_id.as_deref(),
            Some(customer.as_str()),
            "{backend}"
        );
        assert_eq!(linked.entitlements, None, "{backend}");
    }
}

#[tokio::test]
async fn other_livemode_ignored() {
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
        let (payload, signature) = stack
            .event(json!({
                "type": common::SUMMARY_UPDATED,
                "account": connection.account_id,
                "customer": customer,
                "livemode": true,
            }))
            .await;

        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.reason(), "account_not_connected", "{backend}");
        assert_eq!(
            stack.reload(&organization).await.entitlements,
            None,
            "{backend}"
        );
        assert!(stack.list_requests().await.is_empty(), "{backend}");
    }
}

#[tokio::test]
async fn unknown_event_type_acknowledged() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        let (payload, signature) = stack
            .event(json!({
                "type": "invoice.some_future_event",
                "account": connection.account_id,
                "data_object": { "object": "invoice", "id": "in_1", "status": "a_new_enum_value" },
            }))
            .await;
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.reason(), "unhandled_event_type", "{backend}");
    }
}

#[tokio::test]
async fn platform_event_acknowledged() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let payload = json!({
            "id": "evt_platform_1",
            "object": "event",
            "type": common::SUMMARY_UPDATED,
            "livemode": false,
            "data": { "object": { "customer": "cus_platform" } },
        })
        .to_string();
        let signature = stripe_emulator::sign_payload(
            common::WEBHOOK_SECRET,
            chrono::Utc::now().timestamp(),
            payload.as_bytes(),
        );
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(delivery.reason(), "platform_event", "{backend}");
    }
}

#[tokio::test]
async fn stale_cache_rejected_by_condition() {
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
            "applied"
        );

        // The account is connected again behind the cache's back: a new connection ID.
        let again = shared::store::StripeConnection {
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
            .unwrap();
        stack
            .set_entitlements(&connection.account_id, &customer, &lookup_keys(2))
            .await;
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
            "{backend}: written under the current connection"
        );
        assert_eq!(stored.lookup_keys, lookup_keys(2), "{backend}");

        // Disconnected behind the cache's back: the event is acknowledged and changes nothing.
        let current = shared::store::AccountConnection::of(&connection.environment_id, &again);
        assert!(
            stack
                .store()
                .disconnect_stripe(&current, chrono::Utc::now().timestamp_millis())
                .await
                .unwrap()
        );
        let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.reason(),
            "account_not_connected",
            "{backend}: {:?}",
            delivery.body
        );
        assert_eq!(
            stack.reload(&organization).await.entitlements,
            Some(stored),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn stale_cache_does_not_drop_event() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let first = stack.connected_environment(false).await;
        let customer = customer_id();
        stack
            .organization(&first.environment_id, Some(&customer))
            .await;
        stack
            .set_entitlements(&first.account_id, &customer, &lookup_keys(1))
            .await;
        let (payload, signature) = stack.summary_event(&first.account_id, &customer).await;
        assert_eq!(
            stack.deliver(payload, Some(&signature)).await.result(),
            "applied",
            "{backend}"
        );

        // The account moves to another environment behind the cache's back, where another
        // organization links a customer that the first environment does not know.
        let now_ms = chrono::Utc::now().timestamp_millis();
        assert!(
            stack
                .store()
                .disconnect_stripe(&first, now_ms)
                .await
                .unwrap()
        );
        let second =
            shared::environments::create(stack.store(), "second", shared::store::StripeMode::Test)
                .await
                .unwrap()
                .environment;
        let moved = shared::store::StripeConnection {
            account_id: first.account_id.clone(),
            livemode: false,
            scope: "read_write".into(),
            connected_at: chrono::Utc::now(),
            connection_id: shared::ids::new_id("conn"),
        };
        let outcome = stack
            .store()
            .connect_stripe(&second.id, &moved)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            shared::store::ConnectOutcome::Connected { replaced: None }
        );
        let other_customer = customer_id();
        let organization = stack.organization(&second.id, Some(&other_customer)).await;
        stack
            .set_entitlements(&first.account_id, &other_customer, &lookup_keys(2))
            .await;

        let (payload, signature) = stack
            .summary_event(&first.account_id, &other_customer)
            .await;
        let delivery = stack.deliver(payload, Some(&signature)).await;
        assert_eq!(
            delivery.result(),
            "applied",
            "{backend}: a stale cache must not make the event look unlinked: {:?}",
            delivery.body
        );
        let stored = stack
            .reload(&organization)
            .await
            .entitlements
            .expect("set stored");
        assert_eq!(stored.connection_id, moved.connection_id, "{backend}");
    }
}
