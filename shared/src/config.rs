//! Configuration, read once from environment variables when a function starts.
//!
//! Every name here is documented in the README. Secret values are wrapped in [`Secret`], whose
//! `Debug` output is redacted, so a logged `Config` never shows them.

use std::fmt;
use std::time::Duration;

/// A configuration value that must never be printed or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Returns the secret value; call this only where the value is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A configuration variable that is missing or has an invalid value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required but not set")]
    Missing { name: &'static str },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The Stripe side of the configuration.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `STRIPE_SECRET_KEY`: the Connect platform's secret key.
    pub secret_key: Option<Secret>,
    /// `STRIPE_CLIENT_ID`: the Connect platform's OAuth client ID (`ca_…`).
    pub client_id: Option<String>,
    /// `STRIPE_WEBHOOK_SECRETS`: every accepted webhook signing secret (`whsec_…`).
    pub webhook_secrets: Vec<Secret>,
    /// `STRIPE_REDIRECT_URI`: the OAuth callback URL registered with Stripe.
    pub redirect_uri: Option<String>,
    /// `STRIPE_API_BASE`: base URL of the Stripe API, ending in `/`.
    pub api_base: String,
    /// `STRIPE_CONNECT_BASE`: base URL of Stripe Connect OAuth, ending in `/`.
    pub connect_base: String,
}

/// Everything a function reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
    /// `DYNAMODB_ENDPOINT`: an endpoint override such as DynamoDB Local.
    pub dynamodb_endpoint: Option<String>,
    pub stripe: StripeConfig,
    /// `KEY_ENCRYPTION_KEY`: 32 bytes, base64, that encrypt signing keys at rest.
    pub key_encryption_key: Option<Secret>,
    /// `COOKIE_PASSWORD`: password of the sealed `wos-session` cookie, at least 32 characters.
    pub cookie_password: Option<Secret>,
    /// `ACCESS_TOKEN_TTL_SECONDS`: access-token lifetime.
    pub access_token_ttl: Duration,
    /// `SESSION_TTL_SECONDS`: how long a session lives without a sign-in.
    pub session_ttl: Duration,
    /// `REFRESH_GRACE_SECONDS`: how long a used refresh token still returns the same new pair.
    pub refresh_grace: Duration,
    /// `TOKEN_ISSUER`: the `iss` claim of access tokens.
    pub issuer: String,
    /// `ENTITLEMENTS_PATH`: the path of the cookie refresh route.
    pub entitlements_path: String,
}

pub const DEFAULT_TABLE_NAME: &str = "stripe-entitlements";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com/";
pub const DEFAULT_STRIPE_CONNECT_BASE: &str = "https://connect.stripe.com/";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which returns a variable's value if set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let webhook_secrets = get("STRIPE_WEBHOOK_SECRETS")
            .map(|value| {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|secret| !secret.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default();

        let cookie_password = get("COOKIE_PASSWORD").map(Secret::new);
        if let Some(password) = &cookie_password
            && password.expose().chars().count() < 32
        {
            return Err(ConfigError::Invalid {
                name: "COOKIE_PASSWORD",
                reason: "must be at least 32 characters".into(),
            });
        }

        Ok(Config {
            table_name: get("TABLE_NAME").unwrap_or_else(|| DEFAULT_TABLE_NAME.into()),
            dynamodb_endpoint: get("DYNAMODB_ENDPOINT"),
            stripe: StripeConfig {
                secret_key: get("STRIPE_SECRET_KEY").map(Secret::new),
                client_id: get("STRIPE_CLIENT_ID"),
                webhook_secrets,
                redirect_uri: get("STRIPE_REDIRECT_URI"),
                api_base: base_url(
                    get("STRIPE_API_BASE"),
                    DEFAULT_STRIPE_API_BASE,
                    "STRIPE_API_BASE",
                )?,
                connect_base: base_url(
                    get("STRIPE_CONNECT_BASE"),
                    DEFAULT_STRIPE_CONNECT_BASE,
                    "STRIPE_CONNECT_BASE",
                )?,
            },
            key_encryption_key: get("KEY_ENCRYPTION_KEY").map(Secret::new),
            cookie_password,
            access_token_ttl: seconds(
                get("ACCESS_TOKEN_TTL_SECONDS"),
                300,
                "ACCESS_TOKEN_TTL_SECONDS",
            )?,
            session_ttl: seconds(
                get("SESSION_TTL_SECONDS"),
                30 * 24 * 3600,
                "SESSION_TTL_SECONDS",
            )?,
            refresh_grace: seconds(get("REFRESH_GRACE_SECONDS"), 30, "REFRESH_GRACE_SECONDS")?,
            issuer: get("TOKEN_ISSUER").unwrap_or_else(|| "https://api.workos.com".into()),
            entitlements_path: get("ENTITLEMENTS_PATH")
                .unwrap_or_else(|| "/api/entitlements".into()),
        })
    }

    /// Returns `COOKIE_PASSWORD`, or an error naming it when it is not set.
    pub fn require_cookie_password(&self) -> Result<&Secret, ConfigError> {
        self.cookie_password.as_ref().ok_or(ConfigError::Missing {
            name: "COOKIE_PASSWORD",
        })
    }

    /// Returns `KEY_ENCRYPTION_KEY`, or an error naming it when it is not set.
    pub fn require_key_encryption_key(&self) -> Result<&Secret, ConfigError> {
        self.key_encryption_key
            .as_ref()
            .ok_or(ConfigError::Missing {
                name: "KEY_ENCRYPTION_KEY",
            })
    }
}

fn base_url(
    value: Option<String>,
    default: &str,
    name: &'static str,
) -> Result<String, ConfigError> {
    let value = value.unwrap_or_else(|| default.to_owned());
    let parsed = url::Url::parse(&value).map_err(|error| ConfigError::Invalid {
        name,
        reason: format!("not a URL ({error})"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            name,
            reason: "must start with http:// or https://".into(),
        });
    }
    // Paths are appended to the base, so it must end in a slash.
    Ok(if value.ends_with('/') {
        value
    } else {
        format!("{value}/")
    })
}

fn seconds(
    value: Option<String>,
    default: u64,
    name: &'static str,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(Duration::from_secs(default));
    };
    match value.trim().parse::<u64>() {
        Ok(0) | Err(_) => Err(ConfigError::Invalid {
            name,
            reason: format!("expected a whole number of seconds above 0, got {value:?}"),
        }),
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_unset() {
        let config = config(&[]).unwrap();
        assert_eq!(config.table_name, DEFAULT_TABLE_NAME);
        assert_eq!(config.access_token_ttl, Duration::from_secs(300));
        assert_eq!(config.stripe.api_base, DEFAULT_STRIPE_API_BASE);
        assert!(config.stripe.webhook_secrets.is_empty());
    }

    #[test]
    fn webhook_secrets_split_on_commas() {
        let config = config(&[("STRIPE_WEBHOOK_SECRETS", "whsec_a, whsec_b,,")]).unwrap();
        let secrets: Vec<&str> = config
            .stripe
            .webhook_secrets
            .iter()
            .map(Secret::expose)
            .collect();
        assert_eq!(secrets, ["whsec_a", "whsec_b"]);
    }

    #[test]
    fn base_url_gains_trailing_slash() {
        let config = config(&[("STRIPE_API_BASE", "http://127.0.0.1:12111")]).unwrap();
        assert_eq!(config.stripe.api_base, "http://127.0.0.1:12111/");
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let error = config(&[("ACCESS_TOKEN_TTL_SECONDS", "five")]).unwrap_err();
        assert!(error.to_string().contains("ACCESS_TOKEN_TTL_SECONDS"));
        let error = config(&[("COOKIE_PASSWORD", "short")]).unwrap_err();
        assert!(error.to_string().contains("COOKIE_PASSWORD"));
        let error = config(&[("STRIPE_API_BASE", "ftp://x")]).unwrap_err();
        assert!(error.to_string().contains("STRIPE_API_BASE"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let config = config(&[("STRIPE_SECRET_KEY", "sk_test_visible")]).unwrap();
        assert!(!format!("{config:?}").contains("sk_test_visible"));
    }
}
