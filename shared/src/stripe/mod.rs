//! The Stripe API client: lists a connected account's customer's active entitlements, and
//! classifies failures as transient (worth a retry) or permanent.
//!
//! It is built on `async-stripe` 1.0.0-rc.10 with the Connect platform's secret key
//! (`STRIPE_SECRET_KEY`) and the base URL `STRIPE_API_BASE`. Every request names the connected
//! account in `Stripe-Account`. Pages are requested one by one with `limit=100` and
//! `starting_after`, because the crate's paginator drops the per-request account on follow-up
//! pages.

mod loader;

use std::time::Duration;

use ::stripe::{AccountId, ClientBuilder, RequestStrategy, StripeRequest};
use stripe_misc::entitlements_active_entitlement::ListEntitlementsActiveEntitlement;

use crate::config::{Secret, StripeConfig};

pub use loader::StripeEntitlementLoader;

/// Entitlements per page: the maximum Stripe allows.
pub const PAGE_LIMIT: i64 = 100;

/// The maximum number of pages one listing reads (10 000 entitlements). A longer list is an
/// error rather than an endless loop on a cursor that never ends.
pub const MAX_PAGES: usize = 100;

/// Time limit of one HTTP attempt, so a hung connection cannot hold a webhook delivery or an
/// organization update open.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed Stripe request.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe responded with an error status and its error object.
    #[error("Stripe returned HTTP {status} ({}): {message}", code.as_deref().unwrap_or("no code"))]
    Api {
        status: u16,
        /// Stripe's error `code`, such as `resource_missing` or `account_invalid`.
        code: Option<String>,
        /// The request parameter the error concerns, such as `customer`.
        param: Option<String>,
        message: String,
    },
    /// An attempt got no complete response within the time limit.
    #[error("the Stripe request timed out")]
    Timeout,
    /// The connection failed before a response arrived.
    #[error("the Stripe request failed: {0}")]
    Connection(String),
    /// The response was not the JSON Stripe documents (for example an error page of a proxy).
    #[error("Stripe returned a response that could not be read: {0}")]
    InvalidResponse(String),
    /// The listing did not end within [`MAX_PAGES`] pages.
    #[error("the entitlement list of customer {customer_id} has more than {MAX_PAGES} pages")]
    TooManyPages { customer_id: String },
    /// The client could not be built or the request could not be formed.
    #[error("the Stripe client configuration is invalid: {0}")]
    Config(String),
}

impl StripeError {
    /// Returns whether retrying the same request later may succeed: timeouts, connection failures,
    /// unreadable responses, 409, 424, 429 and 5xx statuses. A 404 on a page cursor is transient
    /// too, because it means an entitlement was removed between two pages and a new listing from
    /// the start succeeds. Authentication (401), permission (403), other 404s and 400s are
    /// permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            StripeError::Api { status, param, .. } => match status {
                409 | 424 | 429 | 500..=599 => true,
                404 => matches!(param.as_deref(), Some("starting_after" | "ending_before")),
                _ => false,
            },
            StripeError::Timeout | StripeError::Connection(_) | StripeError::InvalidResponse(_) => {
                true
            }
            StripeError::TooManyPages { .. } | StripeError::Config(_) => false,
        }
    }

    /// Returns the HTTP status of Stripe's response, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<::stripe::StripeError> for StripeError {
    fn from(error: ::stripe::StripeError) -> Self {
        match error {
            ::stripe::StripeError::Stripe(body, status) => StripeError::Api {
                status,
                code: body.code.as_ref().map(|code| code.as_str().to_owned()),
                param: body.param.clone(),
                message: body
                    .message
                    .clone()
                    .unwrap_or_else(|| body.type_.as_str().to_owned()),
            },
            ::stripe::StripeError::Timeout => StripeError::Timeout,
            ::stripe::StripeError::ClientError(message) => StripeError::Connection(message),
            ::stripe::StripeError::JSONDeserialize(message) => {
                StripeError::InvalidResponse(message)
            }
            ::stripe::StripeError::ConfigError(message) => StripeError::Config(message),
        }
    }
}

/// The Stripe API client of the Connect platform, cheap to share between requests.
#[derive(Clone)]
pub struct StripeClient {
    client: ::stripe::Client,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient").finish_non_exhaustive()
    }
}

impl StripeClient {
    /// Builds a client for the API at `api_base` (ending in `/`). No request is sent.
    pub fn new(
        secret_key: &Secret,
        api_base: &str,
        request_timeout: Duration,
    ) -> Result<Self, StripeError> {
        let client = ClientBuilder::new(secret_key.expose())
            .url(api_base)
            .timeout(request_timeout)
            .request_strategy(RequestStrategy::Once)
            .build()?;
        Ok(StripeClient { client })
    }

    /// Builds the client the configuration describes, or `None` when `STRIPE_SECRET_KEY` is not set.
    pub fn from_config(config: &StripeConfig) -> Result<Option<Self>, StripeError> {
        config
            .secret_key
            .as_ref()
            .map(|secret_key| {
                StripeClient::new(secret_key, &config.api_base, DEFAULT_REQUEST_TIMEOUT)
            })
            .transpose()
    }

    /// Lists the lookup keys of a customer's active entitlements on a connected account, reading
    /// every page, in Stripe's order. Each page request is attempted up to `max_attempts` times
    /// while it fails transiently, with Stripe's backoff between attempts (1 s, then 2 s, …).
    pub async fn list_active_entitlements(
        &self,
        account_id: &str,
        customer_id: &str,
        max_attempts: u32,
    ) -> Result<Vec<String>, StripeError> {
        let strategy = if max_attempts > 1 {
            RequestStrategy::ExponentialBackoff(max_attempts)
        } else {
            RequestStrategy::Once
        };
        let mut lookup_keys = Vec::new();
        let mut starting_after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request = ListEntitlementsActiveEntitlement::new(customer_id).limit(PAGE_LIMIT);
            if let Some(cursor) = &starting_after {
                request = request.starting_after(cursor.as_str());
            }
            let page = request
                .customize()
                .account_id(AccountId::from(account_id))
                .request_strategy(strategy.clone())
                .send(&self.client)
                .await?;
            lookup_keys.extend(
                page.data
                    .iter()
                    .map(|entitlement| entitlement.lookup_key.clone()),
            );
            match page.data.last() {
                Some(last) if page.has_more => starting_after = Some(last.id.as_str().to_owned()),
                _ => return Ok(lookup_keys),
            }
        }
        Err(StripeError::TooManyPages {
            customer_id: customer_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, param: Option<&str>) -> StripeError {
        StripeError::Api {
            status,
            code: None,
            param: param.map(str::to_owned),
            message: "failed".into(),
        }
    }

    #[test]
    fn transient_statuses() {
        for status in [409, 424, 429, 500, 502, 503, 504] {
            assert!(api(status, None).is_transient(), "{status}");
        }
        assert!(StripeError::Timeout.is_transient());
        assert!(StripeError::Connection("reset".into()).is_transient());
    }

    #[test]
    fn permanent_statuses() {
        for status in [400, 401, 402, 403, 404] {
            assert!(!api(status, None).is_transient(), "{status}");
        }
        assert!(!api(404, Some("customer")).is_transient());
    }

    #[test]
    fn vanished_cursor_is_transient() {
        assert!(api(404, Some("starting_after")).is_transient());
        assert!(api(404, Some("ending_before")).is_transient());
    }
}
