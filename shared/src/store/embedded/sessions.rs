//! Sessions, pending authentications, the batched refresh read and signing-key updates in the
//! embedded store. Each method checks under the store's lock what DynamoDB checks in a condition
//! expression, so both backends accept and reject the same writes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{EmbeddedStore, Write, key, to_value};
use crate::store::keys;
use crate::store::{
    ContextKeys, Environment, Membership, Organization, PendingAuthentication, Rotation,
    RotationOutcome, Session, SessionContext, SessionStore, StoreError, StoreResult, User,
};
use crate::tokens::StoredSigningKey;

#[derive(serde::Deserialize)]
struct ApiKeyRecord {
    environment_id: String,
}

fn session_key(environment_id: &str, session_id: &str) -> (String, String) {
    key(
        keys::session_partition(environment_id, session_id),
        keys::SESSION_SORT,
    )
}

#[async_trait]
impl SessionStore for EmbeddedStore {
    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        let mut items = self.items();
        let (pk, sk) = session_key(&session.environment_id, &session.id);
        if items.raw(&pk, &sk).is_some() {
            return Err(StoreError::Contended {
                entity: "session",
                id: session.id.clone(),
            });
        }
        items.commit(vec![Write::Put((pk, sk), to_value(session)?)])
    }

    async fn get_session(&self, environment_id: &str, id: &str) -> StoreResult<Option<Session>> {
        let (pk, sk) = session_key(environment_id, id);
        self.items().get(&pk, &sk)
    }

    async fn rotate_session(&self, rotation: &Rotation) -> StoreResult<RotationOutcome> {
        let mut items = self.items();
        let (pk, sk) = session_key(&rotation.environment_id, &rotation.session_id);
        let current: Option<Session> = items.get(&pk, &sk)?;
        let Some(before) = current else {
            return Ok(RotationOutcome::Rejected { current: None });
        };
        let applies = before.token_hash == rotation.presented_hash
            && before.generation == rotation.presented_generation
            && before.user_id == rotation.user_id
            && before.is_live(rotation.now_seconds());
        if !applies {
            return Ok(RotationOutcome::Rejected {
                current: Some(before),
            });
        }
        let mut next = before.clone();
        next.token_hash = rotation.next_hash.clone();
        next.previous_hash = Some(rotation.presented_hash.clone());
        next.generation = rotation.presented_generation + 1;
        next.rotated_at_ms = rotation.rotated_at_ms;
        next.previous_unconsumed = false;
        if rotation.organization_id.is_some() {
            next.organization_id = rotation.organization_id.clone();
        }
        items.commit(vec![Write::Put((pk, sk), to_value(&next)?)])?;
        Ok(RotationOutcome::Rotated { before })
    }

    async fn rerotate_session(&self, rotation: &Rotation) -> StoreResult<RotationOutcome> {
        let mut items = self.items();
        let (pk, sk) = session_key(&rotation.environment_id, &rotation.session_id);
        let current: Option<Session> = items.get(&pk, &sk)?;
        let Some(before) = current else {
            return Ok(RotationOutcome::Rejected { current: None });
        };
        let applies = before.generation == rotation.presented_generation + 1
            && before.previous_hash.as_deref() == Some(rotation.presented_hash.as_str())
            && before.previous_unconsumed
            && before.user_id == rotation.user_id
            && before.is_live(rotation.now_seconds());
        if !applies {
            return Ok(RotationOutcome::Rejected {
                current: Some(before),
            });
        }
        let mut next = before.clone();
        next.rotated_at_ms = rotation.rotated_at_ms;
        next.previous_unconsumed = false;
        if rotation.organization_id.is_some() {
            next.organization_id = rotation.organization_id.clone();
        }
        items.commit(vec![Write::Put((pk, sk), to_value(&next)?)])?;
        Ok(RotationOutcome::Rotated { before })
    }

    async fn release_rotation(
        &self,
        environment_id: &str,
        session_id: &str,
        generation: u64,
        token_hash: &str,
        organization_id: Option<&str>,
    ) -> StoreResult<bool> {
        let mut items = self.items();
        let (pk, sk) = session_key(environment_id, session_id);
        let Some(mut session) = items.get::<Session>(&pk, &sk)? else {
            return Ok(false);
        };
        if session.generation != generation || session.token_hash != token_hash {
            return Ok(false);
        }
        session.previous_unconsumed = true;
        session.organization_id = organization_id.map(str::to_owned);
        items.commit(vec![Write::Put((pk, sk), to_value(&session)?)])?;
        Ok(true)
    }

    async fn revoke_session(
        &self,
        environment_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut items = self.items();
        let (pk, sk) = session_key(environment_id, id);
        let Some(mut session) = items.get::<Session>(&pk, &sk)? else {
            return Ok(false);
        };
        if session.revoked_at.is_none() {
            session.revoked_at = Some(at);
            items.commit(vec![Write::Put((pk, sk), to_value(&session)?)])?;
        }
        Ok(true)
    }

    async fn read_session_context(&self, keys: &ContextKeys) -> StoreResult<SessionContext> {
        let items = self.items();
        let partition = keys::environment_partition(&keys.environment_id);
        let mut context = SessionContext::default();
        if let Some(hash) = &keys.api_key_hash {
            let record: Option<ApiKeyRecord> =
                items.get(&keys::api_key_partition(hash), keys::API_KEY_SORT)?;
            context.api_key_environment_id = record.map(|record| record.environment_id);
        }
        if keys.environment {
            context.environment = items.get::<Environment>(&partition, keys::ENVIRONMENT_SORT)?;
        }
        if let Some(user_id) = &keys.user_id {
            context.user = items.get::<User>(&partition, &keys::user_sort(user_id))?;
        }
        if let Some((user_id, organization_id)) = &keys.membership {
            context.membership = items
                .get::<Membership>(&partition, &keys::membership_sort(user_id, organization_id))?;
            context.organization =
                items.get::<Organization>(&partition, &keys::organization_sort(organization_id))?;
        }
        Ok(context)
    }

    async fn create_pending_authentication(
        &self,
        pending: &PendingAuthentication,
    ) -> StoreResult<()> {
        let mut items = self.items();
        let partition = keys::environment_partition(&pending.environment_id);
        let sort = keys::pending_authentication_sort(&pending.token_hash);
        items.commit(vec![Write::Put(key(partition, sort), to_value(pending)?)])
    }

    async fn get_pending_authentication(
        &self,
        environment_id: &str,
        token_hash: &str,
    ) -> StoreResult<Option<PendingAuthentication>> {
        self.items().get(
            &keys::environment_partition(environment_id),
            &keys::pending_authentication_sort(token_hash),
        )
    }

    async fn consume_pending_authentication(
        &self,
        environment_id: &str,
        token_hash: &str,
        now_seconds: i64,
    ) -> StoreResult<bool> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        let sort = keys::pending_authentication_sort(token_hash);
        let Some(pending) = items.get::<PendingAuthentication>(&partition, &sort)? else {
            return Ok(false);
        };
        if pending.expires_at <= now_seconds {
            return Ok(false);
        }
        items.commit(vec![Write::Delete(key(partition, sort))])?;
        Ok(true)
    }

    async fn replace_signing_keys(
        &self,
        environment_id: &str,
        current: &[StoredSigningKey],
        next: &[StoredSigningKey],
    ) -> StoreResult<bool> {
        let mut items = self.items();
        let partition = keys::environment_partition(environment_id);
        let Some(stored) = items.raw(&partition, keys::ENVIRONMENT_SORT) else {
            return Ok(false);
        };
        let stored_keys = stored
            .get("signing_keys")
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new()));
        if stored_keys != to_value(&current)? {
            return Ok(false);
        }
        // Only the signing keys change, like DynamoDB's `SET signing_keys`, so a concurrent writer
        // of another attribute keeps its value.
        let mut updated = stored.clone();
        if let Value::Object(fields) = &mut updated {
            fields.insert("signing_keys".to_owned(), to_value(&next)?);
        }
        items.commit(vec![Write::Put(
            key(partition, keys::ENVIRONMENT_SORT),
            updated,
        )])?;
        Ok(true)
    }
}
