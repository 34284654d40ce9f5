//! Router tests of the refresh grant: rotation, the grace window, reuse detection, organization
//! switching, ended sessions, malformed tokens and the `entitlements` claim.

mod common;

use std::time::Duration;

use common::{Harness, Options, PASSWORD, all, assert_oauth, embedded, verify};
use http::StatusCode;
use serde_json::json;
use shared::ids;
use shared::sessions::refresh_token::RefreshToken;

/// A user with a session scoped to a new organization; returns (user, organization, sign-in).
async fn signed_in(harness: &Harness, email: &str) -> (String, String, serde_json::Value) {
    let user_id = harness.create_user(email).await;
    let organization = harness.create_organization("Acme").await;
    harness.add_membership(&user_id, &organization.id).await;
    let reply = harness.sign_in(email).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}: {:?}",
        harness.name,
        reply.body
    );
    (user_id, organization.id, reply.body)
}

fn token(body: &serde_json::Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {body}"))
        .to_owned()
}

#[tokio::test]
async fn refresh_rotates_within_session() {
    let harness = embedded(&Options::default()).await;
    let (user_id, organization_id, login) = signed_in(&harness, "rotate@example.com").await;
    let jwks = harness.jwks().await;
    let first = verify(&token(&login, "access_token"), &jwks).unwrap();

    let reply = harness
        .refresh(&token(&login, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["user"]["id"], user_id.as_str());
    assert_eq!(reply.body["organization_id"], organization_id.as_str());
    assert_eq!(reply.body["authentication_method"], "Password");
    assert_ne!(reply.body["refresh_token"], login["refresh_token"]);
    let second = verify(&token(&reply.body, "access_token"), &jwks).unwrap();
    assert_eq!(second.sid, first.sid);
    assert_eq!(second.sub, first.sub);
    assert_eq!(second.auth_time, first.auth_time);
    assert_ne!(second.jti, first.jti);
    assert_eq!(second.org_id.as_deref(), Some(organization_id.as_str()));
    let next = RefreshToken::parse(&token(&reply.body, "refresh_token")).unwrap();
    assert_eq!(next.generation, 1);
    assert_eq!(next.session_id, first.sid);

    let unnamed = harness
        .refresh(&token(&reply.body, "refresh_token"), None)
        .await;
    assert_eq!(unnamed.status, StatusCode::OK, "{:?}", unnamed.body);
    assert_eq!(
        unnamed.body["organization_id"],
        organization_id.as_str(),
        "the session keeps its organization"
    );
}

#[tokio::test]
async fn repeat_within_grace_returns_same_pair() {
    let harness = embedded(&Options::default()).await;
    let (_, organization_id, login) = signed_in(&harness, "repeat@example.com").await;
    let refresh_token = token(&login, "refresh_token");
    let first = harness
        .refresh(&refresh_token, Some(&organization_id))
        .await;
    let second = harness
        .refresh(&refresh_token, Some(&organization_id))
        .await;
    let third = harness.refresh(&refresh_token, None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.body, first.body);
    assert_eq!(third.body, first.body);
    let next = harness
        .refresh(&token(&first.body, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(
        next.status,
        StatusCode::OK,
        "the replayed pair is the live one: {:?}",
        next.body
    );
}

#[tokio::test]
async fn reuse_after_grace_revokes_session() {
    let harness = embedded(&Options {
        grace_seconds: 1,
        ..Options::default()
    })
    .await;
    let (_, organization_id, login) = signed_in(&harness, "reuse@example.com").await;
    let used = token(&login, "refresh_token");
    let rotated = harness.refresh(&used, Some(&organization_id)).await;
    assert_eq!(rotated.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let reuse = harness.refresh(&used, Some(&organization_id)).await;
    assert_oauth(
        &reuse,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "reuse after the grace window",
    );
    let current = harness
        .refresh(
            &token(&rotated.body, "refresh_token"),
            Some(&organization_id),
        )
        .await;
    assert_oauth(
        &current,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "the session is revoked",
    );
}

#[tokio::test]
async fn older_token_after_grace_revokes_session() {
    let harness = embedded(&Options {
        grace_seconds: 1,
        ..Options::default()
    })
    .await;
    let (_, organization_id, login) = signed_in(&harness, "older@example.com").await;
    let oldest = token(&login, "refresh_token");
    let first = harness.refresh(&oldest, Some(&organization_id)).await;
    let second = harness
        .refresh(&token(&first.body, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(second.status, StatusCode::OK);

    let early = harness.refresh(&oldest, Some(&organization_id)).await;
    assert_oauth(
        &early,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "older token within the window",
    );
    let still_live = harness
        .refresh(
            &token(&second.body, "refresh_token"),
            Some(&organization_id),
        )
        .await;
    assert_eq!(
        still_live.status,
        StatusCode::OK,
        "within the window the session survives"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = harness.refresh(&oldest, Some(&organization_id)).await;
    assert_oauth(
        &late,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "older token after the window",
    );
    let revoked = harness
        .refresh(
            &token(&still_live.body, "refresh_token"),
            Some(&organization_id),
        )
        .await;
    assert_oauth(
        &revoked,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "revoked by the reuse",
    );
}

#[tokio::test]
async fn forged_token_does_not_revoke() {
    let harness = embedded(&Options {
        grace_seconds: 1,
        ..Options::default()
    })
    .await;
    let (_, organization_id, login) = signed_in(&harness, "forged@example.com").await;
    let real = RefreshToken::parse(&token(&login, "refresh_token")).unwrap();
    let forged =
        RefreshToken::first(&real.environment_id, &real.session_id, &real.user_id).encode();
    let mut later =
        RefreshToken::first(&real.environment_id, &real.session_id, &real.user_id).encode();
    later = later.replacen(".0.", ".7.", 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for candidate in [&forged, &later] {
        let reply = harness.refresh(candidate, Some(&organization_id)).await;
        assert_oauth(&reply, StatusCode::BAD_REQUEST, "invalid_grant", candidate);
    }
    let genuine = harness
        .refresh(&token(&login, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(
        genuine.status,
        StatusCode::OK,
        "forged tokens leave the session alone: {:?}",
        genuine.body
    );
}

#[tokio::test]
async fn same_idempotency_key_after_grace_revokes() {
    let harness = embedded(&Options {
        grace_seconds: 1,
        ..Options::default()
    })
    .await;
    let (_, organization_id, login) = signed_in(&harness, "retry@example.com").await;

    let refresh_token = token(&login, "refresh_token");
    let key = [("idempotency-key", "retry-8f14e45f")];
    let first = harness
        .refresh_with(&refresh_token, Some(&organization_id), &key)
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let within = harness
        .refresh_with(&refresh_token, Some(&organization_id), &key)
        .await;
    assert_eq!(within.body, first.body, "a retry within the window");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = harness
        .refresh_with(&refresh_token, Some(&organization_id), &key)
        .await;
    assert_oauth(
        &late,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "the same key after the window",
    );
    let successor = harness
        .refresh(&token(&first.body, "refresh_token"), Some(&organization_id))
        .await;
    assert_oauth(
        &successor,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "the session was revoked",
    );
}

#[tokio::test]
async fn repeat_naming_other_organization_refused() {
    let harness = embedded(&Options::default()).await;
    let (user_id, acme, login) = signed_in(&harness, "tabs-orgs@example.com").await;
    let globex = harness.create_organization("Globex").await;
    harness.add_membership(&user_id, &globex.id).await;
    let refresh_token = token(&login, "refresh_token");

    let first = harness.refresh(&refresh_token, Some(&acme)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let other = harness.refresh(&refresh_token, Some(&globex.id)).await;
    assert_oauth(
        &other,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "a repeat for another organization",
    );
    let same = harness.refresh(&refresh_token, Some(&acme)).await;
    assert_eq!(same.body, first.body, "a repeat for the same organization");

    let switched = harness
        .refresh(&token(&first.body, "refresh_token"), Some(&globex.id))
        .await;
    assert_eq!(switched.status, StatusCode::OK, "{:?}", switched.body);
    assert_eq!(switched.body["organization_id"], globex.id.as_str());
}

#[tokio::test]
async fn sign_in_replay_ends_with_grace() {
    let harness = embedded(&Options {
        grace_seconds: 4,
        ..Options::default()
    })
    .await;
    harness.create_user("replay@example.com").await;
    let body = json!({
        "grant_type": "password",
        "client_id": harness.environment_id,
        "client_secret": harness.api_key,
        "email": "replay@example.com",
        "password": PASSWORD,
    });
    let key = [("idempotency-key", "sign-in-1")];
    let first = harness
        .post_with("/user_management/authenticate", body.clone(), &key)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let replayed = harness
        .post_with("/user_management/authenticate", body.clone(), &key)
        .await;
    assert_eq!(replayed.body, first.body, "a replay within the window");
    assert_eq!(
        replayed
            .headers
            .get("idempotent-replayed")
            .map(|value| value.as_bytes()),
        Some(&b"true"[..])
    );

    // Records expire on whole seconds, and a debug-build password check takes about one.
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let later = harness
        .post_with("/user_management/authenticate", body, &key)
        .await;
    assert_eq!(later.status, StatusCode::OK, "{:?}", later.body);
    assert!(later.headers.get("idempotent-replayed").is_none());
    assert_ne!(
        token(&later.body, "refresh_token"),
        token(&first.body, "refresh_token"),
        "a new sign-in after the window"
    );
}

#[tokio::test]
async fn organization_switch_only_to_memberships() {
    let harness = embedded(&Options::default()).await;
    let (user_id, acme, login) = signed_in(&harness, "switch@example.com").await;
    let globex = harness.create_organization("Globex").await;
    harness.add_membership(&user_id, &globex.id).await;
    let stranger = harness.create_organization("Stranger").await;

    let refused = harness
        .refresh(&token(&login, "refresh_token"), Some(&stranger.id))
        .await;
    assert_oauth(
        &refused,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "not a member",
    );
    let unknown = harness
        .refresh(&token(&login, "refresh_token"), Some(&ids::new_id("org")))
        .await;
    assert_oauth(
        &unknown,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "unknown organization",
    );

    let switched = harness
        .refresh(&token(&login, "refresh_token"), Some(&globex.id))
        .await;
    assert_eq!(
        switched.status,
        StatusCode::OK,
        "a refused switch does not burn the token: {:?}",
        switched.body
    );
    assert_eq!(switched.body["organization_id"], globex.id.as_str());
    let claims = verify(
        &token(&switched.body, "access_token"),
        &harness.jwks().await,
    )
    .unwrap();
    assert_eq!(claims.org_id.as_deref(), Some(globex.id.as_str()));

    let remembered = harness
        .refresh(&token(&switched.body, "refresh_token"), None)
        .await;
    assert_eq!(
        remembered.body["organization_id"],
        globex.id.as_str(),
        "the last organization is kept"
    );
    let back = harness
        .refresh(&token(&remembered.body, "refresh_token"), Some(&acme))
        .await;
    assert_eq!(back.body["organization_id"], acme.as_str());

    let malformed = harness
        .refresh(&token(&back.body, "refresh_token"), Some("org_nope"))
        .await;
    assert_oauth(
        &malformed,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "malformed organization_id",
    );
}

#[tokio::test]
async fn removed_membership_and_deleted_user_end_refresh() {
    let harness = embedded(&Options::default()).await;
    let user_id = harness.create_user("removed@example.com").await;
    let acme = harness.create_organization("Acme").await;
    let membership_id = harness.add_membership(&user_id, &acme.id).await;
    let login = harness.sign_in("removed@example.com").await.body;
    let deleted = harness
        .delete(&format!(
            "/user_management/organization_memberships/{membership_id}"
        ))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let named = harness
        .refresh(&token(&login, "refresh_token"), Some(&acme.id))
        .await;
    assert_oauth(
        &named,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "membership removed, organization named",
    );
    let unnamed = harness.refresh(&token(&login, "refresh_token"), None).await;
    assert_oauth(
        &unnamed,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "membership removed, session organization",
    );

    let solo = harness.create_user("deleted@example.com").await;
    let solo_login = harness.sign_in("deleted@example.com").await.body;
    assert_eq!(
        harness
            .delete(&format!("/user_management/users/{solo}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gone = harness
        .refresh(&token(&solo_login, "refresh_token"), None)
        .await;
    assert_oauth(
        &gone,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "deleted user",
    );
}

#[tokio::test]
async fn revoked_session_cannot_refresh() {
    let harness = embedded(&Options::default()).await;
    let (_, organization_id, login) = signed_in(&harness, "revoke@example.com").await;
    let session_id = verify(&token(&login, "access_token"), &harness.jwks().await)
        .unwrap()
        .sid;
    let revoked = harness
        .post(
            "/user_management/sessions/revoke",
            json!({ "session_id": session_id }),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let again = harness
        .post(
            "/user_management/sessions/revoke",
            json!({ "session_id": session_id }),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::NO_CONTENT,
        "revoking twice succeeds"
    );
    let refresh = harness
        .refresh(&token(&login, "refresh_token"), Some(&organization_id))
        .await;
    assert_oauth(
        &refresh,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "revoked session",
    );

    for session_id in [ids::new_id("session"), "session_1".to_owned()] {
        let unknown = harness
            .post(
                "/user_management/sessions/revoke",
                json!({ "session_id": session_id }),
            )
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{session_id}");
        assert_eq!(unknown.body["code"], "entity_not_found");
    }
    let missing = harness
        .post("/user_management/sessions/revoke", json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["errors"][0]["field"], "session_id");
}

#[tokio::test]
async fn malformed_tokens_get_invalid_grant() {
    let harness = embedded(&Options::default()).await;
    let (_, organization_id, login) = signed_in(&harness, "malformed@example.com").await;
    let real = token(&login, "refresh_token");
    let other = embedded(&Options::default()).await;
    let (_, other_organization, other_login) = signed_in(&other, "elsewhere@example.com").await;

    let empty = harness.refresh("", Some(&organization_id)).await;
    assert_oauth(
        &empty,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "empty token",
    );
    let candidates = [
        "x".to_owned(),
        real[..real.len() - 1].to_owned(),
        real[..real.len() / 2].to_owned(),
        format!("{real}.extra"),
        real.replace('.', ""),
        format!("{real}A"),
        "🦀".repeat(50),
        "a".repeat(10_000),
        token(&other_login, "refresh_token"),
    ];

    for candidate in &candidates {
        let reply = harness.refresh(candidate, Some(&organization_id)).await;
        assert_oauth(
            &reply,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &candidate.chars().take(40).collect::<String>(),
        );
    }

    let cross = other.refresh(&real, Some(&other_organization)).await;
    assert_oauth(
        &cross,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "token of another environment",
    );
    let not_string = harness
        .post(
            "/user_management/authenticate",
            json!({ "grant_type": "refresh_token", "client_id": harness.environment_id, "refresh_token": 5 }),
        )
        .await;
    assert_oauth(
        &not_string,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "non-string token",
    );

    let fine = harness.refresh(&real, Some(&organization_id)).await;
    assert_eq!(
        fine.status,
        StatusCode::OK,
        "bad attempts leave the session alone"
    );
}

#[tokio::test]
async fn wrong_api_key_does_not_burn_token() {
    let harness = embedded(&Options::default()).await;
    let (_, organization_id, login) = signed_in(&harness, "key@example.com").await;
    let (_, other_key) = common::environment(harness.state.store.as_ref(), false).await;
    let body = json!({
        "grant_type": "refresh_token",
        "client_id": harness.environment_id,
        "refresh_token": token(&login, "refresh_token"),
        "organization_id": organization_id,
    });
    for key in [other_key.as_str(), "sk_test_unknown"] {
        let reply = harness
            .send(
                http::Request::post("/user_management/authenticate")
                    .header("authorization", format!("Bearer {key}"))
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body.to_string()))
                    .unwrap(),
            )
            .await;
        assert!(
            reply.status == StatusCode::UNAUTHORIZED || reply.status == StatusCode::BAD_REQUEST,
            "{key}"
        );
        assert!(reply.body.is_object(), "{key}: {:?}", reply.body);
    }
    let fine = harness
        .refresh(&token(&login, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(fine.status, StatusCode::OK, "{:?}", fine.body);
}

#[tokio::test]
async fn entitlements_read_at_every_issue() {
    let harness = embedded(&Options::default()).await;
    let (_, organization_id, login) = signed_in(&harness, "claims@example.com").await;
    let jwks = harness.jwks().await;
    assert_eq!(
        verify(&token(&login, "access_token"), &jwks)
            .unwrap()
            .entitlements,
        None
    );

    harness
        .set_entitlements(&organization_id, Some(&["sso"]))
        .await;
    let first = harness
        .refresh(&token(&login, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(
        verify(&token(&first.body, "access_token"), &jwks)
            .unwrap()
            .entitlements,
        Some(vec!["sso".to_owned()])
    );

    harness
        .set_entitlements(&organization_id, Some(&["seats", "audit-logs", "seats"]))
        .await;
    let second = harness
        .refresh(&token(&first.body, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(
        verify(&token(&second.body, "access_token"), &jwks)
            .unwrap()
            .entitlements,
        Some(vec!["audit-logs".to_owned(), "seats".to_owned()])
    );

    harness.set_entitlements(&organization_id, Some(&[])).await;
    let empty = harness
        .refresh(
            &token(&second.body, "refresh_token"),
            Some(&organization_id),
        )
        .await;
    assert_eq!(
        verify(&token(&empty.body, "access_token"), &jwks)
            .unwrap()
            .entitlements,
        Some(Vec::new())
    );

    harness.set_entitlements(&organization_id, None).await;
    let unlinked = harness
        .refresh(&token(&empty.body, "refresh_token"), Some(&organization_id))
        .await;
    assert_eq!(
        verify(&token(&unlinked.body, "access_token"), &jwks)
            .unwrap()
            .entitlements,
        None
    );
}

#[tokio::test]
async fn no_claim_without_stripe_connection() {
    let harness = embedded(&Options {
        connected: false,
        ..Options::default()
    })
    .await;
    let (_, organization_id, login) = signed_in(&harness, "unconnected@example.com").await;
    harness
        .set_entitlements(&organization_id, Some(&["sso"]))
        .await;
    let reply = harness
        .refresh(&token(&login, "refresh_token"), Some(&organization_id))
        .await;
    let claims = verify(&token(&reply.body, "access_token"), &harness.jwks().await).unwrap();
    assert_eq!(claims.entitlements, None);
}

#[tokio::test]
async fn concurrent_refreshes_share_one_pair() {
    for harness in all(&Options::default()).await {
        let (_, organization_id, login) = signed_in(&harness, "tabs@example.com").await;
        harness
            .set_entitlements(&organization_id, Some(&["sso"]))
            .await;
        let refresh_token = token(&login, "refresh_token");
        let requests = (0..8).map(|_| harness.refresh(&refresh_token, Some(&organization_id)));
        let replies = futures::future::join_all(requests).await;
        for reply in &replies {
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{}: {:?}",
                harness.name,
                reply.body
            );
            assert_eq!(
                reply.body, replies[0].body,
                "{}: every request gets the same pair",
                harness.name
            );
        }
        let claims = verify(
            &token(&replies[0].body, "access_token"),
            &harness.jwks().await,
        )
        .unwrap();
        assert_eq!(
            claims.entitlements,
            Some(vec!["sso".to_owned()]),
            "{}",
            harness.name
        );
        let next = harness
            .refresh(
                &token(&replies[0].body, "refresh_token"),
                Some(&organization_id),
            )
            .await;
        assert_eq!(
            next.status,
            StatusCode::OK,
            "{}: the session survives: {:?}",
            harness.name,
            next.body
        );
    }
}

#[tokio::test]
async fn refresh_flow_on_every_backend() {
    for harness in all(&Options {
        grace_seconds: 1,
        ..Options::default()
    })
    .await
    {
        let (user_id, acme, login) = signed_in(&harness, "backend@example.com").await;
        let globex = harness.create_organization("Globex").await;
        harness.add_membership(&user_id, &globex.id).await;
        let stranger = harness.create_organization("Stranger").await;
        let used = token(&login, "refresh_token");

        let refused = harness.refresh(&used, Some(&stranger.id)).await;
        assert_oauth(
            &refused,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            harness.name,
        );
        let switched = harness.refresh(&used, Some(&globex.id)).await;
        assert_eq!(
            switched.status,
            StatusCode::OK,
            "{}: {:?}",
            harness.name,
            switched.body
        );
        let unnamed = harness
            .refresh(&token(&switched.body, "refresh_token"), None)
            .await;
        assert_eq!(
            unnamed.body["organization_id"],
            globex.id.as_str(),
            "{}",
            harness.name
        );
        let back = harness
            .refresh(&token(&unnamed.body, "refresh_token"), Some(&acme))
            .await;
        assert_eq!(
            back.body["organization_id"],
            acme.as_str(),
            "{}",
            harness.name
        );

        tokio::time::sleep(Duration::from_millis(1100)).await;
        let reuse = harness.refresh(&used, Some(&acme)).await;
        assert_oauth(
            &reuse,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            harness.name,
        );
        let revoked = harness
            .refresh(&token(&back.body, "refresh_token"), Some(&acme))
            .await;
        assert_oauth(
            &revoked,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            harness.name,
        );
    }
}
