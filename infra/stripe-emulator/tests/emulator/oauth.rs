//! Connect OAuth: consent page, approve and deny redirects, code exchange,
//! code reuse, parameter errors and deauthorization.

use std::collections::{BTreeSet, HashMap};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::common::{CLIENT_ID, Harness, KEY, Reply, lookup_keys};

/// Form pairs of one token request.
type Form<'a> = Vec<(&'a str, &'a str)>;

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback?source=test";

fn authorize_params(state: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("scope", "read_write".to_owned()),
        ("state", state.to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
    ]
}

/// Posts the consent form and returns the redirect's query parameters.
async fn decide(
    harness: &Harness,
    mut form: Vec<(&'static str, String)>,
    decision: &str,
) -> HashMap<String, String> {
    form.push(("decision", decision.to_owned()));
    let response = harness
        .http
        .post(harness.url("/oauth/authorize/decision"))
        .form(&form)
        .send()
        .await
        .expect("decision request");
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .expect("Location header")
        .to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:9/callback?source=test&"),
        "{location}"
    );
    let url = Url::parse(&location).expect("Location is a URL");
    url.query_pairs().into_owned().collect()
}

async fn exchange(harness: &Harness, code: &str) -> Reply {
    let response = harness
        .http
        .post(harness.url("/oauth/token"))
        .basic_auth(KEY, Some(""))
        .form(&[("grant_type", "authorization_code"), ("code", code)])
        .send()
        .await
        .expect("token request");
    Reply::read(response).await
}

async fn account_connected(harness: &Harness, account: &str) -> Value {
    harness
        .control(Method::GET, &format!("/_emulator/accounts/{account}"), None)
        .await
        .body["connected"]
        .clone()
}

#[tokio::test]
async fn authorize_page_offers_approve_and_deny() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .get(harness.url("/oauth/authorize"))
        .query(&authorize_params("st<ate>\"1"))
        .send()
        .await
        .expect("authorize request");
    assert_eq!(response.status(), StatusCode::OK);

    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");

    let html = response.text().await.expect("page body");
    assert!(html.contains(r#"<html lang="en">"#), "{html}");
    assert!(
        html.contains(r#"<form method="post" action="/oauth/authorize/decision">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<button type="submit" name="decision" value="approve">Approve</button>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<button type="submit" name="decision" value="deny">Deny</button>"#),
        "{html}"
    );
    assert!(
        html.contains("st&lt;ate&gt;&quot;1"),
        "state not escaped: {html}"
    );
    assert!(!html.contains("<script"), "{html}");
    harness.shutdown().await;
}

#[tokio::test]
async fn approve_exchange_and_reuse_revokes() {
    let harness = Harness::start().await;
    let redirect = decide(&harness, authorize_params("csrf-1"), "approve").await;
    let code = redirect.get("code").cloned().unwrap_or_default();
    assert!(code.starts_with("ac_"), "{redirect:?}");
    assert_eq!(
        redirect.get("scope").map(String::as_str),
        Some("read_write")
    );
    assert_eq!(redirect.get("state").map(String::as_str), Some("csrf-1"));

    let token = exchange(&harness, &code).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.body);
    let expected_keys: BTreeSet<String> = [
        "access_token",
        "livemode",
        "refresh_token",
        "scope",
        "stripe_publishable_key",
        "stripe_user_id",
        "token_type",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(crate::common::keys(&token.body), expected_keys);
    assert_eq!(token.body["token_type"], "bearer");
    assert_eq!(token.body["scope"], "read_write");
    assert_eq!(token.body["livemode"], false);
    let account = token.body["stripe_user_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(account.starts_with("acct_"), "{}", token.body);
    assert_eq!(account_connected(&harness, &account).await, true);

    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;
    let before = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);

    let reuse = exchange(&harness, &code).await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST, "{}", reuse.body);
    assert_eq!(reuse.body["error"], "invalid_grant");
    assert!(
        reuse.body["error_description"].is_string(),
        "{}",
        reuse.body
    );
    assert_eq!(account_connected(&harness, &account).await, false);
    let after = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_eq!(after.status, StatusCode::FORBIDDEN, "{}", after.body);

    let token_calls: Vec<Value> = harness
        .requests()
        .await
        .into_iter()
        .filter(|request| request["path"] == "/oauth/token")
        .collect();
    assert_eq!(token_calls.len(), 2);
    assert_eq!(token_calls[0]["form_fields"], json!(["grant_type", "code"]));
    assert_eq!(token_calls[0]["authorization"], "basic");
    let log_text = serde_json::to_string(&token_calls).unwrap_or_default();
    assert!(
        !log_text.contains(&code),
        "code leaked into the log: {log_text}"
    );
    assert!(
        !log_text.contains(KEY),
        "key leaked into the log: {log_text}"
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn token_accepts_client_secret_field() {
    let harness = Harness::start().await;
    let redirect = decide(&harness, authorize_params("s"), "approve").await;
    let code = redirect.get("code").cloned().unwrap_or_default();
    let response = harness
        .http
        .post(harness.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_secret", KEY),
        ])
        .send()
        .await
        .expect("token request");
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["stripe_user_id"].is_string(), "{}", reply.body);
    harness.shutdown().await;
}

#[tokio::test]
async fn token_errors_use_flat_oauth_shape() {
    let harness = Harness::start().await;
    let redirect = decide(&harness, authorize_params("s"), "approve").await;
    let code = redirect.get("code").cloned().unwrap_or_default();

    // (basic user, form, expected status, expected error)
    let cases: Vec<(Option<&str>, Form, StatusCode, &str)> = vec![
        (
            None,
            vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some("sk_test_wrong"),
            vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some(KEY),
            vec![("code", code.as_str())],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Some(KEY),
            vec![("grant_type", "password"), ("code", code.as_str())],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            Some(KEY),
            vec![("grant_type", "authorization_code")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Some(KEY),
            vec![
                ("grant_type", "authorization_code"),
                ("code", "ac_doesnotexist"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
    ];
    for (user, form, status, error) in cases {
        let mut request = harness.http.post(harness.url("/oauth/token")).form(&form);
        if let Some(user) = user {
            request = request.basic_auth(user, Some(""));
        }
        let reply = Reply::read(request.send().await.expect("token request")).await;
        assert_eq!(reply.status, status, "{form:?}: {}", reply.body);
        assert_eq!(reply.body["error"], error, "{form:?}: {}", reply.body);
        assert_eq!(
            crate::common::keys(&reply.body),
            BTreeSet::from(["error".to_owned(), "error_description".to_owned()]),
            "{form:?}"
        );
    }

    // None of the failed attempts consumed the code.
    let token = exchange(&harness, &code).await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.body);
    harness.shutdown().await;
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let harness = Harness::start().await;
    let redirect = decide(&harness, authorize_params("s"), "approve").await;
    let code = redirect.get("code").cloned().unwrap_or_default();
    let expired = harness
        .control(Method::POST, "/_emulator/oauth/expire_codes", None)
        .await;
    assert_eq!(expired.body["expired"], 1);
    let reply = exchange(&harness, &code).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["error"], "invalid_grant");
    harness.shutdown().await;
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let harness = Harness::start().await;
    let response = harness
        .http
        .post(harness.url("/oauth/authorize/decision"))
        .form(&{
            let mut form = authorize_params("csrf-2");
            form.push(("decision", "deny".to_owned()));
            form
        })
        .send()
        .await
        .expect("decision request");
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        location.ends_with(
            "error=access_denied&error_description=The+user+denied+your+request&state=csrf-2"
        ),
        "{location}"
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn invalid_authorize_parameters_are_not_redirected() {
    let harness = Harness::start().await;
    let replace = |name: &'static str, value: Option<&str>| -> Vec<(&'static str, String)> {
        let mut params = authorize_params("csrf-3");
        params.retain(|(key, _)| *key != name);
        if let Some(value) = value {
            params.push((name, value.to_owned()));
        }
        params
    };
    let cases = [
        (replace("client_id", Some("ca_other")), "invalid_client"),
        (replace("response_type", None), "invalid_request"),
        (
            replace("response_type", Some("token")),
            "unsupported_response_type",
        ),
        (replace("scope", Some("admin")), "invalid_scope"),
        (
            replace("redirect_uri", Some("not a url")),
            "invalid_redirect_uri",
        ),
        (replace("redirect_uri", None), "invalid_request"),
    ];
    for (params, error) in cases {
        let response = harness
            .http
            .get(harness.url("/oauth/authorize"))
            .query(&params)
            .send()
            .await
            .expect("authorize request");
        assert!(response.headers().get("location").is_none(), "{params:?}");
        let reply = Reply::read(response).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{params:?}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"], error, "{params:?}");
        assert_eq!(reply.body["state"], "csrf-3", "{params:?}");
        assert!(reply.body["error_description"].is_string(), "{params:?}");
    }

    let mut without_state = authorize_params("x");
    without_state.retain(|(key, _)| *key != "state");
    let response = harness
        .http
        .get(harness.url("/oauth/authorize"))
        .query(&without_state)
        .send()
        .await
        .expect("authorize request");
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"], "invalid_request");
    assert_eq!(reply.body["state"], Value::Null);
    harness.shutdown().await;
}

#[tokio::test]
async fn approve_reuses_requested_or_preset_account() {
    let harness = Harness::start().await;
    let existing = harness.create_account().await;
    harness
        .control(
            Method::POST,
            &format!("/_emulator/accounts/{existing}/disconnect"),
            None,
        )
        .await;

    let mut params = authorize_params("s");
    params.push(("stripe_user_account", existing.clone()));
    let redirect = decide(&harness, params, "approve").await;
    assert_eq!(account_connected(&harness, &existing).await, true);
    let token = exchange(&harness, redirect.get("code").map_or("", String::as_str)).await;
    assert_eq!(token.body["stripe_user_id"], existing.as_str());

    let preset = harness
        .control(
            Method::PUT,
            "/_emulator/oauth/preset_account",
            Some(json!({ "id": "acct_presetaccount1" })),
        )
        .await;
    assert_eq!(preset.status, StatusCode::OK, "{}", preset.body);
    let redirect = decide(&harness, authorize_params("s"), "approve").await;
    let token = exchange(&harness, redirect.get("code").map_or("", String::as_str)).await;
    assert_eq!(token.body["stripe_user_id"], "acct_presetaccount1");

    // The preset applies once.
    let redirect = decide(&harness, authorize_params("s"), "approve").await;
    let token = exchange(&harness, redirect.get("code").map_or("", String::as_str)).await;
    assert_ne!(token.body["stripe_user_id"], "acct_presetaccount1");
    harness.shutdown().await;
}

#[tokio::test]
async fn deauthorize_revokes_connection() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_1", &lookup_keys(1))
        .await;

    let deauthorize = |client_id: &'static str, account: String| {
        let request = harness
            .http
            .post(harness.url("/oauth/deauthorize"))
            .basic_auth(KEY, Some(""))
            .form(&[
                ("client_id", client_id.to_owned()),
                ("stripe_user_id", account),
            ]);
        async move { Reply::read(request.send().await.expect("deauthorize request")).await }
    };

    let wrong_client = deauthorize("ca_other", account.clone()).await;
    assert_eq!(
        wrong_client.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_client.body
    );
    assert_eq!(wrong_client.body["error"], "invalid_client");
    assert_eq!(account_connected(&harness, &account).await, true);

    let done = deauthorize(CLIENT_ID, account.clone()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body, json!({ "stripe_user_id": account }));
    assert_eq!(account_connected(&harness, &account).await, false);
    let list = harness.list(Some(&account), &[("customer", "cus_1")]).await;
    assert_eq!(list.status, StatusCode::FORBIDDEN, "{}", list.body);

    let again = deauthorize(CLIENT_ID, account.clone()).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert_eq!(again.body["error"], "invalid_client");

    let unknown = deauthorize(CLIENT_ID, "acct_neverconnected".to_owned()).await;
    assert_eq!(unknown.body["error"], "invalid_client");

    let unauthenticated = harness
        .http
        .post(harness.url("/oauth/deauthorize"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("stripe_user_id", account.as_str()),
        ])
        .send()
        .await
        .expect("deauthorize request");
    let reply = Reply::read(unauthenticated).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(reply.body["error"], "invalid_client");
    harness.shutdown().await;
}
