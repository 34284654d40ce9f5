//! `POST /v1/customers`, `GET` and `DELETE /v1/customers/{id}`.

use reqwest::StatusCode;

use crate::common::{Harness, KEY, Reply, assert_api_error, fixture, keys};

async fn create(
    harness: &Harness,
    account: &str,
    form: &[(&str, &str)],
    key: Option<&str>,
) -> Reply {
    let mut request = harness
        .http
        .post(harness.url("/v1/customers"))
        .bearer_auth(KEY)
        .header("Stripe-Account", account)
        .form(form);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    Reply::read(request.send().await.expect("create request")).await
}

async fn call(harness: &Harness, method: reqwest::Method, account: &str, id: &str) -> Reply {
    let response = harness
        .http
        .request(method, harness.url(&format!("/v1/customers/{id}")))
        .bearer_auth(KEY)
        .header("Stripe-Account", account)
        .send()
        .await
        .expect("customer request");
    Reply::read(response).await
}

#[tokio::test]
async fn customer_lifecycle_matches_fixture_keys() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;

    let created = create(
        &harness,
        &account,
        &[
            ("email", "ada@example.test"),
            ("name", "Ada"),
            ("metadata[tenant]", "org_1"),
        ],
        None,
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(keys(&created.body), keys(&fixture("customer.json")));
    assert_eq!(created.body["email"], "ada@example.test");
    assert_eq!(created.body["name"], "Ada");
    assert_eq!(created.body["metadata"]["tenant"], "org_1");
    assert_eq!(created.body["object"], "customer");
    assert_eq!(created.body["livemode"], false);
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("cus_"), "{id}");

    let fetched = call(&harness, reqwest::Method::GET, &account, &id).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.body);
    assert_eq!(fetched.body, created.body);

    let deleted = call(&harness, reqwest::Method::DELETE, &account, &id).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(keys(&deleted.body), keys(&fixture("deleted_customer.json")));
    assert_eq!(deleted.body["deleted"], true);
    assert_eq!(deleted.body["id"], id.as_str());

    let after_delete = call(&harness, reqwest::Method::GET, &account, &id).await;
    assert_eq!(after_delete.status, StatusCode::OK, "{}", after_delete.body);
    assert_eq!(after_delete.body["deleted"], true);

    let second_delete = call(&harness, reqwest::Method::DELETE, &account, &id).await;
    assert_api_error(
        &second_delete,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        Some("id"),
    );

    let list = harness.list(Some(&account), &[("customer", &id)]).await;
    assert_eq!(list.status, StatusCode::NOT_FOUND, "{}", list.body);
    harness.shutdown().await;
}

#[tokio::test]
async fn customers_are_scoped_to_their_account() {
    let harness = Harness::start().await;
    let first = harness.create_account().await;
    let second = harness.create_account().await;
    let created = create(&harness, &first, &[("name", "Scoped")], None).await;
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();

    let other = call(&harness, reqwest::Method::GET, &second, &id).await;
    assert_api_error(
        &other,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        Some("id"),
    );
    assert_eq!(
        other.body["error"]["message"],
        format!("No such customer: '{id}'")
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn idempotency_key_replays_first_result() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    let first = create(&harness, &account, &[("name", "Once")], Some("key-1")).await;
    let replay = create(&harness, &account, &[("name", "Once")], Some("key-1")).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert_eq!(replay.body["id"], first.body["id"]);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);

    let changed = create(&harness, &account, &[("name", "Twice")], Some("key-1")).await;
    assert_api_error(
        &changed,
        StatusCode::BAD_REQUEST,
        "idempotency_error",
        None,
        None,
    );

    let fresh = create(&harness, &account, &[("name", "Once")], Some("key-2")).await;
    assert_ne!(fresh.body["id"], first.body["id"]);
    harness.shutdown().await;
}

#[tokio::test]
async fn unknown_customer_parameter_is_rejected() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    let reply = create(&harness, &account, &[("colour", "blue")], None).await;
    assert_api_error(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("parameter_unknown"),
        Some("colour"),
    );
    harness.shutdown().await;
}
