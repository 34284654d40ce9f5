//! Counts the DynamoDB requests and round trips of a refresh through the real router on DynamoDB
//! Local: one round trip (a conditional `UpdateItem` and a `BatchGetItem`, concurrent) when the
//! request names its organization, two at most otherwise.
//!
//! Runs when `DYNAMODB_ENDPOINT` is set (the test script sets it, and `REQUIRE_DYNAMODB=1` makes
//! a missing endpoint fail instead of skipping).

mod common;

use axum::body::Body;
use common::{COOKIE_PASSWORD, Harness, Options, dynamo};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::cookie::{self, SessionCookieData};
use shared::store::dynamo::{RecordedRequest, round_trips};

fn operations(requests: &[RecordedRequest]) -> Vec<&str> {
    let mut operations: Vec<&str> = requests
        .iter()
        .map(|request| request.operation.as_str())
        .collect();
    operations.sort_unstable();
    operations
}

fn token(body: &Value, field: &str) -> String {
    body[field].as_str().expect("token field").to_owned()
}

/// Runs `call` and returns its reply with the DynamoDB requests it made.
async fn measured<F, Fut, T>(harness: &Harness, call: F) -> (T, Vec<RecordedRequest>)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let recorder = harness
        .recorder
        .as_ref()
        .expect("DynamoDB harness has a recorder");
    recorder.take();
    let reply = call().await;
    (reply, recorder.take())
}

#[tokio::test]
async fn refresh_round_trips_on_dynamodb() {
    let Some(harness) = dynamo(&Options::default()).await else {
        eprintln!("DYNAMODB_ENDPOINT is not set: skipping the request budget");
        return;
    };
    let user_id = harness.create_user("budget@example.com").await;
    let acme = harness.create_organization("Acme").await;
    harness.add_membership(&user_id, &acme.id).await;
    harness.set_entitlements(&acme.id, Some(&["sso"])).await;
    let login = harness.sign_in("budget@example.com").await;
    assert_eq!(login.status, StatusCode::OK);

    let first_token = token(&login.body, "refresh_token");
    let (named, requests) = measured(&harness, || {
        harness.refresh_with(
            &first_token,
            Some(&acme.id),
            &[("idempotency-key", "retry-1")],
        )
    })
    .await;
    assert_eq!(named.status, StatusCode::OK, "{:?}", named.body);
    assert_eq!(
        operations(&requests),
        ["BatchGetItem", "UpdateItem"],
        "named organization"
    );
    assert_eq!(
        round_trips(&requests),
        1,
        "named organization: {requests:?}"
    );

    let (repeated, requests) = measured(&harness, || {
        harness.refresh_with(
            &first_token,
            Some(&acme.id),
            &[("idempotency-key", "retry-1")],
        )
    })
    .await;
    assert_eq!(
        repeated.body, named.body,
        "the SDK's retry gets the same pair"
    );
    assert_eq!(
        operations(&requests),
        ["BatchGetItem", "UpdateItem"],
        "repeated refresh"
    );
    assert_eq!(round_trips(&requests), 1, "repeated refresh: {requests:?}");

    let second_token = token(&named.body, "refresh_token");
    let (unnamed, requests) = measured(&harness, || harness.refresh(&second_token, None)).await;
    assert_eq!(unnamed.status, StatusCode::OK, "{:?}", unnamed.body);
    assert_eq!(unnamed.body["organization_id"], acme.id.as_str());
    assert_eq!(
        operations(&requests),
        ["BatchGetItem", "BatchGetItem", "UpdateItem"],
        "session organization"
    );
    assert_eq!(
        round_trips(&requests),
        2,
        "session organization: {requests:?}"
    );

    let solo = harness.create_user("solo-budget@example.com").await;
    assert!(!solo.is_empty());
    let unscoped_login = harness.sign_in("solo-budget@example.com").await;
    let unscoped_token = token(&unscoped_login.body, "refresh_token");
    let (unscoped, requests) = measured(&harness, || harness.refresh(&unscoped_token, None)).await;
    assert_eq!(unscoped.status, StatusCode::OK, "{:?}", unscoped.body);
    assert_eq!(
        operations(&requests),
        ["BatchGetItem", "UpdateItem"],
        "unscoped session"
    );
    assert_eq!(round_trips(&requests), 1, "unscoped session: {requests:?}");

    let sealed = cookie::seal(
        COOKIE_PASSWORD,
        &serde_json::to_value(SessionCookieData {
            access_token: token(&unnamed.body, "access_token"),
            refresh_token: token(&unnamed.body, "refresh_token"),
            user: cookie::user_to_cookie_json(&unnamed.body["user"]),
            organization_id: Some(acme.id.clone()),
            authentication_method: Some("Password".into()),
            impersonator: None,
        })
        .unwrap(),
    )
    .unwrap();
    let (cookie_reply, requests) = measured(&harness, || {
        harness.send(
            Request::get("/api/entitlements")
                .header("cookie", format!("wos-session={sealed}"))
                .body(Body::empty())
                .unwrap(),
        )
    })
    .await;
    assert_eq!(
        cookie_reply.status,
        StatusCode::OK,
        "{:?}",
        cookie_reply.body
    );
    assert_eq!(cookie_reply.body, json!({ "entitlements": ["sso"] }));
    assert_eq!(
        operations(&requests),
        ["BatchGetItem", "UpdateItem"],
        "cookie route"
    );
    assert_eq!(round_trips(&requests), 1, "cookie route: {requests:?}");
}
