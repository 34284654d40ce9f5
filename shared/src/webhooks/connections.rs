//! A per-process cache of which environment each Stripe account is connected to.
//!
//! A cached entry only saves a read. It is never trusted for a write: every write for an event
//! carries a condition check on the account's record, so a stale entry makes that write fail, and
//! the processor drops the entry and reads the record again. It does the same when Stripe rejects
//! the entitlement read in a way that can mean the platform lost access to the account, which is
//! how a connection ended by another process shows first. Only live connections are cached, so a
//! new connection is seen at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::AccountConnection;

/// How long an entry is used before the record is read again. A stale entry costs requests,
/// never correctness, so the entry lives long enough to serve bursts of events.
pub const CONNECTION_CACHE_TTL: Duration = Duration::from_secs(300);

/// The maximum number of entries. When it is reached, expired entries are dropped, and if none
/// expired, all of them.
const MAX_ENTRIES: usize = 10_000;

type Key = (String, bool);

/// Live connections by account and mode.
#[derive(Debug)]
pub struct ConnectionCache {
    entries: Mutex<HashMap<Key, (AccountConnection, Instant)>>,
    ttl: Duration,
}

impl Default for ConnectionCache {
    fn default() -> Self {
        ConnectionCache::new(CONNECTION_CACHE_TTL)
    }
}

impl ConnectionCache {
    pub fn new(ttl: Duration) -> Self {
        ConnectionCache {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (AccountConnection, Instant)>> {
        // The map has no invariant that a panic could break halfway.
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Returns the cached live connection of an account in one mode, if fresh.
    pub fn get(&self, account_id: &str, livemode: bool) -> Option<AccountConnection> {
        let entries = self.entries();
        let (connection, stored_at) = entries.get(&(account_id.to_owned(), livemode))?;
        (stored_at.elapsed() < self.ttl).then(|| connection.clone())
    }

    /// Caches a connection record; tombstones remove the entry instead.
    pub fn put(&self, connection: &AccountConnection) {
        let key = (connection.account_id.clone(), connection.livemode);
        let mut entries = self.entries();
        if !connection.connected {
            entries.remove(&key);
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, stored_at)| stored_at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (connection.clone(), Instant::now()));
    }

    /// Drops the entry of an account in one mode.
    pub fn remove(&self, account_id: &str, livemode: bool) {
        self.entries().remove(&(account_id.to_owned(), livemode));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(connected: bool) -> AccountConnection {
        AccountConnection {
            account_id: "acct_1".into(),
            livemode: false,
            environment_id: "client_1".into(),
            connection_id: "conn_1".into(),
            connected,
        }
    }

    #[test]
    fn caches_live_connections_only() {
        let cache = ConnectionCache::default();
        cache.put(&connection(true));
        assert_eq!(cache.get("acct_1", false), Some(connection(true)));
        assert_eq!(cache.get("acct_1", true), None, "modes are separate");
        cache.put(&connection(false));
        assert_eq!(
            cache.get("acct_1", false),
            None,
            "a tombstone drops the entry"
        );
    }

    #[test]
    fn entries_expire() {
        let cache = ConnectionCache::new(Duration::ZERO);
        cache.put(&connection(true));
        assert_eq!(cache.get("acct_1", false), None);
    }
}
