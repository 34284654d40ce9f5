//! A client of Stripe's Connect OAuth endpoints, `POST oauth/token` and `POST oauth/deauthorize`
//! under `STRIPE_CONNECT_BASE`. `async-stripe` has no client for them.
//!
//! Both calls send a form body and authenticate with the platform's secret key as the HTTP Basic
//! user name, as in Stripe's OAuth reference. Their errors are flat `{error, error_description}`
//! objects, not the API's nested `error` object. Stripe documents no statuses for them, so any
//! non-2xx response whose `error` is a string counts as an OAuth error.
//!
//! Nothing is retried, not even protocol-level refusals that `reqwest` retries by default:
//! exchanging an authorization code twice makes Stripe revoke the connection, so an exchange whose
//! result is unknown must stay unknown.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::config::Secret;

/// Time limit of one OAuth request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Time limit of opening the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest response body read, far above any OAuth response.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A failed OAuth request.
#[derive(Debug, thiserror::Error)]
pub enum OAuthClientError {
    /// Stripe rejected the request with an OAuth error such as `invalid_grant`.
    #[error("Stripe returned OAuth error {error} (HTTP {status}): {description}")]
    OAuth {
        status: u16,
        /// The `error` code, such as `invalid_grant` or `invalid_client`.
        error: String,
        /// The `error_description`, or an empty string when Stripe sent none.
        description: String,
    },
    /// No complete response arrived within [`REQUEST_TIMEOUT`].
    #[error("the request to Stripe timed out")]
    Timeout,
    /// The connection failed before a response arrived.
    #[error("the request to Stripe failed: {0}")]
    Connection(String),
    /// Stripe answered with a status or body this client cannot read.
    #[error("Stripe returned an unexpected response (HTTP {status}): {reason}")]
    UnexpectedResponse { status: u16, reason: String },
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built: {0}")]
    Setup(String),
}

impl OAuthClientError {
    /// Whether Stripe may have acted on the request although no success response was read.
    pub fn result_unknown(&self) -> bool {
        !matches!(
            self,
            OAuthClientError::OAuth { .. } | OAuthClientError::Setup(_)
        )
    }

    /// A short label for logs: the OAuth `error` code or the kind of failure.
    pub fn kind(&self) -> &str {
        match self {
            OAuthClientError::OAuth { error, .. } => error,
            OAuthClientError::Timeout => "timeout",
            OAuthClientError::Connection(_) => "connection",
            OAuthClientError::UnexpectedResponse { .. } => "unexpected_response",
            OAuthClientError::Setup(_) => "setup",
        }
    }
}

/// The fields of a successful token response that the service uses. The deprecated
/// `access_token`, `refresh_token` and `stripe_publishable_key` are not read, so they are never
/// held in memory or printed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    /// The connected account (`acct_…`).
    pub stripe_user_id: String,
    /// Whether the connection is in live mode; it follows the platform's client ID.
    pub livemode: bool,
    /// The granted scope, such as `read_write`.
    pub scope: String,
}

#[derive(Deserialize)]
struct DeauthorizeResponse {
    stripe_user_id: String,
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The Connect OAuth client. Cheap to share; the HTTP client is built on first use.
#[derive(Debug)]
pub struct OAuthClient {
    /// `STRIPE_CONNECT_BASE`, ending in `/`.
    connect_base: String,
    http: OnceCell<reqwest::Client>,
}

impl OAuthClient {
    /// Creates a client of the endpoints under `connect_base` (a URL ending in `/`, as
    /// [`crate::config::StripeConfig::connect_base`] is). Sends nothing.
    pub fn new(connect_base: impl Into<String>) -> Self {
        OAuthClient {
            connect_base: connect_base.into(),
            http: OnceCell::new(),
        }
    }

    async fn http(&self) -> Result<&reqwest::Client, OAuthClientError> {
        self.http
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    .timeout(REQUEST_TIMEOUT)
                    .connect_timeout(CONNECT_TIMEOUT)
                    .retry(reqwest::retry::never())
                    // A fresh connection per request: a request is never sent again on a pooled
                    // connection that the server closed meanwhile.
                    .pool_max_idle_per_host(0)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|error| OAuthClientError::Setup(error.to_string()))
            })
            .await
    }

    /// Exchanges an authorization code for the connection (`grant_type=authorization_code`).
    /// Sends the request once: on any error other than [`OAuthClientError::OAuth`] Stripe may
    /// have consumed the code, and sending it again would revoke the connection.
    pub async fn exchange_code(
        &self,
        secret_key: &Secret,
        code: &str,
    ) -> Result<TokenResponse, OAuthClientError> {
        let form = [("grant_type", "authorization_code"), ("code", code)];
        let token: TokenResponse = self.post("oauth/token", secret_key, &form).await?;
        if token.stripe_user_id.is_empty() {
            return Err(OAuthClientError::UnexpectedResponse {
                status: 200,
                reason: "stripe_user_id is empty".into(),
            });
        }
        Ok(token)
    }

    /// Disconnects a connected account from the platform `client_id`.
    pub async fn deauthorize(
        &self,
        secret_key: &Secret,
        client_id: &str,
        account_id: &str,
    ) -> Result<(), OAuthClientError> {
        let form = [("client_id", client_id), ("stripe_user_id", account_id)];
        let response: DeauthorizeResponse =
            self.post("oauth/deauthorize", secret_key, &form).await?;
        if response.stripe_user_id != account_id {
            return Err(OAuthClientError::UnexpectedResponse {
                status: 200,
                reason: format!("the response names account {}", response.stripe_user_id),
            });
        }
        Ok(())
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        secret_key: &Secret,
        form: &[(&str, &str)],
    ) -> Result<T, OAuthClientError> {
        let url = format!("{}{path}", self.connect_base);
        let response = self
            .http()
            .await?
            .post(url)
            .basic_auth(secret_key.expose(), None::<&str>)
            .form(form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = read_limited(response).await?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|error| {
                OAuthClientError::UnexpectedResponse {
                    status: status.as_u16(),
                    reason: format!("the body is not the documented JSON ({error})"),
                }
            });
        }
        match serde_json::from_slice::<OAuthErrorBody>(&body) {
            Ok(flat) => Err(OAuthClientError::OAuth {
                status: status.as_u16(),
                error: flat.error,
                description: flat.error_description.unwrap_or_default(),
            }),
            Err(_) => Err(OAuthClientError::UnexpectedResponse {
                status: status.as_u16(),
                reason: "the body is not an OAuth error object".into(),
            }),
        }
    }
}

/// Maps a `reqwest` failure without its URL, which is harmless but long.
fn transport_error(error: reqwest::Error) -> OAuthClientError {
    if error.is_timeout() {
        OAuthClientError::Timeout
    } else {
        OAuthClientError::Connection(error.without_url().to_string())
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, OAuthClientError> {
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OAuthClientError::UnexpectedResponse {
                status,
                reason: format!("the body exceeds {MAX_RESPONSE_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
