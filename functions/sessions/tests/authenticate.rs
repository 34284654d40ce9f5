//! Router tests of `POST /user_management/authenticate` with the password and
//! organization-selection grants, the client check, and malformed requests.

mod common;

use axum::body::Body;
use common::{Harness, Options, PASSWORD, assert_code, assert_oauth, embedded, verify};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use shared::ids;

const AUTHENTICATE: &str = "/user_management/authenticate";

fn password_body(harness: &Harness, email: &str, password: &str) -> Value {
    json!({
        "grant_type": "password",
        "client_id": harness.environment_id,
        "client_secret": harness.api_key,
        "email": email,
        "password": password,
    })
}

#[tokio::test]
async fn password_grant_without_membership_is_unscoped() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("solo@example.com").await;
    let reply = harness.sign_in("SOLO@example.com").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/json");
    let body = &reply.body;
    assert_eq!(body["user"]["id"], user_id.as_str());
    assert_eq!(body["user"]["object"], "user");
    assert!(body["user"]["last_sign_in_at"].is_string());
    assert_eq!(body["authentication_method"], "Password");
    assert!(body.get("organization_id").is_none());
    assert!(body["refresh_token"].as_str().unwrap().split('.').count() == 5);

    let claims = verify(
        body["access_token"].as_str().unwrap(),
        &harness.jwks().await,
    )
    .expect("token verifies");
    assert_eq!(claims.sub, user_id);
    assert_eq!(claims.iss, "https://auth.example.test");
    assert!(ids::is_id(&claims.sid, "session"));
    assert!(!claims.jti.is_empty());
    assert_eq!(claims.exp - claims.iat, 300);
    assert!(claims.auth_time <= claims.iat);
    assert_eq!(claims.org_id, None);
    assert_eq!(claims.role, None);
    assert_eq!(claims.entitlements, None);

    let stored = harness
        .get(&format!("/user_management/users/{user_id}"))
        .await;
    assert!(
        stored.body["last_sign_in_at"].is_string(),
        "sign-in time is recorded"
    );
}

#[tokio::test]
async fn password_grant_with_one_membership_is_scoped() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("one@example.com").await;
    let acme = harness.create_organization("Acme").await;
    harness.add_membership(&user_id, &acme.id).await;
    harness
        .set_entitlements(&acme.id, Some(&["sso", "audit-logs"]))
        .await;

    let reply = harness.sign_in("one@example.com").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["organization_id"], acme.id.as_str());
    let claims = verify(
        reply.body["access_token"].as_str().unwrap(),
        &harness.jwks().await,
    )
    .unwrap();
    assert_eq!(claims.org_id.as_deref(), Some(acme.id.as_str()));
    assert_eq!(claims.role.as_deref(), Some("member"));
    assert_eq!(claims.roles, Some(vec!["member".to_owned()]));
    assert_eq!(claims.permissions, Some(Vec::new()));
    assert_eq!(
        claims.entitlements,
        Some(vec!["audit-logs".to_owned(), "sso".to_owned()])
    );
}

#[tokio::test]
async fn password_grant_rejects_wrong_credentials() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("right@example.com").await;
    let user_without_password = harness
        .post(
            "/user_management/users",
            json!({ "email": "nopass@example.com" }),
        )
        .await;
    assert_eq!(user_without_password.status, StatusCode::CREATED);
    for (email, password) in [
        ("right@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("nopass@example.com", PASSWORD),
    ] {
        let reply = harness
            .post(AUTHENTICATE, password_body(&harness, email, password))
            .await;
        assert_code(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            email,
        );
        assert_eq!(
            reply.body["message"],
            format!("Invalid credentials for '{email}'.")
        );
    }
}

#[tokio::test]
async fn organization_selection_flow() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("many@example.com").await;
    let acme = harness.create_organization("Acme").await;
    let globex = harness.create_organization("Globex").await;
    let other = harness.create_organization("Other").await;
    harness.add_membership(&user_id, &acme.id).await;
    harness.add_membership(&user_id, &globex.id).await;

    let reply = harness.sign_in("many@example.com").await;
    assert_code(
        &reply,
        StatusCode::FORBIDDEN,
        "organization_selection_required",
        "two memberships",
    );
    let pending = reply.body["pending_authentication_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pending.len() >= 43);
    let mut organizations = reply.body["organizations"].as_array().unwrap().clone();
    organizations.sort_by_key(|organization| organization["name"].as_str().unwrap().to_owned());
    assert_eq!(
        organizations,
        vec![
            json!({ "id": acme.id, "name": "Acme" }),
            json!({ "id": globex.id, "name": "Globex" })
        ]
    );
    assert_eq!(reply.body["user"]["id"], user_id.as_str());

    let select = |organization_id: &str| {
        json!({
            "grant_type": "urn:workos:oauth:grant-type:organization-selection",
            "client_id": harness.environment_id,
            "client_secret": harness.api_key,
            "pending_authentication_token": pending,
            "organization_id": organization_id,
        })
    };
    let not_member = harness.post(AUTHENTICATE, select(&other.id)).await;
    assert_code(
        &not_member,
        StatusCode::BAD_REQUEST,
        "organization_membership_not_found",
        "not a member",
    );
    let unknown = harness
        .post(AUTHENTICATE, select(&ids::new_id("org")))
        .await;
    assert_code(
        &unknown,
        StatusCode::NOT_FOUND,
        "entity_not_found",
        "unknown organization",
    );

    let chosen = harness.post(AUTHENTICATE, select(&globex.id)).await;
    assert_eq!(chosen.status, StatusCode::OK, "{:?}", chosen.body);
    assert_eq!(chosen.body["organization_id"], globex.id.as_str());
    assert_eq!(chosen.body["authentication_method"], "Password");
    let claims = verify(
        chosen.body["access_token"].as_str().unwrap(),
        &harness.jwks().await,
    )
    .unwrap();
    assert_eq!(claims.org_id.as_deref(), Some(globex.id.as_str()));

    let reused = harness.post(AUTHENTICATE, select(&acme.id)).await;
    assert_code(
        &reused,
        StatusCode::BAD_REQUEST,
        "invalid_pending_authentication_token",
        "token reused",
    );
}

#[tokio::test]
async fn client_checks() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("client@example.com").await;
    let (other_environment, other_key) =
        common::environment(harness.state.store.as_ref(), false).await;

    let mut body = password_body(&harness, "client@example.com", PASSWORD);
    body["client_id"] = json!(other_environment.id);
    assert_oauth(
        &harness.post(AUTHENTICATE, body).await,
        StatusCode::BAD_REQUEST,
        "invalid_client",
        "other client",
    );

    let mut body = password_body(&harness, "client@example.com", PASSWORD);
    body["client_id"] = json!("client_123");
    assert_oauth(
        &harness.post(AUTHENTICATE, body).await,
        StatusCode::BAD_REQUEST,
        "invalid_client",
        "malformed",
    );

    let mut body = password_body(&harness, "client@example.com", PASSWORD);
    body.as_object_mut().unwrap().remove("client_id");
    assert_oauth(
        &harness.post(AUTHENTICATE, body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "no client",
    );

    let mut body = password_body(&harness, "client@example.com", PASSWORD);
    body["client_secret"] = json!(other_key);
    assert_oauth(
        &harness.post(AUTHENTICATE, body).await,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "two keys",
    );

    let without_header = harness
        .send(
            Request::post(AUTHENTICATE)
                .header("content-type", "application/json")
                .body(Body::from(
                    password_body(&harness, "client@example.com", PASSWORD).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(
        without_header.status,
        StatusCode::OK,
        "client_secret alone: {:?}",
        without_header.body
    );

    let mut body = password_body(&harness, "client@example.com", PASSWORD);
    body.as_object_mut().unwrap().remove("client_secret");
    let no_key = harness
        .send(
            Request::post(AUTHENTICATE)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);

    let mut body = password_body(&harness, "client@example.com", PASSWORD);
    body["client_secret"] = json!("sk_test_unknown");
    let unknown_key = harness
        .send(
            Request::post(AUTHENTICATE)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(unknown_key.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn malformed_requests_get_oauth_errors() {
    let harness = embedded(&Options::default()).await;
    let base = password_body(&harness, "a@example.com", PASSWORD);
    let without = |field: &str| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (without("grant_type"), "invalid_request"),
        (without("email"), "invalid_request"),
        (without("password"), "invalid_request"),
        (json!({ "grant_type": 1 }), "invalid_request"),
        (
            json!({ "grant_type": "authorization_code", "client_id": harness.environment_id }),
            "unsupported_grant_type",
        ),
        (
            json!({ "grant_type": "refresh_token", "client_id": harness.environment_id }),
            "invalid_request",
        ),
        (
            json!({ "grant_type": "urn:workos:oauth:grant-type:organization-selection", "client_id": harness.environment_id }),
            "invalid_request",
        ),
        (json!([1, 2]), "invalid_request"),
    ];
    for (body, error) in cases {
        let reply = harness.post(AUTHENTICATE, body.clone()).await;
        assert_oauth(&reply, StatusCode::BAD_REQUEST, error, &body.to_string());
    }
    for raw in ["", "{", "not json", "\u{0}"] {
        let reply = harness
            .send(
                Request::post(AUTHENTICATE)
                    .header("authorization", format!("Bearer {}", harness.api_key))
                    .header("content-type", "application/json")
                    .body(Body::from(raw))
                    .unwrap(),
            )
            .await;
        assert_oauth(&reply, StatusCode::BAD_REQUEST, "invalid_request", raw);
    }
    let oversized = harness
        .post(
            AUTHENTICATE,
            json!({ "grant_type": "password", "pad": "x".repeat(70_000) }),
        )
        .await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(oversized.body["message"].is_string());
}

#[tokio::test]
async fn form_encoded_password_grant() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("form@example.com").await;
    let body = format!(
        "grant_type=password&client_id={}&client_secret={}&email=form%40example.com&password={}",
        harness.environment_id,
        harness.api_key,
        PASSWORD.replace(' ', "+"),
    );
    let reply = harness
        .send(
            Request::post(AUTHENTICATE)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
}

#[tokio::test]
async fn sign_in_retry_replays_same_session() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("retry@example.com").await;
    let body = password_body(&harness, "retry@example.com", PASSWORD);
    let key = [("idempotency-key", "retry-5b0c")];
    let first = harness.post_with(AUTHENTICATE, body.clone(), &key).await;
    let second = harness.post_with(AUTHENTICATE, body, &key).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["refresh_token"], first.body["refresh_token"]);
    assert_eq!(second.body["access_token"], first.body["access_token"]);
    assert_eq!(second.headers["idempotent-replayed"], "true");
}
