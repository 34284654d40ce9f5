//! Connect OAuth endpoints for Standard accounts, as on `connect.stripe.com`:
//! - `GET /oauth/authorize` shows an HTML page with "Approve" and "Deny";
//! - `POST /oauth/authorize/decision` receives that form and redirects back;
//! - `POST /oauth/token` exchanges a single-use authorization code;
//! - `POST /oauth/deauthorize` disconnects an account.
//!
//! Invalid authorize parameters are never redirected. The emulator returns
//! 400 with `{error, error_description, state}`, the JSON that Stripe shows
//! the browser for such errors. The emulator requires `scope`, `state` and `redirect_uri`,
//! which Stripe treats as optional, so tests exercise the full flow.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use url::Url;

use crate::api::presented_key;
use crate::error::OAuthError;
use crate::state::{Account, AppState, AuthorizationCode, RefreshGrant};
use crate::{EmulatorConfig, ids};

/// Scopes a platform may request.
const SCOPES: &[&str] = &["read_write", "read_only"];

/// Builds the `/oauth` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/authorize/decision", post(decide))
        .route("/oauth/token", post(token))
        .route("/oauth/deauthorize", post(deauthorize))
}

/// Returns the last non-empty value of `name`.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, value)| key == name && !value.is_empty())
        .map(|(_, value)| value.as_str())
}

fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|error| OAuthError::InvalidRequest(format!("Invalid form body: {error}")))
}

/// Validated parameters of an authorization request.
#[derive(Debug)]
struct AuthorizeRequest {
    client_id: String,
    scope: String,
    state: String,
    redirect_uri: Url,
    stripe_user_account: Option<String>,
}

/// Validates authorize parameters; the error carries `state` when it was sent.
fn validate_authorize(
    pairs: &[(String, String)],
    config: &EmulatorConfig,
) -> Result<AuthorizeRequest, (OAuthError, Option<String>)> {
    let state = field(pairs, "state").map(str::to_owned);
    let fail = |error: OAuthError| (error, state.clone());

    let response_type = field(pairs, "response_type").ok_or_else(|| {
        fail(OAuthError::InvalidRequest(
            "No response_type provided".into(),
        ))
    })?;
    if response_type != "code" {
        return Err(fail(OAuthError::UnsupportedResponseType(format!(
            "Invalid response_type: {response_type}. Only 'code' is supported."
        ))));
    }
    let client_id = field(pairs, "client_id")
        .ok_or_else(|| fail(OAuthError::InvalidRequest("No client_id provided".into())))?;
    if client_id != config.client_id {
        return Err(fail(OAuthError::InvalidClient {
            description: format!("No application matches the supplied client_id: {client_id}"),
            unauthenticated: false,
        }));
    }
    let scope = field(pairs, "scope")
        .ok_or_else(|| fail(OAuthError::InvalidRequest("No scope provided".into())))?;
    if !SCOPES.contains(&scope) {
        return Err(fail(OAuthError::InvalidScope(format!(
            "Invalid scope: {scope}. Expected read_write or read_only."
        ))));
    }
    let redirect_text = field(pairs, "redirect_uri").ok_or_else(|| {
        fail(OAuthError::InvalidRequest(
            "No redirect_uri provided".into(),
        ))
    })?;
    let redirect_uri = parse_redirect_uri(redirect_text, config.livemode).map_err(fail)?;
    let Some(state_value) = state.clone() else {
        return Err(fail(OAuthError::InvalidRequest("No state provided".into())));
    };
    let stripe_user_account = field(pairs, "stripe_user_account").map(str::to_owned);
    if let Some(account) = &stripe_user_account
        && !account.starts_with("acct_")
    {
        return Err(fail(OAuthError::InvalidRequest(format!(
            "Invalid stripe_user_account: {account}. Expected an id starting with acct_."
        ))));
    }
    Ok(AuthorizeRequest {
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        state: state_value,
        redirect_uri,
        stripe_user_account,
    })
}

/// Accepts absolute `http`/`https` URLs; live mode requires `https` as Stripe does.
fn parse_redirect_uri(text: &str, livemode: bool) -> Result<Url, OAuthError> {
    let invalid = || OAuthError::InvalidRedirectUri(format!("Invalid redirect_uri: {text}"));
    let url = Url::parse(text).map_err(|_| invalid())?;
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => !livemode,
        _ => false,
    };
    if !scheme_ok || url.host().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

/// `GET /oauth/authorize`: the consent page.
async fn authorize(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs: Vec<(String, String)> =
        match serde_urlencoded::from_str(query.as_deref().unwrap_or_default()) {
            Ok(pairs) => pairs,
            Err(error) => {
                return OAuthError::InvalidRequest(format!("Invalid query string: {error}"))
                    .render_with_state(None);
            }
        };
    match validate_authorize(&pairs, state.config()) {
        Ok(request) => Html(consent_page(&request)).into_response(),
        Err((error, state)) => error.render_with_state(state.as_deref()),
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

fn hidden_input(name: &str, value: &str) -> String {
    format!(
        r#"    <input type="hidden" name="{}" value="{}">
"#,
        escape_html(name),
        escape_html(value)
    )
}

/// Renders the consent page: plain HTML, no scripts or external assets.
/// The form repeats the validated parameters, so the decision endpoint
/// validates them again and needs no server-side session.
fn consent_page(request: &AuthorizeRequest) -> String {
    let mut hidden = String::new();
    hidden.push_str(&hidden_input("response_type", "code"));
    hidden.push_str(&hidden_input("client_id", &request.client_id));
    hidden.push_str(&hidden_input("scope", &request.scope));
    hidden.push_str(&hidden_input("state", &request.state));
    hidden.push_str(&hidden_input("redirect_uri", request.redirect_uri.as_str()));
    if let Some(account) = &request.stripe_user_account {
        hidden.push_str(&hidden_input("stripe_user_account", account));
    }
    let account_note = match &request.stripe_user_account {
        Some(account) => format!(" (account <code>{}</code>)", escape_html(account)),
        None => String::new(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Connect your Stripe account – Stripe emulator</title>
  <style>
    body {{ font-family: system-ui, sans-serif; max-width: 36rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
    button {{ font-size: 1rem; padding: 0.5rem 1.25rem; margin-right: 0.75rem; }}
    button:focus {{ outline: 3px solid #1a5fb4; outline-offset: 2px; }}
  </style>
</head>
<body>
<main>
  <h1>Connect your Stripe account</h1>
  <p>The application <strong>{client_id}</strong> requests <strong>{scope}</strong> access to your Stripe account{account_note}.</p>
  <p>This page is served by a Stripe emulator for tests. No real Stripe account is involved.</p>
  <form method="post" action="/oauth/authorize/decision">
{hidden}    <button type="submit" name="decision" value="approve">Approve</button>
    <button type="submit" name="decision" value="deny">Deny</button>
  </form>
</main>
</body>
</html>
"#,
        client_id = escape_html(&request.client_id),
        scope = escape_html(&request.scope),
    )
}

fn found(location: &Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.as_str())]).into_response()
}

/// `POST /oauth/authorize/decision`: approve or deny, then redirect.
async fn decide(State(state): State<AppState>, body: Bytes) -> Response {
    let pairs = match parse_form(&body) {
        Ok(pairs) => pairs,
        Err(error) => return error.render_with_state(None),
    };
    let request = match validate_authorize(&pairs, state.config()) {
        Ok(request) => request,
        Err((error, state)) => return error.render_with_state(state.as_deref()),
    };
    match field(&pairs, "decision") {
        Some("approve") => approve(&state, request),
        Some("deny") => {
            let mut location = request.redirect_uri.clone();
            location
                .query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("error_description", "The user denied your request")
                .append_pair("state", &request.state);
            tracing::info!("authorization denied");
            found(&location)
        }
        _ => OAuthError::InvalidRequest("decision must be approve or deny".into())
            .render_with_state(Some(&request.state)),
    }
}

/// Connects the requested, preset or a new account and redirects with a code.
fn approve(state: &AppState, request: AuthorizeRequest) -> Response {
    let livemode = state.config().livemode;
    let (account_id, code) = {
        let mut store = state.lock();
        let account_id = match request.stripe_user_account.clone() {
            Some(id) => id,
            None => match store.preset_account.take() {
                Some(id) => id,
                None => {
                    let mut id = ids::account_id();
                    while store.accounts.contains_key(&id) {
                        id = ids::account_id();
                    }
                    id
                }
            },
        };
        store
            .accounts
            .entry(account_id.clone())
            .or_insert_with(|| Account::new(livemode))
            .connected = true;
        let code = ids::authorization_code();
        store.codes.insert(
            code.clone(),
            AuthorizationCode {
                account: account_id.clone(),
                scope: request.scope.clone(),
                issued_at: std::time::Instant::now(),
                used: false,
                force_expired: false,
            },
        );
        (account_id, code)
    };
    tracing::info!(account = %account_id, "authorization approved, code issued");
    let mut location = request.redirect_uri;
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("scope", &request.scope)
        .append_pair("state", &request.state);
    found(&location)
}

/// Checks the platform key sent with HTTP auth or as `client_secret`.
fn authenticate_platform(
    headers: &HeaderMap,
    pairs: &[(String, String)],
    config: &EmulatorConfig,
) -> Result<(), OAuthError> {
    let key = presented_key(headers)
        .or_else(|| field(pairs, "client_secret").map(str::to_owned))
        .ok_or_else(|| OAuthError::InvalidClient {
            description: "No authentication was provided. Send your secret API key using the Authorization header, or as a client_secret POST parameter.".into(),
            unauthenticated: true,
        })?;
    if key != config.platform_secret_key {
        return Err(OAuthError::InvalidClient {
            description: format!("Invalid API Key provided: {}", ids::redact_key(&key)),
            unauthenticated: true,
        });
    }
    Ok(())
}

fn token_response(account: &str, scope: &str, refresh_token: &str, livemode: bool) -> Json<Value> {
    Json(json!({
        "access_token": ids::access_token(livemode),
        "livemode": livemode,
        "refresh_token": refresh_token,
        "scope": scope,
        "stripe_publishable_key": ids::publishable_key(livemode),
        "stripe_user_id": account,
        "token_type": "bearer",
    }))
}

/// `POST /oauth/token`.
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, OAuthError> {
    let pairs = parse_form(&body)?;
    authenticate_platform(&headers, &pairs, state.config())?;
    match field(&pairs, "grant_type") {
        None => Err(OAuthError::InvalidRequest("No grant type specified".into())),
        Some("authorization_code") => exchange_code(&state, &pairs),
        Some("refresh_token") => refresh(&state, &pairs),
        Some(other) => Err(OAuthError::UnsupportedGrantType(format!(
            "Unsupported grant type: {other}"
        ))),
    }
}

/// Exchanges an authorization code. A code used twice revokes the
/// connection, as Stripe documents ("consuming an authorization code more
/// than once revokes the account connection").
fn exchange_code(state: &AppState, pairs: &[(String, String)]) -> Result<Json<Value>, OAuthError> {
    let code = field(pairs, "code")
        .ok_or_else(|| OAuthError::InvalidRequest("No authorization code provided".into()))?;
    let livemode = state.config().livemode;
    let mut store = state.lock();

    let Some(entry) = store.codes.get_mut(code) else {
        tracing::info!("token request with an unknown authorization code rejected");
        return Err(OAuthError::InvalidGrant(format!(
            "Authorization code does not exist: {code}"
        )));
    };
    if entry.used {
        let account = entry.account.clone();
        store.revoke_connection(&account);
        tracing::warn!(account = %account, "authorization code used twice, connection revoked");
        return Err(OAuthError::InvalidGrant(format!(
            "Authorization code already used: {code}"
        )));
    }
    if entry.is_expired() {
        tracing::info!(account = %entry.account, "expired authorization code rejected");
        return Err(OAuthError::InvalidGrant(format!(
            "Authorization code expired: {code}"
        )));
    }

    entry.used = true;
    let grant = RefreshGrant {
        account: entry.account.clone(),
        scope: entry.scope.clone(),
    };
    let connected = store
        .accounts
        .get(&grant.account)
        .is_some_and(|account| account.connected);
    if !connected {
        tracing::info!(account = %grant.account, "authorization code of a revoked connection rejected");
        return Err(OAuthError::InvalidGrant(format!(
            "The connection to account {} was revoked",
            grant.account
        )));
    }

    let refresh_token = ids::refresh_token();
    store
        .refresh_tokens
        .insert(refresh_token.clone(), grant.clone());
    drop(store);
    tracing::info!(account = %grant.account, "authorization code exchanged");
    Ok(token_response(
        &grant.account,
        &grant.scope,
        &refresh_token,
        livemode,
    ))
}

/// Issues a new access token for a refresh token (deprecated by Stripe).
fn refresh(state: &AppState, pairs: &[(String, String)]) -> Result<Json<Value>, OAuthError> {
    let refresh_token = field(pairs, "refresh_token")
        .ok_or_else(|| OAuthError::InvalidRequest("No refresh token provided".into()))?;
    let store = state.lock();
    let grant = store
        .refresh_tokens
        .get(refresh_token)
        .filter(|grant| {
            store
                .accounts
                .get(&grant.account)
                .is_some_and(|account| account.connected)
        })
        .cloned()
        .ok_or_else(|| OAuthError::InvalidGrant("Invalid refresh token".into()))?;
    drop(store);
    Ok(token_response(
        &grant.account,
        &grant.scope,
        refresh_token,
        state.config().livemode,
    ))
}

/// `POST /oauth/deauthorize`: revokes the connection and echoes the account id.
async fn deauthorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, OAuthError> {
    let pairs = parse_form(&body)?;
    let config = state.config();
    authenticate_platform(&headers, &pairs, config)?;
    let client_id = field(&pairs, "client_id")
        .ok_or_else(|| OAuthError::InvalidRequest("No client_id provided".into()))?;
    let account = field(&pairs, "stripe_user_id")
        .ok_or_else(|| OAuthError::InvalidRequest("No stripe_user_id provided".into()))?;
    if client_id != config.client_id {
        return Err(OAuthError::InvalidClient {
            description: format!("No such application: '{client_id}'"),
            unauthenticated: false,
        });
    }

    let mut store = state.lock();
    let connected = store
        .accounts
        .get(account)
        .is_some_and(|account| account.connected);
    if !connected {
        tracing::info!(account = %account, "deauthorization of an unconnected account rejected");
        return Err(OAuthError::InvalidClient {
            description: format!(
                "This application is not connected to stripe account {account}, or that account does not exist."
            ),
            unauthenticated: false,
        });
    }
    store.revoke_connection(account);
    drop(store);

    tracing::info!(account = %account, "account deauthorized");
    Ok(Json(json!({ "stripe_user_id": account })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_html_escapes_markup() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn redirect_uri_requires_https_in_livemode() {
        assert!(parse_redirect_uri("http://127.0.0.1/cb", true).is_err());
        assert!(parse_redirect_uri("https://example.test/cb", true).is_ok());
        assert!(parse_redirect_uri("http://127.0.0.1/cb", false).is_ok());
    }

    #[test]
    fn redirect_uri_rejects_relative_urls() {
        assert!(parse_redirect_uri("/callback", false).is_err());
        assert!(parse_redirect_uri("javascript:alert(1)", false).is_err());
    }
}
