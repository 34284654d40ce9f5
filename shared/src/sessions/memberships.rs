//! Organization memberships in the WorkOS API: the create body, its rules and the
//! `organization_membership` object.
//!
//! A user has at most one membership per organization (a second is a 409, as in WorkOS). Roles
//! are free-form slugs: this service keeps no role catalogue, so a role grants no permissions and
//! tokens carry `permissions: []`.

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::ids;
use crate::organizations::timestamp;
use crate::state::AppState;
use crate::store::{ContextKeys, Membership, MembershipCreation, Organization};

/// The role of a membership created without one.
pub const DEFAULT_ROLE: &str = "member";
/// Longest accepted role slug, in characters.
pub const MAX_ROLE_SLUG_CHARS: usize = 64;
/// Most role slugs one membership may have.
pub const MAX_ROLE_SLUGS: usize = 20;

/// The body of `POST /user_management/organization_memberships`.
#[derive(Debug, Deserialize)]
pub struct CreateMembership {
    pub user_id: String,
    pub organization_id: String,
    #[serde(default)]
    pub role_slug: Option<String>,
    #[serde(default)]
    pub role_slugs: Option<Vec<String>>,
}

/// Checks a role slug: 1 to [`MAX_ROLE_SLUG_CHARS`] lowercase letters, digits, `-` or `_`.
fn role_slug(field: &str, value: &str) -> Result<String, ApiError> {
    let valid = !value.is_empty()
        && value.len() <= MAX_ROLE_SLUG_CHARS
        && value.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_'
        });
    if valid {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid_field(
            field,
            "role_slug_invalid",
            format!(
                "{field} must be 1 to {MAX_ROLE_SLUG_CHARS} lowercase letters, digits, '-' or '_', such as 'member'."
            ),
        ))
    }
}

fn role_slugs(request: &CreateMembership) -> Result<Vec<String>, ApiError> {
    match (&request.role_slug, &request.role_slugs) {
        (Some(_), Some(_)) => Err(ApiError::invalid_field(
            "role_slugs",
            "role_slug_and_role_slugs_exclusive",
            "Pass either role_slug or role_slugs, not both.",
        )),
        (Some(slug), None) => Ok(vec![role_slug("role_slug", slug)?]),
        (None, Some(slugs)) => {
            if slugs.is_empty() || slugs.len() > MAX_ROLE_SLUGS {
                return Err(ApiError::invalid_field(
                    "role_slugs",
                    "role_slugs_invalid_length",
                    format!("role_slugs must have 1 to {MAX_ROLE_SLUGS} entries."),
                ));
            }
            let mut checked: Vec<String> = Vec::with_capacity(slugs.len());
            for (index, slug) in slugs.iter().enumerate() {
                let slug = role_slug(&format!("role_slugs.{index}"), slug)?;
                if !checked.contains(&slug) {
                    checked.push(slug);
                }
            }
            Ok(checked)
        }
        (None, None) => Ok(vec![DEFAULT_ROLE.to_owned()]),
    }
}

/// Creates a membership. The user and the organization must exist in the environment.
pub async fn create(
    state: &AppState,
    environment_id: &str,
    request: CreateMembership,
) -> Result<(Membership, Organization), ApiError> {
    let roles = role_slugs(&request)?;
    if !ids::is_id(&request.user_id, "user") {
        return Err(ApiError::not_found("User", &request.user_id));
    }
    if !ids::is_id(&request.organization_id, "org") {
        return Err(ApiError::not_found(
            "Organization",
            &request.organization_id,
        ));
    }

    // One batched read finds the user, the organization (for its name) and an existing
    // membership, so the common failures are reported before any write.
    let context = state
        .store
        .read_session_context(&ContextKeys {
            environment_id: environment_id.to_owned(),
            user_id: Some(request.user_id.clone()),
            membership: Some((request.user_id.clone(), request.organization_id.clone())),
            ..ContextKeys::default()
        })
        .await?;
    if context.user.is_none() {
        return Err(ApiError::not_found("User", &request.user_id));
    }
    let Some(organization) = context.organization else {
        return Err(ApiError::not_found(
            "Organization",
            &request.organization_id,
        ));
    };
    if let Some(existing) = context.membership {
        return Err(already_exists(&existing.id));
    }

    let now = Utc::now();
    let membership = Membership {
        id: ids::new_id("om"),
        environment_id: environment_id.to_owned(),
        user_id: request.user_id,
        organization_id: request.organization_id,
        role_slugs: roles,
        created_at: now,
        updated_at: now,
    };
    // The write checks existence again, so a user or organization deleted meanwhile is caught.
    match state.store.create_membership(&membership).await? {
        MembershipCreation::Created => {}
        MembershipCreation::UserNotFound => {
            return Err(ApiError::not_found("User", &membership.user_id));
        }
        MembershipCreation::OrganizationNotFound => {
            return Err(ApiError::not_found(
                "Organization",
                &membership.organization_id,
            ));
        }
        MembershipCreation::AlreadyExists { membership_id } => {
            return Err(already_exists(&membership_id));
        }
    }
    tracing::info!(
        membership_id = %membership.id,
        user_id = %membership.user_id,
        organization_id = %membership.organization_id,
        "organization membership created"
    );
    Ok((membership, organization))
}

fn already_exists(membership_id: &str) -> ApiError {
    ApiError::Conflict {
        code: "organization_membership_already_exists",
        message: format!(
            "The user is already a member of this organization through membership '{membership_id}'."
        ),
    }
}

/// Reads a membership with its organization, or a 404.
pub async fn get(
    state: &AppState,
    environment_id: &str,
    id: &str,
) -> Result<(Membership, Option<Organization>), ApiError> {
    if !ids::is_id(id, "om") {
        return Err(ApiError::not_found("Organization Membership", id));
    }
    let membership = state
        .store
        .get_membership(environment_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Organization Membership", id))?;
    let organization = state
        .store
        .get_organization(environment_id, &membership.organization_id)
        .await?;
    Ok((membership, organization))
}

/// Deletes a membership, or a 404. Sessions scoped to its organization can no longer refresh.
pub async fn delete(state: &AppState, environment_id: &str, id: &str) -> Result<(), ApiError> {
    if !ids::is_id(id, "om") {
        return Err(ApiError::not_found("Organization Membership", id));
    }
    let deleted = state
        .store
        .delete_membership(environment_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Organization Membership", id))?;
    tracing::info!(
        membership_id = %id,
        user_id = %deleted.user_id,
        organization_id = %deleted.organization_id,
        "organization membership deleted"
    );
    Ok(())
}

/// Renders the WorkOS `organization_membership` object.
pub fn to_json(membership: &Membership, organization: Option<&Organization>) -> Value {
    let roles: Vec<Value> = membership
        .role_slugs
        .iter()
        .map(|slug| json!({ "slug": slug }))
        .collect();
    let mut body = json!({
        "object": "organization_membership",
        "id": membership.id,
        "user_id": membership.user_id,
        "organization_id": membership.organization_id,
        "role": { "slug": membership.role() },
        "roles": roles,
        "status": "active",
        "directory_managed": false,
        "custom_attributes": {},
        "created_at": timestamp(&membership.created_at),
        "updated_at": timestamp(&membership.updated_at),
    });
    if let Some(organization) = organization {
        body["organization_name"] = json!(organization.name);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(role_slug: Option<&str>, role_slugs: Option<&[&str]>) -> CreateMembership {
        CreateMembership {
            user_id: "user_1".into(),
            organization_id: "org_1".into(),
            role_slug: role_slug.map(str::to_owned),
            role_slugs: role_slugs.map(|slugs| slugs.iter().map(|slug| slug.to_string()).collect()),
        }
    }

    #[test]
    fn role_defaults_to_member() {
        assert_eq!(
            role_slugs(&request(None, None)).unwrap(),
            vec!["member".to_owned()]
        );
    }

    #[test]
    fn role_slugs_deduplicate_in_order() {
        let roles = role_slugs(&request(None, Some(&["admin", "member", "admin"]))).unwrap();
        assert_eq!(roles, vec!["admin".to_owned(), "member".to_owned()]);
    }

    #[test]
    fn role_slug_rules() {
        assert!(role_slugs(&request(Some("Admin"), None)).is_err());
        assert!(role_slugs(&request(Some(""), None)).is_err());
        assert!(role_slugs(&request(Some("admin"), Some(&["admin"]))).is_err());
        assert!(role_slugs(&request(None, Some(&[]))).is_err());
    }
}
