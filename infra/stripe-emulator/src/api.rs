//! Stripe API routes under `/v1`: authentication with the platform secret
//! key, `Stripe-Account` resolution, active entitlements and customers.
//!
//! Requests without `Stripe-Account` act on the platform's own account. It
//! starts with no customers, so an entitlement list for any customer id
//! returns 404 `resource_missing` there unless a test created that customer
//! on the platform with `POST /v1/customers`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::error::{ApiError, ControlError, unix_now};
use crate::observe::STRIPE_ACCOUNT;
use crate::state::{AccountScope, AppState, Customer, IdempotentResult, Store};
use crate::{CONTROL_PREFIX, ids, objects};

/// Path of the active entitlements list, also returned as the list `url`.
const ACTIVE_ENTITLEMENTS_PATH: &str = "/v1/entitlements/active_entitlements";
const DEFAULT_LIST_LIMIT: i64 = 10;
const MAX_LIST_LIMIT: i64 = 100;
/// The only `expand[]` path supported on the entitlements list.
const EXPAND_FEATURE: &str = "data.feature";

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Builds the `/v1` routes, all behind platform-key authentication.
pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(ACTIVE_ENTITLEMENTS_PATH, get(list_active_entitlements))
        .route("/v1/customers", post(create_customer))
        .route(
            "/v1/customers/{id}",
            get(retrieve_customer).delete(delete_customer),
        )
        .route_layer(middleware::from_fn_with_state(state, authenticate))
}

/// Returns the platform key sent as `Authorization: Bearer <key>` or as the
/// user name of `Authorization: Basic`, or `None` when none was sent.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(STANDARD.decode(credentials).ok()?).ok()?;
        match decoded.split_once(':') {
            Some((user, _password)) => user.to_owned(),
            None => decoded,
        }
    } else {
        return None;
    };
    (!key.is_empty()).then_some(key)
}

/// Checks the platform key and resolves `Stripe-Account` into an
/// [`AccountScope`] request extension.
async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let config = state.config();
    let key = presented_key(request.headers()).ok_or(ApiError::MissingApiKey)?;
    if key != config.platform_secret_key {
        return Err(ApiError::InvalidApiKey {
            redacted_key: ids::redact_key(&key),
        });
    }
    let scope = match request.headers().get(STRIPE_ACCOUNT) {
        None => AccountScope::Platform,
        Some(value) => {
            let account = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
            let connected = state
                .lock()
                .accounts
                .get(&account)
                .is_some_and(|account| account.connected);
            if !connected {
                return Err(ApiError::AccountInvalid {
                    redacted_key: ids::redact_key(&key),
                    account,
                });
            }
            AccountScope::Connected(account)
        }
    };
    request.extensions_mut().insert(scope);
    Ok(next.run(request).await)
}

/// Returns Stripe's "Unrecognized request URL" error for requests that
/// match no route, or a control API error under `/_emulator/`.
pub(crate) async fn unrecognized(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with(CONTROL_PREFIX) {
        return ControlError::NotFound(format!(
            "no control route {method} {}; see the crate README for the routes",
            uri.path()
        ))
        .into_response();
    }
    ApiError::UnrecognizedUrl {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
    .into_response()
}

fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(text).map_err(|error| ApiError::MalformedRequest {
        reason: error.to_string(),
    })
}

/// Validated parameters of `GET /v1/entitlements/active_entitlements`.
#[derive(Debug, PartialEq, Eq)]
struct ListParams {
    customer: String,
    limit: usize,
    cursor: Option<Cursor>,
    expand_feature: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Cursor {
    StartingAfter(String),
    EndingBefore(String),
}

impl ListParams {
    /// Validates the query pairs in Stripe's order of checks. Empty values
    /// count as absent, following Stripe's convention that an empty string
    /// unsets a parameter.
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut customer = None;
        let mut limit = None;
        let mut starting_after = None;
        let mut ending_before = None;
        let mut expand = Vec::new();
        for (key, value) in pairs {
            let value = Some(value.clone()).filter(|value| !value.is_empty());
            match key.as_str() {
                "customer" => customer = value,
                "limit" => limit = value,
                "starting_after" => starting_after = value,
                "ending_before" => ending_before = value,
                _ if is_expand_key(key) => expand.extend(value),
                _ => {
                    return Err(ApiError::ParameterUnknown { param: key.clone() });
                }
            }
        }

        let customer = customer.ok_or_else(|| ApiError::ParameterMissing {
            param: "customer".to_owned(),
        })?;
        let limit = parse_limit(limit.as_deref())?;
        let cursor = match (starting_after, ending_before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::ConflictingParameters {
                    first: "starting_after",
                    second: "ending_before",
                });
            }
            (Some(id), None) => Some(Cursor::StartingAfter(id)),
            (None, Some(id)) => Some(Cursor::EndingBefore(id)),
            (None, None) => None,
        };
        let mut expand_feature = false;
        for path in expand {
            if path != EXPAND_FEATURE {
                return Err(ApiError::CannotExpand { path });
            }
            expand_feature = true;
        }
        Ok(Self {
            customer,
            limit,
            cursor,
            expand_feature,
        })
    }
}

/// Accepts `expand`, `expand[]` and indexed `expand[N]` keys.
fn is_expand_key(key: &str) -> bool {
    key == "expand"
        || key
            .strip_prefix("expand[")
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|index| index.chars().all(|c| c.is_ascii_digit()))
}

fn parse_limit(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = value else {
        return Ok(DEFAULT_LIST_LIMIT as usize);
    };
    let limit: i64 = text.trim().parse().map_err(|_| ApiError::InvalidInteger {
        param: "limit".to_owned(),
        value: text.to_owned(),
    })?;
    if limit < 1 {
        return Err(ApiError::IntegerTooSmall {
            param: "limit".to_owned(),
            min: 1,
        });
    }
    if limit > MAX_LIST_LIMIT {
        return Err(ApiError::IntegerTooLarge {
            param: "limit".to_owned(),
            max: MAX_LIST_LIMIT,
        });
    }
    usize::try_from(limit).map_err(|_| ApiError::IntegerTooLarge {
        param: "limit".to_owned(),
        max: MAX_LIST_LIMIT,
    })
}

/// Returns one page of `items` and whether more items lie beyond it in the
/// paging direction, or `None` when the cursor id is not in `items`.
///
/// `starting_after` selects the items after the cursor. `ending_before`
/// selects the items just before it, still in list order, and `has_more`
/// is then true when more items exist before the first returned one.
fn page<'a, T>(
    items: &'a [T],
    id_of: impl Fn(&T) -> &str,
    cursor: Option<&Cursor>,
    limit: usize,
) -> Option<(&'a [T], bool)> {
    match cursor {
        None => Some((&items[..limit.min(items.len())], items.len() > limit)),
        Some(Cursor::StartingAfter(id)) => {
            let index = items.iter().position(|item| id_of(item) == id)?;
            let rest = &items[index + 1..];
            Some((&rest[..limit.min(rest.len())], rest.len() > limit))
        }
        Some(Cursor::EndingBefore(id)) => {
            let index = items.iter().position(|item| id_of(item) == id)?;
            let before = &items[..index];
            let start = before.len().saturating_sub(limit);
            Some((&before[start..], start > 0))
        }
    }
}

/// `GET /v1/entitlements/active_entitlements`.
async fn list_active_entitlements(
    State(state): State<AppState>,
    Extension(scope): Extension<AccountScope>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = parse_pairs(query.as_deref().unwrap_or_default())?;
    let params = ListParams::parse(&pairs)?;

    let store = state.lock();
    let livemode = store.livemode(&scope, state.config().livemode);
    let customer = store
        .customers(&scope)
        .and_then(|customers| customers.get(&params.customer))
        .filter(|customer| !customer.deleted)
        .ok_or_else(|| ApiError::ResourceMissing {
            resource: "customer",
            id: params.customer.clone(),
            param: "customer",
        })?;

    // An unknown cursor id gets 404 `resource_missing` naming the cursor
    // parameter. A Stripe engineer's reply in github.com/stripe/stripe-node
    // issue 258 shows the body for an unknown `starting_after` ("No such
    // account: …", param `starting_after`) but not its status; 404 is the
    // status Stripe documents for `resource_missing`.
    let (items, has_more) = page(
        &customer.entitlements,
        |entitlement| entitlement.id.as_str(),
        params.cursor.as_ref(),
        params.limit,
    )
    .ok_or_else(|| {
        let (param, id) = match &params.cursor {
            Some(Cursor::EndingBefore(id)) => ("ending_before", id.clone()),
            Some(Cursor::StartingAfter(id)) => ("starting_after", id.clone()),
            None => ("starting_after", String::new()),
        };
        ApiError::ResourceMissing {
            resource: "active entitlement",
            id,
            param,
        }
    })?;

    let data: Vec<Value> = items
        .iter()
        .map(|entitlement| {
            objects::active_entitlement(entitlement, livemode, params.expand_feature)
        })
        .collect();
    Ok(Json(json!({
        "data": data,
        "has_more": has_more,
        "object": "list",
        "url": ACTIVE_ENTITLEMENTS_PATH,
    })))
}

/// Fields accepted by `POST /v1/customers`.
#[derive(Debug, Default)]
struct CustomerParams {
    email: Option<String>,
    name: Option<String>,
    description: Option<String>,
    phone: Option<String>,
    metadata: BTreeMap<String, String>,
}

impl CustomerParams {
    fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut params = Self::default();
        for (key, value) in pairs {
            let text = Some(value.clone()).filter(|value| !value.is_empty());
            match key.as_str() {
                "email" => params.email = text,
                "name" => params.name = text,
                "description" => params.description = text,
                "phone" => params.phone = text,
                // An empty `metadata` unsets all metadata; a new customer has none.
                "metadata" if value.is_empty() => params.metadata.clear(),
                _ => match metadata_key(key) {
                    Some(name) => {
                        if value.is_empty() {
                            params.metadata.remove(name);
                        } else {
                            params.metadata.insert(name.to_owned(), value.clone());
                        }
                    }
                    None => return Err(ApiError::ParameterUnknown { param: key.clone() }),
                },
            }
        }
        Ok(params)
    }
}

/// Returns `k` for a `metadata[k]` form key.
fn metadata_key(key: &str) -> Option<&str> {
    key.strip_prefix("metadata[")
        .and_then(|rest| rest.strip_suffix(']'))
        .filter(|name| !name.is_empty())
}

/// Returns the customers of `scope`, or Stripe's account error when the
/// account disappeared after authentication (a concurrent reset).
fn scope_customers<'a>(
    store: &'a mut Store,
    scope: &AccountScope,
    state: &AppState,
) -> Result<&'a mut std::collections::HashMap<String, Customer>, ApiError> {
    store
        .customers_mut(scope)
        .ok_or_else(|| ApiError::AccountInvalid {
            redacted_key: ids::redact_key(&state.config().platform_secret_key),
            account: match scope {
                AccountScope::Connected(id) => id.clone(),
                AccountScope::Platform => String::new(),
            },
        })
}

/// `POST /v1/customers`, with `Idempotency-Key` replay.
async fn create_customer(
    State(state): State<AppState>,
    Extension(scope): Extension<AccountScope>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body).map_err(|_| ApiError::MalformedRequest {
        reason: "the body is not UTF-8".to_owned(),
    })?;
    let mut pairs = parse_pairs(text)?;
    let params = CustomerParams::parse(&pairs)?;
    pairs.sort();
    let fingerprint = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let idempotency_key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_owned);
    let scope_id = match &scope {
        AccountScope::Platform => String::new(),
        AccountScope::Connected(id) => id.clone(),
    };

    let mut store = state.lock();
    if let Some(key) = &idempotency_key
        && let Some(previous) = store.idempotency.get(&(scope_id.clone(), key.clone()))
    {
        if previous.fingerprint != fingerprint {
            return Err(ApiError::IdempotencyKeyReused { key: key.clone() });
        }
        let mut response = Json(previous.body.clone()).into_response();
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        return Ok(response);
    }

    let livemode = store.livemode(&scope, state.config().livemode);
    let customers = scope_customers(&mut store, &scope, &state)?;
    let mut id = ids::customer_id();
    while customers.contains_key(&id) {
        id = ids::customer_id();
    }
    let customer = Customer {
        id: id.clone(),
        created: unix_now(),
        email: params.email,
        name: params.name,
        description: params.description,
        phone: params.phone,
        metadata: params.metadata,
        invoice_prefix: ids::invoice_prefix(),
        deleted: false,
        entitlements: Vec::new(),
        previous_entitlements: Vec::new(),
    };
    let rendered = objects::customer(&customer, livemode);
    customers.insert(id, customer);
    if let Some(key) = idempotency_key {
        store.idempotency.insert(
            (scope_id, key),
            IdempotentResult {
                fingerprint,
                body: rendered.clone(),
            },
        );
    }
    Ok(Json(rendered).into_response())
}

/// `GET /v1/customers/{id}`; a deleted customer returns the deleted stub.
async fn retrieve_customer(
    State(state): State<AppState>,
    Extension(scope): Extension<AccountScope>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.lock();
    let livemode = store.livemode(&scope, state.config().livemode);
    let customer = store
        .customers(&scope)
        .and_then(|customers| customers.get(&id))
        .ok_or_else(|| missing_customer(&id))?;
    if customer.deleted {
        return Ok(Json(objects::deleted_customer(&customer.id)));
    }
    Ok(Json(objects::customer(customer, livemode)))
}

/// `DELETE /v1/customers/{id}`; also removes the customer's entitlements.
async fn delete_customer(
    State(state): State<AppState>,
    Extension(scope): Extension<AccountScope>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut store = state.lock();
    let customers = scope_customers(&mut store, &scope, &state)?;
    let customer = customers
        .get_mut(&id)
        .filter(|customer| !customer.deleted)
        .ok_or_else(|| missing_customer(&id))?;
    customer.deleted = true;
    customer.previous_entitlements = std::mem::take(&mut customer.entitlements);
    Ok(Json(objects::deleted_customer(&id)))
}

fn missing_customer(id: &str) -> ApiError {
    ApiError::ResourceMissing {
        resource: "customer",
        id: id.to_owned(),
        param: "id",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn list_params_default_limit_is_ten() {
        let params = ListParams::parse(&pairs(&[("customer", "cus_1")]));
        assert_eq!(params.map(|p| p.limit).ok(), Some(10));
    }

    #[test]
    fn list_params_accept_indexed_expand() {
        let params = ListParams::parse(&pairs(&[
            ("customer", "cus_1"),
            ("expand[0]", "data.feature"),
        ]));
        assert_eq!(params.map(|p| p.expand_feature).ok(), Some(true));
    }

    #[test]
    fn list_params_reject_unknown_parameter() {
        let error = ListParams::parse(&pairs(&[("customer", "cus_1"), ("foo", "1")]));
        assert!(matches!(error, Err(ApiError::ParameterUnknown { .. })));
    }

    #[test]
    fn page_ending_before_keeps_list_order() {
        let items: Vec<String> = (0..25).map(|i| format!("ent_{i:02}")).collect();
        let cursor = Cursor::EndingBefore("ent_20".to_owned());
        let (page, has_more) = page(&items, |s| s.as_str(), Some(&cursor), 10).unwrap_or_default();
        assert_eq!(page.first().map(String::as_str), Some("ent_10"));
        assert_eq!(page.last().map(String::as_str), Some("ent_19"));
        assert!(has_more);
    }

    #[test]
    fn page_ending_before_first_page_has_no_more() {
        let items: Vec<String> = (0..25).map(|i| format!("ent_{i:02}")).collect();
        let cursor = Cursor::EndingBefore("ent_10".to_owned());
        let (page, has_more) = page(&items, |s| s.as_str(), Some(&cursor), 10).unwrap_or_default();
        assert_eq!(page.len(), 10);
        assert!(!has_more);
    }

    #[test]
    fn presented_key_reads_basic_user_name() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("sk_test_x:");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}"))
                .unwrap_or(HeaderValue::from_static("")),
        );
        assert_eq!(presented_key(&headers).as_deref(), Some("sk_test_x"));
    }
}
