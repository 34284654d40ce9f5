//! The embedded implementation of the store, for the local stack: the same items as in DynamoDB,
//! kept in memory and written through to a `redb` database file, so a restart keeps the data.
//!
//! One mutex serializes every operation, which makes each trait method atomic; the conditions that
//! DynamoDB evaluates on the server are plain checks under that lock.

mod environments;
mod idempotency;
mod oauth;
mod organizations;
mod sessions;
mod stripe;
mod users;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::keys::TTL;
use super::{StoreError, StoreResult};

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");

/// Separates partition and sort key in the file's keys; it appears in neither.
const KEY_SEPARATOR: char = '\u{1f}';

type Key = (String, String);

/// The store in memory, optionally backed by a database file.
pub struct EmbeddedStore {
    inner: Mutex<Items>,
}

/// The items, ordered by partition and sort key like a DynamoDB table.
pub(crate) struct Items {
    map: BTreeMap<Key, Value>,
    file: Option<Database>,
}

/// A write to apply with [`Items::commit`].
pub(crate) enum Write {
    Put(Key, Value),
    Delete(Key),
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// A store that lives only in memory, for tests.
    pub fn in_memory() -> Self {
        EmbeddedStore {
            inner: Mutex::new(Items {
                map: BTreeMap::new(),
                file: None,
            }),
        }
    }

    /// Opens (or creates) the store in `directory`, loading every item into memory.
    pub fn open(directory: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(directory).map_err(StoreError::backend)?;
        let path = directory.join("store.redb");
        let database = Database::create(&path).map_err(|error| match error {
            // redb's message, "Database already open. Cannot acquire lock.", names no file or fix.
            redb::DatabaseError::DatabaseAlreadyOpen => {
                StoreError::backend(std::io::Error::other(format!(
                    "{} is open in another process, such as a running local stack; stop that \
                     process first",
                    path.display()
                )))
            }
            other => file_error(other),
        })?;
        let write = database.begin_write().map_err(file_error)?;
        write.open_table(ITEMS).map_err(file_error)?;
        write.commit().map_err(file_error)?;

        let mut map = BTreeMap::new();
        let read = database.begin_read().map_err(file_error)?;
        let table = read.open_table(ITEMS).map_err(file_error)?;
        for entry in table.iter().map_err(file_error)? {
            let (key, value) = entry.map_err(file_error)?;
            let (pk, sk) =
                key.value()
                    .split_once(KEY_SEPARATOR)
                    .ok_or_else(|| StoreError::Corrupt {
                        key: key.value().to_owned(),
                        reason: "key has no separator".into(),
                    })?;
            let item: Value =
                serde_json::from_slice(value.value()).map_err(|error| StoreError::Corrupt {
                    key: key.value().to_owned(),
                    reason: error.to_string(),
                })?;
            map.insert((pk.to_owned(), sk.to_owned()), item);
        }
        drop(table);
        drop(read);

        Ok(EmbeddedStore {
            inner: Mutex::new(Items {
                map,
                file: Some(database),
            }),
        })
    }

    pub(crate) fn items(&self) -> MutexGuard<'_, Items> {
        // A panic while the lock was held cannot leave a half-applied write: commits apply to
        // memory only after the file write succeeded, in one step.
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

fn file_error(error: impl Into<redb::Error>) -> StoreError {
    StoreError::backend(error.into())
}

fn now_epoch_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

fn expired(item: &Value) -> bool {
    item.get(TTL)
        .and_then(Value::as_i64)
        .is_some_and(|expires_at| expires_at <= now_epoch_seconds())
}

pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Key {
    (pk.into(), sk.into())
}

/// Serializes a record as it is stored.
pub(crate) fn to_value<T: Serialize>(record: &T) -> StoreResult<Value> {
    serde_json::to_value(record).map_err(|error| StoreError::Corrupt {
        key: String::new(),
        reason: error.to_string(),
    })
}

impl Items {
    /// Reads an unexpired item as `T`.
    pub(crate) fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> StoreResult<Option<T>> {
        let Some(item) = self.raw(pk, sk) else {
            return Ok(None);
        };
        serde_json::from_value(item.clone())
            .map(Some)
            .map_err(|error| StoreError::Corrupt {
                key: format!("{pk}/{sk}"),
                reason: error.to_string(),
            })
    }

    /// The unexpired item under a key, as stored.
    pub(crate) fn raw(&self, pk: &str, sk: &str) -> Option<&Value> {
        self.map
            .get(&(pk.to_owned(), sk.to_owned()))
            .filter(|item| !expired(item))
    }

    /// Reads up to `limit` unexpired items of a partition whose sort key starts with `prefix`, in
    /// sort key order (or reversed), starting after `start_after` like DynamoDB's
    /// `ExclusiveStartKey`.
    pub(crate) fn query<T: DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
        ascending: bool,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<T>> {
        let in_partition = self
            .map
            .range((pk.to_owned(), prefix.to_owned())..)
            .take_while(|((partition, sort), _)| partition == pk && sort.starts_with(prefix));
        let candidates: Box<dyn Iterator<Item = (&Key, &Value)>> = if ascending {
            Box::new(in_partition)
        } else {
            Box::new(in_partition.collect::<Vec<_>>().into_iter().rev())
        };
        candidates
            .filter(|((_, sort), _)| match start_after {
                Some(start) if ascending => sort.as_str() > start,
                Some(start) => sort.as_str() < start,
                None => true,
            })
            .filter(|(_, item)| !expired(item))
            .take(limit)
            .map(|((partition, sort), item)| {
                serde_json::from_value(item.clone()).map_err(|error| StoreError::Corrupt {
                    key: format!("{partition}/{sort}"),
                    reason: error.to_string(),
                })
            })
            .collect()
    }

    /// Applies writes atomically: to the file first, then to memory.
    pub(crate) fn commit(&mut self, writes: Vec<Write>) -> StoreResult<()> {
        if let Some(file) = &self.file {
            let transaction = file.begin_write().map_err(file_error)?;
            {
                let mut table = transaction.open_table(ITEMS).map_err(file_error)?;
                for write in &writes {
                    match write {
                        Write::Put((pk, sk), item) => {
                            let bytes = serde_json::to_vec(item).map_err(StoreError::backend)?;
                            table
                                .insert(
                                    format!("{pk}{KEY_SEPARATOR}{sk}").as_str(),
                                    bytes.as_slice(),
                                )
                                .map_err(file_error)?;
                        }
                        Write::Delete((pk, sk)) => {
                            table
                                .remove(format!("{pk}{KEY_SEPARATOR}{sk}").as_str())
                                .map_err(file_error)?;
                        }
                    }
                }
            }
            transaction.commit().map_err(file_error)?;
        }
        for write in writes {
            match write {
                Write::Put(key, item) => {
                    self.map.insert(key, item);
                }
                Write::Delete(key) => {
                    self.map.remove(&key);
                }
            }
        }
        Ok(())
    }
}
