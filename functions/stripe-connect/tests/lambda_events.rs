//! The OAuth callback through the real `lambda_http` event deserialization. API Gateway REST (v1)
//! hands over decoded query values, HTTP API (v2) the raw query string, and ALB the raw values;
//! in every case the callback must see each value decoded exactly once.

mod common;

use chrono::Utc;
use common::{Harness, account_id, backends};
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use shared::ids;
use shared::store::{OAuthOutcome, OAuthState};
use tower::ServiceExt;

const CALLBACK_PATH: &str = "/stripe/oauth/callback";

/// A state value with characters that change when decoded twice or not at all.
const TRICKY_STATE: &str = "st+a%41/te";

/// Builds an HTTP API (payload format 2.0) event with a raw query string.
fn api_gateway_v2(raw_query: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "GET /stripe/oauth/callback",
        "rawPath": CALLBACK_PATH,
        "rawQueryString": raw_query,
        "headers": { "host": "abc123.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": CALLBACK_PATH,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "Mozilla/5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "GET /stripe/oauth/callback",
            "stage": "$default",
            "time": "12/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1_796_983_200_000_i64,
        },
        "isBase64Encoded": false,
    })
}

/// Builds a REST API (payload format 1.0) event, whose query values API Gateway has already decoded.
fn api_gateway_v1(params: &[(&str, &str)]) -> Value {
    let single: serde_json::Map<String, Value> = params
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    let multi: serde_json::Map<String, Value> = params
        .iter()
        .map(|(name, value)| (name.to_string(), json!([value])))
        .collect();
    json!({
        "resource": CALLBACK_PATH,
        "path": CALLBACK_PATH,
        "httpMethod": "GET",
        "headers": { "Host": "abc123.execute-api.us-east-1.amazonaws.com" },
        "multiValueHeaders": { "Host": ["abc123.execute-api.us-east-1.amazonaws.com"] },
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "a1b2c3",
            "resourcePath": CALLBACK_PATH,
            "httpMethod": "GET",
            "path": CALLBACK_PATH,
            "stage": "$default",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1_796_983_200_000_i64,
            "identity": { "sourceIp": "192.0.2.1", "userAgent": "Mozilla/5.0" },
        },
        "body": null,
        "isBase64Encoded": false,
    })
}

/// Builds an Application Load Balancer event, whose query values arrive percent-encoded as sent.
fn alb(params: &[(&str, &str)]) -> Value {
    let encoded: serde_json::Map<String, Value> = params
        .iter()
        .map(|(name, value)| {
            let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            (name.to_string(), json!(value))
        })
        .collect();
    json!({
        "requestContext": {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/connect/0123456789abcdef"
            }
        },
        "httpMethod": "GET",
        "path": CALLBACK_PATH,
        "queryStringParameters": encoded,
        "headers": { "host": "connect.example.test" },
        "body": "",
        "isBase64Encoded": false,
    })
}

/// Deserializes an event as the Lambda runtime does and sends it through the router.
async fn invoke(harness: &Harness, event: &Value) -> (StatusCode, String) {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("lambda_http reads the event");
    let response = harness
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("router answers");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes();
    (
        status,
        String::from_utf8(body.to_vec()).expect("body is UTF-8"),
    )
}

/// Stores a valid state for `value`.
async fn store_state(harness: &Harness, value: &str) -> String {
    let now_ms = Utc::now().timestamp_millis();
    let state = OAuthState {
        state_hash: ids::hash_secret(value),
        environment_id: harness.environment_id.clone(),
        created_at_ms: now_ms,
        expires_at: now_ms / 1000 + 600,
        consumption: None,
    };
    harness.store.create_oauth_state(&state).await.unwrap();
    state.state_hash
}

async fn recorded_outcome(harness: &Harness, state_hash: &str) -> Option<OAuthOutcome> {
    harness
        .store
        .get_oauth_state(state_hash, Utc::now().timestamp_millis())
        .await
        .unwrap()
        .and_then(|state| state.consumption)
        .and_then(|consumption| consumption.outcome)
}

#[tokio::test]
async fn query_values_decoded_once() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        for (index, label) in ["API Gateway v2", "API Gateway v1", "ALB"]
            .into_iter()
            .enumerate()
        {
            // A new value per event shape and run, so each finds a fresh record.
            let value = format!("{TRICKY_STATE}{index}{}", ids::new_secret(""));
            let params = [("error", "access_denied"), ("state", value.as_str())];
            let event = match label {
                "API Gateway v2" => {
                    let encoded_query = url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(params)
                        .finish();
                    api_gateway_v2(&encoded_query)
                }
                "API Gateway v1" => api_gateway_v1(&params),
                _ => alb(&params),
            };
            let state_hash = store_state(&harness, &value).await;
            let (status, html) = invoke(&harness, &event).await;
            assert_eq!(status, StatusCode::OK, "{} {label}", harness.name);
            assert!(
                html.contains("Connection cancelled"),
                "{} {label}",
                harness.name
            );
            assert_eq!(
                recorded_outcome(&harness, &state_hash).await,
                Some(OAuthOutcome::Cancelled),
                "{} {label}: the state was found, so its value was decoded once",
                harness.name
            );
        }
        harness.shutdown().await;
    }
}

#[tokio::test]
async fn approval_through_rest_api_event() {
    for backend in backends().await {
        let harness = Harness::start(&backend).await;
        let link = harness.connect_link().await;
        let query = harness.approve(&link, Some(&account_id())).await;
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let borrowed: Vec<(&str, &str)> = params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();

        let (status, html) = invoke(&harness, &api_gateway_v1(&borrowed)).await;
        assert_eq!(status, StatusCode::OK, "{}: {html}", harness.name);
        assert!(
            html.contains("Stripe is connected. You can close this tab."),
            "{}",
            harness.name
        );
        let (status, _) = invoke(&harness, &api_gateway_v2(&query)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}: the same callback again",
            harness.name
        );
        assert_eq!(
            harness.emulator_requests("/oauth/token").await.len(),
            1,
            "{}",
            harness.name
        );
        harness.shutdown().await;
    }
}
