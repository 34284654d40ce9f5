//! `Stripe-Signature` checks at the route: which signatures are accepted, what is rejected with
//! 400, and that neither the payload nor the header reaches the logs.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{PREVIOUS_SECRET, Stack, WEBHOOK_SECRET};
use http::StatusCode;
use serde_json::json;
use shared::config::Config;
use shared::state::AppState;
use shared::store::EmbeddedStore;
use stripe_emulator::sign_payload;

/// A marker inside the payload, to find the payload in captured logs.
const PAYLOAD_MARKER: &str = "payload-marker-5d1f";

fn payload() -> String {
    json!({
        "id": "evt_signature_check",
        "object": "event",
        "type": "test.signature_check",
        "livemode": false,
        "data": { "object": { "note": PAYLOAD_MARKER } },
    })
    .to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Returns the hex digest of the `v1` entry of a `t=…,v1=<hex>` header.
fn digest(header: &str) -> String {
    header.split_once(",v1=").expect("v1 entry").1.to_owned()
}

#[tokio::test]
async fn valid_signature_accepted() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    let delivery = stack
        .deliver(
            body.clone(),
            Some(&sign_payload(WEBHOOK_SECRET, now(), body.as_bytes())),
        )
        .await;
    assert_eq!(delivery.status, StatusCode::OK, "{:?}", delivery.body);
    assert_eq!(delivery.body["received"], true);
    assert_eq!(delivery.result(), "ignored");
    assert_eq!(delivery.reason(), "unhandled_event_type");
}

#[tokio::test]
async fn every_configured_secret_accepted() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    let delivery = stack
        .deliver(
            body.clone(),
            Some(&sign_payload(PREVIOUS_SECRET, now(), body.as_bytes())),
        )
        .await;
    assert_eq!(delivery.status, StatusCode::OK, "{:?}", delivery.body);
}

#[tokio::test]
async fn wrong_secret_rejected() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    let delivery = stack
        .deliver(
            body.clone(),
            Some(&sign_payload("whsec_someone_else", now(), body.as_bytes())),
        )
        .await;
    assert_eq!(delivery.status, StatusCode::BAD_REQUEST);
    assert_eq!(delivery.body["code"], "invalid_signature");
    assert!(delivery.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn second_v1_valid_during_rotation() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    let timestamp = now();
    let retired = digest(&sign_payload("whsec_retired", timestamp, body.as_bytes()));
    let current = digest(&sign_payload(WEBHOOK_SECRET, timestamp, body.as_bytes()));
    let header = format!("t={timestamp},v1={retired},v1={current}");
    let delivery = stack.deliver(body, Some(&header)).await;
    assert_eq!(delivery.status, StatusCode::OK, "{:?}", delivery.body);
}

#[tokio::test]
async fn rotation_header_from_emulator_accepted() {
    let stack = Stack::start("embedded").await;
    let account = stack.create_account(false).await;
    let (payload, signature) = stack
        .event(json!({
            "type": "test.rotation",
            "account": account,
            "data_object": { "object": "thing" },
            "extra_signatures": ["0".repeat(64)],
        }))
        .await;
    assert_eq!(signature.matches("v1=").count(), 2, "{signature}");
    assert!(
        signature.contains("v0="),
        "test-mode deliveries carry a decoy v0: {signature}"
    );
    let delivery = stack.deliver(payload, Some(&signature)).await;
    assert_eq!(delivery.status, StatusCode::OK, "{:?}", delivery.body);
}

#[tokio::test]
async fn only_v0_valid_rejected() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    let timestamp = now();
    let valid = digest(&sign_payload(WEBHOOK_SECRET, timestamp, body.as_bytes()));
    let delivery = stack
        .deliver(body.clone(), Some(&format!("t={timestamp},v0={valid}")))
        .await;
    assert_eq!(
        delivery.status,
        StatusCode::BAD_REQUEST,
        "a v0 alone is not a signature"
    );

    let bogus = "0".repeat(64);
    let delivery = stack
        .deliver(body, Some(&format!("t={timestamp},v1={bogus},v0={valid}")))
        .await;
    assert_eq!(
        delivery.status,
        StatusCode::BAD_REQUEST,
        "a valid v0 does not rescue an invalid v1"
    );
}

#[tokio::test]
async fn timestamp_tolerance_enforced() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    for offset in [-301, 301] {
        let header = sign_payload(WEBHOOK_SECRET, now() + offset, body.as_bytes());
        let delivery = stack.deliver(body.clone(), Some(&header)).await;
        assert_eq!(
            delivery.status,
            StatusCode::BAD_REQUEST,
            "offset {offset} s"
        );
        assert_eq!(
            delivery.body["code"], "invalid_signature",
            "offset {offset} s"
        );
    }
    for offset in [-290, 290] {
        let header = sign_payload(WEBHOOK_SECRET, now() + offset, body.as_bytes());
        let delivery = stack.deliver(body.clone(), Some(&header)).await;
        assert_eq!(
            delivery.status,
            StatusCode::OK,
            "offset {offset} s is within the tolerance"
        );
    }
}

#[tokio::test]
async fn altered_body_rejected() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    let header = sign_payload(WEBHOOK_SECRET, now(), body.as_bytes());
    let mut altered = body.into_bytes();
    let last = altered.len() - 2;
    altered[last] ^= 0x01;
    let delivery = stack.deliver(altered, Some(&header)).await;
    assert_eq!(delivery.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reformatted_json_rejected() {
    let stack = Stack::start("embedded").await;
    let body = payload();
    let header = sign_payload(WEBHOOK_SECRET, now(), body.as_bytes());
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    let delivery = stack.deliver(pretty, Some(&header)).await;
    assert_eq!(
        delivery.status,
        StatusCode::BAD_REQUEST,
        "the signature covers the bytes, not the JSON value"
    );
}

#[tokio::test]
async fn missing_signature_rejected() {
    let stack = Stack::start("embedded").await;
    let delivery = stack.deliver(payload(), None).await;
    assert_eq!(delivery.status, StatusCode::BAD_REQUEST);
    assert_eq!(delivery.body["code"], "invalid_signature");
    let delivery = stack.deliver(payload(), Some("garbage")).await;
    assert_eq!(delivery.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn signed_non_event_rejected() {
    let stack = Stack::start("embedded").await;
    for body in ["not json", r#"{"object":"event"}"#, "[1,2]"] {
        let header = sign_payload(WEBHOOK_SECRET, now(), body.as_bytes());
        let delivery = stack.deliver(body, Some(&header)).await;
        assert_eq!(delivery.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(delivery.body["code"], "invalid_event", "{body}");
    }
}

#[tokio::test]
async fn missing_secrets_fail_loudly() {
    let config = Config::from_lookup(|_| None).expect("default configuration");
    let state = AppState::new(Arc::new(EmbeddedStore::in_memory()), config);
    let router = shared::http::with_common_layers(stripe_webhooks::router(state));
    let body = payload();
    let request = http::Request::post("/webhooks/stripe")
        .header(
            "stripe-signature",
            sign_payload(WEBHOOK_SECRET, now(), body.as_bytes()),
        )
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "without secrets nothing can be verified; a 5xx keeps Stripe retrying until they are set"
    );
}

/// A `MakeWriter` that appends every log line to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn logs_omit_payload_and_signature() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let stack = Stack::start("embedded").await;
    let connection = stack.connected_environment(false).await;
    let customer = common::customer_id();
    stack
        .organization(&connection.environment_id, Some(&customer))
        .await;
    stack
        .set_entitlements(&connection.account_id, &customer, &common::lookup_keys(3))
        .await;
    let (summary, summary_signature) = stack.summary_event(&connection.account_id, &customer).await;
    let delivery = stack
        .deliver(summary.clone(), Some(&summary_signature))
        .await;
    assert_eq!(delivery.status, StatusCode::OK, "{:?}", delivery.body);

    let body = payload();
    let valid = sign_payload(WEBHOOK_SECRET, now(), body.as_bytes());
    let forged = sign_payload("whsec_forged", now(), body.as_bytes());
    stack.deliver(body.clone(), Some(&valid)).await;
    stack.deliver(body.clone(), Some(&forged)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("event applied"), "the capture works: {logs}");
    assert!(!logs.contains(PAYLOAD_MARKER), "the payload was logged");
    assert!(
        !logs.contains(r#""object":"event""#),
        "a payload was logged"
    );
    assert!(!logs.contains(&digest(&valid)), "a signature was logged");
    assert!(
        !logs.contains(&digest(&forged)),
        "a forged signature was logged"
    );
    assert!(
        !logs.contains(summary_signature.as_str()),
        "a signature header was logged"
    );
    assert!(
        !logs.contains(WEBHOOK_SECRET),
        "a webhook secret was logged"
    );
    assert!(
        !logs.contains(common::PLATFORM_KEY),
        "the Stripe secret key was logged"
    );
}
