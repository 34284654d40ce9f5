//! `GET /stripe/oauth/callback` through the router, with the Stripe emulator issuing real codes,
//! on every store backend. The emulator's request log counts the code exchanges.

mod common;

use chrono::Utc;
use common::{Harness, Options, Reply, account_id, backends, state_of};
use http::StatusCode;
use serde_json::json;
use shared::ids;
use shared::store::{OAuthOutcome, OAuthState, StripeMode};

/// Checks the shape every callback page has, and returns its text.
fn page_text(reply: &Reply, backend: &str) -> String {
    assert_eq!(
        reply.headers["content-type"], "text/html; charset=utf-8",
        "{backend}"
    );
    assert_eq!(reply.headers["cache-control"], "no-store", "{backend}");
    let html = reply.text();
    assert!(html.starts_with("<!DOCTYPE html>"), "{backend}");
    assert!(html.contains(r#"<html lang="en">"#), "{backend}");
    assert!(html.contains("<title>"), "{backend}");
    assert!(html.contains("<h1>"), "{backend}");
    assert!(html.contains("<main>"), "{backend}");
    assert!(
        !html.to_lowercase().contains("<script"),
        "{backend}: no JavaScript"
    );
    assert!(!html.contains("src="), "{backend}: no external assets");
    assert!(!html.contains("<link"), "{backend}: no external assets");
    html
}

#[tokio::test]
async fn approval_connects_environment() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let account = account_id();
        let reply = harness.connect(&account).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reply.text()
        );
        let html = page_text(&reply, harness.name);
        assert!(
            html.contains("Stripe is connected. You can close this tab."),
            "{}",
            harness.name
        );
        assert!(html.contains(&account), "{}", harness.name);

        let status = harness.call("GET", "/stripe/connection", None).await;
        assert_eq!(status.status, StatusCode::OK, "{}", harness.name);
        let body = status.json();
        assert_eq!(body["object"], "stripe_connection", "{}", harness.name);
        assert_eq!(body["connected"], true, "{}", harness.name);
        assert_eq!(body["account_id"], account.as_str(), "{}", harness.name);
        assert_eq!(body["livemode"], false, "{}", harness.name);
        assert_eq!(body["mode"], "test", "{}", harness.name);
        assert_eq!(body["entitlements_enabled"], true, "{}", harness.name);
        assert!(body["connected_at"].is_string(), "{}", harness.name);

        let environment = harness.environment(&harness.environment_id).await;
        let connection = environment.stripe_connection.expect("connection stored");
        assert_eq!(connection.account_id, account, "{}", harness.name);
        assert_eq!(connection.scope, "read_write", "{}", harness.name);
        assert!(
            connection.connection_id.starts_with("conn_"),
            "{}",
            harness.name
        );
        let record = harness
            .store
            .stripe_account(&account, false)
            .await
            .unwrap()
            .unwrap();
        assert!(record.connected, "{}", harness.name);
        assert_eq!(
            record.environment_id, harness.environment_id,
            "{}",
            harness.name
        );

        let exchanges = harness.emulator_requests("/oauth/token").await;
        assert_eq!(exchanges.len(), 1, "{}", harness.name);
        assert_eq!(exchanges[0]["authorization"], "basic", "{}", harness.name);
        assert_eq!(exchanges[0]["status"], 200, "{}", harness.name);
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn repeated_callback_shows_same_page() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let link = harness.connect_link().await;
        let query = harness.approve(&link, Some(&account_id())).await;

        let first = harness.callback(&query).await;
        let second = harness.callback(&query).await;
        assert_eq!(first.status, StatusCode::OK, "{}", harness.name);
        assert_eq!(second.status, StatusCode::OK, "{}", harness.name);
        assert_eq!(first.text(), second.text(), "{}", harness.name);
        assert_eq!(
            harness.emulator_requests("/oauth/token").await.len(),
            1,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn concurrent_callbacks_exchange_once() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let account = account_id();
        let link = harness.connect_link().await;
        let query = harness.approve(&link, Some(&account)).await;
        // Slows the exchange, so the duplicates arrive while it is in flight.
        harness
            .control(
                reqwest::Method::POST,
                "/_emulator/failures",
                Some(json!({ "path_prefix": "/oauth/token", "count": 1, "delay_ms": 400 })),
            )
            .await;

        let replies = futures::future::join_all((0..4).map(|_| harness.callback(&query))).await;
        for reply in &replies {
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}: {}",
                harness.name,
                reply.text()
            );
            assert!(
                reply
                    .text()
                    .contains("Stripe is connected. You can close this tab."),
                "{}",
                harness.name
            );
        }
        assert_eq!(
            harness.emulator_requests("/oauth/token").await.len(),
            1,
            "{}",
            harness.name
        );
        let account_state = harness
            .control(
                reqwest::Method::GET,
                &format!("/_emulator/accounts/{account}"),
                None,
            )
            .await;
        assert_eq!(
            account_state["connected"], true,
            "{}: Stripe kept the connection",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn state_reused_with_other_code_rejected() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let account = account_id();
        let link = harness.connect_link().await;
        let first_query = harness.approve(&link, Some(&account)).await;
        let second_query = harness.approve(&link, Some(&account_id())).await;

        let first = harness.callback(&first_query).await;
        assert_eq!(first.status, StatusCode::OK, "{}", harness.name);
        let second = harness.callback(&second_query).await;
        assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        let html = page_text(&second, harness.name);
        assert!(html.contains("already used"), "{}", harness.name);

        assert_eq!(
            harness.emulator_requests("/oauth/token").await.len(),
            1,
            "{}",
            harness.name
        );
        let environment = harness.environment(&harness.environment_id).await;
        assert_eq!(
            environment
                .stripe_connection
                .map(|connection| connection.account_id),
            Some(account),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn missing_or_unknown_state_rejected() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let link = harness.connect_link().await;
        let query = harness.approve(&link, Some(&account_id())).await;
        let code = url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "code")
            .map(|(_, value)| value.into_owned())
            .unwrap();

        let missing = harness.callback(&format!("code={code}")).await;
        assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        assert!(
            page_text(&missing, harness.name).contains("state is missing"),
            "{}",
            harness.name
        );

        let unknown = harness
            .callback(&format!("code={code}&state=not-a-state"))
            .await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        assert!(
            page_text(&unknown, harness.name).contains("unknown or has expired"),
            "{}",
            harness.name
        );

        let no_code = harness
            .callback(&format!("state={}", state_of(&link)))
            .await;
        assert_eq!(no_code.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        assert!(
            page_text(&no_code, harness.name).contains("code is missing"),
            "{}",
            harness.name
        );

        let empty = harness.callback("").await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", harness.name);

        assert!(
            harness.emulator_requests("/oauth/token").await.is_empty(),
            "{}",
            harness.name
        );
        // The link still works: none of the above consumed its state.
        let reply = harness.callback(&query).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", harness.name);
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn expired_state_rejected() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let value = ids::new_secret("");
        let now_ms = Utc::now().timestamp_millis();
        let state = OAuthState {
            state_hash: ids::hash_secret(&value),
            environment_id: harness.environment_id.clone(),
            created_at_ms: now_ms - 601_000,
            expires_at: now_ms / 1000 - 1,
            consumption: None,
        };
        harness.store.create_oauth_state(&state).await.unwrap();

        let reply = harness
            .callback(&format!("code=ac_anything&state={value}"))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        assert!(
            page_text(&reply, harness.name).contains("expired"),
            "{}",
            harness.name
        );
        assert!(
            harness.emulator_requests("/oauth/token").await.is_empty(),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn denial_shows_cancelled_and_consumes_state() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let link = harness.connect_link().await;
        let denied = harness.decide(&link, "deny", None).await;
        assert!(denied.contains("error=access_denied"), "{}", harness.name);

        let reply = harness.callback(&denied).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", harness.name);
        let html = page_text(&reply, harness.name);
        assert!(html.contains("Connection cancelled"), "{}", harness.name);

        let again = harness.callback(&denied).await;
        assert_eq!(
            again.text(),
            reply.text(),
            "{}: the same denial shows the same page",
            harness.name
        );

        let state = harness
            .store
            .get_oauth_state(
                &ids::hash_secret(&state_of(&link)),
                Utc::now().timestamp_millis(),
            )
            .await
            .unwrap()
            .unwrap();
        let outcome = state
            .consumption
            .and_then(|consumption| consumption.outcome);
        assert_eq!(outcome, Some(OAuthOutcome::Cancelled), "{}", harness.name);

        // A code for the same state arriving afterwards is not exchanged.
        let approved = harness.approve(&link, Some(&account_id())).await;
        let late = harness.callback(&approved).await;
        assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        assert!(
            harness.emulator_requests("/oauth/token").await.is_empty(),
            "{}",
            harness.name
        );
        assert!(
            harness
                .environment(&harness.environment_id)
                .await
                .stripe_connection
                .is_none(),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn denial_without_state_shows_cancelled() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let reply = harness
            .callback("error=access_denied&error_description=The+user+denied+your+request")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", harness.name);
        assert!(
            page_text(&reply, harness.name).contains("Connection cancelled"),
            "{}",
            harness.name
        );
        assert!(
            harness
                .environment(&harness.environment_id)
                .await
                .stripe_connection
                .is_none(),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn expired_code_shows_stripe_error() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let link = harness.connect_link().await;
        let query = harness.approve(&link, Some(&account_id())).await;
        harness
            .control(reqwest::Method::POST, "/_emulator/oauth/expire_codes", None)
            .await;

        let reply = harness.callback(&query).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        let html = page_text(&reply, harness.name);
        assert!(
            html.contains("Stripe connection failed"),
            "{}",
            harness.name
        );
        assert!(html.contains("invalid_grant"), "{}", harness.name);
        assert!(html.contains("Nothing was stored"), "{}", harness.name);
        assert!(
            harness
                .environment(&harness.environment_id)
                .await
                .stripe_connection
                .is_none(),
            "{}",
            harness.name
        );

        let again = harness.callback(&query).await;
        assert_eq!(again.text(), reply.text(), "{}", harness.name);
        assert_eq!(
            harness.emulator_requests("/oauth/token").await.len(),
            1,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn wrong_secret_key_shows_operator_fix() {
    for backend in backends().await {
        let options = Options {
            variables: vec![("STRIPE_SECRET_KEY", "sk_test_wrong".into())],
            ..Options::default()
        };
        let harness = Harness::start_with(&backend, options).await;
        let reply = harness.connect(&account_id()).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", harness.name);
        let html = page_text(&reply, harness.name);
        assert!(html.contains("STRIPE_SECRET_KEY"), "{}", harness.name);
        assert!(html.contains("invalid_client"), "{}", harness.name);
        assert!(
            !html.contains("sk_test_wrong"),
            "{}: the key is never shown",
            harness.name
        );
        assert!(
            harness
                .environment(&harness.environment_id)
                .await
                .stripe_connection
                .is_none(),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn failed_exchange_not_retried() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let link = harness.connect_link().await;
        let query = harness.approve(&link, Some(&account_id())).await;
        harness
            .control(
                reqwest::Method::POST,
                "/_emulator/failures",
                Some(json!({ "path_prefix": "/oauth/token", "count": 1, "status": 500 })),
            )
            .await;

        let reply = harness.callback(&query).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{}", harness.name);
        assert!(
            page_text(&reply, harness.name).contains("not confirmed"),
            "{}",
            harness.name
        );
        let again = harness.callback(&query).await;
        assert_eq!(again.text(), reply.text(), "{}", harness.name);
        assert_eq!(
            harness.emulator_requests("/oauth/token").await.len(),
            1,
            "{}",
            harness.name
        );
        assert!(
            harness
                .environment(&harness.environment_id)
                .await
                .stripe_connection
                .is_none(),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn other_mode_account_not_stored() {
    for backend in backends().await {
        let options = Options {
            environment_mode: StripeMode::Live,
            ..Options::default()
        };
        let harness = Harness::start_with(&backend, options).await;
        let account = account_id();
        let reply = harness.connect(&account).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", harness.name);
        let html = page_text(&reply, harness.name);
        assert!(html.contains("test mode"), "{}", harness.name);
        assert!(html.contains("live mode"), "{}", harness.name);
        assert!(
            harness
                .environment(&harness.environment_id)
                .await
                .stripe_connection
                .is_none(),
            "{}",
            harness.name
        );
        assert_eq!(
            harness.store.stripe_account(&account, false).await.unwrap(),
            None,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn account_of_other_environment_refused() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let account = account_id();
        assert_eq!(
            harness.connect(&account).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );

        let (other_key, other_id) = harness.add_environment(StripeMode::Test).await;
        let link = harness.connect_link_for(&other_key).await;
        let query = harness.approve(&link, Some(&account)).await;
        let reply = harness.callback(&query).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", harness.name);
        let html = page_text(&reply, harness.name);
        assert!(
            html.contains("already connected to another environment"),
            "{}",
            harness.name
        );
        assert!(
            !html.contains(&harness.environment_id),
            "{}: the other environment stays private",
            harness.name
        );

        assert!(
            harness
                .environment(&other_id)
                .await
                .stripe_connection
                .is_none(),
            "{}",
            harness.name
        );
        let first = harness.environment(&harness.environment_id).await;
        assert_eq!(
            first
                .stripe_connection
                .map(|connection| connection.account_id),
            Some(account),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn same_account_in_other_mode_allowed() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let account = account_id();
        assert_eq!(
            harness.connect(&account).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );

        // A live platform on a second emulator connects the same account ID to a live environment.
        let live = Harness::start_with(
            &backend,
            Options {
                emulator_livemode: true,
                environment_mode: StripeMode::Live,
                ..Options::default()
            },
        )
        .await;
        let reply = live.connect(&account).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reply.text()
        );
        let test_record = harness
            .store
            .stripe_account(&account, false)
            .await
            .unwrap()
            .unwrap();
        let live_record = harness
            .store
            .stripe_account(&account, true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            test_record.environment_id, harness.environment_id,
            "{}",
            harness.name
        );
        assert_eq!(
            live_record.environment_id, live.environment_id,
            "{}",
            harness.name
        );
        live.shutdown().await;
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn second_account_for_connected_environment_refused() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let first = account_id();
        assert_eq!(
            harness.connect(&first).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );

        let reply = harness.connect(&account_id()).await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", harness.name);
        let html = page_text(&reply, harness.name);
        assert!(
            html.contains(&format!("already connected to Stripe account {first}")),
            "{}",
            harness.name
        );
        let environment = harness.environment(&harness.environment_id).await;
        assert_eq!(
            environment
                .stripe_connection
                .map(|connection| connection.account_id),
            Some(first),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn reconnecting_same_account_replaces_connection() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let account = account_id();
        assert_eq!(
            harness.connect(&account).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );
        let first = harness
            .environment(&harness.environment_id)
            .await
            .stripe_connection
            .unwrap();
        let organization = harness
            .organization_with_set(&first.connection_id, &["pro"])
            .await;

        let reply = harness.connect(&account).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reply.text()
        );
        let second = harness
            .environment(&harness.environment_id)
            .await
            .stripe_connection
            .unwrap();
        assert_ne!(
            second.connection_id, first.connection_id,
            "{}",
            harness.name
        );
        let organization = harness.organization(&organization.id).await;
        assert_eq!(
            organization.entitlements, None,
            "{}: the earlier connection's set is deleted",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn callback_without_secret_key_keeps_state() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let link = harness.connect_link().await;
        let query = harness.approve(&link, Some(&account_id())).await;

        let unconfigured = Harness::start_with(
            &backend,
            Options {
                variables: vec![("STRIPE_SECRET_KEY", String::new())],
                ..Options::default()
            },
        )
        .await;
        let reply = unconfigured.callback(&query).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            harness.name
        );
        assert!(
            page_text(&reply, harness.name).contains("STRIPE_SECRET_KEY is not set"),
            "{}",
            harness.name
        );
        unconfigured.shutdown().await;

        let retried = harness.callback(&query).await;
        assert_eq!(
            retried.status,
            StatusCode::OK,
            "{}: the state was not consumed",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn malformed_parameters_named() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let duplicate = harness.callback("state=a&state=b&code=ac_1").await;
        assert_eq!(
            duplicate.status,
            StatusCode::BAD_REQUEST,
            "{}",
            harness.name
        );
        assert!(
            page_text(&duplicate, harness.name).contains("state appears more than once"),
            "{}",
            harness.name
        );

        let spaced = harness.callback("state=a&code=ac%201").await;
        assert_eq!(spaced.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        assert!(
            page_text(&spaced, harness.name).contains("code contains"),
            "{}",
            harness.name
        );

        let markup = harness
            .callback("error=invalid_scope&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
            .await;
        let html = page_text(&markup, harness.name);
        assert!(html.contains("&lt;script&gt;"), "{}", harness.name);

        let invalid_utf8 = harness.callback("state=%FF&code=ac_1").await;
        assert_eq!(
            invalid_utf8.status,
            StatusCode::BAD_REQUEST,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}
