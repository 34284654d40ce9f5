//! The connect link of `POST /stripe/connect`: Stripe's authorize URL with a new OAuth `state`.
//!
//! The state carries 256 random bits, is stored only as its SHA-256 hash, is bound to the
//! environment that asked for it, and is valid for [`STATE_LIFETIME_SECONDS`].

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::platform::{self, LinkSettings};
use super::{ConnectError, now_ms};
use crate::error::ApiError;
use crate::ids;
use crate::organizations::timestamp;
use crate::state::AppState;
use crate::store::OAuthState;

/// How long a connect link can be used.
pub const STATE_LIFETIME_SECONDS: i64 = 600;

/// The scope the link requests. Standard-account platforms must request `read_write`, because
/// Stripe reserves `read_only` for Extensions.
pub const SCOPE: &str = "read_write";

/// The body of `POST /stripe/connect`: empty, or a JSON object whose fields are ignored.
pub type ConnectLinkRequest = serde_json::Map<String, Value>;

/// A connect link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectLink {
    /// Stripe's authorize URL, including the state.
    pub authorize_url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
}

impl ConnectLink {
    /// The response body `{authorize_url, expires_at}`.
    pub fn to_json(&self) -> Value {
        json!({
            "authorize_url": self.authorize_url,
            "expires_at": timestamp(&self.expires_at),
        })
    }
}

/// Builds Stripe's authorize URL for a state.
pub fn authorize_url(settings: &LinkSettings<'_>, state: &str) -> Result<String, ApiError> {
    let mut url =
        url::Url::parse(&format!("{}oauth/authorize", settings.connect_base)).map_err(|error| {
            ApiError::Internal(anyhow::anyhow!(
                "STRIPE_CONNECT_BASE does not form a URL: {error}"
            ))
        })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", settings.client_id)
        .append_pair("scope", SCOPE)
        .append_pair("redirect_uri", settings.redirect_uri)
        .append_pair("state", state);
    Ok(url.into())
}

/// Issues a connect link for an environment and stores its state.
pub async fn create(state: &AppState, environment_id: &str) -> Result<ConnectLink, ConnectError> {
    let settings = platform::link_settings(&state.config)?;
    let value = ids::new_secret("");
    let created_at_ms = now_ms();
    // Rounded up, so the link lives at least the full lifetime.
    let expires_at = (created_at_ms + STATE_LIFETIME_SECONDS * 1000 + 999).div_euclid(1000);
    let record = OAuthState {
        state_hash: ids::hash_secret(&value),
        environment_id: environment_id.to_owned(),
        created_at_ms,
        expires_at,
        consumption: None,
    };
    let authorize_url = authorize_url(&settings, &value)?;
    state.store.create_oauth_state(&record).await?;
    tracing::info!(expires_at, "Stripe connect link issued");
    let expires_at = DateTime::from_timestamp(expires_at, 0).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("expiry {expires_at} is out of range"))
    })?;
    Ok(ConnectLink {
        authorize_url,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_carries_every_parameter_encoded() {
        let settings = LinkSettings {
            client_id: "ca_123",
            redirect_uri: "https://example.test/stripe/oauth/callback?x=1&y=2",
            connect_base: "https://connect.example.test/",
        };
        let url = url::Url::parse(&authorize_url(&settings, "abc-_123").unwrap()).unwrap();
        assert_eq!(url.path(), "/oauth/authorize");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("response_type".to_owned(), "code".to_owned()),
                ("client_id".to_owned(), "ca_123".to_owned()),
                ("scope".to_owned(), "read_write".to_owned()),
                (
                    "redirect_uri".to_owned(),
                    "https://example.test/stripe/oauth/callback?x=1&y=2".to_owned()
                ),
                ("state".to_owned(), "abc-_123".to_owned()),
            ]
        );
    }

    #[test]
    fn authorize_url_keeps_base_path() {
        let settings = LinkSettings {
            client_id: "ca_1",
            redirect_uri: "http://127.0.0.1:1/cb",
            connect_base: "http://127.0.0.1:9/stripe/",
        };
        let url = url::Url::parse(&authorize_url(&settings, "s").unwrap()).unwrap();
        assert_eq!(url.path(), "/stripe/oauth/authorize");
    }
}
