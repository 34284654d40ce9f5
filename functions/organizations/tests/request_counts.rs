//! Counts the DynamoDB requests each organizations operation makes, through the real router on
//! DynamoDB Local, and checks them against the numbers published in BENCHMARKS.md.
//!
//! Runs when `DYNAMODB_ENDPOINT` is set (the test script sets it, and `REQUIRE_DYNAMODB=1` makes
//! a missing endpoint fail instead of skipping).

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::config::Config;
use shared::environments;
use shared::state::AppState;
use shared::store::dynamo::RequestRecorder;
use shared::store::{DynamoStore, StripeMode};
use tower::ServiceExt;

struct Harness {
    router: axum::Router,
    recorder: RequestRecorder,
    api_key: String,
}

async fn harness() -> Option<Harness> {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|value| !value.is_empty());
    let Some(endpoint) = endpoint else {
        assert_ne!(
            std::env::var("REQUIRE_DYNAMODB").as_deref(),
            Ok("1"),
            "REQUIRE_DYNAMODB=1 but DYNAMODB_ENDPOINT is not set"
        );
        eprintln!("DYNAMODB_ENDPOINT is not set: skipping the request counts");
        return None;
    };
    let table =
        std::env::var("TABLE_NAME").unwrap_or_else(|_| shared::config::DEFAULT_TABLE_NAME.into());
    let recorder = RequestRecorder::new();
    let store = DynamoStore::connect(table, Some(&endpoint), Some(recorder.clone())).await;
    let created = environments::create(&store, "counts", StripeMode::Test)
        .await
        .unwrap();
    let config = Config::from_lookup(|_| None).unwrap();
    let state = AppState::new(Arc::new(store), config);
    recorder.take();
    Some(Harness {
        router: shared::http::with_common_layers(organizations::router(state)),
        recorder,
        api_key: created.api_key,
    })
}

impl Harness {
    /// Sends a request and returns its status, body and the DynamoDB operations it made.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, Vec<String>) {
        self.recorder.take();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.api_key))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value, self.recorder.operations())
    }
}

#[tokio::test]
async fn organizations_request_counts() {
    let Some(harness) = harness().await else {
        return;
    };

    let (status, created, create_ops) = harness
        .call(
            "POST",
            "/organizations",
            Some(json!({ "name": "Acme", "external_id": "acme-1" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, _, get_ops) = harness
        .call("GET", &format!("/organizations/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, external_ops) = harness
        .call("GET", "/organizations/external_id/acme-1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, list_ops) = harness.call("GET", "/organizations?limit=10", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, rename_ops) = harness
        .call(
            "PUT",
            &format!("/organizations/{id}"),
            Some(json!({ "name": "Acme 2" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, link_ops) = harness
        .call(
            "PUT",
            &format!("/organizations/{id}"),
            Some(json!({ "stripe_customer_id": "cus_count1" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, unlink_ops) = harness
        .call(
            "PUT",
            &format!("/organizations/{id}"),
            Some(json!({ "stripe_customer_id": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, delete_ops) = harness
        .call("DELETE", &format!("/organizations/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, rejected_ops) = harness
        .call(
            "PUT",
            &format!("/organizations/{id}"),
            Some(json!({ "stripe_customer_id": "acct_1" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let rows = [
        ("create", &create_ops, vec!["GetItem", "TransactWriteItems"]),
        ("get", &get_ops, vec!["GetItem", "GetItem"]),
        (
            "get by external_id",
            &external_ops,
            vec!["GetItem", "GetItem", "GetItem"],
        ),
        ("list", &list_ops, vec!["GetItem", "Query"]),
        (
            "update name",
            &rename_ops,
            vec!["GetItem", "GetItem", "TransactWriteItems"],
        ),
        (
            "link customer",
            &link_ops,
            vec!["GetItem", "GetItem", "GetItem", "TransactWriteItems"],
        ),
        (
            "unlink customer",
            &unlink_ops,
            vec!["GetItem", "GetItem", "TransactWriteItems"],
        ),
        (
            "delete",
            &delete_ops,
            vec!["GetItem", "GetItem", "TransactWriteItems"],
        ),
        ("rejected input", &rejected_ops, vec!["GetItem"]),
    ];
    println!("| operation | requests | DynamoDB operations |\n|---|---|---|");
    for (name, operations, _) in &rows {
        println!(
            "| {name} | {} | {} |",
            operations.len(),
            operations.join(", ")
        );
    }
    for (name, operations, expected) in rows {
        assert_eq!(operations, &expected, "{name}");
    }
}
