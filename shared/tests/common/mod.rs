//! Shared set-up of the store tests: every test runs against each store implementation, the
//! embedded store always and DynamoDB when `DYNAMODB_ENDPOINT` names one (DynamoDB Local in the
//! test script, which also sets `REQUIRE_DYNAMODB=1` so a missing endpoint fails instead of skipping).

#![allow(dead_code)]

use std::sync::Arc;

use shared::store::dynamo::RequestRecorder;
use shared::store::{DynamoStore, EmbeddedStore, Store};

/// A store under test with a name for assertion messages.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    /// Sees every DynamoDB request of `store`; `None` for the embedded store.
    pub recorder: Option<RequestRecorder>,
}

/// The DynamoDB endpoint and table of this run, when one is configured.
pub fn dynamodb() -> Option<(String, String)> {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .ok()
        .filter(|value| !value.is_empty());
    if endpoint.is_none() && std::env::var("REQUIRE_DYNAMODB").as_deref() == Ok("1") {
        panic!("REQUIRE_DYNAMODB=1 but DYNAMODB_ENDPOINT is not set; run scripts/test.sh");
    }
    let table =
        std::env::var("TABLE_NAME").unwrap_or_else(|_| shared::config::DEFAULT_TABLE_NAME.into());
    endpoint.map(|endpoint| (endpoint, table))
}

/// A DynamoDB store on the configured endpoint with its own request recorder.
pub async fn dynamo_store() -> Option<(DynamoStore, RequestRecorder)> {
    let (endpoint, table) = dynamodb()?;
    let recorder = RequestRecorder::new();
    let store = DynamoStore::connect(table, Some(&endpoint), Some(recorder.clone())).await;
    Some((store, recorder))
}

/// Every backend of this run.
pub async fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend {
        name: "embedded",
        store: Arc::new(EmbeddedStore::in_memory()),
        recorder: None,
    }];
    match dynamo_store().await {
        Some((store, recorder)) => backends.push(Backend {
            name: "dynamodb",
            store: Arc::new(store),
            recorder: Some(recorder),
        }),
        None => eprintln!("DYNAMODB_ENDPOINT is not set: running on the embedded store only"),
    }
    backends
}
