//! Contract tests of environments and organizations, run on every store backend.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use common::backends;
use shared::environments;
use shared::ids;
use shared::store::{
    EntitlementSet, ListQuery, Order, Organization, Store, StoreError, StripeMode,
};

async fn new_environment(store: &dyn Store) -> String {
    environments::create(store, "contract", StripeMode::Test)
        .await
        .expect("environment is created")
        .environment
        .id
}

fn organization(environment_id: &str, name: &str) -> Organization {
    let now = Utc::now();
    Organization {
        id: ids::new_id("org"),
        environment_id: environment_id.to_owned(),
        name: name.to_owned(),
        external_id: None,
        metadata: BTreeMap::new(),
        domains: Vec::new(),
        stripe_customer_id: None,
        entitlements: None,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

#[tokio::test]
async fn environment_resolves_by_api_key_hash() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let created = environments::create(store, "keys", StripeMode::Live)
            .await
            .unwrap();
        let found = store
            .environment_id_for_api_key(&ids::hash_secret(&created.api_key))
            .await
            .unwrap();
        assert_eq!(
            found.as_deref(),
            Some(created.environment.id.as_str()),
            "{}",
            backend.name
        );
        let unknown = store
            .environment_id_for_api_key(&ids::hash_secret("sk_other"))
            .await
            .unwrap();
        assert_eq!(unknown, None, "{}", backend.name);
        let environment = store
            .get_environment(&created.environment.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(environment.mode, StripeMode::Live, "{}", backend.name);
        assert!(store.has_environments().await.unwrap(), "{}", backend.name);
    }
}

#[tokio::test]
async fn api_key_is_stored_hashed() {
    for backend in backends().await {
        let created = environments::create(backend.store.as_ref(), "hashed", StripeMode::Test)
            .await
            .unwrap();
        let by_clear_text = backend
            .store
            .environment_id_for_api_key(&created.api_key)
            .await
            .unwrap();
        assert_eq!(
            by_clear_text, None,
            "{}: a clear-text key must not resolve",
            backend.name
        );
    }
}

#[tokio::test]
async fn organization_round_trips() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let mut created = organization(&environment_id, "Acme");
        created.external_id = Some("ext-1".into());
        created.metadata.insert("tier".into(), "gold".into());
        store.create_organization(&created).await.unwrap();

        let read = store
            .get_organization(&environment_id, &created.id)
            .await
            .unwrap();
        assert_eq!(read.as_ref(), Some(&created), "{}", backend.name);
        let by_external = store
            .get_organization_by_external_id(&environment_id, "ext-1")
            .await
            .unwrap();
        assert_eq!(
            by_external.map(|org| org.id),
            Some(created.id.clone()),
            "{}",
            backend.name
        );
    }
}

#[tokio::test]
async fn organization_invisible_to_other_environment() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let first = new_environment(store).await;
        let second = new_environment(store).await;
        let mut created = organization(&first, "Acme");
        created.external_id = Some("shared-ext".into());
        store.create_organization(&created).await.unwrap();

        assert_eq!(
            store.get_organization(&second, &created.id).await.unwrap(),
            None,
            "{}",
            backend.name
        );
        let by_external = store
            .get_organization_by_external_id(&second, "shared-ext")
            .await
            .unwrap();
        assert_eq!(by_external, None, "{}", backend.name);
        assert!(
            !store
                .delete_organization(&second, &created.id)
                .await
                .unwrap(),
            "{}",
            backend.name
        );

        // The same external ID is free in the other environment.
        let mut other = organization(&second, "Other");
        other.external_id = Some("shared-ext".into());
        store.create_organization(&other).await.unwrap();
    }
}

#[tokio::test]
async fn external_id_is_unique_per_environment() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let mut first = organization(&environment_id, "First");
        first.external_id = Some("dup".into());
        store.create_organization(&first).await.unwrap();

        let mut second = organization(&environment_id, "Second");
        second.external_id = Some("dup".into());
        let error = store.create_organization(&second).await.unwrap_err();
        match error {
            StoreError::Taken {
                field, owner_id, ..
            } => {
                assert_eq!(field, "external_id", "{}", backend.name);
                assert_eq!(owner_id, first.id, "{}", backend.name);
            }
            other => panic!("{}: expected Taken, got {other:?}", backend.name),
        }
        let missing = store
            .get_organization(&environment_id, &second.id)
            .await
            .unwrap();
        assert_eq!(
            missing, None,
            "{}: a rejected create must write nothing",
            backend.name
        );
    }
}

#[tokio::test]
async fn replace_moves_claims() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let mut current = organization(&environment_id, "Acme");
        current.external_id = Some("old-ext".into());
        store.create_organization(&current).await.unwrap();

        let mut updated = current.clone();
        updated.external_id = Some("new-ext".into());
        updated.stripe_customer_id = Some("cus_A".into());
        assert!(
            store
                .replace_organization(&current, &updated)
                .await
                .unwrap(),
            "{}",
            backend.name
        );

        let stored = store
            .get_organization(&environment_id, &current.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.version, current.version + 1, "{}", backend.name);
        assert_eq!(
            stored.stripe_customer_id.as_deref(),
            Some("cus_A"),
            "{}",
            backend.name
        );
        let old = store
            .get_organization_by_external_id(&environment_id, "old-ext")
            .await
            .unwrap();
        assert_eq!(
            old, None,
            "{}: the old external ID is released",
            backend.name
        );
        let new = store
            .get_organization_by_external_id(&environment_id, "new-ext")
            .await
            .unwrap();
        assert_eq!(
            new.map(|org| org.id),
            Some(current.id.clone()),
            "{}",
            backend.name
        );

        // The released external ID can be taken by another organization.
        let mut other = organization(&environment_id, "Other");
        other.external_id = Some("old-ext".into());
        store.create_organization(&other).await.unwrap();
    }
}

#[tokio::test]
async fn replace_rejects_stale_version() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let current = organization(&environment_id, "Acme");
        store.create_organization(&current).await.unwrap();

        let mut first = current.clone();
        first.name = "First".into();
        assert!(
            store.replace_organization(&current, &first).await.unwrap(),
            "{}",
            backend.name
        );

        let mut stale = current.clone();
        stale.name = "Stale".into();
        assert!(
            !store.replace_organization(&current, &stale).await.unwrap(),
            "{}",
            backend.name
        );
        let stored = store
            .get_organization(&environment_id, &current.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.name, "First", "{}", backend.name);
    }
}

#[tokio::test]
async fn customer_links_to_one_organization() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let first = organization(&environment_id, "First");
        let second = organization(&environment_id, "Second");
        store.create_organization(&first).await.unwrap();
        store.create_organization(&second).await.unwrap();

        let mut linked = first.clone();
        linked.stripe_customer_id = Some("cus_shared".into());
        assert!(store.replace_organization(&first, &linked).await.unwrap());

        let mut also = second.clone();
        also.stripe_customer_id = Some("cus_shared".into());
        let error = store
            .replace_organization(&second, &also)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::Taken { field: "stripe_customer_id", owner_id, .. } if *owner_id == first.id),
            "{}: {error:?}",
            backend.name
        );
        let unchanged = store
            .get_organization(&environment_id, &second.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            unchanged.stripe_customer_id, None,
            "{}: nothing half-written",
            backend.name
        );
        assert_eq!(unchanged.version, second.version, "{}", backend.name);

        // Unlinking frees the customer for the other organization.
        let first_now = store
            .get_organization(&environment_id, &first.id)
            .await
            .unwrap()
            .unwrap();
        let mut unlinked = first_now.clone();
        unlinked.stripe_customer_id = None;
        assert!(
            store
                .replace_organization(&first_now, &unlinked)
                .await
                .unwrap()
        );
        assert!(
            store.replace_organization(&second, &also).await.unwrap(),
            "{}",
            backend.name
        );
    }
}

#[tokio::test]
async fn concurrent_links_of_one_customer_one_wins() {
    for backend in backends().await {
        for round in 0..10 {
            let store: Arc<dyn Store> = backend.store.clone();
            let environment_id = new_environment(store.as_ref()).await;
            let first = organization(&environment_id, "First");
            let second = organization(&environment_id, "Second");
            store.create_organization(&first).await.unwrap();
            store.create_organization(&second).await.unwrap();
            let customer = format!("cus_race{round}");

            let link = |current: Organization| {
                let store = store.clone();
                let customer = customer.clone();
                tokio::spawn(async move {
                    let mut next = current.clone();
                    next.stripe_customer_id = Some(customer);
                    store.replace_organization(&current, &next).await
                })
            };
            let (a, b) = tokio::join!(link(first.clone()), link(second.clone()));
            let outcomes = [a.unwrap(), b.unwrap()];
            let wins = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, Ok(true)))
                .count();
            let taken = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, Err(StoreError::Taken { .. })))
                .count();
            let retry = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, Ok(false)))
                .count();
            assert_eq!(wins, 1, "{} round {round}: {outcomes:?}", backend.name);
            assert_eq!(
                taken + retry,
                1,
                "{} round {round}: {outcomes:?}",
                backend.name
            );

            let linked: Vec<Option<String>> = [&first.id, &second.id]
                .into_iter()
                .map(|id| {
                    let store = store.clone();
                    let environment_id = environment_id.clone();
                    let id = id.clone();
                    async move {
                        store
                            .get_organization(&environment_id, &id)
                            .await
                            .unwrap()
                            .unwrap()
                            .stripe_customer_id
                    }
                })
                .collect::<futures::future::JoinAll<_>>()
                .await;
            let holders = linked
                .iter()
                .filter(|customer_id| customer_id.is_some())
                .count();
            assert_eq!(
                holders, 1,
                "{} round {round}: exactly one organization holds it",
                backend.name
            );
        }
    }
}

#[tokio::test]
async fn delete_releases_claims() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let mut created = organization(&environment_id, "Acme");
        created.external_id = Some("gone".into());
        created.stripe_customer_id = Some("cus_gone".into());
        created.entitlements = Some(EntitlementSet {
            lookup_keys: vec!["a".into()],
            read_at_ms: 1,
            connection_id: "conn".into(),
        });
        store.create_organization(&created).await.unwrap();

        assert!(
            store
                .delete_organization(&environment_id, &created.id)
                .await
                .unwrap(),
            "{}",
            backend.name
        );
        assert!(
            !store
                .delete_organization(&environment_id, &created.id)
                .await
                .unwrap(),
            "{}",
            backend.name
        );
        assert_eq!(
            store
                .get_organization(&environment_id, &created.id)
                .await
                .unwrap(),
            None
        );

        let mut reuse = organization(&environment_id, "Reuse");
        reuse.external_id = Some("gone".into());
        reuse.stripe_customer_id = Some("cus_gone".into());
        store.create_organization(&reuse).await.unwrap();
    }
}

#[tokio::test]
async fn list_pages_cover_everything_once() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let mut created_ids = Vec::new();
        for index in 0..7 {
            let created = organization(&environment_id, &format!("Org {index}"));
            store.create_organization(&created).await.unwrap();
            created_ids.push(created.id);
        }

        for order in [Order::Asc, Order::Desc] {
            let mut expected = created_ids.clone();
            if order == Order::Desc {
                expected.reverse();
            }

            // Forward with `after`.
            let mut seen = Vec::new();
            let mut query = ListQuery {
                limit: 3,
                before: None,
                after: None,
                order,
            };
            loop {
                let page = store
                    .list_organizations(&environment_id, &query)
                    .await
                    .unwrap();
                seen.extend(page.data.iter().map(|org| org.id.clone()));
                match page.after {
                    Some(after) => query.after = Some(after),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{} {order:?}: forward pages", backend.name);

            // Backward with `before`, from the last page.
            let last_page = ListQuery {
                limit: 3,
                before: None,
                after: Some(expected[3].clone()),
                order,
            };
            let page = store
                .list_organizations(&environment_id, &last_page)
                .await
                .unwrap();
            assert_eq!(page.data.len(), 3, "{} {order:?}", backend.name);
            assert_eq!(
                page.after, None,
                "{} {order:?}: nothing after the last page",
                backend.name
            );
            let previous = ListQuery {
                limit: 3,
                before: page.before.clone(),
                after: None,
                order,
            };
            let page = store
                .list_organizations(&environment_id, &previous)
                .await
                .unwrap();
            let ids: Vec<String> = page.data.iter().map(|org| org.id.clone()).collect();
            assert_eq!(
                ids,
                expected[1..4].to_vec(),
                "{} {order:?}: previous page",
                backend.name
            );
            assert_eq!(
                page.before.as_deref(),
                Some(expected[1].as_str()),
                "{} {order:?}",
                backend.name
            );
        }
    }
}

#[tokio::test]
async fn list_ignores_other_item_kinds() {
    for backend in backends().await {
        let store = backend.store.as_ref();
        let environment_id = new_environment(store).await;
        let mut created = organization(&environment_id, "Only");
        created.external_id = Some("ext".into());
        created.stripe_customer_id = Some("cus_1".into());
        store.create_organization(&created).await.unwrap();
        let page = store
            .list_organizations(&environment_id, &ListQuery::default())
            .await
            .unwrap();
        assert_eq!(page.data.len(), 1, "{}", backend.name);
        assert_eq!(page.before, None, "{}", backend.name);
        assert_eq!(page.after, None, "{}", backend.name);
    }
}
