//! Webhook events: envelope shape, signatures checked by an independent
//! verifier in a receiver on 127.0.0.1, and delivery failures.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::common::{CLIENT_ID, Harness, KEY, Reply, fixture, keys, lookup_keys};

const SECRET: &str = "whsec_receiver_secret";
/// Tolerance of the official Stripe libraries, in seconds.
const TOLERANCE_SECONDS: i64 = 300;
const SUMMARY_UPDATED: &str = "entitlements.active_entitlement_summary.updated";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

/// Verifies a `Stripe-Signature` header the way Stripe's libraries do,
/// without using the emulator's code: only `v1` entries count, any matching
/// `v1` is accepted, and `t` must be within the tolerance of `now`.
fn verify(secret: &str, header: &str, payload: &[u8], now: i64) -> Result<(), String> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("malformed item {item:?}"))?;
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|error| format!("bad timestamp: {error}"))?,
                )
            }
            "v1" => candidates.push(value.to_owned()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("no timestamp")?;
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(format!(
            "timestamp {timestamp} outside the {TOLERANCE_SECONDS} s tolerance"
        ));
    }
    let matches = |candidate: &str| {
        let Ok(expected) = hex::decode(candidate) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(payload);
        mac.verify_slice(&expected).is_ok()
    };
    if candidates.iter().any(|candidate| matches(candidate)) {
        Ok(())
    } else {
        Err("no v1 signature matches".to_owned())
    }
}

/// One request seen by the receiver.
#[derive(Clone, Debug)]
struct Received {
    content_type: String,
    signature: String,
    body: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

/// Webhook endpoint on 127.0.0.1. It returns 200 for a valid signature
/// under its secret, and 400 with the reason otherwise.
struct Receiver {
    url: String,
    inbox: Inbox,
    stop: oneshot::Sender<()>,
}

impl Receiver {
    async fn start(secret: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the receiver");
        let url = format!("http://{}/webhook", listener.local_addr().expect("address"));
        let inbox: Inbox = Arc::default();
        let app = Router::new()
            .route("/webhook", post(receive))
            .with_state((secret, inbox.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { url, inbox, stop }
    }

    fn received(&self) -> Vec<Received> {
        self.inbox
            .lock()
            .map(|inbox| inbox.clone())
            .unwrap_or_default()
    }

    fn stop(self) {
        let _ = self.stop.send(());
    }
}

async fn receive(
    State((secret, inbox)): State<(&'static str, Inbox)>,
    headers: HeaderMap,
    body: Bytes,
) -> (axum::http::StatusCode, String) {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let signature = text("stripe-signature");
    if let Ok(mut inbox) = inbox.lock() {
        inbox.push(Received {
            content_type: text("content-type"),
            signature: signature.clone(),
            body: body.to_vec(),
        });
    }
    match verify(secret, &signature, &body, now()) {
        Ok(()) => (axum::http::StatusCode::OK, "verified".to_owned()),
        Err(reason) => (axum::http::StatusCode::BAD_REQUEST, reason),
    }
}

async fn send_event(harness: &Harness, body: Value) -> Reply {
    harness
        .control(Method::POST, "/_emulator/events", Some(body))
        .await
}

#[tokio::test]
async fn summary_event_is_signed_and_delivered() {
    let harness = Harness::start().await;
    let receiver = Receiver::start(SECRET).await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_summary", &lookup_keys(1))
        .await;
    let current = harness
        .set_entitlements(&account, "cus_summary", &lookup_keys(12))
        .await;

    let reply = send_event(
        &harness,
        json!({
            "type": SUMMARY_UPDATED,
            "account": account,
            "customer": "cus_summary",
            "url": receiver.url,
            "secret": SECRET,
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["delivery"]["status"], 200, "{}", reply.body);
    assert_eq!(reply.body["delivery"]["body"], "verified");

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let payload = reply.body["payload"].as_str().unwrap_or_default();
    assert_eq!(received[0].body, payload.as_bytes());
    assert_eq!(received[0].content_type, "application/json; charset=utf-8");
    assert_eq!(
        received[0].signature,
        reply.body["stripe_signature"].as_str().unwrap_or_default()
    );
    let entries: Vec<&str> = received[0].signature.split(',').collect();
    assert!(entries[0].starts_with("t="), "{entries:?}");
    assert_eq!(
        entries
            .iter()
            .filter(|entry| entry.starts_with("v1="))
            .count(),
        1
    );
    assert!(
        entries.last().is_some_and(|entry| entry.starts_with("v0=")),
        "{entries:?}"
    );

    let event: Value = serde_json::from_slice(&received[0].body).expect("JSON payload");
    assert_eq!(event, reply.body["event"]);
    assert_eq!(
        keys(&event),
        keys(&fixture(
            "composed.event.entitlements_summary_updated.connect.json"
        ))
    );
    let mut envelope_keys = keys(&fixture("event.json"));
    envelope_keys.insert("account".to_owned());
    assert_eq!(keys(&event), envelope_keys);
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], SUMMARY_UPDATED);
    assert_eq!(event["account"], account.as_str());
    assert_eq!(event["api_version"], "2026-09-30.endive");
    assert_eq!(event["pending_webhooks"], 1);
    assert_eq!(event["livemode"], false);
    assert_eq!(
        event["request"],
        json!({ "id": null, "idempotency_key": null })
    );
    assert!(
        event["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("evt_"))
    );
    assert!(event["created"].is_i64());

    let summary = &event["data"]["object"];
    let summary_fixture = fixture("entitlements.active_entitlement_summary.json");
    assert_eq!(keys(summary), keys(&summary_fixture));
    assert_eq!(
        keys(&summary["entitlements"]),
        keys(&summary_fixture["entitlements"])
    );
    assert_eq!(summary["customer"], "cus_summary");
    assert_eq!(summary["object"], "entitlements.active_entitlement_summary");
    let embedded = summary["entitlements"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(embedded.len(), 10);
    assert_eq!(
        keys(&embedded[0]),
        keys(&fixture("entitlements.active_entitlement.json"))
    );
    let embedded_ids: Vec<&str> = embedded
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect();
    assert_eq!(
        embedded_ids,
        current[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(summary["entitlements"]["has_more"], true);
    assert_eq!(
        summary["entitlements"]["url"],
        "/v1/customer/cus_summary/entitlements"
    );
    let previous = &event["data"]["previous_attributes"]["entitlements"]["data"];
    assert_eq!(previous.as_array().map(Vec::len), Some(1), "{previous}");

    receiver.stop();
    harness.shutdown().await;
}

#[tokio::test]
async fn deauthorized_event_carries_application() {
    let harness = Harness::start().await;
    let receiver = Receiver::start(SECRET).await;
    let reply = send_event(
        &harness,
        json!({
            "type": "account.application.deauthorized",
            "account": "acct_gone",
            "url": receiver.url,
            "secret": SECRET,
            "id": "evt_fixed",
            "created": 1_700_000_000,
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["delivery"]["status"], 200, "{}", reply.body);

    let event = &reply.body["event"];
    assert_eq!(event["id"], "evt_fixed");
    assert_eq!(event["created"], 1_700_000_000);

    let application = &event["data"]["object"];
    assert_eq!(keys(application), keys(&fixture("application.json")));
    assert_eq!(application["id"], CLIENT_ID);
    assert_eq!(application["object"], "application");
    assert_eq!(application["name"], Value::Null);
    assert!(
        event["data"].get("previous_attributes").is_none(),
        "{event}"
    );
    receiver.stop();
    harness.shutdown().await;
}

#[tokio::test]
async fn customer_deleted_event_carries_customer() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    harness
        .set_entitlements(&account, "cus_gone", &lookup_keys(1))
        .await;
    let deleted = harness
        .http
        .delete(harness.url("/v1/customers/cus_gone"))
        .bearer_auth(KEY)
        .header("Stripe-Account", &account)
        .send()
        .await
        .expect("delete request");
    assert_eq!(deleted.status(), StatusCode::OK);

    let reply = send_event(
        &harness,
        json!({
            "type": "customer.deleted",
            "account": account,
            "customer": "cus_gone",
            "secret": SECRET,
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let customer = &reply.body["event"]["data"]["object"];
    assert_eq!(keys(customer), keys(&fixture("customer.json")));
    assert_eq!(customer["id"], "cus_gone");
    assert_eq!(reply.body["delivery"], Value::Null);
    harness.shutdown().await;
}

#[tokio::test]
async fn receiver_enforces_timestamp_tolerance() {
    let harness = Harness::start().await;
    let receiver = Receiver::start(SECRET).await;
    let application_event = |timestamp: i64| {
        json!({
            "type": "account.application.deauthorized",
            "account": "acct_1",
            "url": receiver.url,
            "secret": SECRET,
            "signature_timestamp": timestamp,
        })
    };
    let stale = send_event(&harness, application_event(now() - TOLERANCE_SECONDS - 60)).await;
    assert_eq!(stale.body["delivery"]["status"], 400, "{}", stale.body);
    assert!(
        stale.body["delivery"]["body"]
            .as_str()
            .is_some_and(|body| body.contains("tolerance")),
        "{}",
        stale.body
    );
    let recent = send_event(&harness, application_event(now() - 200)).await;
    assert_eq!(recent.body["delivery"]["status"], 200, "{}", recent.body);
    receiver.stop();
    harness.shutdown().await;
}

#[tokio::test]
async fn receiver_rejects_wrong_secret() {
    let harness = Harness::start().await;
    let receiver = Receiver::start(SECRET).await;
    let reply = send_event(
        &harness,
        json!({
            "type": "account.application.deauthorized",
            "account": "acct_1",
            "url": receiver.url,
            "secret": "whsec_some_other_secret",
        }),
    )
    .await;
    assert_eq!(reply.body["delivery"]["status"], 400, "{}", reply.body);
    assert_eq!(reply.body["delivery"]["body"], "no v1 signature matches");
    receiver.stop();
    harness.shutdown().await;
}

#[tokio::test]
async fn extra_signatures_precede_the_valid_one() {
    let harness = Harness::start().await;
    let receiver = Receiver::start(SECRET).await;
    let bogus = "ab".repeat(32);
    let reply = send_event(
        &harness,
        json!({
            "type": "account.application.deauthorized",
            "account": "acct_1",
            "url": receiver.url,
            "secret": SECRET,
            "extra_signatures": [bogus],
        }),
    )
    .await;
    assert_eq!(reply.body["delivery"]["status"], 200, "{}", reply.body);
    let header = reply.body["stripe_signature"].as_str().unwrap_or_default();
    let v1: Vec<&str> = header
        .split(',')
        .filter_map(|entry| entry.strip_prefix("v1="))
        .collect();
    assert_eq!(v1.len(), 2, "{header}");
    assert_eq!(v1[0], bogus);
    receiver.stop();
    harness.shutdown().await;
}

#[tokio::test]
async fn livemode_event_has_no_v0() {
    let harness = Harness::start().await;
    let reply = send_event(
        &harness,
        json!({
            "type": "account.application.deauthorized",
            "account": "acct_1",
            "secret": SECRET,
            "livemode": true,
        }),
    )
    .await;
    let header = reply.body["stripe_signature"].as_str().unwrap_or_default();
    assert!(!header.contains("v0="), "{header}");
    assert_eq!(reply.body["event"]["livemode"], true);
    let payload = reply.body["payload"].as_str().unwrap_or_default();
    assert_eq!(verify(SECRET, header, payload.as_bytes(), now()), Ok(()));
    harness.shutdown().await;
}

#[tokio::test]
async fn unreachable_url_reports_delivery_error() {
    let harness = Harness::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let reply = send_event(
        &harness,
        json!({
            "type": "account.application.deauthorized",
            "account": "acct_1",
            "url": format!("http://{address}/webhook"),
            "secret": SECRET,
        }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply.body["delivery"]["error"].is_string(),
        "{}",
        reply.body
    );
    assert!(
        reply.body["delivery"].get("status").is_none(),
        "{}",
        reply.body
    );
    harness.shutdown().await;
}

#[tokio::test]
async fn invalid_event_requests_are_rejected() {
    let harness = Harness::start().await;
    let account = harness.create_account().await;
    let cases = [
        (
            json!({ "type": "account.application.deauthorized", "account": "acct_1", "secret": SECRET, "url": "http://10.1.2.3/webhook" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "type": "invoice.paid", "account": account, "secret": SECRET }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "type": SUMMARY_UPDATED, "account": account, "secret": SECRET }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "type": SUMMARY_UPDATED, "account": account, "customer": "cus_none", "secret": SECRET }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "type": SUMMARY_UPDATED, "account": account, "secret": SECRET, "colour": "blue" }),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, status) in cases {
        let reply = send_event(&harness, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert!(reply.body["error"].is_string(), "{body}: {}", reply.body);
    }
    harness.shutdown().await;
}

#[tokio::test]
async fn sign_payload_matches_independent_verifier() {
    let payload = br#"{"id":"evt_1","object":"event"}"#;
    let timestamp = now();
    let header = stripe_emulator::sign_payload(SECRET, timestamp, payload);
    assert!(
        header.starts_with(&format!("t={timestamp},v1=")),
        "{header}"
    );
    assert_eq!(verify(SECRET, &header, payload, timestamp), Ok(()));
    assert!(verify("whsec_other", &header, payload, timestamp).is_err());
    assert!(verify(SECRET, &header, b"{}", timestamp).is_err());
    assert!(verify(SECRET, &header, payload, timestamp + TOLERANCE_SECONDS + 1).is_err());
}
