//! Router tests of `GET /sso/jwks/{client_id}` and of signing-key rotation as tokens see it.

mod common;

use std::time::Duration;

use axum::body::Body;
use chrono::Utc;
use common::{Options, assert_code, embedded, kek, verify};
use http::{Request, StatusCode};
use shared::sessions::signing_keys::{self, SigningKeyError};
use shared::tokens::SigningKeyStatus;

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn jwks_lists_public_keys_without_auth() {
    let harness = embedded(&Options::default()).await;
    let reply = harness
        .send(
            Request::get(format!("/sso/jwks/{}", harness.environment_id))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let keys = reply.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut members: Vec<&str> = key.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(!reply.body.to_string().contains("encrypted"));
}

#[tokio::test]
async fn jwks_unknown_client_is_404() {
    let harness = embedded(&Options::default()).await;
    for client_id in [
        shared::ids::new_id("client"),
        "client_123".to_owned(),
        "org_01JD3YF4QX6W2N8V0Z5K7M9PAB".to_owned(),
        "%F0%9F%A6%80".to_owned(),
    ] {
        let reply = harness.get(&format!("/sso/jwks/{client_id}")).await;
        assert_code(
            &reply,
            StatusCode::NOT_FOUND,
            "entity_not_found",
            &client_id,
        );
    }
}

#[tokio::test]
async fn token_fails_against_other_environment() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("isolated@example.com").await;
    let login = harness.sign_in("isolated@example.com").await.body;
    let token = login["access_token"].as_str().unwrap();
    assert!(verify(token, &harness.jwks().await).is_ok());

    let (other, _) = common::environment(harness.state.store.as_ref(), false).await;
    let other_jwks = harness.get(&format!("/sso/jwks/{}", other.id)).await.body;
    assert_eq!(other_jwks["keys"].as_array().unwrap().len(), 1);
    let error = verify(token, &other_jwks).unwrap_err();
    assert!(error.contains("no key"), "{error}");

    // Even under the other environment's kid, the signature does not verify.
    let mut forged_set = other_jwks.clone();
    forged_set["keys"][0]["kid"] = serde_json::json!(kid_of(token));
    assert!(verify(token, &forged_set).is_err());
}

#[tokio::test]
async fn key_rotation_as_tokens_see_it() {
    let harness = embedded(&Options::default()).await;
    harness.create_user("rotation@example.com").await;
    let store = harness.state.store.as_ref();
    let environment_id = harness.environment_id.clone();
    let before = harness.sign_in("rotation@example.com").await.body;
    let old_token = before["access_token"].as_str().unwrap().to_owned();
    let old_kid = kid_of(&old_token);

    let added = signing_keys::add(store, &kek(), &environment_id)
        .await
        .unwrap();
    assert_eq!(added.status, SigningKeyStatus::Next);
    let jwks = harness.jwks().await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "a Next key is published"
    );
    let still_old = harness.sign_in("rotation@example.com").await.body;
    assert_eq!(
        kid_of(still_old["access_token"].as_str().unwrap()),
        old_kid,
        "a Next key does not sign"
    );
    assert!(matches!(
        signing_keys::add(store, &kek(), &environment_id).await,
        Err(SigningKeyError::NextKeyExists(_))
    ));

    assert!(matches!(
        signing_keys::promote(store, &environment_id, false, Utc::now()).await,
        Err(SigningKeyError::TooRecent { .. })
    ));
    let later = Utc::now() + chrono::Duration::from_std(signing_keys::JWKS_CACHE).unwrap();
    let promotion = signing_keys::promote(store, &environment_id, false, later)
        .await
        .unwrap();
    assert_eq!(promotion.active.kid, added.kid);
    assert_eq!(
        promotion.previous.as_ref().map(|key| key.kid.as_str()),
        Some(old_kid.as_str())
    );

    let after = harness.sign_in("rotation@example.com").await.body;
    let new_token = after["access_token"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&new_token), added.kid, "the promoted key signs");
    let jwks = harness.jwks().await;
    assert!(
        verify(&old_token, &jwks).is_ok(),
        "a Previous key still verifies"
    );
    assert!(verify(&new_token, &jwks).is_ok());

    let ttl = Duration::from_secs(300);
    assert!(matches!(
        signing_keys::retire(store, &environment_id, &added.kid, ttl, true, Utc::now()).await,
        Err(SigningKeyError::ActiveKey(_))
    ));
    assert!(matches!(
        signing_keys::retire(store, &environment_id, &old_kid, ttl, false, later).await,
        Err(SigningKeyError::TooRecent { .. })
    ));
    let expired = later + chrono::Duration::seconds(300);
    signing_keys::retire(store, &environment_id, &old_kid, ttl, false, expired)
        .await
        .unwrap();
    let jwks = harness.jwks().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(
        verify(&old_token, &jwks).is_err(),
        "a retired key no longer verifies"
    );
    assert!(verify(&new_token, &jwks).is_ok());
    assert!(matches!(
        signing_keys::promote(store, &environment_id, true, Utc::now()).await,
        Err(SigningKeyError::NoNextKey)
    ));
    assert!(matches!(
        signing_keys::retire(store, &environment_id, "key_unknown", ttl, true, Utc::now()).await,
        Err(SigningKeyError::KeyNotFound(_))
    ));

    let unused = signing_keys::add(store, &kek(), &environment_id)
        .await
        .unwrap();
    signing_keys::retire(store, &environment_id, &unused.kid, ttl, false, Utc::now())
        .await
        .expect("a Next key that never signed may go at once");
}
