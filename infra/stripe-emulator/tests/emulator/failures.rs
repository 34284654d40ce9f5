//! Failure injection through `/_emulator/failures`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{Harness, LIST_PATH, assert_api_error, lookup_keys};

#[tokio::test]
async fn injected_429_applies_count_times() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    let rule = harness
        .control(
            Method::POST,
            "/_emulator/failures",
            Some(json!({
                "path_prefix": "/v1/entitlements",
                "status": 429,
                "count": 2,
                "stripe_should_retry": true,
            })),
        )
        .await;
    assert_eq!(rule.status, StatusCode::OK, "{}", rule.body);

    for attempt in 1..=2 {
        let reply = harness.list(Some(&account), &[("customer", "cus_1")]).await;
        assert_api_error(
            &reply,
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request_error",
            Some("rate_limit"),
            None,
        );
        assert_eq!(
            reply.header("stripe-rate-limited-reason"),
            Some("global-rate"),
            "attempt {attempt}"
        );
        assert_eq!(
            reply.header("stripe-should-retry"),
            Some("true"),
            "attempt {attempt}"
        );
    }
    let third = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_eq!(third.status, StatusCode::OK, "{}", third.body);

    let remaining = harness
        .control(Method::GET, "/_emulator/failures", None)
        .await;
    assert_eq!(remaining.body["failures"], json!([]));

    let log = harness.requests().await;
    let injected: Vec<bool> = log
        .iter()
        .filter(|request| request["path"] == LIST_PATH)
        .map(|request| request["injected"] == true)
        .collect();
    assert_eq!(injected, vec![true, true, false]);
    harness.shutdown().await;
}

#[tokio::test]
async fn injected_500_has_api_error_body() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    harness
        .control(
            Method::POST,
            "/_emulator/failures",
            Some(json!({ "path_prefix": LIST_PATH, "status": 500, "count": 1, "stripe_should_retry": false })),
        )
        .await;
    let reply = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_api_error(
        &reply,
        StatusCode::INTERNAL_SERVER_ERROR,
        "api_error",
        None,
        None,
    );
    assert_eq!(reply.header("stripe-should-retry"), Some("false"));
    assert_eq!(reply.header("stripe-rate-limited-reason"), None);
    harness.shutdown().await;
}

#[tokio::test]
async fn failures_only_hit_matching_paths() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    harness
        .control(
            Method::POST,
            "/_emulator/failures",
            Some(json!({ "path_prefix": "/oauth/token", "status": 503, "count": 1 })),
        )
        .await;
    let reply = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let pending = harness
        .control(Method::GET, "/_emulator/failures", None)
        .await;
    assert_eq!(pending.body["failures"][0]["remaining"], 1);

    let cleared = harness
        .control(Method::DELETE, "/_emulator/failures", None)
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    let after_clear = harness
        .control(Method::GET, "/_emulator/failures", None)
        .await;
    assert_eq!(after_clear.body["failures"], json!([]));
    harness.shutdown().await;
}

#[tokio::test]
async fn delay_only_rule_slows_request() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    harness
        .control(
            Method::POST,
            "/_emulator/failures",
            Some(json!({ "path_prefix": LIST_PATH, "count": 1, "delay_ms": 300 })),
        )
        .await;
    let started = Instant::now();
    let delayed = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    let delayed_elapsed = started.elapsed();
    assert_eq!(delayed.status, StatusCode::OK, "{}", delayed.body);
    assert!(
        delayed_elapsed >= Duration::from_millis(300),
        "took {delayed_elapsed:?}"
    );

    let started = Instant::now();
    harness.list(Some(&account), &[("customer", "cus_1")]).await;
    let normal_elapsed = started.elapsed();
    assert!(
        normal_elapsed < Duration::from_millis(300),
        "took {normal_elapsed:?}"
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn invalid_failure_rules_are_rejected() {
    let harness = Harness::start().await;
    let cases = [
        json!({ "path_prefix": "/v1", "status": 302, "count": 1 }),
        json!({ "path_prefix": "v1", "status": 500, "count": 1 }),
        json!({ "path_prefix": "/v1", "status": 500, "count": 0 }),
        json!({ "path_prefix": "/v1", "status": 500 }),
    ];
    for body in cases {
        let reply = harness
            .control(Method::POST, "/_emulator/failures", Some(body.clone()))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert!(reply.body["error"].is_string(), "{body}: {}", reply.body);
    }
    harness.shutdown().await;
}
