//! Organizations on DynamoDB. An organization item lives in its environment's partition; its
//! external ID and Stripe customer are claimed by separate items in the same partition, written in
//! the same transaction, so two organizations can never hold the same one.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use serde::{Deserialize, Serialize};

use super::{
    DynamoStore, Item, backend, cancellation_reasons, condition_failed, from_item, number, string,
    string_attribute, to_item,
};
use crate::store::keys::{self, PK, SK};
use crate::store::{ListQuery, Organization, OrganizationStore, Page, StoreError, StoreResult};

/// The item that claims a unique value for one organization.
#[derive(Serialize, Deserialize)]
struct Claim {
    organization_id: String,
}

/// A unique value of an organization and the sort key of its claim.
struct ClaimKey {
    field: &'static str,
    value: String,
    sort_key: String,
}

fn claims(organization: &Organization) -> Vec<ClaimKey> {
    let mut claims = Vec::new();
    if let Some(external_id) = &organization.external_id {
        claims.push(ClaimKey {
            field: "external_id",
            value: external_id.clone(),
            sort_key: keys::external_id_sort(external_id),
        });
    }
    if let Some(customer_id) = &organization.stripe_customer_id {
        claims.push(ClaimKey {
            field: "stripe_customer_id",
            value: customer_id.clone(),
            sort_key: keys::customer_sort(customer_id),
        });
    }
    claims
}

/// What a failed transaction step stands for.
enum Step {
    Organization,
    ClaimPut { field: &'static str, value: String },
    ClaimDelete,
}

impl DynamoStore {
    fn claim_put(
        &self,
        partition: &str,
        claim: &ClaimKey,
        organization_id: &str,
    ) -> StoreResult<TransactWriteItem> {
        let item = to_item(
            partition,
            &claim.sort_key,
            &Claim {
                organization_id: organization_id.to_owned(),
            },
        )?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR organization_id = :organization")
            .expression_attribute_values(":organization", string(organization_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn claim_delete(
        &self,
        partition: &str,
        claim: &ClaimKey,
        organization_id: &str,
    ) -> StoreResult<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, string(partition))
            .key(SK, string(&claim.sort_key))
            .condition_expression("attribute_not_exists(pk) OR organization_id = :organization")
            .expression_attribute_values(":organization", string(organization_id))
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Runs a transaction. Returns `Ok(false)` when the organization step's condition failed or the
    /// transaction conflicted with another, and [`StoreError::Taken`] when a claim belongs to
    /// another organization.
    async fn run_organization_transaction(
        &self,
        steps: Vec<(Step, TransactWriteItem)>,
    ) -> StoreResult<bool> {
        let (meanings, items): (Vec<Step>, Vec<TransactWriteItem>) = steps.into_iter().unzip();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let Err(error) = result else {
            return Ok(true);
        };
        let Some(reasons) = cancellation_reasons(&error) else {
            return Err(backend(error));
        };
        for (reason, step) in reasons.iter().zip(&meanings) {
            if !condition_failed(reason) {
                continue;
            }
            match step {
                Step::Organization | Step::ClaimDelete => return Ok(false),
                Step::ClaimPut { field, value } => {
                    let owner_id = reason
                        .item()
                        .and_then(|item| string_attribute(item, "organization_id"))
                        .unwrap_or_default();
                    return Err(StoreError::Taken {
                        field,
                        value: value.clone(),
                        owner_id,
                    });
                }
            }
        }
        // Cancelled without a failed condition: a conflict with a concurrent transaction.
        Ok(false)
    }

    async fn read_organization(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Organization>> {
        let item = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::organization_sort(id),
            )
            .await?;
        item.map(from_item).transpose()
    }
}

#[async_trait]
impl OrganizationStore for DynamoStore {
    async fn create_organization(&self, organization: &Organization) -> StoreResult<()> {
        let partition = keys::environment_partition(&organization.environment_id);
        let item = to_item(
            &partition,
            &keys::organization_sort(&organization.id),
            organization,
        )?;
        let mut steps = vec![(Step::Organization, self.put_new(item)?)];
        for claim in claims(organization) {
            let put = self.claim_put(&partition, &claim, &organization.id)?;
            steps.push((
                Step::ClaimPut {
                    field: claim.field,
                    value: claim.value,
                },
                put,
            ));
        }
        if self.run_organization_transaction(steps).await? {
            Ok(())
        } else {
            Err(StoreError::Contended {
                entity: "organization",
                id: organization.id.clone(),
            })
        }
    }

    async fn get_organization(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Organization>> {
        self.read_organization(environment_id, id).await
    }

    async fn get_organization_by_external_id(
        &self,
        environment_id: &str,
        external_id: &str,
    ) -> StoreResult<Option<Organization>> {
        let claim = self
            .get_item(
                &keys::environment_partition(environment_id),
                &keys::external_id_sort(external_id),
            )
            .await?;
        let Some(claim) = claim.map(from_item::<Claim>).transpose()? else {
            return Ok(None);
        };
        let organization = self
            .read_organization(environment_id, &claim.organization_id)
            .await?;
        // The claim and the organization are written together, so they agree unless a write
        // landed between the two reads.
        Ok(organization
            .filter(|organization| organization.external_id.as_deref() == Some(external_id)))
    }

    async fn list_organizations(
        &self,
        environment_id: &str,
        query: &ListQuery,
    ) -> StoreResult<Page<Organization>> {
        let partition = keys::environment_partition(environment_id);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", string(&partition))
            .expression_attribute_values(":prefix", string(keys::ORGANIZATION_PREFIX))
            .scan_index_forward(query.scan_ascending())
            .limit(i32::try_from(query.limit + 1).unwrap_or(i32::MAX))
            .consistent_read(true);
        if let Some(cursor) = query.cursor() {
            let start: Item = [
                (PK.to_owned(), string(&partition)),
                (SK.to_owned(), string(keys::organization_sort(cursor))),
            ]
            .into();
            request = request.set_exclusive_start_key(Some(start));
        }
        let output = request.send().await.map_err(backend)?;
        let organizations = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<StoreResult<Vec<Organization>>>()?;
        Ok(query.finish_page(organizations, |organization| &organization.id))
    }

    async fn replace_organization(
        &self,
        current: &Organization,
        updated: &Organization,
    ) -> StoreResult<bool> {
        let partition = keys::environment_partition(&current.environment_id);
        let mut next = updated.clone();
        next.version = current.version + 1;
        let item = to_item(&partition, &keys::organization_sort(&current.id), &next)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :version")
            .expression_attribute_values(":version", number(current.version))
            .build()?;
        let mut steps = vec![(
            Step::Organization,
            TransactWriteItem::builder().put(put).build(),
        )];

        let old_claims = claims(current);
        let new_claims = claims(&next);
        for claim in &old_claims {
            if !new_claims.iter().any(|new| new.sort_key == claim.sort_key) {
                steps.push((
                    Step::ClaimDelete,
                    self.claim_delete(&partition, claim, &current.id)?,
                ));
            }
        }
        for claim in new_claims {
            if !old_claims.iter().any(|old| old.sort_key == claim.sort_key) {
                let put = self.claim_put(&partition, &claim, &current.id)?;
                steps.push((
                    Step::ClaimPut {
                        field: claim.field,
                        value: claim.value,
                    },
                    put,
                ));
            }
        }
        self.run_organization_transaction(steps).await
    }

    async fn delete_organization(&self, environment_id: &str, id: &str) -> StoreResult<bool> {
        let partition = keys::environment_partition(environment_id);
        for _ in 0..5 {
            let Some(current) = self.read_organization(environment_id, id).await? else {
                return Ok(false);
            };
            let delete = Delete::builder()
                .table_name(&self.table)
                .key(PK, string(&partition))
                .key(SK, string(keys::organization_sort(id)))
                .condition_expression("version = :version")
                .expression_attribute_values(":version", number(current.version))
                .build()?;
            let mut steps = vec![(
                Step::Organization,
                TransactWriteItem::builder().delete(delete).build(),
            )];
            for claim in claims(&current) {
                steps.push((
                    Step::ClaimDelete,
                    self.claim_delete(&partition, &claim, id)?,
                ));
            }
            if self.run_organization_transaction(steps).await? {
                return Ok(true);
            }
        }
        Err(StoreError::Contended {
            entity: "organization",
            id: id.to_owned(),
        })
    }
}
