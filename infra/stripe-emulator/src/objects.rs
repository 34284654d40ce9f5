//! JSON renderings of Stripe objects, with the top-level keys of the objects
//! in Stripe's OpenAPI fixtures (`customer`, `deleted_customer`,
//! `entitlements.active_entitlement`, `entitlements.feature`,
//! `entitlements.active_entitlement_summary`, `application`).

use serde_json::{Value, json};

use crate::state::{ActiveEntitlement, Customer};

/// Maximum number of entitlements embedded in a summary object; Stripe
/// documents that consumers must page through the list endpoint for more.
pub(crate) const SUMMARY_EMBEDDED_LIMIT: usize = 10;

/// Renders an `entitlements.active_entitlement`, optionally with `feature`
/// expanded to an `entitlements.feature` object.
pub(crate) fn active_entitlement(
    entitlement: &ActiveEntitlement,
    livemode: bool,
    expand_feature: bool,
) -> Value {
    let feature = if expand_feature {
        feature(entitlement, livemode)
    } else {
        Value::from(entitlement.feature.clone())
    };
    json!({
        "feature": feature,
        "id": entitlement.id,
        "livemode": livemode,
        "lookup_key": entitlement.lookup_key,
        "object": "entitlements.active_entitlement",
    })
}

/// Renders the `entitlements.feature` behind an entitlement. The emulator
/// has no feature catalogue, so the name repeats the lookup key.
pub(crate) fn feature(entitlement: &ActiveEntitlement, livemode: bool) -> Value {
    json!({
        "active": true,
        "id": entitlement.feature,
        "livemode": livemode,
        "lookup_key": entitlement.lookup_key,
        "metadata": {},
        "name": entitlement.lookup_key,
        "object": "entitlements.feature",
    })
}

/// Renders a customer. Fields the emulator does not model carry Stripe's
/// defaults for a new customer.
pub(crate) fn customer(customer: &Customer, livemode: bool) -> Value {
    json!({
        "address": null,
        "balance": 0,
        "created": customer.created,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": customer.description,
        "discount": null,
        "email": customer.email,
        "id": customer.id,
        "invoice_prefix": customer.invoice_prefix,
        "invoice_settings": {
            "custom_fields": null,
            "default_payment_method": null,
            "footer": null,
            "rendering_options": null,
        },
        "livemode": livemode,
        "metadata": customer.metadata,
        "name": customer.name,
        "next_invoice_sequence": 1,
        "object": "customer",
        "phone": customer.phone,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

/// Renders the stub Stripe returns for a deleted customer.
pub(crate) fn deleted_customer(id: &str) -> Value {
    json!({
        "deleted": true,
        "id": id,
        "object": "customer",
    })
}

/// Renders an `entitlements.active_entitlement_summary` with at most
/// [`SUMMARY_EMBEDDED_LIMIT`] embedded entitlements. The list `url` is the
/// one from Stripe's documentation example, not a list endpoint.
pub(crate) fn entitlement_summary(
    customer_id: &str,
    entitlements: &[ActiveEntitlement],
    livemode: bool,
) -> Value {
    json!({
        "customer": customer_id,
        "entitlements": embedded_entitlement_list(customer_id, entitlements, livemode),
        "livemode": livemode,
        "object": "entitlements.active_entitlement_summary",
    })
}

fn embedded_entitlement_list(
    customer_id: &str,
    entitlements: &[ActiveEntitlement],
    livemode: bool,
) -> Value {
    let data: Vec<Value> = entitlements
        .iter()
        .take(SUMMARY_EMBEDDED_LIMIT)
        .map(|entitlement| active_entitlement(entitlement, livemode, false))
        .collect();
    json!({
        "data": data,
        "has_more": entitlements.len() > SUMMARY_EMBEDDED_LIMIT,
        "object": "list",
        "url": format!("/v1/customer/{customer_id}/entitlements"),
    })
}

/// Renders `previous_attributes` of a summary event: the embedded list's
/// `data` before the last change.
pub(crate) fn summary_previous_attributes(previous: &[ActiveEntitlement], livemode: bool) -> Value {
    let data: Vec<Value> = previous
        .iter()
        .take(SUMMARY_EMBEDDED_LIMIT)
        .map(|entitlement| active_entitlement(entitlement, livemode, false))
        .collect();
    json!({ "entitlements": { "data": data } })
}

/// Renders the platform's `application` object, the `data.object` of
/// `account.application.*` events.
pub(crate) fn application(client_id: &str) -> Value {
    json!({
        "id": client_id,
        "name": null,
        "object": "application",
    })
}
