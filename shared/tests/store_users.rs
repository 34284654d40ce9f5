//! Contract tests of users, memberships, sessions, pending authentications, idempotency records
//! and signing-key updates, run on every store backend. Every test creates its own environment,
//! so runs on a shared DynamoDB table never collide.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use common::backends;
use shared::environments;
use shared::ids;
use shared::store::{
    ContextKeys, IdempotencyRecord, Membership, MembershipCreation, Organization,
    PendingAuthentication, Rotation, RotationOutcome, Session, Store, StoreError, StoredResponse,
    StripeMode, User,
};
use shared::tokens::{KeyEncryptionKey, SigningKeyStatus, generate_signing_key};

async fn new_environment(store: &dyn Store) -> (String, String) {
    let created = environments::create(store, "users-contract", StripeMode::Test)
        .await
        .expect("environment is created");
    (created.environment.id, created.api_key)
}

fn user(environment_id: &str, email: &str) -> User {
    let now = Utc::now();
    User {
        id: ids::new_id("user"),
        environment_id: environment_id.to_owned(),
        email: email.to_owned(),
        email_verified: false,
        first_name: Some("Ada".into()),
        last_name: None,
        name: None,
        profile_picture_url: None,
        locale: None,
        external_id: None,
        metadata: BTreeMap::new(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        last_sign_in_at: None,
        created_at: now,
        updated_at: now,
    }
}

async fn organization(store: &dyn Store, environment_id: &str) -> Organization {
    let now = Utc::now();
    let organization = Organization {
        id: ids::new_id("org"),
        environment_id: environment_id.to_owned(),
        name: "Acme".into(),
        external_id: None,
        metadata: BTreeMap::new(),
        domains: Vec::new(),
        stripe_customer_id: None,
        entitlements: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store
        .create_organization(&organization)
        .await
        .expect("organization is created");
    organization
}

fn membership(user: &User, organization: &Organization) -> Membership {
    let now = Utc::now();
    Membership {
        id: ids::new_id("om"),
        environment_id: user.environment_id.clone(),
        user_id: user.id.clone(),
        organization_id: organization.id.clone(),
        role_slugs: vec!["admin".into(), "member".into()],
        created_at: now,
        updated_at: now,
    }
}

fn session(user: &User, token_hash: &str) -> Session {
    let now = Utc::now();
    Session {
        id: ids::new_id("session"),
        environment_id: user.environment_id.clone(),
        user_id: user.id.clone(),
        organization_id: None,
        authentication_method: "Password".into(),
        auth_time: now.timestamp(),
        created_at: now,
        expires_at: now.timestamp() + 3600,
        token_hash: token_hash.to_owned(),
        generation: 0,
        previous_hash: None,
        rotated_at_ms: now.timestamp_millis(),
        previous_unconsumed: false,
        revoked_at: None,
        ip_address: Some("192.0.2.1".into()),
        user_agent: None,
    }
}

fn rotation(session: &Session, presented: &str, generation: u64, next: &str) -> Rotation {
    Rotation {
        environment_id: session.environment_id.clone(),
        session_id: session.id.clone(),
        user_id: session.user_id.clone(),
        presented_hash: presented.to_owned(),
        presented_generation: generation,
        next_hash: next.to_owned(),
        rotated_at_ms: Utc::now().timestamp_millis(),
        organization_id: None,
    }
}

#[tokio::test]
async fn user_round_trips_with_unique_email() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let created = user(&environment_id, "Ada@Example.com");
        store.create_user(&created).await.unwrap();

        let found = store.get_user(&environment_id, &created.id).await.unwrap();
        assert_eq!(found.as_ref(), Some(&created), "{}", backend.name);
        let by_email = store
            .get_user_by_email(&environment_id, "ada@example.COM")
            .await
            .unwrap();
        assert_eq!(
            by_email.map(|user| user.id),
            Some(created.id.clone()),
            "{}",
            backend.name
        );

        let duplicate = user(&environment_id, "ADA@example.com");
        match store.create_user(&duplicate).await {
            Err(StoreError::Taken {
                field, owner_id, ..
            }) => {
                assert_eq!(field, "email", "{}", backend.name);
                assert_eq!(owner_id, created.id, "{}", backend.name);
            }
            other => panic!("{}: expected Taken, got {other:?}", backend.name),
        }
        assert_eq!(
            store
                .get_user(&environment_id, &duplicate.id)
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );

        let (other_environment, _) = new_environment(store).await;
        store
            .create_user(&user(&other_environment, "ada@example.com"))
            .await
            .expect("another environment may use the same address");
        assert_eq!(
            store
                .get_user_by_email(&other_environment, "nobody@example.com")
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );
    }
}

#[tokio::test]
async fn record_sign_in_sets_time() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let created = user(&environment_id, "sign-in@example.com");
        store.create_user(&created).await.unwrap();
        let at = Utc::now();
        store
            .record_sign_in(&environment_id, &created.id, at)
            .await
            .unwrap();
        let found = store
            .get_user(&environment_id, &created.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            found.last_sign_in_at.map(|time| time.timestamp_millis()),
            Some(at.timestamp_millis()),
            "{}",
            backend.name
        );
        store
            .record_sign_in(&environment_id, &ids::new_id("user"), at)
            .await
            .expect("an unknown user is ignored");
        assert_eq!(
            store
                .get_user(&environment_id, &ids::new_id("user"))
                .await
                .unwrap(),
            None,
            "{}: recording a sign-in must not create a user",
            backend.name
        );
    }
}

#[tokio::test]
async fn membership_rules() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let member = user(&environment_id, "member@example.com");
        store.create_user(&member).await.unwrap();
        let acme = organization(store, &environment_id).await;

        let mut without_user = membership(&member, &acme);
        without_user.user_id = ids::new_id("user");
        assert_eq!(
            store.create_membership(&without_user).await.unwrap(),
            MembershipCreation::UserNotFound,
            "{}",
            backend.name
        );
        let mut without_organization = membership(&member, &acme);
        without_organization.organization_id = ids::new_id("org");
        assert_eq!(
            store
                .create_membership(&without_organization)
                .await
                .unwrap(),
            MembershipCreation::OrganizationNotFound,
            "{}",
            backend.name
        );

        let created = membership(&member, &acme);
        assert_eq!(
            store.create_membership(&created).await.unwrap(),
            MembershipCreation::Created,
            "{}",
            backend.name
        );
        let second = membership(&member, &acme);
        assert_eq!(
            store.create_membership(&second).await.unwrap(),
            MembershipCreation::AlreadyExists {
                membership_id: created.id.clone()
            },
            "{}",
            backend.name
        );

        assert_eq!(
            store
                .get_membership(&environment_id, &created.id)
                .await
                .unwrap()
                .as_ref(),
            Some(&created),
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .get_membership(&environment_id, &second.id)
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .get_membership_for(&environment_id, &member.id, &acme.id)
                .await
                .unwrap()
                .as_ref(),
            Some(&created),
            "{}",
            backend.name
        );
        let globex = organization(store, &environment_id).await;
        let other = membership(&member, &globex);
        store.create_membership(&other).await.unwrap();
        let listed = store
            .list_user_memberships(&environment_id, &member.id)
            .await
            .unwrap();
        assert_eq!(listed.len(), 2, "{}", backend.name);

        assert_eq!(
            store
                .delete_membership(&environment_id, &created.id)
                .await
                .unwrap()
                .as_ref(),
            Some(&created),
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .delete_membership(&environment_id, &created.id)
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .get_membership_for(&environment_id, &member.id, &acme.id)
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .create_membership(&membership(&member, &acme))
                .await
                .unwrap(),
            MembershipCreation::Created,
            "{}: a deleted membership can be created again",
            backend.name
        );
    }
}

#[tokio::test]
async fn delete_user_removes_email_and_memberships() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let member = user(&environment_id, "leaver@example.com");
        store.create_user(&member).await.unwrap();
        let acme = organization(store, &environment_id).await;
        let joined = membership(&member, &acme);
        store.create_membership(&joined).await.unwrap();

        assert!(
            store
                .delete_user(&environment_id, &member.id)
                .await
                .unwrap(),
            "{}",
            backend.name
        );
        assert_eq!(
            store.get_user(&environment_id, &member.id).await.unwrap(),
            None,
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .get_membership(&environment_id, &joined.id)
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .get_membership_for(&environment_id, &member.id, &acme.id)
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );
        assert!(
            !store
                .delete_user(&environment_id, &member.id)
                .await
                .unwrap(),
            "{}",
            backend.name
        );
        store
            .create_user(&user(&environment_id, "leaver@example.com"))
            .await
            .expect("the address is free again");
    }
}

#[tokio::test]
async fn rotation_applies_only_to_current_token() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let owner = user(&environment_id, "rotate@example.com");
        let created = session(&owner, "hash-0");
        store.create_session(&created).await.unwrap();

        match store
            .rotate_session(&rotation(&created, "wrong", 0, "hash-1"))
            .await
            .unwrap()
        {
            RotationOutcome::Rejected {
                current: Some(current),
            } => {
                assert_eq!(current, created, "{}", backend.name);
            }
            other => panic!(
                "{}: expected a rejection with the session, got {other:?}",
                backend.name
            ),
        }

        let first = rotation(&created, "hash-0", 0, "hash-1");
        match store.rotate_session(&first).await.unwrap() {
            RotationOutcome::Rotated { before } => assert_eq!(before, created, "{}", backend.name),
            other => panic!("{}: expected a rotation, got {other:?}", backend.name),
        }
        let stored = store
            .get_session(&environment_id, &created.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.token_hash, "hash-1", "{}", backend.name);
        assert_eq!(
            stored.previous_hash.as_deref(),
            Some("hash-0"),
            "{}",
            backend.name
        );
        assert_eq!(stored.generation, 1, "{}", backend.name);
        assert_eq!(
            stored.rotated_at_ms, first.rotated_at_ms,
            "{}",
            backend.name
        );
        assert_eq!(stored.organization_id, None, "{}", backend.name);

        match store
            .rotate_session(&rotation(&created, "hash-0", 0, "hash-1"))
            .await
            .unwrap()
        {
            RotationOutcome::Rejected {
                current: Some(current),
            } => {
                assert_eq!(
                    current, stored,
                    "{}: a used token sees the rotated session",
                    backend.name
                );
            }
            other => panic!("{}: expected a rejection, got {other:?}", backend.name),
        }

        let mut scoped = rotation(&created, "hash-1", 1, "hash-2");
        scoped.organization_id = Some("org_1".into());
        assert!(matches!(
            store.rotate_session(&scoped).await.unwrap(),
            RotationOutcome::Rotated { .. }
        ));
        let stored = store
            .get_session(&environment_id, &created.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.organization_id.as_deref(),
            Some("org_1"),
            "{}",
            backend.name
        );

        let mut other_user = rotation(&created, "hash-2", 2, "hash-3");
        other_user.user_id = ids::new_id("user");
        assert!(
            matches!(
                store.rotate_session(&other_user).await.unwrap(),
                RotationOutcome::Rejected { .. }
            ),
            "{}: another user's token must not rotate",
            backend.name
        );

        let unknown = session(&owner, "x");
        assert!(
            matches!(
                store
                    .rotate_session(&rotation(&unknown, "x", 0, "y"))
                    .await
                    .unwrap(),
                RotationOutcome::Rejected { current: None }
            ),
            "{}",
            backend.name
        );
    }
}

#[tokio::test]
async fn rotation_refused_for_ended_sessions() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let owner = user(&environment_id, "ended@example.com");

        let mut expired = session(&owner, "hash-0");
        expired.expires_at = Utc::now().timestamp() - 1;
        store.create_session(&expired).await.unwrap();
        assert!(
            matches!(
                store
                    .rotate_session(&rotation(&expired, "hash-0", 0, "hash-1"))
                    .await
                    .unwrap(),
                RotationOutcome::Rejected { .. }
            ),
            "{}: expired",
            backend.name
        );

        let revoked = session(&owner, "hash-0");
        store.create_session(&revoked).await.unwrap();
        let at = Utc::now() - Duration::seconds(5);
        assert!(
            store
                .revoke_session(&environment_id, &revoked.id, at)
                .await
                .unwrap()
        );
        assert!(
            store
                .revoke_session(&environment_id, &revoked.id, Utc::now())
                .await
                .unwrap()
        );
        let stored = store
            .get_session(&environment_id, &revoked.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.revoked_at.map(|time| time.timestamp_millis()),
            Some(at.timestamp_millis()),
            "{}: the first revocation time stays",
            backend.name
        );
        assert!(
            matches!(
                store
                    .rotate_session(&rotation(&revoked, "hash-0", 0, "hash-1"))
                    .await
                    .unwrap(),
                RotationOutcome::Rejected { .. }
            ),
            "{}: revoked",
            backend.name
        );
        assert!(
            !store
                .revoke_session(&environment_id, &ids::new_id("session"), at)
                .await
                .unwrap(),
            "{}: unknown session",
            backend.name
        );
    }
}

#[tokio::test]
async fn released_rotation_rotates_again() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let owner = user(&environment_id, "release@example.com");
        let mut created = session(&owner, "hash-0");
        created.organization_id = Some("org_before".into());
        store.create_session(&created).await.unwrap();

        let mut switch = rotation(&created, "hash-0", 0, "hash-1");
        switch.organization_id = Some("org_refused".into());
        assert!(matches!(
            store.rotate_session(&switch).await.unwrap(),
            RotationOutcome::Rotated { .. }
        ));
        assert!(
            !store
                .release_rotation(
                    &environment_id,
                    &created.id,
                    2,
                    "hash-1",
                    Some("org_before")
                )
                .await
                .unwrap(),
            "{}: wrong generation",
            backend.name
        );
        assert!(
            store
                .release_rotation(
                    &environment_id,
                    &created.id,
                    1,
                    "hash-1",
                    Some("org_before")
                )
                .await
                .unwrap(),
            "{}",
            backend.name
        );
        let released = store
            .get_session(&environment_id, &created.id)
            .await
            .unwrap()
            .unwrap();
        assert!(released.previous_unconsumed, "{}", backend.name);
        assert_eq!(
            released.organization_id.as_deref(),
            Some("org_before"),
            "{}",
            backend.name
        );
        assert_eq!(released.token_hash, "hash-1", "{}", backend.name);

        assert!(
            matches!(
                store
                    .rotate_session(&rotation(&created, "hash-0", 0, "hash-1"))
                    .await
                    .unwrap(),
                RotationOutcome::Rejected { .. }
            ),
            "{}: a plain rotation of the previous token is refused",
            backend.name
        );
        let again = rotation(&created, "hash-0", 0, "hash-1");
        match store.rerotate_session(&again).await.unwrap() {
            RotationOutcome::Rotated { before } => {
                assert!(before.previous_unconsumed, "{}", backend.name)
            }
            other => panic!("{}: expected a rotation, got {other:?}", backend.name),
        }
        let stored = store
            .get_session(&environment_id, &created.id)
            .await
            .unwrap()
            .unwrap();
        assert!(!stored.previous_unconsumed, "{}", backend.name);
        assert_eq!(stored.generation, 1, "{}", backend.name);
        assert_eq!(
            stored.rotated_at_ms, again.rotated_at_ms,
            "{}",
            backend.name
        );
        assert!(
            matches!(
                store.rerotate_session(&again).await.unwrap(),
                RotationOutcome::Rejected { .. }
            ),
            "{}: only one rerotation per release",
            backend.name
        );

        assert!(
            store
                .release_rotation(&environment_id, &created.id, 1, "hash-1", None)
                .await
                .unwrap()
        );
        let unscoped = store
            .get_session(&environment_id, &created.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(unscoped.organization_id, None, "{}", backend.name);
    }
}

#[tokio::test]
async fn concurrent_rotations_apply_once() {
    for backend in backends().await {
        let store = backend.store.clone();
        let (environment_id, _) = new_environment(store.as_ref()).await;
        let owner = user(&environment_id, "concurrent@example.com");
        let created = session(&owner, "hash-0");
        store.create_session(&created).await.unwrap();
        let attempts = (0..8).map(|_| {
            let store: Arc<dyn Store> = store.clone();
            let rotation = rotation(&created, "hash-0", 0, "hash-1");
            async move { store.rotate_session(&rotation).await }
        });
        let outcomes = futures::future::join_all(attempts).await;
        let rotated = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(RotationOutcome::Rotated { .. })))
            .count();
        assert_eq!(rotated, 1, "{}: {outcomes:?}", backend.name);
        let rejected_after = outcomes
            .iter()
            .filter(|outcome| {
                matches!(outcome, Ok(RotationOutcome::Rejected { current: Some(session) }) if session.generation == 1)
            })
            .count();
        assert_eq!(rejected_after, 7, "{}", backend.name);
    }
}

#[tokio::test]
async fn context_read_finds_each_item() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, api_key) = new_environment(store).await;
        let member = user(&environment_id, "context@example.com");
        store.create_user(&member).await.unwrap();
        let acme = organization(store, &environment_id).await;
        let joined = membership(&member, &acme);
        store.create_membership(&joined).await.unwrap();

        let context = store
            .read_session_context(&ContextKeys {
                environment_id: environment_id.clone(),
                api_key_hash: Some(ids::hash_secret(&api_key)),
                environment: true,
                user_id: Some(member.id.clone()),
                membership: Some((member.id.clone(), acme.id.clone())),
            })
            .await
            .unwrap();
        assert_eq!(
            context.api_key_environment_id.as_deref(),
            Some(environment_id.as_str()),
            "{}",
            backend.name
        );
        assert_eq!(
            context.environment.map(|environment| environment.id),
            Some(environment_id.clone())
        );
        assert_eq!(context.user.as_ref(), Some(&member), "{}", backend.name);
        assert_eq!(
            context.membership.as_ref(),
            Some(&joined),
            "{}",
            backend.name
        );
        assert_eq!(
            context.organization.map(|organization| organization.id),
            Some(acme.id.clone())
        );

        let missing = store
            .read_session_context(&ContextKeys {
                environment_id: environment_id.clone(),
                api_key_hash: Some(ids::hash_secret("sk_unknown")),
                environment: false,
                user_id: Some(ids::new_id("user")),
                membership: Some((member.id.clone(), ids::new_id("org"))),
            })
            .await
            .unwrap();
        assert_eq!(missing.api_key_environment_id, None, "{}", backend.name);
        assert!(missing.environment.is_none(), "{}", backend.name);
        assert!(missing.user.is_none(), "{}", backend.name);
        assert!(missing.membership.is_none(), "{}", backend.name);
        assert!(missing.organization.is_none(), "{}", backend.name);
    }
}

#[tokio::test]
async fn pending_authentication_is_consumed_once() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let now = Utc::now().timestamp();
        let pending = PendingAuthentication {
            token_hash: ids::hash_secret(&ids::new_secret("")),
            environment_id: environment_id.clone(),
            user_id: ids::new_id("user"),
            authentication_method: "Password".into(),
            expires_at: now + 600,
        };
        store.create_pending_authentication(&pending).await.unwrap();
        assert_eq!(
            store
                .get_pending_authentication(&environment_id, &pending.token_hash)
                .await
                .unwrap()
                .as_ref(),
            Some(&pending),
            "{}",
            backend.name
        );
        assert!(
            store
                .consume_pending_authentication(&environment_id, &pending.token_hash, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .consume_pending_authentication(&environment_id, &pending.token_hash, now)
                .await
                .unwrap(),
            "{}: a second consumption fails",
            backend.name
        );
        assert_eq!(
            store
                .get_pending_authentication(&environment_id, &pending.token_hash)
                .await
                .unwrap(),
            None,
            "{}",
            backend.name
        );

        let expired = PendingAuthentication {
            token_hash: ids::hash_secret(&ids::new_secret("")),
            expires_at: now - 1,
            ..pending
        };
        store.create_pending_authentication(&expired).await.unwrap();
        assert_eq!(
            store
                .get_pending_authentication(&environment_id, &expired.token_hash)
                .await
                .unwrap(),
            None,
            "{}: an expired token is not found",
            backend.name
        );
        assert!(
            !store
                .consume_pending_authentication(&environment_id, &expired.token_hash, now)
                .await
                .unwrap(),
            "{}: an expired token is not consumed",
            backend.name
        );
    }
}

#[tokio::test]
async fn idempotency_key_lifecycle() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let now = Utc::now().timestamp();
        let record = IdempotencyRecord {
            environment_id: environment_id.clone(),
            key_hash: ids::hash_secret("retry-1"),
            fingerprint: "fingerprint".into(),
            expires_at: now + 86_400,
            locked_until: now + 60,
            response: None,
        };
        assert_eq!(
            store.claim_idempotency_key(&record, now).await.unwrap(),
            None,
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .claim_idempotency_key(&record, now)
                .await
                .unwrap()
                .as_ref(),
            Some(&record),
            "{}: a held key is returned",
            backend.name
        );

        let response = StoredResponse {
            status: 201,
            body: Some("sealed".into()),
        };
        store
            .complete_idempotency_key(&environment_id, &record.key_hash, &response)
            .await
            .unwrap();
        store
            .release_idempotency_key(&environment_id, &record.key_hash)
            .await
            .unwrap();
        let completed = store
            .claim_idempotency_key(&record, now + 120)
            .await
            .unwrap();
        assert_eq!(
            completed.and_then(|existing| existing.response),
            Some(response),
            "{}: a completed key keeps its response after the lock lapses",
            backend.name
        );

        let other = IdempotencyRecord {
            key_hash: ids::hash_secret("retry-2"),
            ..record.clone()
        };
        assert_eq!(
            store.claim_idempotency_key(&other, now).await.unwrap(),
            None
        );
        store
            .release_idempotency_key(&environment_id, &other.key_hash)
            .await
            .unwrap();
        assert_eq!(
            store.claim_idempotency_key(&other, now).await.unwrap(),
            None,
            "{}: a released key can be taken again",
            backend.name
        );
        assert_eq!(
            store.claim_idempotency_key(&other, now + 61).await.unwrap(),
            None,
            "{}: a lapsed lock can be taken over",
            backend.name
        );

        let (other_environment, _) = new_environment(store).await;
        let elsewhere = IdempotencyRecord {
            environment_id: other_environment,
            ..record
        };
        assert_eq!(
            store.claim_idempotency_key(&elsewhere, now).await.unwrap(),
            None,
            "{}: keys are per environment",
            backend.name
        );
    }
}

#[tokio::test]
async fn signing_keys_compare_and_set() {
    let kek = KeyEncryptionKey::generate();
    let first = generate_signing_key(&kek, SigningKeyStatus::Active).unwrap();
    let second = generate_signing_key(&kek, SigningKeyStatus::Next).unwrap();
    for backend in backends().await {
        let store = backend.store.as_ref();
        let (environment_id, _) = new_environment(store).await;
        let one = vec![first.clone()];
        assert!(
            store
                .replace_signing_keys(&environment_id, &[], &one)
                .await
                .unwrap(),
            "{}",
            backend.name
        );
        assert!(
            !store
                .replace_signing_keys(&environment_id, &[], std::slice::from_ref(&second))
                .await
                .unwrap(),
            "{}: a stale list is refused",
            backend.name
        );
        let two = vec![first.clone(), second.clone()];
        assert!(
            store
                .replace_signing_keys(&environment_id, &one, &two)
                .await
                .unwrap(),
            "{}",
            backend.name
        );
        let environment = store
            .get_environment(&environment_id)
            .await
            .unwrap()
            .unwrap();
        let kids: Vec<&str> = environment
            .signing_keys
            .iter()
            .map(|key| key.kid.as_str())
            .collect();
        assert_eq!(
            kids,
            [first.kid.as_str(), second.kid.as_str()],
            "{}",
            backend.name
        );
        assert_eq!(
            environment.name, "users-contract",
            "{}: other fields stay",
            backend.name
        );
        assert!(
            !store
                .replace_signing_keys(&ids::new_id("client"), &[], &one)
                .await
                .unwrap(),
            "{}: unknown environment",
            backend.name
        );
    }
}
