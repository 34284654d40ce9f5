//! DynamoDB requests per webhook event, counted with the SDK's request recorder on DynamoDB
//! Local. The budget of the happy path is 3 requests plus the Stripe list call. The numbers
//! printed here are the ones BENCHMARKS.md reports (`cargo test -p stripe-webhooks --test budget
//! -- --nocapture`).

mod common;

use common::{Stack, customer_id, lookup_keys};
use serde_json::json;
use shared::store::dynamo::{RequestRecorder, round_trips};

/// Delivers one event and returns the DynamoDB operations it sent and its sequential round trips.
async fn count(
    stack: &Stack,
    recorder: &RequestRecorder,
    payload: String,
    signature: &str,
) -> (Vec<String>, usize, String) {
    recorder.take();
    let delivery = stack.deliver(payload, Some(signature)).await;
    let requests = recorder.take();
    let operations = requests
        .iter()
        .map(|request| request.operation.clone())
        .collect();
    let outcome = format!("{} {}", delivery.result(), delivery.reason())
        .trim()
        .to_owned();
    (operations, round_trips(&requests), outcome)
}

#[tokio::test]
async fn happy_path_request_counts() {
    if std::env::var("DYNAMODB_ENDPOINT").is_err() {
        assert_ne!(
            std::env::var("REQUIRE_DYNAMODB").as_deref(),
            Ok("1"),
            "REQUIRE_DYNAMODB=1 but DYNAMODB_ENDPOINT is not set"
        );
        eprintln!("DYNAMODB_ENDPOINT is not set: the request counts need DynamoDB");
        return;
    }
    let stack = Stack::start("dynamodb").await;
    let recorder = stack.dynamo.as_ref().expect("DynamoDB backend").1.clone();
    let connection = stack.connected_environment(false).await;
    let customer = customer_id();
    stack
        .organization(&connection.environment_id, Some(&customer))
        .await;
    stack
        .set_entitlements(&connection.account_id, &customer, &lookup_keys(5))
        .await;

    // Cold: this process has not seen the account yet.
    let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
    let (cold, cold_trips, outcome) = count(&stack, &recorder, payload.clone(), &signature).await;
    println!(
        "cold applied event: {} requests, {cold_trips} round trips: {cold:?}",
        cold.len()
    );
    assert_eq!(outcome, "applied");
    assert_eq!(
        cold,
        ["PutItem", "GetItem", "GetItem", "TransactWriteItems"]
    );
    assert_eq!(
        cold_trips, 3,
        "the event claim and the connection read run concurrently"
    );

    // Warm: the account's connection is cached, so its read is skipped.
    stack
        .set_entitlements(&connection.account_id, &customer, &lookup_keys(6))
        .await;
    let (warm_payload, warm_signature) =
        stack.summary_event(&connection.account_id, &customer).await;
    let (warm, warm_trips, outcome) = count(&stack, &recorder, warm_payload, &warm_signature).await;
    println!(
        "warm applied event: {} requests, {warm_trips} round trips: {warm:?}",
        warm.len()
    );
    assert_eq!(outcome, "applied");
    assert_eq!(warm.len(), 3, "{warm:?}");
    assert!(
        warm.iter()
            .any(|operation| operation == "TransactWriteItems"),
        "{warm:?}"
    );
    assert_eq!(
        warm_trips, 2,
        "the event claim and the customer claim read run concurrently"
    );

    let (duplicate, duplicate_trips, outcome) = count(&stack, &recorder, payload, &signature).await;
    println!(
        "duplicate event: {} requests, {duplicate_trips} round trips: {duplicate:?}",
        duplicate.len()
    );
    assert_eq!(outcome, "duplicate");
    assert!(duplicate.len() <= 2, "{duplicate:?}");

    let unlinked = customer_id();
    stack
        .set_entitlements(&connection.account_id, &unlinked, &lookup_keys(1))
        .await;
    let (payload, signature) = stack.summary_event(&connection.account_id, &unlinked).await;
    let (ignored, ignored_trips, outcome) = count(&stack, &recorder, payload, &signature).await;
    println!(
        "warm event of an unlinked customer: {} requests, {ignored_trips} round trips: {ignored:?}",
        ignored.len()
    );
    assert_eq!(outcome, "ignored customer_not_linked");
    assert_eq!(ignored.len(), 3, "{ignored:?}");

    let (payload, signature) = stack
        .event(json!({ "type": "invoice.paid", "account": connection.account_id, "data_object": { "id": "in_1" } }))
        .await;
    let (unhandled, _, outcome) = count(&stack, &recorder, payload, &signature).await;
    println!("event of an unhandled type: {} requests", unhandled.len());
    assert_eq!(outcome, "ignored unhandled_event_type");
    assert!(unhandled.is_empty(), "{unhandled:?}");
}
