//! Snapshot webhook events: building the envelope Stripe sends, signing the
//! serialised bytes once, and delivering them to a loopback URL.
//!
//! Delivery makes one attempt, without Stripe's automatic retries, and only
//! to loopback hosts (`127.0.0.0/8`, `::1`, `localhost`) because the
//! emulator never sends traffic off the machine.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::{Host, Url};

use crate::error::{ControlError, unix_now};
use crate::state::AppState;
use crate::{API_VERSION, ids, objects, signature};

/// Default time limit of one delivery attempt.
const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 10_000;
/// Maximum number of response body bytes reported back from a delivery.
const MAX_REPORTED_BODY_BYTES: usize = 64 * 1024;
/// User agent Stripe sends on webhook deliveries.
const STRIPE_USER_AGENT: &str = "Stripe/1.0 (+https://stripe.com/docs/webhooks)";
const STRIPE_SIGNATURE: &str = "Stripe-Signature";

const SUMMARY_UPDATED: &str = "entitlements.active_entitlement_summary.updated";

/// Body of `POST /_emulator/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventRequest {
    #[serde(rename = "type")]
    event_type: String,
    /// Connected account that owns `data.object` (the event's `account`).
    account: String,
    /// Endpoint to deliver to; without it the event is only built and signed.
    url: Option<String>,
    /// Endpoint secret (`whsec_…`) used as the HMAC key.
    secret: String,
    livemode: Option<bool>,
    id: Option<String>,
    created: Option<i64>,
    customer: Option<String>,
    data_object: Option<Value>,
    previous_attributes: Option<Value>,
    api_version: Option<String>,
    /// `t=` of the signature; defaults to the current time.
    signature_timestamp: Option<i64>,
    /// Extra `v1=` values placed before the real signature.
    #[serde(default)]
    extra_signatures: Vec<String>,
    timeout_ms: Option<u64>,
}

/// `data.object`, optional `previous_attributes` and livemode of an event.
struct EventData {
    object: Value,
    previous_attributes: Option<Value>,
    livemode: bool,
}

/// `POST /_emulator/events`: builds, signs and delivers one event.
pub(crate) async fn send_event(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let request: EventRequest = serde_json::from_slice(&body)
        .map_err(|error| ControlError::BadRequest(format!("invalid event request: {error}")))?;
    for extra in &request.extra_signatures {
        if extra.is_empty() || extra.contains([',', '=']) || !extra.is_ascii() {
            return Err(ControlError::BadRequest(format!(
                "extra_signatures entries must be non-empty ASCII without ',' or '=': {extra:?}"
            )));
        }
    }
    let target = match &request.url {
        Some(text) => Some(loopback_url(text)?),
        None => None,
    };

    let data = event_data(&state, &request)?;
    let mut data_json = Map::new();
    data_json.insert("object".into(), data.object);
    if let Some(previous) = data.previous_attributes {
        data_json.insert("previous_attributes".into(), previous);
    }
    let event = json!({
        "account": request.account,
        "api_version": request.api_version.as_deref().unwrap_or(API_VERSION),
        "created": request.created.unwrap_or_else(unix_now),
        "data": data_json,
        "id": request.id.clone().unwrap_or_else(ids::event_id),
        "livemode": data.livemode,
        "object": "event",
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": request.event_type,
    });

    // Serialise once: the signature covers exactly the bytes that are sent.
    let payload = serde_json::to_string(&event).map_err(|error| {
        ControlError::BadRequest(format!("event serialisation failed: {error}"))
    })?;
    let timestamp = request.signature_timestamp.unwrap_or_else(unix_now);
    let stripe_signature = signature::delivery_header(
        &request.secret,
        &request.extra_signatures,
        timestamp,
        payload.as_bytes(),
        data.livemode,
    );

    let delivery = match target {
        Some(url) => {
            let timeout =
                Duration::from_millis(request.timeout_ms.unwrap_or(DEFAULT_DELIVERY_TIMEOUT_MS));
            let outcome = deliver(url, payload.clone(), &stripe_signature, timeout).await;
            tracing::info!(
                event_type = %request.event_type,
                account = %request.account,
                outcome = %outcome_summary(&outcome),
                "event delivered"
            );
            outcome
        }
        None => Value::Null,
    };
    Ok(Json(json!({
        "delivery": delivery,
        "event": event,
        "payload": payload,
        "stripe_signature": stripe_signature,
    })))
}

fn outcome_summary(outcome: &Value) -> String {
    match outcome.get("status") {
        Some(status) => format!("status {status}"),
        None => "connection failed".to_owned(),
    }
}

/// Parses a delivery URL and accepts only `http`/`https` on a loopback host.
fn loopback_url(text: &str) -> Result<Url, ControlError> {
    let url = Url::parse(text)
        .map_err(|error| ControlError::BadRequest(format!("invalid url {text:?}: {error}")))?;
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !matches!(url.scheme(), "http" | "https") || !loopback {
        return Err(ControlError::BadRequest(format!(
            "url {text:?} is not an http(s) URL on a loopback host; the emulator only delivers to this machine"
        )));
    }
    Ok(url)
}

/// Builds `data.object` for the event type from the emulator's state, unless
/// the request supplies `data_object`.
fn event_data(state: &AppState, request: &EventRequest) -> Result<EventData, ControlError> {
    let store = state.lock();
    let account = store.accounts.get(&request.account);
    let livemode = request
        .livemode
        .unwrap_or_else(|| account.map_or(state.config().livemode, |account| account.livemode));
    if let Some(object) = &request.data_object {
        return Ok(EventData {
            object: object.clone(),
            previous_attributes: request.previous_attributes.clone(),
            livemode,
        });
    }

    let event_type = request.event_type.as_str();
    if event_type.starts_with("account.application.") {
        return Ok(EventData {
            object: objects::application(&state.config().client_id),
            previous_attributes: request.previous_attributes.clone(),
            livemode,
        });
    }
    if event_type != SUMMARY_UPDATED && !event_type.starts_with("customer.") {
        return Err(ControlError::BadRequest(format!(
            "data_object is required for event type {event_type}"
        )));
    }

    let customer_id = request.customer.as_deref().ok_or_else(|| {
        ControlError::BadRequest(format!(
            "customer is required for event type {event_type} without data_object"
        ))
    })?;
    let account = account.ok_or_else(|| {
        ControlError::NotFound(format!("account {} does not exist", request.account))
    })?;
    let customer = account.customers.get(customer_id).ok_or_else(|| {
        ControlError::NotFound(format!(
            "customer {customer_id} does not exist on account {}",
            request.account
        ))
    })?;

    if event_type == SUMMARY_UPDATED {
        let previous_attributes = request.previous_attributes.clone().or_else(|| {
            Some(objects::summary_previous_attributes(
                &customer.previous_entitlements,
                livemode,
            ))
        });
        return Ok(EventData {
            object: objects::entitlement_summary(customer_id, &customer.entitlements, livemode),
            previous_attributes,
            livemode,
        });
    }
    Ok(EventData {
        object: objects::customer(customer, livemode),
        previous_attributes: request.previous_attributes.clone(),
        livemode,
    })
}

/// POSTs the payload once and reports `{status, body}` or `{error}`.
async fn deliver(url: Url, payload: String, stripe_signature: &str, timeout: Duration) -> Value {
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "building the webhook HTTP client failed");
            return json!({ "error": format!("building the HTTP client failed: {error}") });
        }
    };
    let sent = client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::USER_AGENT, STRIPE_USER_AGENT)
        .header(STRIPE_SIGNATURE, stripe_signature)
        .body(payload)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = match response.bytes().await {
                Ok(bytes) => {
                    let reported = &bytes[..bytes.len().min(MAX_REPORTED_BODY_BYTES)];
                    String::from_utf8_lossy(reported).into_owned()
                }
                Err(error) => format!("(reading the response body failed: {error})"),
            };
            json!({ "status": status, "body": body })
        }
        Err(error) => {
            tracing::warn!(%error, "webhook delivery failed");
            json!({ "error": error.to_string() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_url_accepts_local_hosts() {
        assert!(loopback_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(loopback_url("http://localhost/hook").is_ok());
        assert!(loopback_url("http://[::1]:9000/hook").is_ok());
    }

    #[test]
    fn loopback_url_rejects_other_hosts() {
        assert!(loopback_url("http://10.0.0.1/hook").is_err());
        assert!(loopback_url("https://example.test/hook").is_err());
        assert!(loopback_url("ftp://127.0.0.1/hook").is_err());
    }
}
