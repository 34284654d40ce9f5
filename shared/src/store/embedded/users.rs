//! Users and memberships in the embedded store, with the same claim and pointer items as on
//! DynamoDB.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EmbeddedStore, Write, key, to_value};
use crate::store::keys;
use crate::store::{Membership, MembershipCreation, StoreError, StoreResult, User, UserStore};

/// The item that claims an email address for one user.
#[derive(Serialize, Deserialize)]
struct EmailClaim {
    user_id: String,
}

/// The item that resolves a membership ID to the key of the membership.
#[derive(Serialize, Deserialize)]
struct MembershipPointer {
    user_id: String,
    organization_id: String,
}

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let mut items = self.items();
        let partition = keys::environment_partition(&user.environment_id);
        let user_sort = keys::user_sort(&user.id);
        let email_sort = keys::email_sort(&user.email.to_lowercase());
        if items.raw(&partition, &user_sort).is_some() {
            return Err(StoreError::Contended {
                entity: "user",
                id: user.id.clone(),
            });
        }
        if let Some(claim) = items.get::<EmailClaim>(&partition, &email_sort)? {
            return Err(StoreError::Taken {
                field: "email",
                value: user.email.clone(),
                owner_id: claim.user_id,
            });
        }
        let claim = to_value(&EmailClaim {
            user_id: user.id.clone(),
        })?;
        items.commit(vec![
            Write::Put(key(partition.clone(), user_sort), to_value(user)?),
            Write::Put(key(partition, email_sort), claim),
        ])
    }

    async fn get_user(&self, environment_id: &str, id: &str) -> StoreResult<Option<User>> {
        self.items().get(
            &keys::environment_partition(environment_id),
            &keys::user_sort(id),
        )
    }

    async fn get_user_by_email(
        &self,
        environment_id: &str,
        email: &str,
    ) -> StoreResult<Option<User>> {
        let items = self.items();
        let partition = keys::environment_partition(environment_id);
        let lowercase = email.to_lowercase();
        let Some(claim) = items.get::<EmailClaim>(&partition, &keys::email_sort(&lowercase))?
        else {
            return Ok(None);
        };
        let user: Option<User> = items.get(&partition, &keys::user_sort(&claim.user_id))?;
        Ok(user.filter(|user| user.email.to_lowercase() == lowercase))
    }

    async fn record_sign_in(
        &self,
        environment_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        let sort = keys::user_sort(id);
        let Some(mut user) = items.get::<User>(&partition, &sort)? else {
            return Ok(());
        };
        user.last_sign_in_at = Some(at);
        items.commit(vec![Write::Put(key(partition, sort), to_value(&user)?)])
    }

    async fn delete_user(&self, environment_id: &str, id: &str) -> StoreResult<bool> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        let Some(user) = items.get::<User>(&partition, &keys::user_sort(id))? else {
            return Ok(false);
        };
        let memberships: Vec<Membership> = items.query(
            &partition,
            &keys::membership_prefix(id),
            true,
            None,
            usize::MAX,
        )?;
        let mut writes = vec![
            Write::Delete(key(partition.clone(), keys::user_sort(id))),
            Write::Delete(key(
                partition.clone(),
                keys::email_sort(&user.email.to_lowercase()),
            )),
        ];
        for membership in memberships {
            writes.push(Write::Delete(key(
                partition.clone(),
                keys::membership_sort(id, &membership.organization_id),
            )));
            writes.push(Write::Delete(key(
                partition.clone(),
                keys::membership_id_sort(&membership.id),
            )));
        }
        items.commit(writes)?;
        Ok(true)
    }

    async fn create_membership(&self, membership: &Membership) -> StoreResult<MembershipCreation> {
        let mut items = self.items();
        let partition = keys::environment_partition(&membership.environment_id);
        if items
            .raw(&partition, &keys::user_sort(&membership.user_id))
            .is_none()
        {
            return Ok(MembershipCreation::UserNotFound);
        }
        if items
            .raw(
                &partition,
                &keys::organization_sort(&membership.organization_id),
            )
            .is_none()
        {
            return Ok(MembershipCreation::OrganizationNotFound);
        }
        let sort = keys::membership_sort(&membership.user_id, &membership.organization_id);
        if let Some(existing) = items.get::<Membership>(&partition, &sort)? {
            return Ok(MembershipCreation::AlreadyExists {
                membership_id: existing.id,
            });
        }
        let pointer = to_value(&MembershipPointer {
            user_id: membership.user_id.clone(),
            organization_id: membership.organization_id.clone(),
        })?;
        items.commit(vec![
            Write::Put(key(partition.clone(), sort), to_value(membership)?),
            Write::Put(
                key(partition, keys::membership_id_sort(&membership.id)),
                pointer,
            ),
        ])?;
        Ok(MembershipCreation::Created)
    }

    async fn get_membership(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Membership>> {
        let items = self.items();
        let partition = keys::environment_partition(environment_id);
        let Some(pointer) =
            items.get::<MembershipPointer>(&partition, &keys::membership_id_sort(id))?
        else {
            return Ok(None);
        };
        let membership: Option<Membership> = items.get(
            &partition,
            &keys::membership_sort(&pointer.user_id, &pointer.organization_id),
        )?;
        Ok(membership.filter(|membership| membership.id == id))
    }

    async fn get_membership_for(
        &self,
        environment_id: &str,
        user_id: &str,
        organization_id: &str,
    ) -> StoreResult<Option<Membership>> {
        self.items().get(
            &keys::environment_partition(environment_id),
            &keys::membership_sort(user_id, organization_id),
        )
    }

    async fn list_user_memberships(
        &self,
        environment_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<Membership>> {
        self.items().query(
            &keys::environment_partition(environment_id),
            &keys::membership_prefix(user_id),
            true,
            None,
            usize::MAX,
        )
    }

    async fn delete_membership(
        &self,
        environment_id: &str,
        id: &str,
    ) -> StoreResult<Option<Membership>> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        let pointer_sort = keys::membership_id_sort(id);
        let Some(pointer) = items.get::<MembershipPointer>(&partition, &pointer_sort)? else {
            return Ok(None);
        };
        let sort = keys::membership_sort(&pointer.user_id, &pointer.organization_id);
        let membership = items
            .get::<Membership>(&partition, &sort)?
            .filter(|membership| membership.id == id);
        let mut writes = vec![Write::Delete(key(partition.clone(), pointer_sort))];
        if membership.is_some() {
            writes.push(Write::Delete(key(partition, sort)));
        }
        items.commit(writes)?;
        Ok(membership)
    }
}
