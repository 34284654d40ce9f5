//! Router tests of `/user_management/users` and `/user_management/organization_memberships`.

mod common;

use common::{Options, assert_code, embedded};
use http::StatusCode;
use serde_json::json;
use shared::ids;

#[tokio::test]
async fn user_create_and_get() {
    let harness = embedded(&Options::default()).await;
    let created = harness
        .post(
            "/user_management/users",
            json!({
                "email": "Grace@Example.com",
                "password": "a long password",
                "first_name": "Grace",
                "last_name": "Hopper",
                "email_verified": true,
                "metadata": { "team": "navy" },
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let user = &created.body;
    assert_eq!(user["object"], "user");
    assert!(ids::is_id(user["id"].as_str().unwrap(), "user"));
    assert_eq!(user["email"], "Grace@Example.com");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["first_name"], "Grace");
    assert_eq!(user["last_name"], "Hopper");
    assert_eq!(user["metadata"], json!({ "team": "navy" }));
    assert_eq!(user["last_sign_in_at"], json!(null));
    assert_eq!(user["profile_picture_url"], json!(null));
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password_hash").is_none());
    assert!(!created.body.to_string().contains("argon2"));

    let fetched = harness
        .get(&format!(
            "/user_management/users/{}",
            user["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(&fetched.body, user);
}

#[tokio::test]
async fn user_email_unique_case_insensitively() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("dup@example.com").await;
    let duplicate = harness
        .post(
            "/user_management/users",
            json!({ "email": "DUP@example.com", "password": "a long password" }),
        )
        .await;
    assert_code(
        &duplicate,
        StatusCode::BAD_REQUEST,
        "user_creation_error",
        "duplicate email",
    );
    assert_eq!(duplicate.body["errors"][0]["code"], "email_not_available");
    assert_eq!(duplicate.body["errors"][0]["field"], "email");
}

#[tokio::test]
async fn user_input_errors_name_the_field() {
    let harness = embedded(&Options::default()).await;
    let cases = [
        (json!({}), "email"),
        (json!({ "email": 5 }), "email"),
        (json!({ "email": "not-an-address" }), "email"),
        (
            json!({ "email": "a@example.com", "password": "short" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password_hash": "x", "password_hash_type": "bcrypt" }),
            "password_hash_type",
        ),
        (
            json!({ "email": "a@example.com", "metadata": { "k": 1 } }),
            "metadata.k",
        ),
        (
            json!({ "email": "a@example.com", "first_name": "x".repeat(300) }),
            "first_name",
        ),
    ];
    for (body, field) in cases {
        let reply = harness.post("/user_management/users", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["errors"][0]["field"], field, "{body}");
    }
    let malformed = harness
        .send(
            http::Request::post("/user_management/users")
                .header("authorization", format!("Bearer {}", harness.api_key))
                .body(axum::body::Body::from("{\"email\":"))
                .unwrap(),
        )
        .await;
    assert_code(
        &malformed,
        StatusCode::BAD_REQUEST,
        "invalid_json",
        "truncated JSON",
    );
    let oversized = harness
        .post(
            "/user_management/users",
            json!({ "email": "a@example.com", "pad": "x".repeat(70_000) }),
        )
        .await;
    assert_code(
        &oversized,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "oversized body",
    );
}

#[tokio::test]
async fn user_not_found_and_delete() {
    let harness = embedded(&Options::default()).await;
    for id in [
        ids::new_id("user"),
        "user_123".to_owned(),
        "org_01JD3YF4QX6W2N8V0Z5K7M9PAB".to_owned(),
    ] {
        let reply = harness.get(&format!("/user_management/users/{id}")).await;
        assert_code(&reply, StatusCode::NOT_FOUND, "entity_not_found", &id);
    }
    let id = harness.create_user("gone@example.com").await;
    assert_eq!(
        harness
            .delete(&format!("/user_management/users/{id}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_code(
        &harness.get(&format!("/user_management/users/{id}")).await,
        StatusCode::NOT_FOUND,
        "entity_not_found",
        "deleted user",
    );
    assert_code(
        &harness
            .delete(&format!("/user_management/users/{id}"))
            .await,
        StatusCode::NOT_FOUND,
        "entity_not_found",
        "second delete",
    );
}

#[tokio::test]
async fn users_need_an_api_key_of_their_environment() {
    let harness = embedded(&Options::default()).await;
    let id = harness.create_user("scoped@example.com").await;
    let no_key = harness
        .send(
            http::Request::get(format!("/user_management/users/{id}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);

    let (_, other_key) = common::environment(harness.state.store.as_ref(), false).await;
    let other = harness
        .send(
            http::Request::get(format!("/user_management/users/{id}"))
                .header("authorization", format!("Bearer {other_key}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_code(
        &other,
        StatusCode::NOT_FOUND,
        "entity_not_found",
        "user of another environment",
    );
}

#[tokio::test]
async fn idempotency_key_replays_create() {
    let harness = embedded(&Options::default()).await;
    let body = json!({ "email": "once@example.com", "password": "a long password" });
    let first = harness
        .post_with(
            "/user_management/users",
            body.clone(),
            &[("idempotency-key", "retry-create-1")],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let second = harness
        .post_with(
            "/user_management/users",
            body.clone(),
            &[("idempotency-key", "retry-create-1")],
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.body, first.body);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(second.headers["content-type"], "application/json");

    let changed = harness
        .post_with(
            "/user_management/users",
            json!({ "email": "other@example.com", "password": "a long password" }),
            &[("idempotency-key", "retry-create-1")],
        )
        .await;
    assert_eq!(
        changed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        changed.body
    );
    assert_eq!(changed.body["errors"][0]["code"], "idempotency_key_reused");

    let error_first = harness
        .post_with(
            "/user_management/users",
            body.clone(),
            &[("idempotency-key", "retry-create-2")],
        )
        .await;
    assert_code(
        &error_first,
        StatusCode::BAD_REQUEST,
        "user_creation_error",
        "duplicate under a new key",
    );
    let error_again = harness
        .post_with(
            "/user_management/users",
            body,
            &[("idempotency-key", "retry-create-2")],
        )
        .await;
    assert_eq!(error_again.body, error_first.body, "a 4xx is replayed too");
    assert_eq!(error_again.headers["idempotent-replayed"], "true");

    let bad_key = harness
        .post_with(
            "/user_management/users",
            json!({ "email": "x@example.com" }),
            &[("idempotency-key", " ")],
        )
        .await;
    assert_code(
        &bad_key,
        StatusCode::BAD_REQUEST,
        "idempotency_key_invalid",
        "blank key",
    );
}

#[tokio::test]
async fn membership_lifecycle() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("member@example.com").await;
    let acme = harness.create_organization("Acme").await;

    let created = harness
        .post(
            "/user_management/organization_memberships",
            json!({ "user_id": user_id, "organization_id": acme.id }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let membership = &created.body;
    assert_eq!(membership["object"], "organization_membership");
    assert!(ids::is_id(membership["id"].as_str().unwrap(), "om"));
    assert_eq!(membership["user_id"], user_id.as_str());
    assert_eq!(membership["organization_id"], acme.id.as_str());
    assert_eq!(membership["organization_name"], "Acme");
    assert_eq!(membership["role"], json!({ "slug": "member" }));
    assert_eq!(membership["roles"], json!([{ "slug": "member" }]));
    assert_eq!(membership["status"], "active");
    assert!(membership["created_at"].is_string());
    assert!(membership["updated_at"].is_string());

    let id = membership["id"].as_str().unwrap();
    let fetched = harness
        .get(&format!("/user_management/organization_memberships/{id}"))
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(&fetched.body, membership);

    let duplicate = harness
        .post(
            "/user_management/organization_memberships",
            json!({ "user_id": user_id, "organization_id": acme.id, "role_slug": "admin" }),
        )
        .await;
    assert_code(
        &duplicate,
        StatusCode::CONFLICT,
        "organization_membership_already_exists",
        "duplicate",
    );

    let path = format!("/user_management/organization_memberships/{id}");
    assert_eq!(harness.delete(&path).await.status, StatusCode::NO_CONTENT);
    assert_code(
        &harness.delete(&path).await,
        StatusCode::NOT_FOUND,
        "entity_not_found",
        "second delete",
    );
    assert_code(
        &harness.get(&path).await,
        StatusCode::NOT_FOUND,
        "entity_not_found",
        "deleted membership",
    );

    let admin = harness
        .post(
            "/user_management/organization_memberships",
            json!({ "user_id": user_id, "organization_id": acme.id, "role_slug": "admin" }),
        )
        .await;
    assert_eq!(admin.status, StatusCode::CREATED);
    assert_eq!(admin.body["role"], json!({ "slug": "admin" }));
}

#[tokio::test]
async fn membership_needs_user_and_organization() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("lonely@example.com").await;
    let acme = harness.create_organization("Acme").await;
    let cases = [
        (
            json!({ "user_id": ids::new_id("user"), "organization_id": acme.id }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "user_id": "user_bad", "organization_id": acme.id }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "user_id": user_id, "organization_id": ids::new_id("org") }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "user_id": user_id }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "user_id": user_id, "organization_id": acme.id, "role_slug": "Not A Slug" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "user_id": user_id, "organization_id": acme.id, "role_slug": "a", "role_slugs": ["b"] }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in cases {
        let reply = harness
            .post("/user_management/organization_memberships", body.clone())
            .await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
        assert!(reply.body["message"].is_string(), "{body}");
    }
}
