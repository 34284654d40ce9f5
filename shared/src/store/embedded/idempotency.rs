//! Idempotency records in the embedded store.

use async_trait::async_trait;

use super::{EmbeddedStore, Write, key, to_value};
use crate::store::keys;
use crate::store::{IdempotencyRecord, IdempotencyStore, StoreResult, StoredResponse};

fn record_key(environment_id: &str, key_hash: &str) -> (String, String) {
    key(
        keys::idempotency_partition(environment_id, key_hash),
        keys::IDEMPOTENCY_SORT,
    )
}

#[async_trait]
impl IdempotencyStore for EmbeddedStore {
    async fn claim_idempotency_key(
        &self,
        record: &IdempotencyRecord,
        now_seconds: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let mut items = self.items();
        let (pk, sk) = record_key(&record.environment_id, &record.key_hash);
        if let Some(existing) = items.get::<IdempotencyRecord>(&pk, &sk)? {
            let live = existing.expires_at > now_seconds
                && (existing.response.is_some() || existing.locked_until > now_seconds);
            if live {
                return Ok(Some(existing));
            }
        }
        items.commit(vec![Write::Put((pk, sk), to_value(record)?)])?;
        Ok(None)
    }

    async fn complete_idempotency_key(
        &self,
        environment_id: &str,
        key_hash: &str,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        let mut items = self.items();
        let (pk, sk) = record_key(environment_id, key_hash);
        let Some(mut record) = items.get::<IdempotencyRecord>(&pk, &sk)? else {
            return Ok(());
        };
        record.response = Some(response.clone());
        items.commit(vec![Write::Put((pk, sk), to_value(&record)?)])
    }

    async fn release_idempotency_key(
        &self,
        environment_id: &str,
        key_hash: &str,
    ) -> StoreResult<()> {
        let mut items = self.items();
        let (pk, sk) = record_key(environment_id, key_hash);
        let Some(record) = items.get::<IdempotencyRecord>(&pk, &sk)? else {
            return Ok(());
        };
        if record.response.is_none() {
            items.commit(vec![Write::Delete((pk, sk))])?;
        }
        Ok(())
    }
}
