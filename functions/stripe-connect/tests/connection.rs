//! `GET`, `PUT` and `DELETE /stripe/connection` through the router, on every store backend, with
//! the Stripe emulator receiving the deauthorization.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use common::{Harness, Options, account_id, backends};
use http::StatusCode;
use serde_json::{Value, json};
use shared::entitlements::claim;
use shared::store::keys;
use shared::store::{AccountConnection, EntitlementSet, EntitlementWrite, WriteOutcome};

/// More organizations than one page of the purge, so the disconnect has to page.
const ORGANIZATIONS_PAST_ONE_PAGE: usize = shared::store::PURGE_PAGE_SIZE + 5;

#[tokio::test]
async fn status_when_not_connected() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let reply = harness.call("GET", "/stripe/connection", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", harness.name);
        assert_eq!(
            reply.json(),
            json!({
                "object": "stripe_connection",
                "connected": false,
                "account_id": null,
                "livemode": null,
                "mode": "test",
                "connected_at": null,
                "entitlements_enabled": true,
            }),
            "{}",
            harness.name
        );
        let unauthenticated = harness.send("GET", "/stripe/connection", None, None).await;
        assert_eq!(
            unauthenticated.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn toggle_controls_claim() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        assert_eq!(
            harness.connect(&account_id()).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );
        let connection = harness
            .environment(&harness.environment_id)
            .await
            .stripe_connection
            .unwrap();
        let organization = harness
            .organization_with_set(&connection.connection_id, &["pro"])
            .await;

        let off = harness
            .call(
                "PUT",
                "/stripe/connection",
                Some(r#"{"entitlements_enabled": false}"#),
            )
            .await;
        assert_eq!(
            off.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            off.text()
        );
        assert_eq!(
            off.json()["entitlements_enabled"],
            false,
            "{}",
            harness.name
        );
        assert_eq!(off.json()["connected"], true, "{}", harness.name);
        let environment = harness.environment(&harness.environment_id).await;
        assert!(!environment.entitlements_enabled, "{}", harness.name);
        assert_eq!(
            environment.stripe_connection.as_ref(),
            Some(&connection),
            "{}",
            harness.name
        );
        assert_eq!(
            claim(&environment, Some(&organization)),
            None,
            "{}",
            harness.name
        );

        let on = harness
            .call(
                "PUT",
                "/stripe/connection",
                Some(r#"{"entitlements_enabled": true}"#),
            )
            .await;
        assert_eq!(on.status, StatusCode::OK, "{}", harness.name);
        assert_eq!(on.json()["entitlements_enabled"], true, "{}", harness.name);
        let environment = harness.environment(&harness.environment_id).await;
        assert_eq!(
            claim(&environment, Some(&organization)),
            Some(vec!["pro".to_owned()]),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn toggle_rejects_bad_input() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        for body in [
            "{}",
            r#"{"entitlements_enabled": "yes"}"#,
            r#"{"entitlements_enabled": null}"#,
        ] {
            let reply = harness.call("PUT", "/stripe/connection", Some(body)).await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}: {body}",
                harness.name
            );
            assert_eq!(
                reply.json()["errors"][0]["field"],
                "entitlements_enabled",
                "{}: {body}",
                harness.name
            );
        }
        let not_json = harness
            .call(
                "PUT",
                "/stripe/connection",
                Some("entitlements_enabled=false"),
            )
            .await;
        assert_eq!(not_json.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        let unauthenticated = harness
            .send(
                "PUT",
                "/stripe/connection",
                None,
                Some(r#"{"entitlements_enabled": false}"#),
            )
            .await;
        assert_eq!(
            unauthenticated.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            harness.name
        );
        assert!(
            harness
                .environment(&harness.environment_id)
                .await
                .entitlements_enabled,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn disconnect_deletes_entitlement_data() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let account = account_id();
        assert_eq!(
            harness.connect(&account).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );
        let connection = harness
            .environment(&harness.environment_id)
            .await
            .stripe_connection
            .unwrap();
        let mut organizations = Vec::new();
        for _ in 0..ORGANIZATIONS_PAST_ONE_PAGE {
            organizations.push(
                harness
                    .organization_with_set(&connection.connection_id, &["basic", "pro"])
                    .await,
            );
        }
        let environment = harness.environment(&harness.environment_id).await;
        assert!(
            claim(&environment, Some(&organizations[0])).is_some(),
            "{}",
            harness.name
        );

        let reply = harness.call("DELETE", "/stripe/connection", None).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reply.text()
        );
        let body = reply.json();
        assert_eq!(body["connected"], false, "{}", harness.name);
        assert_eq!(body["account_id"], Value::Null, "{}", harness.name);

        let deauthorizations = harness.emulator_requests("/oauth/deauthorize").await;
        assert_eq!(deauthorizations.len(), 1, "{}", harness.name);
        assert_eq!(deauthorizations[0]["status"], 200, "{}", harness.name);
        let account_state = harness
            .control(
                reqwest::Method::GET,
                &format!("/_emulator/accounts/{account}"),
                None,
            )
            .await;
        assert_eq!(account_state["connected"], false, "{}", harness.name);

        let environment = harness.environment(&harness.environment_id).await;
        assert!(environment.stripe_connection.is_none(), "{}", harness.name);
        for organization in &organizations {
            let stored = harness.organization(&organization.id).await;
            assert_eq!(
                stored.entitlements, None,
                "{}: {}",
                harness.name, organization.id
            );
            assert_eq!(
                stored.stripe_customer_id, organization.stripe_customer_id,
                "{}: the customer link stays",
                harness.name
            );
            assert_eq!(claim(&environment, Some(&stored)), None, "{}", harness.name);
            // A token minted from the organization as it was read before also loses the claim.
            assert_eq!(
                claim(&environment, Some(organization)),
                None,
                "{}",
                harness.name
            );
        }
        let record = harness
            .store
            .stripe_account(&account, false)
            .await
            .unwrap()
            .unwrap();
        assert!(!record.connected, "{}", harness.name);

        if let Some(dynamo) = &harness.dynamo {
            let items = dynamo
                .client()
                .query()
                .table_name(dynamo.table())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(keys::environment_partition(&harness.environment_id)),
                )
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .items
                .unwrap_or_default();
            let organization_items = items
                .iter()
                .filter(|item| {
                    item.get("sk")
                        .and_then(|value| value.as_s().ok())
                        .is_some_and(|sk| sk.starts_with(keys::ORGANIZATION_PREFIX))
                })
                .count();
            assert_eq!(
                organization_items,
                organizations.len(),
                "every organization item was read"
            );
            for item in &items {
                let entitlements = item.get("entitlements");
                assert!(
                    entitlements.is_none()
                        || matches!(entitlements, Some(AttributeValue::Null(true))),
                    "item {:?} still has entitlement data",
                    item.get("sk")
                );
                let connection = item.get("stripe_connection");
                assert!(
                    connection.is_none() || matches!(connection, Some(AttributeValue::Null(true))),
                    "the environment item still has a connection"
                );
            }
        }
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn disconnect_completes_when_deauthorize_fails() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        assert_eq!(
            harness.connect(&account_id()).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );
        let connection = harness
            .environment(&harness.environment_id)
            .await
            .stripe_connection
            .unwrap();
        let organization = harness
            .organization_with_set(&connection.connection_id, &["pro"])
            .await;
        harness
            .control(
                reqwest::Method::POST,
                "/_emulator/failures",
                Some(json!({ "path_prefix": "/oauth/deauthorize", "count": 1, "status": 500 })),
            )
            .await;

        let reply = harness.call("DELETE", "/stripe/connection", None).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reply.text()
        );
        assert_eq!(reply.json()["connected"], false, "{}", harness.name);
        assert_eq!(
            harness.emulator_requests("/oauth/deauthorize").await.len(),
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
        assert_eq!(
            harness.organization(&organization.id).await.entitlements,
            None,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn disconnect_without_client_id_skips_stripe() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        assert_eq!(
            harness.connect(&account_id()).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );
        let connection = harness
            .environment(&harness.environment_id)
            .await
            .stripe_connection
            .unwrap();
        let organization = harness
            .organization_with_set(&connection.connection_id, &["pro"])
            .await;

        let unconfigured = Harness::start_with(
            &backend,
            Options {
                variables: vec![("STRIPE_CLIENT_ID", String::new())],
                ..Options::default()
            },
        )
        .await;
        let reply = unconfigured
            .send("DELETE", "/stripe/connection", Some(&harness.api_key), None)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reply.text()
        );
        assert!(
            unconfigured
                .emulator_requests("/oauth/deauthorize")
                .await
                .is_empty(),
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
        assert_eq!(
            harness.organization(&organization.id).await.entitlements,
            None,
            "{}",
            harness.name
        );
        unconfigured.shutdown().await;
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn disconnect_when_not_connected() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let reply = harness.call("DELETE", "/stripe/connection", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", harness.name);
        assert_eq!(reply.json()["connected"], false, "{}", harness.name);
        assert!(
            harness
                .emulator_requests("/oauth/deauthorize")
                .await
                .is_empty(),
            "{}",
            harness.name
        );
        let unauthenticated = harness
            .send("DELETE", "/stripe/connection", None, None)
            .await;
        assert_eq!(
            unauthenticated.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn repeated_disconnect_finishes_interrupted_purge() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        assert_eq!(
            harness.connect(&account_id()).await.status,
            StatusCode::OK,
            "{}",
            harness.name
        );
        let connection = harness
            .environment(&harness.environment_id)
            .await
            .stripe_connection
            .unwrap();
        let organization = harness
            .organization_with_set(&connection.connection_id, &["pro"])
            .await;
        // A disconnect that ended the connection and stopped before deleting the sets.
        let ended = harness
            .store
            .disconnect_stripe(
                &AccountConnection::of(&harness.environment_id, &connection),
                Utc::now().timestamp_millis(),
            )
            .await
            .unwrap();
        assert!(ended, "{}", harness.name);
        assert!(
            harness
                .organization(&organization.id)
                .await
                .entitlements
                .is_some(),
            "{}",
            harness.name
        );

        let reply = harness.call("DELETE", "/stripe/connection", None).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reply.text()
        );
        assert_eq!(
            harness.organization(&organization.id).await.entitlements,
            None,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn reconnect_after_disconnect() {
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
        let reply = harness.call("DELETE", "/stripe/connection", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", harness.name);

        let reconnected = harness.connect(&account).await;
        assert_eq!(
            reconnected.status,
            StatusCode::OK,
            "{}: {}",
            harness.name,
            reconnected.text()
        );
        let environment = harness.environment(&harness.environment_id).await;
        let second = environment.stripe_connection.clone().unwrap();
        assert_ne!(
            second.connection_id, first.connection_id,
            "{}",
            harness.name
        );
        let stored = harness.organization(&organization.id).await;
        assert_eq!(
            claim(&environment, Some(&stored)),
            None,
            "{}: no set until Stripe is read again",
            harness.name
        );

        // The customer's next event stores a set under the new connection, and the claim is back.
        let customer_id = stored.stripe_customer_id.clone().unwrap();
        let set = EntitlementSet {
            lookup_keys: vec!["pro".into()],
            read_at_ms: Utc::now().timestamp_millis(),
            connection_id: second.connection_id.clone(),
        };
        let current = AccountConnection::of(&harness.environment_id, &second);
        let outcome = harness
            .store
            .apply_entitlements(&EntitlementWrite {
                connection: &current,
                organization_id: &organization.id,
                customer_id: &customer_id,
                set: &set,
                event: None,
            })
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Applied, "{}", harness.name);
        let stored = harness.organization(&organization.id).await;
        assert_eq!(
            claim(&environment, Some(&stored)),
            Some(vec!["pro".to_owned()]),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}
