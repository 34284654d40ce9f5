//! Contract tests of the OAuth state records and the entitlements toggle, run on every store
//! backend. Each test creates its own environment and states.

mod common;

use std::sync::Arc;

use chrono::Utc;
use common::backends;
use shared::environments;
use shared::ids;
use shared::store::keys;
use shared::store::{
    ConnectOutcome, ConnectStore, OAuthConsumption, OAuthOutcome, OAuthState, StateConsumption,
    Store, StripeConnection, StripeMode,
};

async fn new_environment(store: &dyn Store) -> String {
    environments::create(store, "oauth-contract", StripeMode::Test)
        .await
        .expect("environment is created")
        .environment
        .id
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Creates a state of an environment valid for `lifetime_seconds` (negative: already expired), and
/// returns it with the secret value it was issued for.
fn new_state(environment_id: &str, lifetime_seconds: i64) -> (String, OAuthState) {
    let value = ids::new_secret("");
    let created_at_ms = now_ms();
    let state = OAuthState {
        state_hash: ids::hash_secret(&value),
        environment_id: environment_id.to_owned(),
        created_at_ms,
        expires_at: created_at_ms / 1000 + lifetime_seconds,
        consumption: None,
    };
    (value, state)
}

fn consumption(fingerprint: &str) -> OAuthConsumption {
    OAuthConsumption {
        fingerprint: fingerprint.to_owned(),
        claim_id: ids::new_secret(""),
        consumed_at_ms: now_ms(),
        outcome: None,
    }
}

#[tokio::test]
async fn state_round_trips_by_hash() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let (value, state) = new_state(&environment_id, 600);
        store.create_oauth_state(&state).await.unwrap();

        let read = store
            .get_oauth_state(&ids::hash_secret(&value), now_ms())
            .await
            .unwrap();
        assert_eq!(read.as_ref(), Some(&state), "{}", backend.name);
        let by_value = store.get_oauth_state(&value, now_ms()).await.unwrap();
        assert_eq!(
            by_value, None,
            "{}: the raw value is not a key",
            backend.name
        );
    }
}

#[tokio::test]
async fn state_creation_rejects_existing_hash() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let (_, state) = new_state(&environment_id, 600);
        store.create_oauth_state(&state).await.unwrap();
        let second = store.create_oauth_state(&state).await;
        assert!(second.is_err(), "{}", backend.name);
    }
}

#[tokio::test]
async fn state_consumed_once() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let (_, state) = new_state(&environment_id, 600);
        store.create_oauth_state(&state).await.unwrap();

        let first = consumption("code:first");
        let result = store
            .consume_oauth_state(&state.state_hash, &first, now_ms())
            .await
            .unwrap();
        let StateConsumption::Consumed(consumed) = result else {
            panic!("{}: first consume returned {result:?}", backend.name);
        };
        assert_eq!(
            consumed.consumption.as_ref(),
            Some(&first),
            "{}",
            backend.name
        );
        assert_eq!(consumed.environment_id, environment_id, "{}", backend.name);

        let second = consumption("code:second");
        let result = store
            .consume_oauth_state(&state.state_hash, &second, now_ms())
            .await
            .unwrap();
        let StateConsumption::AlreadyConsumed(stored) = result else {
            panic!("{}: second consume returned {result:?}", backend.name);
        };
        assert_eq!(
            stored.consumption.as_ref(),
            Some(&first),
            "{}: the first consumption stays",
            backend.name
        );
    }
}

#[tokio::test]
async fn concurrent_consumes_have_one_winner() {
    for backend in backends().await {
        let store: Arc<dyn Store> = backend.store.clone();
        let environment_id = new_environment(store.as_ref()).await;
        let (_, state) = new_state(&environment_id, 600);
        store.create_oauth_state(&state).await.unwrap();

        let mut tasks = Vec::new();
        for index in 0..8 {
            let store = store.clone();
            let state_hash = state.state_hash.clone();
            tasks.push(tokio::spawn(async move {
                let attempt = consumption(&format!("code:{index}"));
                store
                    .consume_oauth_state(&state_hash, &attempt, now_ms())
                    .await
            }));
        }
        let mut consumed = 0;
        let mut already = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                StateConsumption::Consumed(_) => consumed += 1,
                StateConsumption::AlreadyConsumed(_) => already += 1,
                other => panic!("{}: unexpected {other:?}", backend.name),
            }
        }
        assert_eq!(consumed, 1, "{}", backend.name);
        assert_eq!(already, 7, "{}", backend.name);
    }
}

#[tokio::test]
async fn expired_state_not_consumed() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let (_, state) = new_state(&environment_id, -1);
        store.create_oauth_state(&state).await.unwrap();

        let result = store
            .consume_oauth_state(&state.state_hash, &consumption("code:x"), now_ms())
            .await
            .unwrap();
        assert_eq!(result, StateConsumption::Expired, "{}", backend.name);
        let read = store
            .get_oauth_state(&state.state_hash, now_ms())
            .await
            .unwrap();
        assert_eq!(
            read, None,
            "{}: an expired state reads as absent",
            backend.name
        );
    }
}

#[tokio::test]
async fn state_expires_at_its_second() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let (_, state) = new_state(&environment_id, 600);
        store.create_oauth_state(&state).await.unwrap();

        let at_expiry_ms = state.expires_at * 1000;
        let result = store
            .consume_oauth_state(&state.state_hash, &consumption("code:x"), at_expiry_ms)
            .await
            .unwrap();
        assert_eq!(result, StateConsumption::Expired, "{}", backend.name);
        let just_before = store
            .consume_oauth_state(&state.state_hash, &consumption("code:x"), at_expiry_ms - 1)
            .await
            .unwrap();
        assert!(
            matches!(just_before, StateConsumption::Consumed(_)),
            "{}: got {just_before:?}",
            backend.name
        );
    }
}

#[tokio::test]
async fn unknown_state_not_found() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let result = store
            .consume_oauth_state(
                &ids::hash_secret("never issued"),
                &consumption("code:x"),
                now_ms(),
            )
            .await
            .unwrap();
        assert_eq!(result, StateConsumption::NotFound, "{}", backend.name);
    }
}

#[tokio::test]
async fn outcome_recorded_once_by_consumer() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let (_, state) = new_state(&environment_id, 600);
        store.create_oauth_state(&state).await.unwrap();
        let claim = consumption("code:a");
        store
            .consume_oauth_state(&state.state_hash, &claim, now_ms())
            .await
            .unwrap();

        let connected = OAuthOutcome::Connected {
            account_id: "acct_1".into(),
            livemode: false,
        };
        let by_other = store
            .record_oauth_outcome(&state.state_hash, "another claim", &connected)
            .await
            .unwrap();
        assert!(!by_other, "{}: another claim cannot record", backend.name);

        let recorded = store
            .record_oauth_outcome(&state.state_hash, &claim.claim_id, &connected)
            .await
            .unwrap();
        assert!(recorded, "{}", backend.name);
        let again = store
            .record_oauth_outcome(&state.state_hash, &claim.claim_id, &OAuthOutcome::Failed)
            .await
            .unwrap();
        assert!(!again, "{}: the outcome is written once", backend.name);

        let read = store
            .get_oauth_state(&state.state_hash, now_ms())
            .await
            .unwrap()
            .unwrap();
        let outcome = read.consumption.and_then(|consumption| consumption.outcome);
        assert_eq!(outcome, Some(connected), "{}", backend.name);
    }
}

#[tokio::test]
async fn every_outcome_round_trips() {
    let outcomes = [
        OAuthOutcome::Connected {
            account_id: "acct_1".into(),
            livemode: true,
        },
        OAuthOutcome::Cancelled,
        OAuthOutcome::StripeRejected {
            error: "invalid_grant".into(),
            description: "Authorization code expired: ac_…".into(),
        },
        OAuthOutcome::ExchangeFailed,
        OAuthOutcome::ModeMismatch { livemode: true },
        OAuthOutcome::AccountTaken {
            account_id: "acct_2".into(),
            livemode: false,
        },
        OAuthOutcome::EnvironmentConnected {
            account_id: "acct_3".into(),
        },
        OAuthOutcome::EnvironmentNotFound,
        OAuthOutcome::Failed,
    ];
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        for outcome in &outcomes {
            let (_, state) = new_state(&environment_id, 600);
            store.create_oauth_state(&state).await.unwrap();
            let claim = consumption("code:a");
            store
                .consume_oauth_state(&state.state_hash, &claim, now_ms())
                .await
                .unwrap();
            assert!(
                store
                    .record_oauth_outcome(&state.state_hash, &claim.claim_id, outcome)
                    .await
                    .unwrap(),
                "{}",
                backend.name
            );
            let read = store
                .get_oauth_state(&state.state_hash, now_ms())
                .await
                .unwrap()
                .unwrap();
            let stored = read.consumption.and_then(|consumption| consumption.outcome);
            assert_eq!(stored.as_ref(), Some(outcome), "{}", backend.name);
        }
    }
}

#[tokio::test]
async fn outcome_not_recorded_before_consumption() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let (_, state) = new_state(&environment_id, 600);
        store.create_oauth_state(&state).await.unwrap();
        let recorded = store
            .record_oauth_outcome(&state.state_hash, "claim", &OAuthOutcome::Cancelled)
            .await
            .unwrap();
        assert!(!recorded, "{}", backend.name);
        let missing = store
            .record_oauth_outcome(
                &ids::hash_secret("unknown"),
                "claim",
                &OAuthOutcome::Cancelled,
            )
            .await
            .unwrap();
        assert!(!missing, "{}", backend.name);
    }
}

#[tokio::test]
async fn toggle_keeps_connection() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let connection = StripeConnection {
            account_id: ids::new_id("acct"),
            livemode: false,
            scope: "read_write".into(),
            connected_at: Utc::now(),
            connection_id: ids::new_id("conn"),
        };
        let connected = store
            .connect_stripe(&environment_id, &connection)
            .await
            .unwrap();
        assert_eq!(
            connected,
            ConnectOutcome::Connected { replaced: None },
            "{}",
            backend.name
        );

        let off = store
            .set_entitlements_enabled(&environment_id, false)
            .await
            .unwrap()
            .unwrap();
        assert!(!off.entitlements_enabled, "{}", backend.name);
        assert_eq!(
            off.stripe_connection.as_ref(),
            Some(&connection),
            "{}",
            backend.name
        );

        let read = store
            .get_environment(&environment_id)
            .await
            .unwrap()
            .unwrap();
        assert!(!read.entitlements_enabled, "{}", backend.name);
        assert_eq!(
            read.stripe_connection.as_ref(),
            Some(&connection),
            "{}",
            backend.name
        );

        let on = store
            .set_entitlements_enabled(&environment_id, true)
            .await
            .unwrap()
            .unwrap();
        assert!(on.entitlements_enabled, "{}", backend.name);
    }
}

#[tokio::test]
async fn toggle_unknown_environment() {
    for backend in backends().await {
        let result = backend
            .store
            .set_entitlements_enabled(&ids::new_id("client"), false)
            .await
            .unwrap();
        assert_eq!(result, None, "{}", backend.name);
    }
}

#[tokio::test]
async fn dynamodb_item_carries_ttl_and_hash_only() {
    let Some((store, _recorder)) = common::dynamo_store().await else {
        return;
    };
    let environment_id = new_environment(&store).await;
    let (value, state) = new_state(&environment_id, 600);
    store.create_oauth_state(&state).await.unwrap();

    let output = store
        .client()
        .get_item()
        .table_name(store.table())
        .key(
            keys::PK,
            aws_sdk_dynamodb::types::AttributeValue::S(keys::oauth_state_partition(
                &state.state_hash,
            )),
        )
        .key(
            keys::SK,
            aws_sdk_dynamodb::types::AttributeValue::S(keys::OAUTH_STATE_SORT.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = output.item.expect("the state item exists");
    let ttl = item
        .get(keys::TTL)
        .and_then(|value| value.as_n().ok())
        .cloned();
    assert_eq!(
        ttl,
        Some(state.expires_at.to_string()),
        "the TTL attribute is epoch seconds"
    );
    let text = format!("{item:?}");
    assert!(!text.contains(&value), "the state value is not stored");
}
