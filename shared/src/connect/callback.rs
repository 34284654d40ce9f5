//! The OAuth callback `GET /stripe/oauth/callback`: its query, its rules and its pages.
//!
//! The state is consumed with one conditional write before anything else happens, and the record
//! remembers which callback consumed it (a hash of its code) and the outcome:
//! - the consuming request exchanges the code once, stores the connection and records the outcome;
//! - the same callback arriving again (a reload, a double submit, a concurrent duplicate) waits for
//!   that outcome and shows the same page, without a second exchange;
//! - a callback with the same state and another code, or a missing, unknown or expired state, gets
//!   a 400 page and no exchange.
//!
//! `error=access_denied` shows "Connection cancelled" and consumes the state when it is valid.

use std::time::{Duration, Instant};

use chrono::Utc;
use http::StatusCode;

use super::client::{OAuthClient, OAuthClientError};
use super::link::STATE_LIFETIME_SECONDS;
use super::now_ms;
use super::pages::Page;
use super::platform::{self, NotConfigured};
use crate::config::Secret;
use crate::ids;
use crate::state::AppState;
use crate::store::{
    ConnectOutcome, OAuthConsumption, OAuthOutcome, OAuthState, StateConsumption, StripeConnection,
};

/// How long a repeated callback waits for the consuming request's outcome before it shows a
/// "still in progress" page.
pub const REPLAY_WAIT: Duration = Duration::from_secs(10);

/// How often a repeated callback reads the state record while it waits.
pub const REPLAY_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long after consuming a state its request may still record the outcome. A consumption
/// older than this without an outcome belongs to a request that died, so its result is unknown.
/// It exceeds the exchange's time limit ([`super::client::REQUEST_TIMEOUT`]) with room for the
/// store writes around it.
pub const CONSUMPTION_LEASE_MS: i64 = 60_000;

/// The longest `state` or `code` accepted. Stripe's codes and this service's states are far
/// shorter.
pub const MAX_TOKEN_LENGTH: usize = 512;

/// The longest `error` code accepted.
const MAX_ERROR_LENGTH: usize = 100;

/// The longest `error_description` shown; a longer one is cut.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// The fingerprint of a consumption by a denial.
const DENIED_FINGERPRINT: &str = "denied";

/// The parameters of a callback, each decoded once from the query string. Empty values count as
/// absent.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("state", &self.state.as_ref().map(|_| "…"))
            .field("code", &self.code.as_ref().map(|_| "…"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

/// Parses the raw query string of a callback, percent-decoding each value exactly once. Other
/// parameters, such as `scope`, are ignored. Returns a 400 page naming the parameter that appears
/// twice or has an invalid value.
pub fn parse_params(raw_query: Option<&str>) -> Result<CallbackParams, Page> {
    let mut params = CallbackParams::default();
    for (name, value) in url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        let slot = match name.as_ref() {
            "state" => &mut params.state,
            "code" => &mut params.code,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(invalid_parameter(&name, "appears more than once"));
        }
        if !value.is_empty() {
            *slot = Some(value.into_owned());
        }
    }
    for (name, value, max_length) in [
        ("state", &params.state, MAX_TOKEN_LENGTH),
        ("code", &params.code, MAX_TOKEN_LENGTH),
        ("error", &params.error, MAX_ERROR_LENGTH),
    ] {
        if let Some(value) = value {
            if value.len() > max_length {
                return Err(invalid_parameter(
                    name,
                    &format!("is longer than {max_length} characters"),
                ));
            }
            if !value.bytes().all(|byte| byte.is_ascii_graphic()) {
                return Err(invalid_parameter(
                    name,
                    "contains characters other than printable ASCII",
                ));
            }
        }
    }
    if let Some(description) = &mut params.error_description
        && description.chars().count() > MAX_DESCRIPTION_CHARS
    {
        *description = description
            .chars()
            .take(MAX_DESCRIPTION_CHARS)
            .collect::<String>()
            + "…";
    }
    Ok(params)
}

/// Handles a callback and returns its page. Every failure has a page of its own, so this returns
/// no error.
pub async fn handle(state: &AppState, oauth: &OAuthClient, params: CallbackParams) -> Page {
    if let Some(error) = params.error {
        return handle_error(
            state,
            params.state.as_deref(),
            error,
            params.error_description,
        )
        .await;
    }
    let Some(state_value) = params.state else {
        return missing_parameter("state");
    };
    let Some(code) = params.code else {
        return missing_parameter("code");
    };
    // Checked before the state is consumed, so the link still works once the operator fixed it.
    let secret_key = match platform::secret_key(&state.config) {
        Ok(secret_key) => secret_key,
        Err(error) => return not_configured(&error),
    };

    let state_hash = ids::hash_secret(&state_value);
    let fingerprint = format!("code:{}", ids::hash_secret(&code));
    let now = now_ms();
    let consumption = OAuthConsumption {
        fingerprint: fingerprint.clone(),
        claim_id: ids::new_secret(""),
        consumed_at_ms: now,
        outcome: None,
    };
    let consumed = state
        .store
        .consume_oauth_state(&state_hash, &consumption, now)
        .await;
    if let Ok(StateConsumption::Consumed(record) | StateConsumption::AlreadyConsumed(record)) =
        &consumed
    {
        tracing::Span::current().record("environment_id", record.environment_id.as_str());
    }
    match consumed {
        Ok(StateConsumption::Consumed(record)) => {
            let outcome = exchange_and_connect(state, oauth, secret_key, &record, &code).await;
            record_outcome(state, &record, &consumption.claim_id, &outcome).await;
            outcome_page(&outcome)
        }
        Ok(StateConsumption::AlreadyConsumed(record)) => {
            replay(state, &state_hash, record, &fingerprint).await
        }
        Ok(StateConsumption::Expired) => {
            tracing::info!("OAuth callback with an expired state rejected");
            expired_state()
        }
        Ok(StateConsumption::NotFound) => {
            tracing::info!("OAuth callback with an unknown state rejected");
            unknown_state()
        }
        Err(error) => {
            tracing::error!(error = %error, "consuming the OAuth state failed");
            internal_error()
        }
    }
}

/// Handles a callback with `error`: `access_denied` when the user clicked "Deny", or another
/// OAuth error. A valid state is consumed with the outcome; nothing else is written.
async fn handle_error(
    state: &AppState,
    state_value: Option<&str>,
    error: String,
    description: Option<String>,
) -> Page {
    let (outcome, fingerprint) = if error == "access_denied" {
        (OAuthOutcome::Cancelled, DENIED_FINGERPRINT.to_owned())
    } else {
        let fingerprint = format!("error:{error}");
        let description = description.unwrap_or_default();
        (
            OAuthOutcome::StripeRejected { error, description },
            fingerprint,
        )
    };
    tracing::info!(
        result = outcome_label(&outcome),
        "OAuth callback with an error"
    );
    let Some(state_value) = state_value else {
        return outcome_page(&outcome);
    };

    let state_hash = ids::hash_secret(state_value);
    let now = now_ms();
    let consumption = OAuthConsumption {
        fingerprint: fingerprint.clone(),
        claim_id: ids::new_secret(""),
        consumed_at_ms: now,
        outcome: None,
    };
    match state
        .store
        .consume_oauth_state(&state_hash, &consumption, now)
        .await
    {
        Ok(StateConsumption::Consumed(record)) => {
            record_outcome(state, &record, &consumption.claim_id, &outcome).await;
            outcome_page(&outcome)
        }
        Ok(StateConsumption::AlreadyConsumed(record)) => {
            let same_callback = record
                .consumption
                .as_ref()
                .is_some_and(|consumption| consumption.fingerprint == fingerprint);
            if same_callback {
                outcome_page(&outcome)
            } else {
                tracing::info!(environment_id = %record.environment_id, "OAuth error callback for a state used by another callback");
                already_used()
            }
        }
        // Nothing to consume: the page is the same, and nothing is written.
        Ok(StateConsumption::Expired | StateConsumption::NotFound) => outcome_page(&outcome),
        Err(store_error) => {
            tracing::error!(error = %store_error, "consuming the OAuth state of an error callback failed");
            outcome_page(&outcome)
        }
    }
}

/// Exchanges the code of a freshly consumed state and stores the connection.
async fn exchange_and_connect(
    state: &AppState,
    oauth: &OAuthClient,
    secret_key: &Secret,
    record: &OAuthState,
    code: &str,
) -> OAuthOutcome {
    let environment_id = record.environment_id.as_str();
    let environment = match state.store.get_environment(environment_id).await {
        Ok(Some(environment)) => environment,
        Ok(None) => {
            tracing::warn!(
                environment_id,
                "OAuth callback for a deleted environment; code not exchanged"
            );
            return OAuthOutcome::EnvironmentNotFound;
        }
        Err(error) => {
            tracing::error!(environment_id, error = %error, "reading the environment failed; code not exchanged");
            return OAuthOutcome::Failed;
        }
    };

    let token = match oauth.exchange_code(secret_key, code).await {
        Ok(token) => token,
        Err(OAuthClientError::OAuth {
            status,
            error,
            description,
        }) => {
            tracing::warn!(environment_id, status, oauth_error = %error, "Stripe rejected the authorization code");
            return OAuthOutcome::StripeRejected { error, description };
        }
        Err(error) => {
            tracing::error!(
                environment_id,
                failure = error.kind(),
                error = %error,
                result_unknown = error.result_unknown(),
                "exchanging the authorization code failed; it is not sent again"
            );
            return if error.result_unknown() {
                OAuthOutcome::ExchangeFailed
            } else {
                OAuthOutcome::Failed
            };
        }
    };

    let account_id = token.stripe_user_id;
    if token.livemode != environment.mode.is_live() {
        tracing::warn!(
            environment_id,
            account_id = %account_id,
            livemode = token.livemode,
            environment_mode = environment.mode.as_str(),
            "Stripe connected an account in the other mode; nothing stored"
        );
        return OAuthOutcome::ModeMismatch {
            livemode: token.livemode,
        };
    }

    let connection = StripeConnection {
        account_id: account_id.clone(),
        livemode: token.livemode,
        scope: token.scope,
        connected_at: Utc::now(),
        connection_id: ids::new_id("conn"),
    };
    match state
        .store
        .connect_stripe(environment_id, &connection)
        .await
    {
        Ok(ConnectOutcome::Connected { replaced }) => {
            tracing::info!(
                environment_id,
                account_id = %account_id,
                livemode = connection.livemode,
                connection_id = %connection.connection_id,
                replaced_connection_id = replaced.as_deref().unwrap_or("none"),
                "Stripe connected"
            );
            if let Some(replaced) = replaced {
                super::connection::purge_connection_sets(state, environment_id, &replaced)
                    .await
                    .ok();
            }
            OAuthOutcome::Connected {
                account_id,
                livemode: connection.livemode,
            }
        }
        Ok(ConnectOutcome::AccountTaken {
            environment_id: other_environment_id,
        }) => {
            tracing::warn!(
                environment_id,
                account_id = %account_id,
                other_environment_id = %other_environment_id,
                "Stripe account already connected to another environment; nothing stored"
            );
            OAuthOutcome::AccountTaken {
                account_id,
                livemode: connection.livemode,
            }
        }
        Ok(ConnectOutcome::EnvironmentConnected {
            account_id: current_account_id,
        }) => {
            tracing::warn!(
                environment_id,
                account_id = %account_id,
                current_account_id = %current_account_id,
                "environment already connected to another Stripe account; nothing stored"
            );
            OAuthOutcome::EnvironmentConnected {
                account_id: current_account_id,
            }
        }
        Ok(ConnectOutcome::ModeMismatch) => OAuthOutcome::ModeMismatch {
            livemode: connection.livemode,
        },
        Ok(ConnectOutcome::EnvironmentNotFound) => {
            tracing::warn!(environment_id, account_id = %account_id, "environment deleted during the OAuth callback");
            OAuthOutcome::EnvironmentNotFound
        }
        Err(error) => {
            tracing::error!(environment_id, account_id = %account_id, error = %error, "storing the Stripe connection failed");
            OAuthOutcome::Failed
        }
    }
}

/// Records the outcome on the state, so a repeated callback shows the same page. A failure here
/// changes nothing for this request: the repeated callback then shows "not confirmed".
async fn record_outcome(
    state: &AppState,
    record: &OAuthState,
    claim_id: &str,
    outcome: &OAuthOutcome,
) {
    match state
        .store
        .record_oauth_outcome(&record.state_hash, claim_id, outcome)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            environment_id = %record.environment_id,
            "the OAuth state expired or changed before its outcome was recorded"
        ),
        Err(error) => tracing::error!(
            environment_id = %record.environment_id,
            error = %error,
            "recording the OAuth outcome failed"
        ),
    }
}

/// Returns the page of a callback whose state another request consumed. The same callback gets
/// the recorded outcome's page, after waiting for it when it is not recorded yet.
async fn replay(
    state: &AppState,
    state_hash: &str,
    mut record: OAuthState,
    fingerprint: &str,
) -> Page {
    let deadline = Instant::now() + REPLAY_WAIT;
    loop {
        let Some(consumption) = &record.consumption else {
            tracing::error!(environment_id = %record.environment_id, "a consumed OAuth state has no consumption");
            return internal_error();
        };
        if consumption.fingerprint != fingerprint {
            tracing::warn!(
                environment_id = %record.environment_id,
                "OAuth callback for a state used by another callback; code not exchanged"
            );
            return already_used();
        }
        if let Some(outcome) = &consumption.outcome {
            tracing::info!(
                environment_id = %record.environment_id,
                result = outcome_label(outcome),
                "repeated OAuth callback answered with the recorded outcome"
            );
            return outcome_page(outcome);
        }
        if now_ms() - consumption.consumed_at_ms > CONSUMPTION_LEASE_MS {
            tracing::warn!(
                environment_id = %record.environment_id,
                "the request that consumed this OAuth state recorded no outcome; result unknown"
            );
            return outcome_page(&OAuthOutcome::ExchangeFailed);
        }
        if Instant::now() >= deadline {
            return in_progress();
        }
        tokio::time::sleep(REPLAY_POLL_INTERVAL).await;
        record = match state.store.get_oauth_state(state_hash, now_ms()).await {
            Ok(Some(record)) => record,
            Ok(None) => return expired_state(),
            Err(error) => {
                tracing::error!(error = %error, "reading the OAuth state failed");
                return internal_error();
            }
        };
    }
}

fn outcome_label(outcome: &OAuthOutcome) -> &'static str {
    match outcome {
        OAuthOutcome::Connected { .. } => "connected",
        OAuthOutcome::Cancelled => "cancelled",
        OAuthOutcome::StripeRejected { .. } => "stripe_rejected",
        OAuthOutcome::ExchangeFailed => "exchange_failed",
        OAuthOutcome::ModeMismatch { .. } => "mode_mismatch",
        OAuthOutcome::AccountTaken { .. } => "account_taken",
        OAuthOutcome::EnvironmentConnected { .. } => "environment_connected",
        OAuthOutcome::EnvironmentNotFound => "environment_not_found",
        OAuthOutcome::Failed => "failed",
    }
}

fn mode_name(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
}

const START_AGAIN: &str =
    "Request a new connect link from your application (POST /stripe/connect) and try again.";

/// Returns the page of an outcome.
pub fn outcome_page(outcome: &OAuthOutcome) -> Page {
    match outcome {
        OAuthOutcome::Connected { account_id, livemode } => Page::new(
            StatusCode::OK,
            "Stripe is connected",
            vec![
                "Stripe is connected. You can close this tab.".into(),
                format!("Connected account: {account_id} ({} mode).", mode_name(*livemode)),
            ],
        ),
        OAuthOutcome::Cancelled => Page::new(
            StatusCode::OK,
            "Connection cancelled",
            vec![
                "Connection cancelled: the authorization was denied on Stripe, and nothing was changed. You can close this tab.".into(),
                format!("To connect Stripe later, {}", lowercase_first(START_AGAIN)),
            ],
        ),
        OAuthOutcome::StripeRejected { error, description } => stripe_rejected(error, description),
        OAuthOutcome::ExchangeFailed => Page::new(
            StatusCode::BAD_GATEWAY,
            "Stripe connection not confirmed",
            vec![
                "The connection could not be confirmed: the request to Stripe failed or did not finish, so whether Stripe accepted it is unknown.".into(),
                "An authorization code works once, so it is not sent again. Check the connection with GET /stripe/connection. If it shows connected: false, request a new connect link (POST /stripe/connect) and try again.".into(),
            ],
        ),
        OAuthOutcome::ModeMismatch { livemode } => Page::new(
            StatusCode::CONFLICT,
            "Stripe mode does not match",
            vec![
                format!(
                    "Stripe connected an account in {} mode, but this environment is bound to {} mode. Nothing was stored.",
                    mode_name(*livemode),
                    mode_name(!*livemode)
                ),
                format!(
                    "The operator must configure the platform's {} mode client ID (STRIPE_CLIENT_ID) and secret key (STRIPE_SECRET_KEY) for this environment.",
                    mode_name(!*livemode)
                ),
            ],
        ),
        OAuthOutcome::AccountTaken { account_id, livemode } => Page::new(
            StatusCode::CONFLICT,
            "Stripe account already connected",
            vec![
                format!(
                    "Stripe account {account_id} is already connected to another environment in {} mode. An account connects to one environment per mode, so nothing was stored.",
                    mode_name(*livemode)
                ),
                "Disconnect it there first (DELETE /stripe/connection with that environment's API key), then request a new connect link.".into(),
            ],
        ),
        OAuthOutcome::EnvironmentConnected { account_id } => Page::new(
            StatusCode::CONFLICT,
            "Environment already connected",
            vec![
                format!("This environment is already connected to Stripe account {account_id}, so nothing was stored."),
                "To connect another account, disconnect this one first (DELETE /stripe/connection), then request a new connect link.".into(),
            ],
        ),
        OAuthOutcome::EnvironmentNotFound => Page::new(
            StatusCode::NOT_FOUND,
            "Environment not found",
            vec!["The environment that requested this connect link no longer exists. Nothing was stored.".into()],
        ),
        OAuthOutcome::Failed => internal_error(),
    }
}

fn stripe_rejected(error: &str, description: &str) -> Page {
    let (status, explanation) = match error {
        "invalid_grant" => (
            StatusCode::BAD_REQUEST,
            "Stripe did not accept the authorization code: it is unknown, expired (codes are valid for 5 minutes), already used, or issued for the other mode than the platform's secret key. Nothing was stored.".to_owned(),
        ),
        "invalid_client" => (
            StatusCode::BAD_GATEWAY,
            "Stripe did not accept the platform's credentials: the operator must check that STRIPE_SECRET_KEY is the platform's secret key, in the same mode as STRIPE_CLIENT_ID. Nothing was stored.".to_owned(),
        ),
        "invalid_scope" | "invalid_redirect_uri" | "unsupported_response_type" | "unsupported_grant_type" => (
            StatusCode::BAD_GATEWAY,
            "Stripe rejected the service's authorization request. The operator must check STRIPE_CLIENT_ID and that STRIPE_REDIRECT_URI is registered in the platform's Connect settings. Nothing was stored.".to_owned(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "Stripe rejected the connection. Nothing was stored.".to_owned(),
        ),
    };
    let stripe_message = if description.is_empty() {
        format!("Stripe's error: {error}.")
    } else {
        format!("Stripe's error: {error}: {description}")
    };
    Page::new(
        status,
        "Stripe connection failed",
        vec![explanation, stripe_message, START_AGAIN.into()],
    )
}

fn lowercase_first(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_lowercase().chain(characters).collect(),
        None => String::new(),
    }
}

fn invalid_parameter(name: &str, problem: &str) -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "Invalid connect callback",
        vec![
            format!("The query parameter {name} {problem}."),
            START_AGAIN.into(),
        ],
    )
}

fn missing_parameter(name: &str) -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "Invalid connect callback",
        vec![
            format!(
                "The query parameter {name} is missing. This page only works as the redirect from Stripe's authorization page."
            ),
            START_AGAIN.into(),
        ],
    )
}

fn unknown_state() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "Connect link not valid",
        vec![
            "This connect link is unknown or has expired, so the connection was not made.".into(),
            START_AGAIN.into(),
        ],
    )
}

fn expired_state() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "Connect link expired",
        vec![
            format!(
                "This connect link has expired: links are valid for {} minutes, so the connection was not made.",
                STATE_LIFETIME_SECONDS / 60
            ),
            START_AGAIN.into(),
        ],
    )
}

fn already_used() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "Connect link already used",
        vec![
            "This connect link was already used by another authorization, so this one was not completed.".into(),
            START_AGAIN.into(),
        ],
    )
}

fn in_progress() -> Page {
    let mut page = Page::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Connection in progress",
        vec!["Another request is still completing this connection. Reload this page in a few seconds to see the result.".into()],
    );
    page.retry_after_secs = Some(5);
    page
}

fn not_configured(error: &NotConfigured) -> Page {
    let names: Vec<&str> = error
        .missing
        .iter()
        .map(|variable| variable.name())
        .collect();
    tracing::error!(missing = ?names, "OAuth callback rejected: platform not configured");
    Page::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Stripe Connect is not configured",
        vec![
            error.message(),
            "The connect link stays valid for its remaining lifetime; reload this page once the operator has fixed the configuration.".into(),
        ],
    )
}

fn internal_error() -> Page {
    Page::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Stripe connection failed",
        vec![
            "The connection could not be completed because of an internal error, which the service logged with this request's X-Request-ID.".into(),
            "Check the connection with GET /stripe/connection. If it shows connected: false, request a new connect link (POST /stripe/connect) and try again.".into(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_once() {
        let params = parse_params(Some("state=a%2541b&code=ac_1&scope=read_write")).unwrap();
        assert_eq!(params.state.as_deref(), Some("a%41b"));
        assert_eq!(params.code.as_deref(), Some("ac_1"));
    }

    #[test]
    fn params_reject_space_in_code() {
        let page = parse_params(Some("state=s&code=ac_1+2")).unwrap_err();
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.paragraphs[0].contains("code"));
    }

    #[test]
    fn params_keep_percent_encoded_plus() {
        let params = parse_params(Some("state=s%2Bt&code=ac_%2B")).unwrap();
        assert_eq!(params.state.as_deref(), Some("s+t"));
        assert_eq!(params.code.as_deref(), Some("ac_+"));
    }

    #[test]
    fn params_reject_duplicates() {
        let page = parse_params(Some("state=a&state=b")).unwrap_err();
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(page.paragraphs[0].contains("state appears more than once"));
    }

    #[test]
    fn params_treat_empty_as_missing() {
        let params = parse_params(Some("state=&code=")).unwrap();
        assert_eq!(params, CallbackParams::default());
        assert_eq!(parse_params(None).unwrap(), CallbackParams::default());
    }

    #[test]
    fn params_reject_long_state() {
        let query = format!("state={}", "a".repeat(MAX_TOKEN_LENGTH + 1));
        let page = parse_params(Some(&query)).unwrap_err();
        assert!(page.paragraphs[0].contains("state is longer than"));
    }

    #[test]
    fn params_cut_long_description() {
        let query = format!("error=access_denied&error_description={}", "x".repeat(2000));
        let params = parse_params(Some(&query)).unwrap();
        assert_eq!(
            params.error_description.unwrap().chars().count(),
            MAX_DESCRIPTION_CHARS + 1
        );
    }

    #[test]
    fn debug_hides_state_and_code() {
        let params = parse_params(Some("state=secretstate&code=secretcode")).unwrap();
        let debug = format!("{params:?}");
        assert!(!debug.contains("secretstate"));
        assert!(!debug.contains("secretcode"));
    }

    #[test]
    fn connected_page_says_so() {
        let page = outcome_page(&OAuthOutcome::Connected {
            account_id: "acct_1".into(),
            livemode: false,
        });
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(
            page.paragraphs[0],
            "Stripe is connected. You can close this tab."
        );
    }

    #[test]
    fn rejected_page_escapes_stripe_text() {
        let page = outcome_page(&OAuthOutcome::StripeRejected {
            error: "invalid_grant".into(),
            description: "<script>x</script>".into(),
        });
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(!page.html().contains("<script>"));
        assert!(page.html().contains("&lt;script&gt;"));
    }
}
