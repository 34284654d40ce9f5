//! Router tests of the cookie refresh route and of the router's start-up checks.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use common::{COOKIE_PASSWORD, Harness, Options, assert_code, embedded, verify};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::config::Config;
use shared::cookie::{self, SessionCookieData};
use shared::sessions::refresh_token::RefreshToken;
use shared::state::AppState;
use shared::store::EmbeddedStore;
use tower::ServiceExt;

/// Seals a sign-in response the way the Node SDK does after `authenticateWithPassword` with
/// `sealSession: true`: camelCase user, `organizationId` from the token's `org_id`.
fn seal_like_sdk(login: &Value, password: &str) -> String {
    let access_token = login["access_token"].as_str().unwrap().to_owned();
    let claims = shared::tokens::decode_claims_unverified(&access_token).unwrap();
    let data = SessionCookieData {
        access_token,
        refresh_token: login["refresh_token"].as_str().unwrap().to_owned(),
        user: cookie::user_to_cookie_json(&login["user"]),
        organization_id: claims.org_id,
        authentication_method: login["authentication_method"].as_str().map(str::to_owned),
        impersonator: None,
    };
    cookie::seal(password, &serde_json::to_value(data).unwrap()).unwrap()
}

async fn call_with_cookies(harness: &Harness, path: &str, cookies: &[&str]) -> common::Reply {
    let mut request = Request::get(path);
    for value in cookies {
        request = request.header("cookie", *value);
    }
    harness.send(request.body(Body::empty()).unwrap()).await
}

/// Returns the sealed value of a `Set-Cookie: wos-session=…` header.
fn sealed_from(reply: &common::Reply) -> String {
    let header = reply.headers["set-cookie"].to_str().unwrap();
    let (pair, _) = header.split_once(';').unwrap();
    pair.strip_prefix("wos-session=").unwrap().to_owned()
}

#[tokio::test]
async fn cookie_round_trip() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("cookie@example.com").await;
    let acme = harness.create_organization("Acme").await;
    harness.add_membership(&user_id, &acme.id).await;
    harness
        .set_entitlements(&acme.id, Some(&["sso", "audit-logs"]))
        .await;
    let login = harness.sign_in("cookie@example.com").await.body;
    let sealed = seal_like_sdk(&login, COOKIE_PASSWORD);

    let reply = call_with_cookies(
        &harness,
        "/api/entitlements",
        &[&format!("theme=dark; wos-session={sealed}")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({ "entitlements": ["audit-logs", "sso"] }));
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["cache-control"], "no-store");
    let set_cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.starts_with("wos-session=Fe26.2*1*"),
        "{set_cookie}"
    );
    assert!(
        set_cookie.ends_with("~2; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{set_cookie}"
    );

    let renewed = sealed_from(&reply);
    let data: SessionCookieData =
        serde_json::from_value(cookie::unseal(COOKIE_PASSWORD, &renewed).unwrap()).unwrap();
    let claims = verify(&data.access_token, &harness.jwks().await).unwrap();
    assert_eq!(claims.org_id.as_deref(), Some(acme.id.as_str()));
    assert_eq!(
        claims.entitlements,
        Some(vec!["audit-logs".to_owned(), "sso".to_owned()])
    );
    assert_eq!(data.organization_id.as_deref(), Some(acme.id.as_str()));
    assert_eq!(data.authentication_method.as_deref(), Some("Password"));
    assert_eq!(data.user["id"], user_id.as_str());
    assert_eq!(data.user["email"], "cookie@example.com");
    assert!(
        data.user.get("emailVerified").is_some(),
        "camelCase user: {}",
        data.user
    );
    assert_eq!(
        RefreshToken::parse(&data.refresh_token).unwrap().generation,
        1
    );

    let repeat = call_with_cookies(
        &harness,
        "/api/entitlements",
        &[&format!("wos-session={sealed}")],
    )
    .await;
    assert_eq!(
        repeat.status,
        StatusCode::OK,
        "the first cookie within the grace window: {:?}",
        repeat.body
    );
    let repeated: SessionCookieData =
        serde_json::from_value(cookie::unseal(COOKIE_PASSWORD, &sealed_from(&repeat)).unwrap())
            .unwrap();
    assert_eq!(
        repeated.refresh_token, data.refresh_token,
        "a concurrent tab gets the same pair"
    );
    assert_eq!(
        repeated.access_token, data.access_token,
        "a concurrent tab gets the same pair"
    );

    let again = call_with_cookies(
        &harness,
        "/api/entitlements",
        &[&format!("wos-session={renewed}")],
    )
    .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the renewed cookie refreshes again: {:?}",
        again.body
    );
}

#[tokio::test]
async fn unscoped_cookie_has_null_entitlements() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("plain@example.com").await;
    let login = harness.sign_in("plain@example.com").await.body;
    let sealed = seal_like_sdk(&login, COOKIE_PASSWORD);
    let reply = call_with_cookies(
        &harness,
        "/api/entitlements",
        &[&format!("wos-session={sealed}")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({ "entitlements": null }));
}

#[tokio::test]
async fn bad_cookies_get_401() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("bad@example.com").await;
    let login = harness.sign_in("bad@example.com").await.body;
    let sealed = seal_like_sdk(&login, COOKIE_PASSWORD);

    let none = call_with_cookies(&harness, "/api/entitlements", &[]).await;
    assert_code(
        &none,
        StatusCode::UNAUTHORIZED,
        "no_session_cookie_provided",
        "no cookie",
    );
    let other_cookie = call_with_cookies(&harness, "/api/entitlements", &["theme=dark"]).await;
    assert_code(
        &other_cookie,
        StatusCode::UNAUTHORIZED,
        "no_session_cookie_provided",
        "other cookie",
    );

    let mut tampered = sealed.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let wrong_password = seal_like_sdk(&login, "another-password-that-is-32-characters-long");
    let without_refresh_token =
        cookie::seal(COOKIE_PASSWORD, &json!({ "accessToken": "x", "user": {} })).unwrap();
    let not_an_object = cookie::seal(COOKIE_PASSWORD, &json!("text")).unwrap();
    let cases = [
        tampered,
        wrong_password,
        without_refresh_token,
        not_an_object,
        "Fe26.2*1*abc".to_owned(),
        "garbage".to_owned(),
        sealed[..sealed.len() - 5].to_owned(),
        "🦀".repeat(40),
    ];
    for (index, value) in cases.iter().enumerate() {
        let reply = call_with_cookies(
            &harness,
            "/api/entitlements",
            &[&format!("wos-session={value}")],
        )
        .await;
        assert_code(
            &reply,
            StatusCode::UNAUTHORIZED,
            "invalid_session_cookie",
            &format!("case {index}"),
        );
        assert!(reply.headers.get("set-cookie").is_none(), "case {index}");
    }

    let junk_first = call_with_cookies(
        &harness,
        "/api/entitlements",
        &["wos-session=garbage", &format!("a=b; wos-session={sealed}")],
    )
    .await;
    assert_eq!(
        junk_first.status,
        StatusCode::OK,
        "the cookie that unseals is used: {:?}",
        junk_first.body
    );
}

#[tokio::test]
async fn ended_session_cookie_gets_invalid_grant() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("ended@example.com").await;
    let login = harness.sign_in("ended@example.com").await.body;
    let sealed = seal_like_sdk(&login, COOKIE_PASSWORD);
    let session_id = verify(
        login["access_token"].as_str().unwrap(),
        &harness.jwks().await,
    )
    .unwrap()
    .sid;
    let revoked = harness
        .post(
            "/user_management/sessions/revoke",
            json!({ "session_id": session_id }),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let reply = call_with_cookies(
        &harness,
        "/api/entitlements",
        &[&format!("wos-session={sealed}")],
    )
    .await;
    assert_code(
        &reply,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
        "revoked session",
    );
}

#[tokio::test]
async fn api_gateway_v2_cookies_reach_route() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("lambda@example.com").await;
    let login = harness.sign_in("lambda@example.com").await.body;
    let sealed = seal_like_sdk(&login, COOKIE_PASSWORD);
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /api/entitlements",
        "rawPath": "/api/entitlements",
        "rawQueryString": "",
        "cookies": ["theme=dark", format!("wos-session={sealed}")],
        "headers": { "host": "example.execute-api.us-east-1.amazonaws.com" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "example",
            "domainName": "example.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "example",
            "http": {
                "method": "GET",
                "path": "/api/entitlements",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test"
            },
            "requestId": "request-1",
            "routeKey": "GET /api/entitlements",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000u64
        },
        "isBase64Encoded": false
    });
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("a valid HTTP API event");
    let request = request.map(|body| Body::from(body.to_vec()));
    let reply = harness.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(
        reply.headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("wos-session=Fe26.2*")
    );
}

fn config_with(values: &[(&str, &str)]) -> Config {
    let values: HashMap<String, String> = values
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    Config::from_lookup(|name| values.get(name).cloned()).unwrap()
}

#[tokio::test]
async fn entitlements_path_is_configurable() {
    let store = Arc::new(EmbeddedStore::in_memory());
    let config = config_with(&[
        ("KEY_ENCRYPTION_KEY", common::KEK),
        ("COOKIE_PASSWORD", COOKIE_PASSWORD),
        ("ENTITLEMENTS_PATH", "/session/entitlements"),
    ]);
    let router = sessions::try_router(AppState::new(store, config)).expect("router builds");
    let response = router
        .oneshot(
            Request::get("/session/entitlements")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the route answers at the configured path"
    );
}

#[tokio::test]
async fn router_needs_key_encryption_key() {
    let store = Arc::new(EmbeddedStore::in_memory());
    let error = sessions::try_router(AppState::new(store.clone(), config_with(&[]))).unwrap_err();
    assert!(error.to_string().contains("KEY_ENCRYPTION_KEY"), "{error}");
    let error = sessions::try_router(AppState::new(
        store.clone(),
        config_with(&[("KEY_ENCRYPTION_KEY", "short")]),
    ))
    .unwrap_err();
    assert!(error.to_string().contains("KEY_ENCRYPTION_KEY"), "{error}");
    let bad_path = config_with(&[
        ("KEY_ENCRYPTION_KEY", common::KEK),
        ("ENTITLEMENTS_PATH", "/x/{id}"),
    ]);
    let error = sessions::try_router(AppState::new(store.clone(), bad_path)).unwrap_err();
    assert!(error.to_string().contains("ENTITLEMENTS_PATH"), "{error}");

    let router =
        shared::http::with_common_layers(sessions::router(AppState::new(store, config_with(&[]))));
    let response = router
        .oneshot(
            Request::get("/sso/jwks/client_01JD3YF4QX6W2N8V0Z5K7M9PAB")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()["content-type"], "application/json");
}
