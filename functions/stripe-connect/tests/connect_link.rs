//! `POST /stripe/connect` through the router, on every store backend.

mod common;

use chrono::{DateTime, Utc};
use common::{Harness, Options, backends, state_of};
use http::StatusCode;
use shared::ids;

#[tokio::test]
async fn link_points_at_authorize_with_parameters() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let before = Utc::now();
        let reply = harness.call("POST", "/stripe/connect", None).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{}: {}",
            harness.name,
            reply.text()
        );
        assert_eq!(
            reply.headers["content-type"], "application/json",
            "{}",
            harness.name
        );
        let body = reply.json();

        let authorize_url = body["authorize_url"].as_str().unwrap();
        let url = url::Url::parse(authorize_url).unwrap();
        assert_eq!(
            format!("{}://{}", url.scheme(), url.authority()),
            harness.emulator.base_url,
            "{}",
            harness.name
        );
        assert_eq!(url.path(), "/oauth/authorize", "{}", harness.name);
        let pair = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        assert_eq!(
            pair("response_type").as_deref(),
            Some("code"),
            "{}",
            harness.name
        );
        assert_eq!(
            pair("client_id").as_deref(),
            Some(common::CLIENT_ID),
            "{}",
            harness.name
        );
        assert_eq!(
            pair("scope").as_deref(),
            Some("read_write"),
            "{}",
            harness.name
        );
        assert_eq!(
            pair("redirect_uri").as_deref(),
            Some(common::REDIRECT_URI),
            "{}",
            harness.name
        );

        let state = pair("state").unwrap();
        assert!(
            state.len() >= 43,
            "{}: a state of 256 bits has 43 base64url characters",
            harness.name
        );

        let expires_at: DateTime<Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
        let lifetime = expires_at - before;
        assert!(
            lifetime.num_seconds() >= 600,
            "{}: lifetime {lifetime}",
            harness.name
        );
        assert!(
            lifetime.num_seconds() <= 602,
            "{}: lifetime {lifetime}",
            harness.name
        );

        let stored = harness
            .store
            .get_oauth_state(&ids::hash_secret(&state), Utc::now().timestamp_millis())
            .await
            .unwrap()
            .expect("the state is stored under its hash");
        assert_eq!(
            stored.environment_id, harness.environment_id,
            "{}",
            harness.name
        );
        assert_eq!(stored.consumption, None, "{}", harness.name);
        assert_eq!(
            stored.expires_at,
            expires_at.timestamp(),
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn each_link_gets_new_state() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let first = state_of(&harness.connect_link().await);
        let second = state_of(&harness.connect_link().await);
        assert_ne!(first, second, "{}", harness.name);
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn link_requires_api_key() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let missing = harness.send("POST", "/stripe/connect", None, None).await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{}", harness.name);
        let wrong = harness
            .send("POST", "/stripe/connect", Some("sk_test_unknown"), None)
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", harness.name);
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn link_names_missing_configuration() {
    for backend in backends().await {
        let options = Options {
            variables: vec![
                ("STRIPE_CLIENT_ID", String::new()),
                ("STRIPE_REDIRECT_URI", String::new()),
            ],
            ..Options::default()
        };
        let harness = Harness::start_with(&backend, options).await;
        let reply = harness.call("POST", "/stripe/connect", None).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            harness.name
        );
        let body = reply.json();
        assert_eq!(
            body["code"], "stripe_connect_not_configured",
            "{}",
            harness.name
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("STRIPE_CLIENT_ID"),
            "{}: {message}",
            harness.name
        );
        assert!(
            message.contains("STRIPE_REDIRECT_URI"),
            "{}: {message}",
            harness.name
        );
        assert!(
            !message.contains("STRIPE_SECRET_KEY"),
            "{}: {message}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn link_requires_secret_key() {
    for backend in backends().await {
        let options = Options {
            variables: vec![("STRIPE_SECRET_KEY", String::new())],
            ..Options::default()
        };
        let harness = Harness::start_with(&backend, options).await;
        let reply = harness.call("POST", "/stripe/connect", None).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            harness.name
        );
        let message = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("STRIPE_SECRET_KEY is not set"),
            "{}: {message}",
            harness.name
        );
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn link_body_must_be_object() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let empty_object = harness.call("POST", "/stripe/connect", Some("{}")).await;
        assert_eq!(empty_object.status, StatusCode::CREATED, "{}", harness.name);

        let not_json = harness.call("POST", "/stripe/connect", Some("{")).await;
        assert_eq!(not_json.status, StatusCode::BAD_REQUEST, "{}", harness.name);
        assert_eq!(not_json.json()["code"], "invalid_json", "{}", harness.name);

        let array = harness.call("POST", "/stripe/connect", Some("[1]")).await;
        assert_eq!(
            array.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            harness.name
        );
        assert_eq!(
            array.json()["errors"][0]["field"],
            "body",
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}
