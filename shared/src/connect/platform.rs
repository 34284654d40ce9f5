//! The Connect platform's configuration that the OAuth flow needs, checked when a request needs it.
//!
//! A missing value is not a startup error: the other routes of a function work without Stripe, and
//! the request that needs the value gets a response naming the variable to set.

use crate::config::{Config, Secret};

/// The configuration variables of the Connect OAuth flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformVariable {
    ClientId,
    SecretKey,
    RedirectUri,
}

impl PlatformVariable {
    /// Returns the environment variable's name.
    pub fn name(self) -> &'static str {
        match self {
            PlatformVariable::ClientId => "STRIPE_CLIENT_ID",
            PlatformVariable::SecretKey => "STRIPE_SECRET_KEY",
            PlatformVariable::RedirectUri => "STRIPE_REDIRECT_URI",
        }
    }
}

/// One or more platform variables are not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Stripe Connect is not configured on this server: {} not set", missing_list(&self.missing))]
pub struct NotConfigured {
    /// The variables that are missing, in the order of [`PlatformVariable`].
    pub missing: Vec<PlatformVariable>,
}

impl NotConfigured {
    /// Returns a sentence for operators that names every missing variable and the fix.
    pub fn message(&self) -> String {
        format!(
            "Stripe Connect is not configured on this server: {} not set. The operator must set {} and restart the service.",
            missing_list(&self.missing),
            if self.missing.len() == 1 {
                "it"
            } else {
                "them"
            },
        )
    }
}

fn missing_list(missing: &[PlatformVariable]) -> String {
    let names: Vec<&str> = missing.iter().map(|variable| variable.name()).collect();
    match names.as_slice() {
        [] => "nothing is".to_owned(),
        [one] => format!("{one} is"),
        [rest @ .., last] => format!("{} and {last} are", rest.join(", ")),
    }
}

/// The settings `POST /stripe/connect` needs to build an authorize URL.
#[derive(Debug, Clone, Copy)]
pub struct LinkSettings<'a> {
    /// `STRIPE_CLIENT_ID` (`ca_…`).
    pub client_id: &'a str,
    /// `STRIPE_REDIRECT_URI`.
    pub redirect_uri: &'a str,
    /// `STRIPE_CONNECT_BASE`, ending in `/`.
    pub connect_base: &'a str,
}

/// Returns the settings of a connect link. `STRIPE_SECRET_KEY` is required as well, because the
/// callback cannot exchange the code without it, and an operator should learn that before the
/// user approves on Stripe.
pub fn link_settings(config: &Config) -> Result<LinkSettings<'_>, NotConfigured> {
    let stripe = &config.stripe;
    let mut missing = Vec::new();
    if stripe.client_id.is_none() {
        missing.push(PlatformVariable::ClientId);
    }
    if stripe.secret_key.is_none() {
        missing.push(PlatformVariable::SecretKey);
    }
    if stripe.redirect_uri.is_none() {
        missing.push(PlatformVariable::RedirectUri);
    }
    match (stripe.client_id.as_deref(), stripe.redirect_uri.as_deref()) {
        (Some(client_id), Some(redirect_uri)) if missing.is_empty() => Ok(LinkSettings {
            client_id,
            redirect_uri,
            connect_base: &stripe.connect_base,
        }),
        _ => Err(NotConfigured { missing }),
    }
}

/// Returns `STRIPE_SECRET_KEY`, which the code exchange authenticates with.
pub fn secret_key(config: &Config) -> Result<&Secret, NotConfigured> {
    config
        .stripe
        .secret_key
        .as_ref()
        .ok_or_else(|| NotConfigured {
            missing: vec![PlatformVariable::SecretKey],
        })
}

/// Returns `STRIPE_CLIENT_ID` and `STRIPE_SECRET_KEY`, which a deauthorization needs.
pub fn deauthorize_credentials(config: &Config) -> Result<(&str, &Secret), NotConfigured> {
    let stripe = &config.stripe;
    match (stripe.client_id.as_deref(), stripe.secret_key.as_ref()) {
        (Some(client_id), Some(secret_key)) => Ok((client_id, secret_key)),
        (client_id, secret_key) => {
            let mut missing = Vec::new();
            if client_id.is_none() {
                missing.push(PlatformVariable::ClientId);
            }
            if secret_key.is_none() {
                missing.push(PlatformVariable::SecretKey);
            }
            Err(NotConfigured { missing })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
        .expect("test configuration is valid")
    }

    #[test]
    fn link_settings_name_every_missing_variable() {
        let config = config(&[("STRIPE_SECRET_KEY", "sk_test_x")]);
        let error = link_settings(&config).unwrap_err();
        assert_eq!(
            error.missing,
            [PlatformVariable::ClientId, PlatformVariable::RedirectUri]
        );
        assert!(
            error
                .message()
                .contains("STRIPE_CLIENT_ID and STRIPE_REDIRECT_URI are not set")
        );
    }

    #[test]
    fn link_settings_require_secret_key() {
        let config = config(&[
            ("STRIPE_CLIENT_ID", "ca_x"),
            (
                "STRIPE_REDIRECT_URI",
                "https://example.test/stripe/oauth/callback",
            ),
        ]);
        let error = link_settings(&config).unwrap_err();
        assert_eq!(error.missing, [PlatformVariable::SecretKey]);
    }

    #[test]
    fn link_settings_succeed_when_set() {
        let config = config(&[
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_CLIENT_ID", "ca_x"),
            ("STRIPE_REDIRECT_URI", "https://example.test/cb"),
        ]);
        let settings = link_settings(&config).unwrap();
        assert_eq!(settings.client_id, "ca_x");
        assert_eq!(settings.redirect_uri, "https://example.test/cb");
        assert_eq!(settings.connect_base, "https://connect.stripe.com/");
    }

    #[test]
    fn one_missing_variable_reads_singular() {
        let config = config(&[]);
        let error = secret_key(&config).unwrap_err();
        assert_eq!(
            error.message(),
            "Stripe Connect is not configured on this server: STRIPE_SECRET_KEY is not set. The operator must set it and restart the service."
        );
    }

    #[test]
    fn deauthorize_credentials_name_missing_client_id() {
        let config = config(&[("STRIPE_SECRET_KEY", "sk_test_x")]);
        let error = deauthorize_credentials(&config).unwrap_err();
        assert_eq!(error.missing, [PlatformVariable::ClientId]);
    }
}
