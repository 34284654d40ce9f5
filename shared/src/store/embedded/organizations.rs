//! Organizations in the embedded store, with the same claim items as on DynamoDB.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{EmbeddedStore, Items, Write, key, to_value};
use crate::store::keys;
use crate::store::{ListQuery, Organization, OrganizationStore, Page, StoreError, StoreResult};

#[derive(Serialize, Deserialize)]
struct Claim {
    organization_id: String,
}

fn claims(organization: &Organization) -> Vec<(&'static str, String, String)> {
    let mut claims = Vec::new();
    if let Some(external_id) = &organization.external_id {
        claims.push((
            "external_id",
            external_id.clone(),
            keys::external_id_sort(external_id),
        ));
    }
    if let Some(customer_id) = &organization.stripe_customer_id {
        claims.push((
            "stripe_customer_id",
            customer_id.clone(),
            keys::customer_sort(customer_id),
        ));
    }
    claims
}

/// Fails with [`StoreError::Taken`] when a claim of `organization` belongs to another one.
fn check_claims_free(items: &Items, organization: &Organization) -> StoreResult<()> {
    let partition = keys::environment_partition(&organization.environment_id);
    for (field, value, sort_key) in claims(organization) {
        let existing: Option<Claim> = items.get(&partition, &sort_key)?;
        if let Some(existing) = existing
            && existing.organization_id != organization.id
        {
            return Err(StoreError::Taken {
                field,
                value,
                owner_id: existing.organization_id,
            });
        }
    }
    Ok(())
}

fn claim_writes(organization: &Organization) -> StoreResult<Vec<Write>> {
    let partition = keys::environment_partition(&organization.environment_id);
    claims(organization)
        .into_iter()
        .map(|(_, _, sort_key)| {
            let claim = to_value(&Claim {
                organization_id: organization.id.clone(),
            })?;
            Ok(Write::Put(key(partition.clone(), sort_key), claim))
        })
        .collect()
}

#[async_trait]
impl OrganizationStore for EmbeddedStore {
    async fn create_organization(&self, organization: &Organization) -> StoreResult<()> {
        let mut items = self.items();
        let partition = keys::environment_partition(&organization.environment_id);
        let sort_key = keys::organization_sort(&organization.id);
        if items.raw(&partition, &sort_key).is_some() {
            return Err(StoreError::Contended {
                entity: "organization",
                id: organization.id.clone(),
            });
        }
        check_claims_free(&items, organization)?;
        let mut writes = vec![Write::Put(
            key(partition, sort_key),
            to_value(organization)?,
        )];
        writes.extend(claim_writes(organization)?);
        items.commit(writes)
    }

    async fn get_organization(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Organization>> {
        self.items().get(
            &keys::environment_partition(environment_id),
            &keys::organization_sort(id),
        )
    }

    async fn get_organization_by_external_id(
        &self,
        environment_id: &str,
        external_id: &str,
    ) -> StoreResult<Option<Organization>> {
        let items = self.items();
        let partition = keys::environment_partition(environment_id);
        let claim: Option<Claim> = items.get(&partition, &keys::external_id_sort(external_id))?;
        let Some(claim) = claim else {
            return Ok(None);
        };
        items.get(&partition, &keys::organization_sort(&claim.organization_id))
    }

    async fn list_organizations(
        &self,
        environment_id: &str,
        query: &ListQuery,
    ) -> StoreResult<Page<Organization>> {
        let start_after = query.cursor().map(keys::organization_sort);
        let organizations: Vec<Organization> = self.items().query(
            &keys::environment_partition(environment_id),
            keys::ORGANIZATION_PREFIX,
            query.scan_ascending(),
            start_after.as_deref(),
            query.limit + 1,
        )?;
        Ok(query.finish_page(organizations, |organization| &organization.id))
    }

    async fn replace_organization(
        &self,
        current: &Organization,
        updated: &Organization,
    ) -> StoreResult<bool> {
        let mut items = self.items();
        let partition = keys::environment_partition(&current.environment_id);
        let sort_key = keys::organization_sort(&current.id);
        let stored: Option<Organization> = items.get(&partition, &sort_key)?;
        if stored.is_none_or(|stored| stored.version != current.version) {
            return Ok(false);
        }
        let mut next = updated.clone();
        next.version = current.version + 1;
        check_claims_free(&items, &next)?;

        let kept: Vec<String> = claims(&next).into_iter().map(|(_, _, sort)| sort).collect();
        let mut writes: Vec<Write> = claims(current)
            .into_iter()
            .filter(|(_, _, sort)| !kept.contains(sort))
            .map(|(_, _, sort)| Write::Delete(key(partition.clone(), sort)))
            .collect();
        writes.extend(claim_writes(&next)?);
        writes.push(Write::Put(key(partition, sort_key), to_value(&next)?));
        items.commit(writes)?;
        Ok(true)
    }

    async fn delete_organization(&self, environment_id: &str, id: &str) -> StoreResult<bool> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        let sort_key = keys::organization_sort(id);
        let Some(current) = items.get::<Organization>(&partition, &sort_key)? else {
            return Ok(false);
        };
        let mut writes: Vec<Write> = claims(&current)
            .into_iter()
            .map(|(_, _, sort)| Write::Delete(key(partition.clone(), sort)))
            .collect();
        writes.push(Write::Delete(key(partition, sort_key)));
        items.commit(writes)?;
        Ok(true)
    }
}
