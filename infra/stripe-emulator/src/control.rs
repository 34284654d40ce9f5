//! Control API for tests, under `/_emulator/`: JSON in and out, no
//! authentication. Errors return `{"error": "<message>"}` with 400 or 404.
//!
//! | Route | Body | Effect and response |
//! |---|---|---|
//! | `POST /_emulator/reset` | – | Clears all state. `{}` |
//! | `POST /_emulator/accounts` | `{id?, livemode?}` | Creates a connected account, or reconnects an existing one. `{id, livemode, connected}` |
//! | `GET /_emulator/accounts/{acct}` | – | `{id, livemode, connected, customers}` (customer ids, sorted) |
//! | `POST /_emulator/accounts/{acct}/disconnect` | – | Revokes the connection; later API calls with this `Stripe-Account` get 403 `account_invalid`. `{id, livemode, connected}` |
//! | `PUT /_emulator/accounts/{acct}/customers/{cus}/entitlements` | `{lookup_keys: [..]}` | Replaces the customer's active entitlements, in the given order, creating the customer if absent. Ids are stable per lookup key. `{customer, entitlements}` |
//! | `PUT /_emulator/oauth/preset_account` | `{id}` | The next approved authorization without `stripe_user_account` connects this account. `{id}` |
//! | `DELETE /_emulator/oauth/preset_account` | – | Clears the preset. `{}` |
//! | `POST /_emulator/oauth/expire_codes` | – | Expires every issued authorization code. `{expired}` |
//! | `POST /_emulator/failures` | `{path_prefix, status?, count, delay_ms?, stripe_should_retry?, rate_limited_reason?}` | The next `count` API/OAuth requests whose path starts with `path_prefix` wait `delay_ms`, then get `status` with Stripe's error body (429 adds `Stripe-Rate-Limited-Reason`, default `global-rate`). Status 200 or absent: delay only. Returns the rule. |
//! | `GET /_emulator/failures` | – | `{failures}`: rules with uses left |
//! | `DELETE /_emulator/failures` | – | Removes all rules. `{}` |
//! | `GET /_emulator/requests` | – | `{requests}`: the API/OAuth request log, oldest first |
//! | `DELETE /_emulator/requests` | – | Clears the log. `{}` |
//! | `POST /_emulator/events` | see below | Builds, signs and delivers one event. `{event, payload, stripe_signature, delivery}` |
//!
//! Request log entries contain `seq`, `method`, `path`, `query`,
//! `query_params`, `stripe_account`, `stripe_version`, `authorization` (the
//! scheme only), `idempotency_key` (presence), `form_fields` (names only),
//! `status` and `injected`. Values of `code`, `client_secret`,
//! `refresh_token` and `access_token` query parameters are redacted.
//!
//! `POST /_emulator/events` takes `{type, account, secret, url?, livemode?,
//! id?, created?, customer?, data_object?, previous_attributes?,
//! api_version?, signature_timestamp?, extra_signatures?, timeout_ms?}`.
//! Without `data_object`, `data.object` is the customer's entitlement summary
//! for `entitlements.active_entitlement_summary.updated` (with
//! `previous_attributes` from before the last entitlement change), the
//! `application` object for `account.application.*`, and the customer for
//! `customer.*`. `extra_signatures` are literal `v1=` values placed before
//! the real one. `delivery` is `{status, body}`, `{error}` when the POST
//! failed, or null without `url`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{ControlError, unix_now};
use crate::events::send_event;
use crate::state::{
    Account, AccountScope, ActiveEntitlement, AppState, Customer, FailureRule, Store,
};
use crate::{ids, objects};

/// Maximum length of a lookup key, as Stripe limits feature lookup keys.
const MAX_LOOKUP_KEY_LEN: usize = 80;

/// Builds the `/_emulator` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/accounts", post(create_account))
        .route("/_emulator/accounts/{account}", get(get_account))
        .route(
            "/_emulator/accounts/{account}/disconnect",
            post(disconnect_account),
        )
        .route(
            "/_emulator/accounts/{account}/customers/{customer}/entitlements",
            put(replace_entitlements),
        )
        .route(
            "/_emulator/oauth/preset_account",
            put(set_preset_account).delete(clear_preset_account),
        )
        .route("/_emulator/oauth/expire_codes", post(expire_codes))
        .route(
            "/_emulator/failures",
            post(add_failure).get(list_failures).delete(clear_failures),
        )
        .route(
            "/_emulator/requests",
            get(list_requests).delete(clear_requests),
        )
        .route("/_emulator/events", post(send_event))
}

/// Parses a JSON body; an empty body counts as `{}`.
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ControlError> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(text)
        .map_err(|error| ControlError::BadRequest(format!("invalid JSON body: {error}")))
}

/// Checks an object id: the expected prefix, then ASCII letters, digits and `_`.
fn check_id(id: &str, prefix: &str) -> Result<(), ControlError> {
    let valid = id.len() > prefix.len()
        && id.starts_with(prefix)
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ControlError::BadRequest(format!(
            "invalid id {id:?}: expected {prefix} followed by letters, digits or _"
        )))
    }
}

fn account_json(id: &str, account: &Account) -> Value {
    json!({ "id": id, "livemode": account.livemode, "connected": account.connected })
}

async fn reset(State(state): State<AppState>) -> Json<Value> {
    *state.lock() = Store::default();
    tracing::info!("state reset");
    Json(json!({}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    id: Option<String>,
    livemode: Option<bool>,
}

async fn create_account(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let request: CreateAccount = parse_body(&body)?;
    if let Some(id) = &request.id {
        check_id(id, "acct_")?;
    }
    let livemode = request.livemode.unwrap_or(state.config().livemode);
    let mut store = state.lock();
    let id = match request.id {
        Some(id) => id,
        None => {
            let mut id = ids::account_id();
            while store.accounts.contains_key(&id) {
                id = ids::account_id();
            }
            id
        }
    };
    let account = store
        .accounts
        .entry(id.clone())
        .or_insert_with(|| Account::new(livemode));
    account.connected = true;
    account.livemode = livemode;
    Ok(Json(account_json(&id, account)))
}

async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    let store = state.lock();
    let account = store
        .accounts
        .get(&id)
        .ok_or_else(|| ControlError::NotFound(format!("account {id} does not exist")))?;
    let mut customers: Vec<&String> = account.customers.keys().collect();
    customers.sort();
    let mut body = account_json(&id, account);
    body["customers"] = json!(customers);
    Ok(Json(body))
}

async fn disconnect_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    let mut store = state.lock();
    if !store.revoke_connection(&id) {
        return Err(ControlError::NotFound(format!(
            "account {id} does not exist"
        )));
    }
    tracing::info!(account = %id, "account disconnected through the control API");
    let account = store
        .accounts
        .get(&id)
        .ok_or_else(|| ControlError::NotFound(format!("account {id} does not exist")))?;
    Ok(Json(account_json(&id, account)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceEntitlements {
    lookup_keys: Vec<String>,
}

fn check_lookup_keys(keys: &[String]) -> Result<(), ControlError> {
    for (index, key) in keys.iter().enumerate() {
        if key.is_empty() || key.chars().count() > MAX_LOOKUP_KEY_LEN {
            return Err(ControlError::BadRequest(format!(
                "lookup key {key:?} must have 1 to {MAX_LOOKUP_KEY_LEN} characters"
            )));
        }
        if keys[..index].contains(key) {
            return Err(ControlError::BadRequest(format!(
                "lookup key {key:?} appears more than once"
            )));
        }
    }
    Ok(())
}

async fn replace_entitlements(
    State(state): State<AppState>,
    Path((account_id, customer_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let request: ReplaceEntitlements = parse_body(&body)?;
    check_id(&customer_id, "cus_")?;
    check_lookup_keys(&request.lookup_keys)?;

    let mut store = state.lock();
    let scope = AccountScope::Connected(account_id.clone());
    let livemode = store.livemode(&scope, state.config().livemode);
    let customers = store
        .customers_mut(&scope)
        .ok_or_else(|| ControlError::NotFound(format!("account {account_id} does not exist")))?;
    let customer = customers
        .entry(customer_id.clone())
        .or_insert_with(|| Customer {
            id: customer_id.clone(),
            created: unix_now(),
            email: None,
            name: None,
            description: None,
            phone: None,
            metadata: Default::default(),
            invoice_prefix: ids::invoice_prefix(),
            deleted: false,
            entitlements: Vec::new(),
            previous_entitlements: Vec::new(),
        });
    if customer.deleted {
        return Err(ControlError::BadRequest(format!(
            "customer {customer_id} was deleted; use another customer id"
        )));
    }
    let entitlements: Vec<ActiveEntitlement> = request
        .lookup_keys
        .iter()
        .map(|key| ActiveEntitlement {
            id: ids::entitlement_id(livemode, &account_id, &customer_id, key),
            feature: ids::feature_id(livemode, &account_id, key),
            lookup_key: key.clone(),
        })
        .collect();
    customer.previous_entitlements = std::mem::replace(&mut customer.entitlements, entitlements);
    let rendered: Vec<Value> = customer
        .entitlements
        .iter()
        .map(|entitlement| objects::active_entitlement(entitlement, livemode, false))
        .collect();
    Ok(Json(
        json!({ "customer": customer_id, "entitlements": rendered }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetAccount {
    id: String,
}

async fn set_preset_account(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let request: PresetAccount = parse_body(&body)?;
    check_id(&request.id, "acct_")?;
    state.lock().preset_account = Some(request.id.clone());
    Ok(Json(json!({ "id": request.id })))
}

async fn clear_preset_account(State(state): State<AppState>) -> Json<Value> {
    state.lock().preset_account = None;
    Json(json!({}))
}

async fn expire_codes(State(state): State<AppState>) -> Json<Value> {
    let mut store = state.lock();
    let mut expired = 0;
    for code in store.codes.values_mut() {
        if !code.used && !code.force_expired {
            code.force_expired = true;
            expired += 1;
        }
    }
    Json(json!({ "expired": expired }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddFailure {
    path_prefix: String,
    status: Option<u16>,
    count: u32,
    delay_ms: Option<u64>,
    stripe_should_retry: Option<bool>,
    rate_limited_reason: Option<String>,
}

async fn add_failure(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<FailureRule>, ControlError> {
    let request: AddFailure = parse_body(&body)?;
    if !request.path_prefix.starts_with('/') {
        return Err(ControlError::BadRequest(format!(
            "path_prefix {:?} must start with /",
            request.path_prefix
        )));
    }
    let status = request.status.unwrap_or(200);
    if status != 200 && !(400..=599).contains(&status) {
        return Err(ControlError::BadRequest(format!(
            "status {status} must be 200 (delay only) or between 400 and 599"
        )));
    }
    if request.count == 0 {
        return Err(ControlError::BadRequest("count must be at least 1".into()));
    }
    if let Some(reason) = &request.rate_limited_reason
        && (reason.is_empty() || !reason.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ControlError::BadRequest(format!(
            "rate_limited_reason {reason:?} must be a non-empty header token"
        )));
    }
    let rule = FailureRule {
        path_prefix: request.path_prefix,
        status,
        remaining: request.count,
        delay_ms: request.delay_ms.unwrap_or(0),
        stripe_should_retry: request.stripe_should_retry,
        rate_limited_reason: request.rate_limited_reason,
    };
    state.lock().failures.push(rule.clone());
    Ok(Json(rule))
}

async fn list_failures(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "failures": state.lock().failures }))
}

async fn clear_failures(State(state): State<AppState>) -> Json<Value> {
    state.lock().failures.clear();
    Json(json!({}))
}

async fn list_requests(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "requests": state.lock().requests }))
}

async fn clear_requests(State(state): State<AppState>) -> Json<Value> {
    state.lock().requests.clear();
    Json(json!({}))
}
