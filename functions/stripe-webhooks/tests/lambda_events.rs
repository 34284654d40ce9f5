//! Deliveries through the real `lambda_http` event deserialization: API Gateway HTTP API (v2) and
//! REST API (v1) events whose body is base64-encoded, as API Gateway hands over a body it
//! considers binary. The signature must verify over the decoded bytes.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Stack, backends, customer_id, lookup_keys};
use http::StatusCode;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Builds an HTTP API event in payload format 2.0 with a base64-encoded body.
fn api_gateway_v2(body: &str, signature: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/stripe",
        "rawPath": "/webhooks/stripe",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json; charset=utf-8",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "stripe-signature": signature,
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "POST",
                "path": "/webhooks/stripe",
                "protocol": "HTTP/1.1",
                "sourceIp": "3.18.12.63",
                "userAgent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "POST /webhooks/stripe",
            "stage": "$default",
            "time": "12/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1_796_983_200_000_i64,
        },
        "body": STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// Builds a payload format 1.0 event, as an HTTP API sends it with its `$default` stage.
/// `lambda_http` puts any other stage name in front of the path unless
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set, so a REST API stage such as `prod` would not
/// reach `/webhooks/stripe`.
fn api_gateway_v1(body: &str, signature: &str) -> Value {
    json!({
        "resource": "/webhooks/stripe",
        "path": "/webhooks/stripe",
        "httpMethod": "POST",
        "headers": {
            "Content-Type": "application/json; charset=utf-8",
            "Host": "abc123.execute-api.us-east-1.amazonaws.com",
            "Stripe-Signature": signature,
            "X-Forwarded-Proto": "https",
        },
        "multiValueHeaders": {
            "Content-Type": ["application/json; charset=utf-8"],
            "Host": ["abc123.execute-api.us-east-1.amazonaws.com"],
            "Stripe-Signature": [signature],
            "X-Forwarded-Proto": ["https"],
        },
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "a1b2c3",
            "resourcePath": "/webhooks/stripe",
            "httpMethod": "POST",
            "path": "/webhooks/stripe",
            "stage": "$default",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "requestTimeEpoch": 1_796_983_200_000_i64,
            "identity": { "sourceIp": "3.18.12.63", "userAgent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
        },
        "body": STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// Deserializes a Lambda event as the runtime does and sends it through the router.
async fn invoke(stack: &Stack, event: &Value) -> common::Delivery {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("lambda_http reads the event");
    let response = stack
        .router
        .clone()
        .oneshot(request)
        .await
        .expect("router answers");
    common::Delivery::read(response).await
}

#[tokio::test]
async fn base64_bodies_verify_and_apply() {
    for backend in backends() {
        let stack = Stack::start(backend).await;
        let connection = stack.connected_environment(false).await;
        for (label, build) in [
            ("API Gateway v2", api_gateway_v2 as fn(&str, &str) -> Value),
            ("API Gateway v1", api_gateway_v1),
        ] {
            let customer = customer_id();
            let organization = stack
                .organization(&connection.environment_id, Some(&customer))
                .await;
            stack
                .set_entitlements(&connection.account_id, &customer, &lookup_keys(3))
                .await;
            let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;

            let delivery = invoke(&stack, &build(&payload, &signature)).await;
            assert_eq!(
                delivery.status,
                StatusCode::OK,
                "{backend} {label}: {:?}",
                delivery.body
            );
            assert_eq!(delivery.result(), "applied", "{backend} {label}");
            let stored = stack
                .reload(&organization)
                .await
                .entitlements
                .expect("set stored");
            assert_eq!(stored.lookup_keys, lookup_keys(3), "{backend} {label}");
        }
    }
}

#[tokio::test]
async fn base64_body_with_wrong_signature_rejected() {
    let stack = Stack::start("embedded").await;
    let connection = stack.connected_environment(false).await;
    let customer = customer_id();
    stack
        .organization(&connection.environment_id, Some(&customer))
        .await;
    stack
        .set_entitlements(&connection.account_id, &customer, &lookup_keys(1))
        .await;
    let (payload, signature) = stack.summary_event(&connection.account_id, &customer).await;
    let tampered = payload.replacen(&customer, &customer_id(), 1);
    assert_ne!(tampered, payload);
    for event in [
        api_gateway_v2(&tampered, &signature),
        api_gateway_v1(&tampered, &signature),
    ] {
        let delivery = invoke(&stack, &event).await;
        assert_eq!(
            delivery.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            delivery.body
        );
    }
}
