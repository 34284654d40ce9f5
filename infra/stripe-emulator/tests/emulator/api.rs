//! Authentication, `Stripe-Account` handling and the active entitlements list.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{Harness, KEY, LIST_PATH, Reply, assert_api_error, fixture, keys, lookup_keys};

/// Query pairs of one list request.
type Query<'a> = Vec<(&'a str, &'a str)>;

fn ids_of(reply: &Reply) -> Vec<String> {
    reply.body["data"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn missing_api_key_returns_401() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .get(harness.url(LIST_PATH))
        .query(&[("customer", "cus_1")])
        .send()
        .await
        .expect("request");
    let reply = Reply::read(response).await;
    assert_api_error(
        &reply,
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        None,
        None,
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("You did not provide an API key."),
        "{message}"
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn wrong_api_key_returns_401_with_redacted_key() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .get(harness.url(LIST_PATH))
        .bearer_auth("sk_test_wrongkey98765")
        .query(&[("customer", "cus_1")])
        .send()
        .await
        .expect("request");
    let reply = Reply::read(response).await;
    assert_api_error(
        &reply,
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        None,
        None,
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Invalid API Key provided: sk_test_"),
        "{message}"
    );
    assert!(message.ends_with("8765"), "{message}");
    assert!(!message.contains("wrongkey"), "key not redacted: {message}");
    harness.shutdown().await;
}

#[tokio::test]
async fn basic_auth_with_key_as_user_is_accepted() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_basic", &lookup_keys(1))
        .await;
    let credentials = STANDARD.encode(format!("{KEY}:"));
    let response = harness
        .http
        .get(harness.url(LIST_PATH))
        .header("Authorization", format!("Basic {credentials}"))
        .header("Stripe-Account", &account)
        .query(&[("customer", "cus_basic")])
        .send()
        .await
        .expect("request");
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(ids_of(&reply).len(), 1);
    harness.shutdown().await;
}

#[tokio::test]
async fn unknown_stripe_account_returns_403() {
    let harness = Harness::start().await;
    let reply = harness
        .list(Some("acct_unknown123"), &[("customer", "cus_1")])
        .await;
    assert_api_error(
        &reply,
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        Some("account_invalid"),
        None,
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("does not have access to account 'acct_unknown123'"),
        "{message}"
    );
    assert!(
        message.ends_with("Application access may have been revoked."),
        "{message}"
    );
    assert!(!message.contains(KEY), "full key in message: {message}");
    harness.shutdown().await;
}

#[tokio::test]
async fn disconnected_account_returns_403() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(2))
        .await;
    let before = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);

    let disconnect = harness
        .control(
            Method::POST,
            &format!("/_emulator/accounts/{account}/disconnect"),
            None,
        )
        .await;
    assert_eq!(disconnect.status, StatusCode::OK, "{}", disconnect.body);
    assert_eq!(disconnect.body["connected"], false);

    let after = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_api_error(
        &after,
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        Some("account_invalid"),
        None,
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn platform_scope_has_no_customers() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    let reply = harness.list(None, &[("customer", "cus_1")]).await;
    assert_api_error(
        &reply,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        Some("resource_missing"),
        Some("customer"),
    );
    assert_eq!(reply.body["error"]["message"], "No such customer: 'cus_1'");
    harness.shutdown().await;
}

#[tokio::test]
async fn list_parameter_errors_name_the_parameter() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    let ids = harness
        .set_entitlements(&account, "cus_1", &lookup_keys(3))
        .await;
    assert_eq!(ids.len(), 3);

    // (query, status, code, param)
    let cases: Vec<(Query, StatusCode, Option<&str>, &str)> = vec![
        (
            vec![],
            StatusCode::BAD_REQUEST,
            Some("parameter_missing"),
            "customer",
        ),
        (
            vec![("customer", "")],
            StatusCode::BAD_REQUEST,
            Some("parameter_missing"),
            "customer",
        ),
        (
            vec![("customer", "cus_1"), ("limit", "0")],
            StatusCode::BAD_REQUEST,
            Some("parameter_invalid_integer"),
            "limit",
        ),
        (
            vec![("customer", "cus_1"), ("limit", "101")],
            StatusCode::BAD_REQUEST,
            Some("parameter_invalid_integer"),
            "limit",
        ),
        (
            vec![("customer", "cus_1"), ("limit", "ten")],
            StatusCode::BAD_REQUEST,
            Some("parameter_invalid_integer"),
            "limit",
        ),
        (
            vec![
                ("customer", "cus_1"),
                ("starting_after", ids[0].as_str()),
                ("ending_before", ids[2].as_str()),
            ],
            StatusCode::BAD_REQUEST,
            None,
            "starting_after",
        ),
        (
            vec![("customer", "cus_1"), ("starting_after", "ent_unknown")],
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            "starting_after",
        ),
        (
            vec![("customer", "cus_1"), ("ending_before", "ent_unknown")],
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            "ending_before",
        ),
        (
            vec![("customer", "cus_1"), ("expand[]", "data.nothing")],
            StatusCode::BAD_REQUEST,
            None,
            "expand",
        ),
        (
            vec![("customer", "cus_1"), ("colour", "blue")],
            StatusCode::BAD_REQUEST,
            Some("parameter_unknown"),
            "colour",
        ),
        (
            vec![("customer", "cus_unknown")],
            StatusCode::NOT_FOUND,
            Some("resource_missing"),
            "customer",
        ),
    ];
    for (query, status, code, param) in cases {
        let reply = harness.list(Some(&account), &query).await;
        assert_eq!(reply.status, status, "status for {query:?}: {}", reply.body);
        assert_api_error(&reply, status, "invalid_request_error", code, Some(param));
    }
    harness.shutdown().await;
}

#[tokio::test]
async fn limit_error_messages_match_stripe() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    let cases = [
        ("0", "This value must be greater than or equal to 1."),
        ("101", "This value must be less than or equal to 100."),
        ("ten", "Invalid integer: ten"),
    ];
    for (limit, message) in cases {
        let reply = harness
            .list(Some(&account), &[("customer", "cus_1"), ("limit", limit)])
            .await;
        assert_eq!(reply.body["error"]["message"], message, "limit={limit}");
    }
    harness.shutdown().await;
}

#[tokio::test]
async fn paging_25_entitlements_with_limit_10() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    let expected = harness
        .set_entitlements(&account, "cus_25", &lookup_keys(25))
        .await;

    let first = harness
        .list(Some(&account), &[("customer", "cus_25"), ("limit", "10")])
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(ids_of(&first), expected[..10].to_vec());
    assert_eq!(first.body["has_more"], true);

    let second = harness
        .list(
            Some(&account),
            &[
                ("customer", "cus_25"),
                ("limit", "10"),
                ("starting_after", expected[9].as_str()),
            ],
        )
        .await;
    assert_eq!(ids_of(&second), expected[10..20].to_vec());
    assert_eq!(second.body["has_more"], true);

    let third = harness
        .list(
            Some(&account),
            &[
                ("customer", "cus_25"),
                ("limit", "10"),
                ("starting_after", expected[19].as_str()),
            ],
        )
        .await;
    assert_eq!(ids_of(&third), expected[20..].to_vec());
    assert_eq!(third.body["has_more"], false);

    let back_to_second = harness
        .list(
            Some(&account),
            &[
                ("customer", "cus_25"),
                ("limit", "10"),
                ("ending_before", expected[20].as_str()),
            ],
        )
        .await;
    assert_eq!(ids_of(&back_to_second), expected[10..20].to_vec());
    assert_eq!(back_to_second.body["has_more"], true);

    let back_to_first = harness
        .list(
            Some(&account),
            &[
                ("customer", "cus_25"),
                ("limit", "10"),
                ("ending_before", expected[10].as_str()),
            ],
        )
        .await;
    assert_eq!(ids_of(&back_to_first), expected[..10].to_vec());
    assert_eq!(back_to_first.body["has_more"], false);

    let requests = harness.requests().await;
    let list_calls: Vec<&Value> = requests
        .iter()
        .filter(|request| request["path"] == LIST_PATH)
        .collect();
    assert_eq!(list_calls.len(), 5);
    assert!(
        list_calls
            .iter()
            .all(|request| request["stripe_account"] == account.as_str()),
        "{list_calls:?}"
    );
    let cursors: Vec<Option<&str>> = list_calls
        .iter()
        .map(|request| {
            request["query_params"]
                .as_array()
                .and_then(|pairs| pairs.iter().find(|pair| pair[0] == "starting_after"))
                .and_then(|pair| pair[1].as_str())
        })
        .collect();
    assert_eq!(
        cursors,
        vec![
            None,
            Some(expected[9].as_str()),
            Some(expected[19].as_str()),
            None,
            None
        ]
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn paging_25_entitlements_with_limit_100() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    let expected = harness
        .set_entitlements(&account, "cus_25", &lookup_keys(25))
        .await;

    let all = harness
        .list(Some(&account), &[("customer", "cus_25"), ("limit", "100")])
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(ids_of(&all), expected);
    assert_eq!(all.body["has_more"], false);
    assert_eq!(all.body["object"], "list");
    assert_eq!(all.body["url"], LIST_PATH);

    let after_last = harness
        .list(
            Some(&account),
            &[
                ("customer", "cus_25"),
                ("limit", "100"),
                ("starting_after", expected[24].as_str()),
            ],
        )
        .await;
    assert_eq!(ids_of(&after_last), Vec::<String>::new());
    assert_eq!(after_last.body["has_more"], false);

    let default_limit = harness
        .list(Some(&account), &[("customer", "cus_25")])
        .await;
    assert_eq!(ids_of(&default_limit).len(), 10);
    assert_eq!(default_limit.body["has_more"], true);

    let requests = harness.requests().await;
    let limits: Vec<&str> = requests
        .iter()
        .filter_map(|request| request["query"].as_str())
        .filter(|query| query.contains("limit=100"))
        .collect();
    assert_eq!(limits.len(), 2, "{requests:?}");
    harness.shutdown().await;
}

#[tokio::test]
async fn list_item_keys_match_fixture() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(2))
        .await;
    let reply = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    let expected_keys = keys(&fixture("entitlements.active_entitlement.json"));
    let items = reply.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    for item in &items {
        assert_eq!(keys(item), expected_keys, "{item}");
        assert_eq!(item["object"], "entitlements.active_entitlement");
        assert_eq!(item["livemode"], false);
        assert!(
            item["feature"]
                .as_str()
                .is_some_and(|id| id.starts_with("feat_test_"))
        );
        assert!(
            item["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("ent_test_"))
        );
    }
    assert_eq!(items[0]["lookup_key"], "feature_00");
    assert_eq!(
        keys(&reply.body),
        BTreeSet::from(["data", "has_more", "object", "url"].map(str::to_owned))
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn expand_data_feature_embeds_feature_object() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    for expand_key in ["expand[]", "expand[0]"] {
        let reply = harness
            .list(
                Some(&account),
                &[("customer", "cus_1"), (expand_key, "data.feature")],
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let feature = &reply.body["data"][0]["feature"];
        assert_eq!(
            keys(feature),
            keys(&fixture("entitlements.feature.json")),
            "{feature}"
        );
        assert_eq!(feature["object"], "entitlements.feature");
        assert_eq!(feature["lookup_key"], "feature_00");
    }
    harness.shutdown().await;
}

#[tokio::test]
async fn entitlement_ids_are_stable_per_lookup_key() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    let keys_ab = vec!["alpha".to_owned(), "beta".to_owned()];
    let first = harness.set_entitlements(&account, "cus_1", &keys_ab).await;
    let again = harness.set_entitlements(&account, "cus_1", &keys_ab).await;
    assert_eq!(first, again);
    let other = harness.set_entitlements(&account, "cus_2", &keys_ab).await;
    assert_ne!(first, other);

    let features = |reply: &Reply| -> Vec<String> {
        reply.body["data"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["feature"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cus1 = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    let cus2 = harness.list(Some(&account), &[("customer", "cus_2")]).await;
    assert_eq!(features(&cus1), features(&cus2));
    harness.shutdown().await;
}

#[tokio::test]
async fn success_responses_carry_request_id_and_version() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    let reply = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert!(
        reply
            .header("request-id")
            .is_some_and(|id| id.starts_with("req_")),
        "{:?}",
        reply.headers
    );
    assert_eq!(
        reply.header("stripe-version"),
        Some(stripe_emulator::API_VERSION)
    );
    assert_eq!(reply.header("stripe-account"), Some(account.as_str()));
    harness.shutdown().await;
}

#[tokio::test]
async fn unknown_api_path_returns_unrecognized_url() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .get(harness.url("/v1/charges"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("request");
    let reply = Reply::read(response).await;
    assert_api_error(
        &reply,
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        None,
    );
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Unrecognized request URL (GET: /v1/charges)"),
        "{message}"
    );
    harness.shutdown().await;
}
