//! In-memory state of one emulator instance: accounts, customers, entitlements,
//! OAuth authorization codes, injected failures and the request log.
//!
//! All state sits behind one `std::sync::Mutex`. Handlers take the lock for
//! short synchronous sections and never hold it across an `.await`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::EmulatorConfig;

/// Maximum number of entries kept in the request log; older entries are dropped first.
pub(crate) const MAX_RECORDED_REQUESTS: usize = 10_000;

/// Lifetime of an OAuth authorization code (Stripe documents 5 minutes).
pub(crate) const AUTHORIZATION_CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Cheaply cloneable handle on the state shared by all handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    config: EmulatorConfig,
    store: Mutex<Store>,
}

impl AppState {
    pub(crate) fn new(config: EmulatorConfig) -> Self {
        Self {
            inner: Arc::new(Shared {
                config,
                store: Mutex::new(Store::default()),
            }),
        }
    }

    pub(crate) fn config(&self) -> &EmulatorConfig {
        &self.inner.config
    }

    /// Locks the store. A poisoned lock is recovered because every critical
    /// section leaves the store consistent before it could panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.inner
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Account on whose behalf an API request acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountScope {
    /// No `Stripe-Account` header: the platform's own account.
    Platform,
    /// A connected account selected with `Stripe-Account`.
    Connected(String),
}

/// Connected account of the platform.
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) livemode: bool,
    /// False after a disconnect, a deauthorization or a reused authorization code.
    pub(crate) connected: bool,
    pub(crate) customers: HashMap<String, Customer>,
}

impl Account {
    pub(crate) fn new(livemode: bool) -> Self {
        Self {
            livemode,
            connected: true,
            customers: HashMap::new(),
        }
    }
}

/// Customer of one account, with its active entitlements in list order.
#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) invoice_prefix: String,
    pub(crate) deleted: bool,
    pub(crate) entitlements: Vec<ActiveEntitlement>,
    /// Entitlements before the last replacement, used as `previous_attributes` in events.
    pub(crate) previous_entitlements: Vec<ActiveEntitlement>,
}

/// One `entitlements.active_entitlement` of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveEntitlement {
    pub(crate) id: String,
    pub(crate) feature: String,
    pub(crate) lookup_key: String,
}

/// OAuth authorization code issued by an approved authorization.
#[derive(Debug)]
pub(crate) struct AuthorizationCode {
    pub(crate) account: String,
    pub(crate) scope: String,
    pub(crate) issued_at: Instant,
    pub(crate) used: bool,
    /// Set by the control API to test expiry without waiting 5 minutes.
    pub(crate) force_expired: bool,
}

impl AuthorizationCode {
    pub(crate) fn is_expired(&self) -> bool {
        self.force_expired || self.issued_at.elapsed() >= AUTHORIZATION_CODE_LIFETIME
    }
}

/// Connection that a (deprecated) OAuth refresh token renews.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) account: String,
    pub(crate) scope: String,
}

/// Failure injection rule created through `POST /_emulator/failures`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FailureRule {
    pub(crate) path_prefix: String,
    /// HTTP status to return, or 200 for "delay only".
    pub(crate) status: u16,
    /// Number of matching requests this rule still applies to.
    pub(crate) remaining: u32,
    pub(crate) delay_ms: u64,
    pub(crate) stripe_should_retry: Option<bool>,
    pub(crate) rate_limited_reason: Option<String>,
}

/// One API or OAuth request as recorded in the request log. Secret values
/// (API keys, authorization codes, tokens) are never stored.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestRecord {
    pub(crate) seq: u64,
    pub(crate) method: String,
    pub(crate) path: String,
    /// Raw query string, or a re-encoded one with secret values replaced by `[redacted]`.
    pub(crate) query: Option<String>,
    /// Decoded query pairs, with the same redaction as `query`.
    pub(crate) query_params: Vec<(String, String)>,
    pub(crate) stripe_account: Option<String>,
    pub(crate) stripe_version: Option<String>,
    /// Authorization scheme sent (`bearer`, `basic`, `other`), never the credential.
    pub(crate) authorization: Option<&'static str>,
    pub(crate) idempotency_key: bool,
    /// Names of the form-encoded body fields, without their values.
    pub(crate) form_fields: Vec<String>,
    /// Response status, or `None` while the request is still being handled.
    pub(crate) status: Option<u16>,
    /// True when an injected failure or delay applied to this request.
    pub(crate) injected: bool,
}

/// Stored outcome of a request sent with an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub(crate) struct IdempotentResult {
    pub(crate) fingerprint: String,
    pub(crate) body: serde_json::Value,
}

/// Everything the emulator keeps in memory.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) platform_customers: HashMap<String, Customer>,
    pub(crate) accounts: HashMap<String, Account>,
    pub(crate) codes: HashMap<String, AuthorizationCode>,
    /// Refresh token → the grant it renews.
    pub(crate) refresh_tokens: HashMap<String, RefreshGrant>,
    pub(crate) failures: Vec<FailureRule>,
    pub(crate) requests: VecDeque<RequestRecord>,
    pub(crate) next_request_seq: u64,
    /// (account id or empty for the platform, idempotency key) → first result.
    pub(crate) idempotency: HashMap<(String, String), IdempotentResult>,
    /// Account that the next approved authorization connects, set by the control API.
    pub(crate) preset_account: Option<String>,
}

impl Store {
    /// Returns the customers of an account scope, or `None` for an unknown account.
    pub(crate) fn customers(&self, scope: &AccountScope) -> Option<&HashMap<String, Customer>> {
        match scope {
            AccountScope::Platform => Some(&self.platform_customers),
            AccountScope::Connected(id) => self.accounts.get(id).map(|account| &account.customers),
        }
    }

    /// Mutable variant of [`Store::customers`].
    pub(crate) fn customers_mut(
        &mut self,
        scope: &AccountScope,
    ) -> Option<&mut HashMap<String, Customer>> {
        match scope {
            AccountScope::Platform => Some(&mut self.platform_customers),
            AccountScope::Connected(id) => self
                .accounts
                .get_mut(id)
                .map(|account| &mut account.customers),
        }
    }

    /// Returns the livemode flag of the objects in a scope.
    pub(crate) fn livemode(&self, scope: &AccountScope, platform_livemode: bool) -> bool {
        match scope {
            AccountScope::Platform => platform_livemode,
            AccountScope::Connected(id) => self
                .accounts
                .get(id)
                .map_or(platform_livemode, |account| account.livemode),
        }
    }

    /// Appends a request to the log and returns its sequence number.
    pub(crate) fn record_request(&mut self, mut record: RequestRecord) -> u64 {
        self.next_request_seq += 1;
        record.seq = self.next_request_seq;
        if self.requests.len() >= MAX_RECORDED_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(record);
        self.next_request_seq
    }

    /// Fills in the outcome of a logged request, if it is still in the log.
    pub(crate) fn finish_request(&mut self, seq: u64, status: u16, injected: bool) {
        if let Some(record) = self.requests.iter_mut().rev().find(|r| r.seq == seq) {
            record.status = Some(status);
            record.injected = injected;
        }
    }

    /// Consumes one use of the first failure rule whose prefix matches `path`.
    pub(crate) fn take_failure(&mut self, path: &str) -> Option<FailureRule> {
        let index = self
            .failures
            .iter()
            .position(|rule| rule.remaining > 0 && path.starts_with(&rule.path_prefix))?;
        let rule = &mut self.failures[index];
        rule.remaining -= 1;
        let applied = rule.clone();
        if rule.remaining == 0 {
            self.failures.remove(index);
        }
        Some(applied)
    }

    /// Marks an account's connection revoked and invalidates its OAuth grants.
    /// Returns false when the account is unknown.
    pub(crate) fn revoke_connection(&mut self, account_id: &str) -> bool {
        let Some(account) = self.accounts.get_mut(account_id) else {
            return false;
        };
        account.connected = false;
        self.refresh_tokens
            .retain(|_, grant| grant.account != account_id);
        for code in self.codes.values_mut() {
            if code.account == account_id {
                code.force_expired = true;
            }
        }
        true
    }
}
