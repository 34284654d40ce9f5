//! Contract tests of the Stripe part of the store: connections, event records and entitlement
//! sets, on every backend of the run (see `common::backends`). Each test creates its own
//! environments and accounts, so tests share a DynamoDB table safely.

mod common;

use chrono::Utc;
use shared::ids;
use shared::store::{
    AccountConnection, ConnectOutcome, CustomerUnlink, EntitlementSet, EntitlementWrite,
    EventAttempt, EventClaim, EventCompletion, EventKey, Organization, PURGE_PAGE_SIZE, Store,
    StripeConnection, StripeMode, WriteOutcome,
};

const LEASE_MS: i64 = 60_000;

async fn environment(store: &dyn Store, mode: StripeMode) -> String {
    shared::environments::create(store, "stripe contract", mode)
        .await
        .expect("create environment")
        .environment
        .id
}

fn connection(account_id: &str, livemode: bool) -> StripeConnection {
    StripeConnection {
        account_id: account_id.to_owned(),
        livemode,
        scope: "read_write".into(),
        connected_at: Utc::now(),
        connection_id: ids::new_id("conn"),
    }
}

fn account_id() -> String {
    format!("acct_{}", ulid::Ulid::new())
}

fn customer_id() -> String {
    format!("cus_{}", ulid::Ulid::new())
}

/// Connects a new account to the environment and returns its connection record.
async fn connect(store: &dyn Store, environment_id: &str, livemode: bool) -> AccountConnection {
    let connection = connection(&account_id(), livemode);
    let outcome = store
        .connect_stripe(environment_id, &connection)
        .await
        .expect("connect");
    assert_eq!(outcome, ConnectOutcome::Connected { replaced: None });
    AccountConnection::of(environment_id, &connection)
}

async fn organization(
    store: &dyn Store,
    environment_id: &str,
    customer_id: Option<&str>,
) -> Organization {
    let now = Utc::now();
    let organization = Organization {
        id: ids::new_id("org"),
        environment_id: environment_id.to_owned(),
        name: "Acme".into(),
        external_id: None,
        metadata: Default::default(),
        domains: Vec::new(),
        stripe_customer_id: customer_id.map(str::to_owned),
        entitlements: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store
        .create_organization(&organization)
        .await
        .expect("create organization");
    organization
}

async fn reload(store: &dyn Store, organization: &Organization) -> Organization {
    store
        .get_organization(&organization.environment_id, &organization.id)
        .await
        .expect("get organization")
        .expect("organization exists")
}

fn set(connection: &AccountConnection, keys: &[&str], read_at_ms: i64) -> EntitlementSet {
    EntitlementSet {
        lookup_keys: keys.iter().map(|key| key.to_string()).collect(),
        read_at_ms,
        connection_id: connection.connection_id.clone(),
    }
}

fn attempt(account_id: &str, event_id: &str, started_at_ms: i64) -> EventAttempt {
    EventAttempt {
        key: EventKey {
            account_id: account_id.to_owned(),
            event_id: event_id.to_owned(),
        },
        event_type: "entitlements.active_entitlement_summary.updated".into(),
        token: ids::new_secret(""),
        started_at_ms,
        lease_ms: LEASE_MS,
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

async fn apply(
    store: &dyn Store,
    connection: &AccountConnection,
    organization: &Organization,
    customer_id: &str,
    set: &EntitlementSet,
) -> WriteOutcome {
    store
        .apply_entitlements(&EntitlementWrite {
            connection,
            organization_id: &organization.id,
            customer_id,
            set,
            event: None,
        })
        .await
        .expect("apply entitlements")
}

#[tokio::test]
async fn connect_is_unique_per_account_and_mode() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let first = environment(store, StripeMode::Test).await;
        let second = environment(store, StripeMode::Test).await;
        let live = environment(store, StripeMode::Live).await;
        let account = account_id();

        let outcome = store
            .connect_stripe(&first, &connection(&account, false))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            ConnectOutcome::Connected { replaced: None },
            "{name}"
        );

        let outcome = store
            .connect_stripe(&second, &connection(&account, false))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            ConnectOutcome::AccountTaken {
                environment_id: first.clone()
            },
            "{name}"
        );

        let outcome = store
            .connect_stripe(&live, &connection(&account, true))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            ConnectOutcome::Connected { replaced: None },
            "{name}: live mode is separate"
        );

        let outcome = store
            .connect_stripe(&first, &connection(&account_id(), false))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            ConnectOutcome::EnvironmentConnected {
                account_id: account.clone()
            },
            "{name}"
        );

        let outcome = store
            .connect_stripe(&second, &connection(&account_id(), true))
            .await
            .unwrap();
        assert_eq!(outcome, ConnectOutcome::ModeMismatch, "{name}");

        let outcome = store
            .connect_stripe(&ids::new_id("client"), &connection(&account_id(), false))
            .await
            .unwrap();
        assert_eq!(outcome, ConnectOutcome::EnvironmentNotFound, "{name}");

        let record = store
            .stripe_account(&account, false)
            .await
            .unwrap()
            .expect("record");
        assert_eq!(record.environment_id, first, "{name}");
        assert!(record.connected, "{name}");
        let environment = store.get_environment(&second).await.unwrap().unwrap();
        assert!(
            environment.stripe_connection.is_none(),
            "{name}: a rejected connect writes nothing"
        );
    }
}

#[tokio::test]
async fn reconnect_replaces_connection() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let first = connect(store, &environment_id, false).await;

        let again = connection(&first.account_id, false);
        let outcome = store.connect_stripe(&environment_id, &again).await.unwrap();
        assert_eq!(
            outcome,
            ConnectOutcome::Connected {
                replaced: Some(first.connection_id.clone())
            },
            "{name}"
        );
        let record = store
            .stripe_account(&first.account_id, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.connection_id, again.connection_id, "{name}");
        let environment = store
            .get_environment(&environment_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(environment.stripe_connection, Some(again), "{name}");
    }
}

#[tokio::test]
async fn disconnect_leaves_tombstone() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;

        assert!(
            store
                .disconnect_stripe(&connection, now_ms())
                .await
                .unwrap(),
            "{name}"
        );
        let environment = store
            .get_environment(&environment_id)
            .await
            .unwrap()
            .unwrap();
        assert!(environment.stripe_connection.is_none(), "{name}");
        let record = store
            .stripe_account(&connection.account_id, false)
            .await
            .unwrap()
            .unwrap();
        assert!(!record.connected, "{name}");
        assert_eq!(record.environment_id, environment_id, "{name}");
        assert_eq!(record.connection_id, connection.connection_id, "{name}");

        assert!(
            !store
                .disconnect_stripe(&connection, now_ms())
                .await
                .unwrap(),
            "{name}: a second disconnect finds nothing to end"
        );

        let other = self::environment(store, StripeMode::Test).await;
        let outcome = store
            .connect_stripe(&other, &self::connection(&connection.account_id, false))
            .await
            .unwrap();
        assert_eq!(
            outcome,
            ConnectOutcome::Connected { replaced: None },
            "{name}: a disconnected account can connect elsewhere"
        );
    }
}

#[tokio::test]
async fn newer_set_wins() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;
        let customer = customer_id();
        let organization = organization(store, &environment_id, Some(&customer)).await;

        let newer = set(&connection, &["analytics", "seats"], 2_000);
        assert_eq!(
            apply(store, &connection, &organization, &customer, &newer).await,
            WriteOutcome::Applied,
            "{name}"
        );
        let stored = reload(store, &organization).await;
        assert_eq!(stored.entitlements.as_ref(), Some(&newer), "{name}");
        assert_eq!(
            stored.version,
            organization.version + 1,
            "{name}: the write bumps the version"
        );

        let older = set(&connection, &["analytics"], 1_000);
        assert_eq!(
            apply(store, &connection, &organization, &customer, &older).await,
            WriteOutcome::NewerSetStored,
            "{name}"
        );
        let same_time = set(&connection, &[], 2_000);
        assert_eq!(
            apply(store, &connection, &organization, &customer, &same_time).await,
            WriteOutcome::NewerSetStored,
            "{name}"
        );
        let stored = reload(store, &organization).await;
        assert_eq!(stored.entitlements.as_ref(), Some(&newer), "{name}");
        assert_eq!(
            stored.version,
            organization.version + 1,
            "{name}: rejected writes change nothing"
        );

        let latest = set(&connection, &[], 3_000);
        assert_eq!(
            apply(store, &connection, &organization, &customer, &latest).await,
            WriteOutcome::Applied,
            "{name}"
        );
        assert_eq!(
            reload(store, &organization).await.entitlements,
            Some(latest),
            "{name}"
        );
    }
}

#[tokio::test]
async fn set_of_earlier_connection_is_replaced() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let first = connect(store, &environment_id, false).await;
        let customer = customer_id();
        let organization = organization(store, &environment_id, Some(&customer)).await;
        let old = set(&first, &["old"], 5_000);
        assert_eq!(
            apply(store, &first, &organization, &customer, &old).await,
            WriteOutcome::Applied
        );

        let again = connection(&first.account_id, false);
        store.connect_stripe(&environment_id, &again).await.unwrap();
        let second = AccountConnection::of(&environment_id, &again);
        let fresh = set(&second, &["new"], 1_000);
        assert_eq!(
            apply(store, &second, &organization, &customer, &fresh).await,
            WriteOutcome::Applied,
            "{name}: an earlier read under the current connection beats any read under an older one"
        );
        assert_eq!(
            apply(store, &first, &organization, &customer, &old).await,
            WriteOutcome::ConnectionChanged,
            "{name}"
        );
        assert_eq!(
            reload(store, &organization).await.entitlements,
            Some(fresh),
            "{name}"
        );
    }
}

#[tokio::test]
async fn apply_requires_link_and_connection() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;
        let customer = customer_id();
        let organization = organization(store, &environment_id, Some(&customer)).await;
        let unlinked = self::organization(store, &environment_id, None).await;
        let entitlements = set(&connection, &["a"], 1_000);

        assert_eq!(
            apply(store, &connection, &unlinked, &customer, &entitlements).await,
            WriteOutcome::CustomerNotLinked,
            "{name}"
        );
        assert_eq!(
            apply(
                store,
                &connection,
                &organization,
                &customer_id(),
                &entitlements
            )
            .await,
            WriteOutcome::CustomerNotLinked,
            "{name}"
        );
        let mut missing = organization.clone();
        missing.id = ids::new_id("org");
        assert_eq!(
            apply(store, &connection, &missing, &customer, &entitlements).await,
            WriteOutcome::CustomerNotLinked,
            "{name}"
        );

        let mut stale = connection.clone();
        stale.connection_id = ids::new_id("conn");
        assert_eq!(
            apply(
                store,
                &stale,
                &organization,
                &customer,
                &set(&stale, &["a"], 1_000)
            )
            .await,
            WriteOutcome::ConnectionChanged,
            "{name}"
        );

        store
            .disconnect_stripe(&connection, now_ms())
            .await
            .unwrap();
        assert_eq!(
            apply(store, &connection, &organization, &customer, &entitlements).await,
            WriteOutcome::ConnectionChanged,
            "{name}"
        );
        assert_eq!(
            reload(store, &organization).await.entitlements,
            None,
            "{name}"
        );
        assert_eq!(
            reload(store, &unlinked).await.version,
            unlinked.version,
            "{name}: failed writes change nothing"
        );
    }
}

#[tokio::test]
async fn customer_claim_finds_organization() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let customer = customer_id();
        let organization = organization(store, &environment_id, Some(&customer)).await;

        let found = store
            .organization_for_customer(&environment_id, &customer)
            .await
            .unwrap();
        assert_eq!(found.as_deref(), Some(organization.id.as_str()), "{name}");
        let other_environment = environment(store, StripeMode::Test).await;
        let found = store
            .organization_for_customer(&other_environment, &customer)
            .await
            .unwrap();
        assert_eq!(found, None, "{name}: claims are per environment");
        let found = store
            .organization_for_customer(&environment_id, &customer_id())
            .await
            .unwrap();
        assert_eq!(found, None, "{name}");
    }
}

#[tokio::test]
async fn apply_bumps_version_for_concurrent_updates() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;
        let customer = customer_id();
        let read_before = organization(store, &environment_id, Some(&customer)).await;

        let entitlements = set(&connection, &["a"], 1_000);
        apply(store, &connection, &read_before, &customer, &entitlements).await;
        let mut renamed = read_before.clone();
        renamed.name = "Renamed".into();
        let replaced = store
            .replace_organization(&read_before, &renamed)
            .await
            .unwrap();
        assert!(
            !replaced,
            "{name}: an update based on a read from before the set was written must fail and retry"
        );
        assert_eq!(
            reload(store, &read_before).await.entitlements,
            Some(entitlements),
            "{name}"
        );
    }
}

#[tokio::test]
async fn event_claims_and_leases() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let account = account_id();
        let event_id = format!("evt_{}", ulid::Ulid::new());
        let started = now_ms();

        let first = attempt(&account, &event_id, started);
        assert_eq!(
            store.begin_event(&first).await.unwrap(),
            EventClaim::Claimed,
            "{name}"
        );
        assert_eq!(
            store.begin_event(&first).await.unwrap(),
            EventClaim::Claimed,
            "{name}: a retried claim of the same attempt succeeds"
        );

        let second = attempt(&account, &event_id, started + 1_000);
        assert_eq!(
            store.begin_event(&second).await.unwrap(),
            EventClaim::InProgress {
                lease_expires_at_ms: first.lease_expires_at_ms()
            },
            "{name}"
        );

        let after_lease = attempt(&account, &event_id, first.lease_expires_at_ms() + 1);
        assert_eq!(
            store.begin_event(&after_lease).await.unwrap(),
            EventClaim::Claimed,
            "{name}: an expired lease is taken over"
        );
        let completion = EventCompletion {
            attempt: &first,
            completed_at_ms: now_ms(),
        };
        assert_eq!(
            store.complete_event(&completion, None).await.unwrap(),
            WriteOutcome::LeaseLost,
            "{name}: the first attempt lost the event"
        );
        let completion = EventCompletion {
            attempt: &after_lease,
            completed_at_ms: now_ms(),
        };
        assert_eq!(
            store.complete_event(&completion, None).await.unwrap(),
            WriteOutcome::Applied,
            "{name}"
        );
        assert_eq!(
            store.complete_event(&completion, None).await.unwrap(),
            WriteOutcome::Applied,
            "{name}: completing twice is idempotent"
        );

        let duplicate = attempt(
            &account,
            &event_id,
            first.lease_expires_at_ms() + 10 * LEASE_MS,
        );
        assert_eq!(
            store.begin_event(&duplicate).await.unwrap(),
            EventClaim::Completed,
            "{name}"
        );
        store.release_event(&duplicate).await.unwrap();
        assert_eq!(
            store.begin_event(&duplicate).await.unwrap(),
            EventClaim::Completed,
            "{name}: releasing another attempt's record does nothing"
        );
    }
}

#[tokio::test]
async fn released_event_is_claimable() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let account = account_id();
        let event_id = format!("evt_{}", ulid::Ulid::new());
        let first = attempt(&account, &event_id, now_ms());
        assert_eq!(
            store.begin_event(&first).await.unwrap(),
            EventClaim::Claimed,
            "{name}"
        );
        store.release_event(&first).await.unwrap();
        let retry = attempt(&account, &event_id, now_ms());
        assert_eq!(
            store.begin_event(&retry).await.unwrap(),
            EventClaim::Claimed,
            "{name}: a released event is claimed at once, without waiting for the lease"
        );
        let other_account = attempt(&account_id(), &event_id, now_ms());
        assert_eq!(
            store.begin_event(&other_account).await.unwrap(),
            EventClaim::Claimed,
            "{name}: event IDs are scoped by account"
        );
    }
}

#[tokio::test]
async fn apply_completes_event_atomically() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;
        let customer = customer_id();
        let organization = organization(store, &environment_id, Some(&customer)).await;
        let event_id = format!("evt_{}", ulid::Ulid::new());

        let stale = attempt(&connection.account_id, &event_id, now_ms() - 3 * LEASE_MS);
        assert_eq!(
            store.begin_event(&stale).await.unwrap(),
            EventClaim::Claimed
        );
        let current = attempt(&connection.account_id, &event_id, now_ms());
        assert_eq!(
            store.begin_event(&current).await.unwrap(),
            EventClaim::Claimed
        );

        let stale_set = set(&connection, &["stale"], 1_000);
        let outcome = store
            .apply_entitlements(&EntitlementWrite {
                connection: &connection,
                organization_id: &organization.id,
                customer_id: &customer,
                set: &stale_set,
                event: Some(EventCompletion {
                    attempt: &stale,
                    completed_at_ms: now_ms(),
                }),
            })
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::LeaseLost, "{name}");
        assert_eq!(
            reload(store, &organization).await.entitlements,
            None,
            "{name}: nothing written"
        );

        let current_set = set(&connection, &["current"], 2_000);
        let outcome = store
            .apply_entitlements(&EntitlementWrite {
                connection: &connection,
                organization_id: &organization.id,
                customer_id: &customer,
                set: &current_set,
                event: Some(EventCompletion {
                    attempt: &current,
                    completed_at_ms: now_ms(),
                }),
            })
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied, "{name}");
        assert_eq!(
            reload(store, &organization).await.entitlements,
            Some(current_set),
            "{name}"
        );
        let duplicate = attempt(&connection.account_id, &event_id, now_ms());
        assert_eq!(
            store.begin_event(&duplicate).await.unwrap(),
            EventClaim::Completed,
            "{name}"
        );
    }
}

#[tokio::test]
async fn unlink_removes_link_set_and_claim() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;
        let customer = customer_id();
        let organization = organization(store, &environment_id, Some(&customer)).await;
        apply(
            store,
            &connection,
            &organization,
            &customer,
            &set(&connection, &["a"], 1_000),
        )
        .await;
        let before = reload(store, &organization).await;

        let unlink = CustomerUnlink {
            connection: &connection,
            organization_id: &organization.id,
            customer_id: &customer,
            event: None,
        };
        assert_eq!(
            store.unlink_customer(&unlink).await.unwrap(),
            WriteOutcome::Applied,
            "{name}"
        );
        let after = reload(store, &organization).await;
        assert_eq!(after.stripe_customer_id, None, "{name}");
        assert_eq!(after.entitlements, None, "{name}");
        assert_eq!(after.version, before.version + 1, "{name}");
        let claim = store
            .organization_for_customer(&environment_id, &customer)
            .await
            .unwrap();
        assert_eq!(claim, None, "{name}: the customer claim is deleted");

        assert_eq!(
            store.unlink_customer(&unlink).await.unwrap(),
            WriteOutcome::CustomerNotLinked,
            "{name}"
        );
        let relinked = self::organization(store, &environment_id, Some(&customer)).await;
        let claim = store
            .organization_for_customer(&environment_id, &customer)
            .await
            .unwrap();
        assert_eq!(
            claim.as_deref(),
            Some(relinked.id.as_str()),
            "{name}: the customer can be linked again"
        );
    }
}

#[tokio::test]
async fn purge_removes_sets_in_pages() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;
        let count = PURGE_PAGE_SIZE + 3;
        let mut organizations = Vec::new();
        for _ in 0..count {
            let customer = customer_id();
            let organization = organization(store, &environment_id, Some(&customer)).await;
            let outcome = apply(
                store,
                &connection,
                &organization,
                &customer,
                &set(&connection, &["a"], 1_000),
            )
            .await;
            assert_eq!(outcome, WriteOutcome::Applied);
            organizations.push(organization);
        }
        let without_set = organization(store, &environment_id, Some(&customer_id())).await;

        assert!(
            store
                .disconnect_stripe(&connection, now_ms())
                .await
                .unwrap()
        );
        let mut cursor: Option<String> = None;
        let mut removed = 0;
        let mut pages = 0;
        loop {
            let page = store
                .purge_entitlements(
                    &environment_id,
                    &connection.connection_id,
                    cursor.as_deref(),
                )
                .await
                .unwrap();
            removed += page.removed;
            pages += 1;
            assert!(pages <= 10, "{name}: the purge does not end");
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(removed, count, "{name}");
        assert!(
            pages >= 2,
            "{name}: {count} organizations take more than one page"
        );
        for organization in &organizations {
            let stored = reload(store, organization).await;
            assert_eq!(stored.entitlements, None, "{name}");
            assert!(
                stored.stripe_customer_id.is_some(),
                "{name}: the link itself stays"
            );
            assert_eq!(
                stored.version,
                organization.version + 2,
                "{name}: applied, then purged"
            );
        }
        assert_eq!(
            reload(store, &without_set).await.version,
            without_set.version,
            "{name}"
        );
    }
}

#[tokio::test]
async fn completion_checks_connection() {
    for backend in common::backends().await {
        let store = backend.store.as_ref();
        let name = backend.name;
        let environment_id = environment(store, StripeMode::Test).await;
        let connection = connect(store, &environment_id, false).await;
        let event_id = format!("evt_{}", ulid::Ulid::new());
        let current = attempt(&connection.account_id, &event_id, now_ms());
        assert_eq!(
            store.begin_event(&current).await.unwrap(),
            EventClaim::Claimed
        );
        let completion = EventCompletion {
            attempt: &current,
            completed_at_ms: now_ms(),
        };

        store
            .disconnect_stripe(&connection, now_ms())
            .await
            .unwrap();
        assert_eq!(
            store
                .complete_event(&completion, Some(&connection))
                .await
                .unwrap(),
            WriteOutcome::ConnectionChanged,
            "{name}"
        );
        let probe = attempt(&connection.account_id, &event_id, now_ms());
        assert!(
            matches!(
                store.begin_event(&probe).await.unwrap(),
                EventClaim::InProgress { .. }
            ),
            "{name}: a rejected completion leaves the event in progress"
        );

        let other = self::environment(store, StripeMode::Test).await;
        let live = connect(store, &other, false).await;
        let next = attempt(&live.account_id, &event_id, now_ms());
        assert_eq!(store.begin_event(&next).await.unwrap(), EventClaim::Claimed);
        let completion = EventCompletion {
            attempt: &next,
            completed_at_ms: now_ms(),
        };
        assert_eq!(
            store
                .complete_event(&completion, Some(&live))
                .await
                .unwrap(),
            WriteOutcome::Applied,
            "{name}"
        );
    }
}
