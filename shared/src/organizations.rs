//! Organizations as the WorkOS API sees them: request bodies, rules, and the response object.
//!
//! `stripe_customer_id` links an organization to a Stripe customer (a string), or unlinks it
//! (`null`). A customer links to at most one organization per environment, and a link reads the
//! customer's entitlements before the update returns, so the next token already carries them.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;
use crate::store::{ListQuery, Order, Organization, OrganizationDomain, Page, StoreError};
use crate::validate;

/// How often an update re-reads and retries when a concurrent write changed the organization.
const MAX_UPDATE_ATTEMPTS: usize = 5;
/// Largest page of a list.
pub const MAX_LIST_LIMIT: usize = 100;

/// One entry of `domain_data`.
#[derive(Debug, Clone, Deserialize)]
pub struct DomainData {
    pub domain: String,
    pub state: DomainState,
}

/// The state a caller may give a domain.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DomainState {
    Verified,
    Pending,
}

/// The body of `POST /organizations`.
#[derive(Debug, Deserialize)]
pub struct CreateOrganization {
    pub name: String,
    #[serde(default)]
    pub domain_data: Option<Vec<DomainData>>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// The body of `PUT /organizations/{id}`. An absent key leaves the value alone; `null` clears it.
#[derive(Debug, Default, Deserialize)]
pub struct UpdateOrganization {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub domain_data: Option<Vec<DomainData>>,
    #[serde(default, deserialize_with = "present")]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub metadata: Option<Option<BTreeMap<String, String>>>,
    #[serde(default, deserialize_with = "present")]
    pub stripe_customer_id: Option<Option<String>>,
}

/// Distinguishes a key given as `null` (`Some(None)`) from an absent key (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn domains(data: &[DomainData]) -> Result<Vec<OrganizationDomain>, ApiError> {
    let mut domains: Vec<OrganizationDomain> = Vec::with_capacity(data.len());
    for (index, entry) in data.iter().enumerate() {
        let domain = validate::domain(&format!("domain_data.{index}.domain"), &entry.domain)?;
        if domains.iter().any(|existing| existing.domain == domain) {
            continue;
        }
        let state = match entry.state {
            DomainState::Verified => "verified",
            DomainState::Pending => "pending",
        };
        domains.push(OrganizationDomain {
            id: ids::new_id("org_domain"),
            domain,
            state: state.into(),
        });
    }
    Ok(domains)
}

fn taken(error: StoreError) -> ApiError {
    match error {
        StoreError::Taken {
            field: "stripe_customer_id",
            value,
            owner_id,
        } => ApiError::Conflict {
            code: "stripe_customer_id_already_linked",
            message: format!(
                "Stripe customer '{value}' is already linked to organization '{owner_id}'. Unlink it there first (stripe_customer_id: null)."
            ),
        },
        StoreError::Taken {
            field: "external_id",
            value,
            owner_id,
        } => ApiError::Conflict {
            code: "external_id_already_exists",
            message: format!(
                "An organization with external_id '{value}' already exists: '{owner_id}'."
            ),
        },
        other => other.into(),
    }
}

/// Creates an organization in an environment.
pub async fn create(
    state: &AppState,
    environment_id: &str,
    request: CreateOrganization,
) -> Result<Organization, ApiError> {
    let name = validate::name("name", &request.name)?;
    if let Some(external_id) = &request.external_id {
        validate::external_id(external_id)?;
    }
    let metadata = request.metadata.unwrap_or_default();
    validate::metadata(&metadata)?;

    let id = ids::new_id("org");
    let now = Utc::now();
    let organization = Organization {
        domains: domains(request.domain_data.as_deref().unwrap_or_default())?,
        id,
        environment_id: environment_id.to_owned(),
        name,
        external_id: request.external_id,
        metadata,
        stripe_customer_id: None,
        entitlements: None,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    state
        .store
        .create_organization(&organization)
        .await
        .map_err(taken)?;
    tracing::info!(organization_id = %organization.id, "organization created");
    Ok(organization)
}

/// Reads an organization, or a 404 when it does not exist in this environment.
pub async fn get(
    state: &AppState,
    environment_id: &str,
    id: &str,
) -> Result<Organization, ApiError> {
    state
        .store
        .get_organization(environment_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Organization", id))
}

/// Reads an organization by its external ID, or a 404.
pub async fn get_by_external_id(
    state: &AppState,
    environment_id: &str,
    external_id: &str,
) -> Result<Organization, ApiError> {
    state
        .store
        .get_organization_by_external_id(environment_id, external_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Organization with external_id", external_id))
}

/// Parses the query of `GET /organizations` into a page request.
pub fn list_query(params: &BTreeMap<String, String>) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery::default();
    for (key, value) in params {
        match key.as_str() {
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|limit| (1..=MAX_LIST_LIMIT).contains(limit))
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "limit",
                            "limit_invalid",
                            format!("limit must be a whole number from 1 to {MAX_LIST_LIMIT}."),
                        )
                    })?;
            }
            "order" => {
                query.order = match value.as_str() {
                    "asc" => Order::Asc,
                    "desc" | "normal" => Order::Desc,
                    _ => {
                        return Err(ApiError::invalid_field(
                            "order",
                            "order_invalid",
                            "order must be 'asc' or 'desc'.",
                        ));
                    }
                };
            }
            "before" | "after" => {
                if !ids::is_id(value, "org") {
                    return Err(ApiError::invalid_field(
                        key,
                        &format!("{key}_invalid"),
                        format!(
                            "{key} must be an organization ID such as 'org_01EHZNVPK3SFK441A1RGBFSHRT'."
                        ),
                    ));
                }
                if key == "before" {
                    query.before = Some(value.clone());
                } else {
                    query.after = Some(value.clone());
                }
            }
            "domains" | "domains[]" => {
                return Err(ApiError::invalid_field(
                    "domains",
                    "domains_filter_unsupported",
                    "Filtering organizations by domains is not supported by this service.",
                ));
            }
            _ => {}
        }
    }
    if query.before.is_some() && query.after.is_some() {
        return Err(ApiError::invalid_field(
            "before",
            "before_and_after_exclusive",
            "Pass either before or after, not both.",
        ));
    }
    Ok(query)
}

/// Lists an environment's organizations.
pub async fn list(
    state: &AppState,
    environment_id: &str,
    query: &ListQuery,
) -> Result<Page<Organization>, ApiError> {
    Ok(state
        .store
        .list_organizations(environment_id, query)
        .await?)
}

/// Validates an update before any read, so bad input never costs a request.
fn validate_update(request: &UpdateOrganization) -> Result<(), ApiError> {
    if let Some(name) = &request.name {
        validate::name("name", name)?;
    }
    if let Some(Some(external_id)) = &request.external_id {
        validate::external_id(external_id)?;
    }
    if let Some(Some(metadata)) = &request.metadata {
        validate::metadata(metadata)?;
    }
    if let Some(Some(customer_id)) = &request.stripe_customer_id {
        validate::stripe_customer_id(customer_id)?;
    }
    if let Some(data) = &request.domain_data {
        domains(data)?;
    }
    Ok(())
}

/// Applies an update. Linking a new customer reads its entitlements from Stripe first; when that
/// read fails the link is still saved, without a set, and the next event or link loads it.
pub async fn update(
    state: &AppState,
    environment_id: &str,
    id: &str,
    request: UpdateOrganization,
) -> Result<Organization, ApiError> {
    validate_update(&request)?;

    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let current = get(state, environment_id, id).await?;
        let mut next = current.clone();
        if let Some(name) = &request.name {
            next.name = validate::name("name", name)?;
        }
        if let Some(external_id) = &request.external_id {
            next.external_id = external_id.clone();
        }
        if let Some(metadata) = &request.metadata {
            next.metadata = metadata.clone().unwrap_or_default();
        }
        if let Some(data) = &request.domain_data {
            next.domains = domains(data)?;
        }
        if let Some(customer_id) = &request.stripe_customer_id
            && *customer_id != current.stripe_customer_id
        {
            next.stripe_customer_id = customer_id.clone();
            next.entitlements = match customer_id {
                Some(customer_id) => load_on_link(state, environment_id, id, customer_id).await?,
                None => None,
            };
        }
        next.updated_at = Utc::now();

        if state
            .store
            .replace_organization(&current, &next)
            .await
            .map_err(taken)?
        {
            next.version = current.version + 1;
            if next.stripe_customer_id != current.stripe_customer_id {
                tracing::info!(
                    organization_id = %id,
                    stripe_customer_id = next.stripe_customer_id.as_deref().unwrap_or("none"),
                    entitlements_loaded = next.entitlements.is_some(),
                    "organization's Stripe customer link changed"
                );
            }
            return Ok(next);
        }
        tracing::debug!(organization_id = %id, "organization changed concurrently; retrying update");
    }
    Err(StoreError::Contended {
        entity: "organization",
        id: id.to_owned(),
    }
    .into())
}

async fn load_on_link(
    state: &AppState,
    environment_id: &str,
    organization_id: &str,
    customer_id: &str,
) -> Result<Option<crate::store::EntitlementSet>, ApiError> {
    let Some(environment) = state.store.get_environment(environment_id).await? else {
        return Ok(None);
    };
    let set = state
        .entitlement_loader
        .load_for_link(&environment, customer_id)
        .await;
    if set.is_none() && environment.stripe_connection.is_some() {
        tracing::warn!(
            organization_id,
            stripe_customer_id = customer_id,
            "entitlements not loaded on link; the next event or link attempt loads them"
        );
    }
    Ok(set)
}

/// Deletes an organization with its customer link and entitlements, or a 404.
pub async fn delete(state: &AppState, environment_id: &str, id: &str) -> Result<(), ApiError> {
    if state.store.delete_organization(environment_id, id).await? {
        tracing::info!(organization_id = %id, "organization deleted");
        Ok(())
    } else {
        Err(ApiError::not_found("Organization", id))
    }
}

/// Formats a timestamp as the WorkOS API does: RFC 3339 in UTC with milliseconds.
pub fn timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Renders the WorkOS `organization` object. `stripe_customer_id` is present only when linked.
pub fn to_json(organization: &Organization) -> Value {
    let domains: Vec<Value> = organization
        .domains
        .iter()
        .map(|domain| {
            json!({
                "object": "organization_domain",
                "id": domain.id,
                "domain": domain.domain,
                "organization_id": organization.id,
                "state": domain.state,
                "verification_strategy": "manual",
                "created_at": timestamp(&organization.created_at),
                "updated_at": timestamp(&organization.updated_at),
            })
        })
        .collect();
    let mut body = json!({
        "object": "organization",
        "id": organization.id,
        "name": organization.name,
        "allow_profiles_outside_organization": false,
        "domains": domains,
        "external_id": organization.external_id,
        "metadata": organization.metadata,
        "created_at": timestamp(&organization.created_at),
        "updated_at": timestamp(&organization.updated_at),
    });
    if let Some(customer_id) = &organization.stripe_customer_id {
        body["stripe_customer_id"] = json!(customer_id);
    }
    body
}

/// Renders a page as the WorkOS list object.
pub fn page_to_json(page: &Page<Organization>) -> Value {
    json!({
        "object": "list",
        "data": page.data.iter().map(to_json).collect::<Vec<_>>(),
        "list_metadata": { "before": page.before, "after": page.after },
    })
}
