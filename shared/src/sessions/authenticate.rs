//! `POST /user_management/authenticate`: the `password`, `refresh_token` and
//! `urn:workos:oauth:grant-type:organization-selection` grants.
//!
//! The body is JSON (what the Node SDK sends) or `application/x-www-form-urlencoded`. Every
//! malformed request gets an OAuth-shaped 400: `invalid_request` for a body that is not an object,
//! a missing `grant_type` or a missing or non-string field, and `unsupported_grant_type` for any
//! other grant. Credential failures use the WorkOS shapes:
//!
//! - wrong email or password: 400 `{code: "invalid_credentials", message}`;
//! - a user with several memberships: 403 `{code: "organization_selection_required", message,
//!   pending_authentication_token, organizations: [{id, name}], user}`, completed by the
//!   organization-selection grant within [`PENDING_AUTHENTICATION_TTL`];
//! - a bad refresh token: 400 `{error: "invalid_grant", error_description}`.
//!
//! A user with one membership gets a token scoped to that organization, and a user with none an
//! unscoped token. The client check is described in [`super::client`].

use std::fmt;
use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::client;
use super::idempotency::{self, KeyedRequest};
use super::minting::{self, Scope, TokenInputs};
use super::refresh::{self, Caller, RefreshRequest};
use super::refresh_token::RefreshToken;
use super::{Sessions, users};
use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::ids;
use crate::store::{
    ContextKeys, Environment, Membership, Organization, PendingAuthentication, Session, User,
};

/// The grant that completes a sign-in that requires an organization choice.
pub const ORGANIZATION_SELECTION_GRANT: &str = "urn:workos:oauth:grant-type:organization-selection";
/// How long a pending authentication token can complete a sign-in.
pub const PENDING_AUTHENTICATION_TTL: Duration = Duration::from_secs(600);
/// The `authentication_method` of a password sign-in.
pub const PASSWORD_METHOD: &str = "Password";
/// Longest accepted `ip_address` or `user_agent`, in bytes.
const MAX_CLIENT_DETAIL_BYTES: usize = 1024;

/// The fields of an authenticate body this service reads; others are ignored.
#[derive(Default, Clone)]
pub struct AuthenticateRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub refresh_token: Option<String>,
    pub organization_id: Option<String>,
    pub pending_authentication_token: Option<String>,
    pub invitation_token: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl fmt::Debug for AuthenticateRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AuthenticateRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field("organization_id", &self.organization_id)
            .finish_non_exhaustive()
    }
}

impl AuthenticateRequest {
    fn field_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "grant_type" => &mut self.grant_type,
            "client_id" => &mut self.client_id,
            "client_secret" => &mut self.client_secret,
            "email" => &mut self.email,
            "password" => &mut self.password,
            "refresh_token" => &mut self.refresh_token,
            "organization_id" => &mut self.organization_id,
            "pending_authentication_token" => &mut self.pending_authentication_token,
            "invitation_token" => &mut self.invitation_token,
            "ip_address" => &mut self.ip_address,
            "user_agent" => &mut self.user_agent,
            _ => return None,
        })
    }
}

/// Parses an authenticate body. JSON `null` counts as absent.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<AuthenticateRequest, ApiError> {
    let mut request = AuthenticateRequest::default();
    let is_form = content_type.is_some_and(|value| {
        value.split(';').next().is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if is_form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| ApiError::invalid_request("The request body is not valid form data."))?;
        for (name, value) in pairs {
            if let Some(field) = request.field_mut(&name) {
                *field = Some(value);
            }
        }
        return Ok(request);
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid_request(
            "The request body must be a JSON object.",
        ));
    };
    for (name, value) in object {
        let Some(field) = request.field_mut(&name) else {
            continue;
        };
        match value {
            Value::String(text) => *field = Some(text),
            Value::Null => {}
            _ => {
                return Err(ApiError::invalid_request(format!(
                    "{name} must be a string."
                )));
            }
        }
    }
    Ok(request)
}

/// The grants this service supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Password,
    RefreshToken,
    OrganizationSelection,
}

/// Reads `grant_type`.
pub fn grant(request: &AuthenticateRequest) -> Result<Grant, ApiError> {
    match request.grant_type.as_deref() {
        None | Some("") => Err(ApiError::invalid_request("grant_type is required.")),
        Some("password") => Ok(Grant::Password),
        Some("refresh_token") => Ok(Grant::RefreshToken),
        Some(ORGANIZATION_SELECTION_GRANT) => Ok(Grant::OrganizationSelection),
        Some(other) => {
            let shortened: String = other.chars().take(100).collect();
            Err(ApiError::OAuth {
                status: StatusCode::BAD_REQUEST,
                error: "unsupported_grant_type",
                description: format!(
                    "grant_type '{shortened}' is not supported; use 'password', 'refresh_token' or '{ORGANIZATION_SELECTION_GRANT}'."
                ),
            })
        }
    }
}

fn required<'a>(name: &str, value: &'a Option<String>) -> Result<&'a str, ApiError> {
    match value.as_deref() {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ApiError::invalid_request(format!("{name} is required."))),
    }
}

/// The end user's address and browser, kept on the session.
#[derive(Debug, Clone, Default)]
pub struct ClientDetails {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

fn client_details(request: &AuthenticateRequest) -> Result<ClientDetails, ApiError> {
    for (name, value) in [
        ("ip_address", &request.ip_address),
        ("user_agent", &request.user_agent),
    ] {
        if value
            .as_ref()
            .is_some_and(|value| value.len() > MAX_CLIENT_DETAIL_BYTES)
        {
            return Err(ApiError::invalid_request(format!(
                "{name} must be at most {MAX_CLIENT_DETAIL_BYTES} bytes."
            )));
        }
    }
    Ok(ClientDetails {
        ip_address: request.ip_address.clone(),
        user_agent: request.user_agent.clone(),
    })
}

/// The HTTP request an authenticate call arrived in.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Handles `POST /user_management/authenticate` and renders the response.
pub async fn handle(sessions: &Sessions, http: HttpRequest<'_>) -> Response {
    match dispatch(sessions, http).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn dispatch(sessions: &Sessions, http: HttpRequest<'_>) -> Result<Response, ApiError> {
    let content_type = http
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let request = parse(content_type, http.body)?;
    let grant = grant(&request)?;
    let idempotency_key = idempotency::key_from_headers(http.headers)?;
    let bearer = http
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token);
    let credentials = client::credentials(
        bearer,
        request.client_id.as_deref(),
        request.client_secret.as_deref(),
    )?;

    if grant == Grant::RefreshToken {
        let refresh_request = RefreshRequest {
            refresh_token: required("refresh_token", &request.refresh_token)?.to_owned(),
            caller: Caller::Client(credentials),
            organization_id: request.organization_id.clone(),
        };
        let refreshed = refresh::refresh(sessions, &refresh_request).await?;
        let body = minting::authentication_response(
            &refreshed.user,
            &refreshed.issued,
            &refreshed.refresh_token,
            &refreshed.authentication_method,
        );
        return Ok(Json(body).into_response());
    }

    // Fields are checked before the API key is looked up, so bad input costs no request.
    match grant {
        Grant::Password => {
            required("email", &request.email)?;
            required("password", &request.password)?;
            if request.invitation_token.is_some() {
                return Err(ApiError::invalid_request(
                    "invitation_token is not supported by this service.",
                ));
            }
        }
        _ => {
            required(
                "pending_authentication_token",
                &request.pending_authentication_token,
            )?;
            required("organization_id", &request.organization_id)?;
        }
    }
    let details = client_details(&request)?;
    let environment_id = client::authenticate(&sessions.state, &credentials).await?;
    let keyed = KeyedRequest {
        environment_id: &environment_id,
        key: idempotency_key.as_deref(),
        method: http.method,
        path: http.path,
        body: http.body,
        retention: sessions.state.config.refresh_grace,
    };
    let response = idempotency::run(sessions, keyed, || async {
        let result = match grant {
            Grant::Password => password(sessions, &environment_id, &request, details).await,
            _ => organization_selection(sessions, &environment_id, &request, details).await,
        };
        match result {
            Ok(body) => Json(body).into_response(),
            Err(error) => error.into_response(),
        }
    })
    .await;
    Ok(response)
}

/// The error of a failed password sign-in. It names the email as WorkOS does, unless the email
/// is longer than any stored one, so a request cannot make the reply carry a large body back.
fn invalid_credentials(email: &str) -> ApiError {
    let message = if email.chars().count() <= users::MAX_EMAIL_CHARS {
        format!("Invalid credentials for '{email}'.")
    } else {
        "Invalid credentials.".to_owned()
    };
    ApiError::Authentication {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_credentials",
        message,
        extra: Map::new(),
    }
}

fn invalid_pending_token() -> ApiError {
    ApiError::Authentication {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_pending_authentication_token",
        message: "The pending authentication token is invalid, expired or already used.".into(),
        extra: Map::new(),
    }
}

/// Runs the `password` grant.
async fn password(
    sessions: &Sessions,
    environment_id: &str,
    request: &AuthenticateRequest,
    details: ClientDetails,
) -> Result<Value, ApiError> {
    let email = request.email.as_deref().unwrap_or_default().trim();
    let password = request.password.clone().unwrap_or_default();
    let store = &sessions.state.store;
    let user = store.get_user_by_email(environment_id, email).await?;
    if !users::verify_password(user.as_ref(), password).await {
        tracing::info!(user_found = user.is_some(), "password sign-in rejected");
        return Err(invalid_credentials(email));
    }
    let Some(user) = user else {
        return Err(invalid_credentials(email));
    };

    let (environment, memberships) = tokio::join!(
        store.get_environment(environment_id),
        store.list_user_memberships(environment_id, &user.id)
    );
    let environment = environment?.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "environment {environment_id} of a valid API key is missing"
        ))
    })?;
    let selectable = with_organizations(sessions, environment_id, memberships?).await?;
    match selectable.len() {
        0 => start_session(sessions, &environment, user, None, PASSWORD_METHOD, details).await,
        1 => {
            let scope = selectable.into_iter().next();
            start_session(
                sessions,
                &environment,
                user,
                scope,
                PASSWORD_METHOD,
                details,
            )
            .await
        }
        _ => Err(
            organization_selection_required(sessions, &user, &selectable, PASSWORD_METHOD).await?,
        ),
    }
}

/// Pairs memberships with their organizations, dropping those whose organization is gone.
async fn with_organizations(
    sessions: &Sessions,
    environment_id: &str,
    memberships: Vec<Membership>,
) -> Result<Vec<(Membership, Organization)>, ApiError> {
    let store = &sessions.state.store;
    let reads = memberships
        .iter()
        .map(|membership| store.get_organization(environment_id, &membership.organization_id));
    let organizations = futures::future::try_join_all(reads).await?;
    Ok(memberships
        .into_iter()
        .zip(organizations)
        .filter_map(|(membership, organization)| {
            organization.map(|organization| (membership, organization))
        })
        .collect())
}

/// Stores a pending authentication and builds the 403 that requests an organization choice.
async fn organization_selection_required(
    sessions: &Sessions,
    user: &User,
    selectable: &[(Membership, Organization)],
    method: &str,
) -> Result<ApiError, ApiError> {
    let token = ids::new_secret("");
    let ttl = i64::try_from(PENDING_AUTHENTICATION_TTL.as_secs()).unwrap_or(i64::MAX);
    let pending = PendingAuthentication {
        token_hash: ids::hash_secret(&token),
        environment_id: user.environment_id.clone(),
        user_id: user.id.clone(),
        authentication_method: method.to_owned(),
        expires_at: Utc::now().timestamp() + ttl,
    };

    sessions
        .state
        .store
        .create_pending_authentication(&pending)
        .await?;
    tracing::info!(user_id = %user.id, organizations = selectable.len(), "sign-in waits for an organization choice");
    let organizations: Vec<Value> = selectable
        .iter()
        .map(|(_, organization)| json!({ "id": organization.id, "name": organization.name }))
        .collect();
    let mut extra = Map::new();
    extra.insert("pending_authentication_token".into(), json!(token));
    extra.insert("organizations".into(), json!(organizations));
    extra.insert("user".into(), users::to_json(user));
    Ok(ApiError::Authentication {
        status: StatusCode::FORBIDDEN,
        code: "organization_selection_required",
        message: "The user must choose an organization to finish their authentication.".into(),
        extra,
    })
}

/// Runs the organization-selection grant.
async fn organization_selection(
    sessions: &Sessions,
    environment_id: &str,
    request: &AuthenticateRequest,
    details: ClientDetails,
) -> Result<Value, ApiError> {
    let token = request
        .pending_authentication_token
        .as_deref()
        .unwrap_or_default();
    let organization_id = request.organization_id.as_deref().unwrap_or_default();
    if !ids::is_id(organization_id, "org") {
        return Err(ApiError::not_found("Organization", organization_id));
    }

    let store = &sessions.state.store;
    let token_hash = ids::hash_secret(token);
    let Some(pending) = store
        .get_pending_authentication(environment_id, &token_hash)
        .await?
    else {
        return Err(invalid_pending_token());
    };

    let mut context = store
        .read_session_context(&ContextKeys {
            environment_id: environment_id.to_owned(),
            environment: true,
            user_id: Some(pending.user_id.clone()),
            membership: Some((pending.user_id.clone(), organization_id.to_owned())),
            ..ContextKeys::default()
        })
        .await?;

    let (Some(environment), Some(user)) = (context.environment.take(), context.user.take()) else {
        return Err(invalid_pending_token());
    };
    let Some(organization) = context.organization.take() else {
        return Err(ApiError::not_found("Organization", organization_id));
    };
    // Checked before the token is consumed, so a wrong choice can be corrected with the same token.
    let Some(membership) = context.membership.take() else {
        return Err(ApiError::Authentication {
            status: StatusCode::BAD_REQUEST,
            code: "organization_membership_not_found",
            message: format!("The user is not a member of organization '{organization_id}'."),
            extra: Map::new(),
        });
    };

    if !store
        .consume_pending_authentication(environment_id, &token_hash, Utc::now().timestamp())
        .await?
    {
        return Err(invalid_pending_token());
    }
    let method = pending.authentication_method.clone();
    start_session(
        sessions,
        &environment,
        user,
        Some((membership, organization)),
        &method,
        details,
    )
    .await
}

/// Creates a session for a completed sign-in and issues its first pair of tokens.
async fn start_session(
    sessions: &Sessions,
    environment: &Environment,
    mut user: User,
    scope: Option<(Membership, Organization)>,
    method: &str,
    details: ClientDetails,
) -> Result<Value, ApiError> {
    let session_id = ids::new_id("session");
    let refresh_token = RefreshToken::first(&environment.id, &session_id, &user.id);
    let now = Utc::now();
    let session_ttl =
        i64::try_from(sessions.state.config.session_ttl.as_secs()).unwrap_or(i64::MAX);
    let session = Session {
        id: session_id.clone(),
        environment_id: environment.id.clone(),
        user_id: user.id.clone(),
        organization_id: scope
            .as_ref()
            .map(|(_, organization)| organization.id.clone()),
        authentication_method: method.to_owned(),
        auth_time: now.timestamp(),
        created_at: now,
        expires_at: now.timestamp().saturating_add(session_ttl),
        token_hash: refresh_token.hash(),
        generation: 0,
        previous_hash: None,
        rotated_at_ms: now.timestamp_millis(),
        previous_unconsumed: false,
        revoked_at: None,
        ip_address: details.ip_address,
        user_agent: details.user_agent,
    };

    // Signing first means a key problem leaves no session behind.
    let issued = minting::issue(
        sessions,
        &TokenInputs {
            environment,
            session_id: &session_id,
            user_id: &user.id,
            auth_time: session.auth_time,
            generation: 0,
            issued_at_ms: session.rotated_at_ms,
            scope: scope.as_ref().map(|(membership, organization)| Scope {
                membership,
                organization,
            }),
        },
    )?;

    let store = &sessions.state.store;
    let (created, signed_in) = tokio::join!(
        store.create_session(&session),
        store.record_sign_in(&environment.id, &user.id, now)
    );
    created?;
    if let Err(error) = signed_in {
        tracing::warn!(user_id = %user.id, %error, "could not record the sign-in time");
    }
    user.last_sign_in_at = Some(now);

    tracing::info!(
        session_id = %session_id,
        user_id = %user.id,
        organization_id = session.organization_id.as_deref().unwrap_or("none"),
        "session started"
    );
    Ok(minting::authentication_response(
        &user,
        &issued,
        &refresh_token.encode(),
        method,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_credentials_echo_bounded() {
        let short = format!("{:?}", invalid_credentials("ada@example.com"));
        assert!(short.contains("Invalid credentials for 'ada@example.com'."));

        let long_email = format!("{}@example.com", "a".repeat(60_000));
        let long = format!("{:?}", invalid_credentials(&long_email));
        assert!(long.contains("Invalid credentials."));
        assert!(!long.contains(&long_email));
    }

    #[test]
    fn parse_reads_json_strings_and_null() {
        let request = parse(
            Some("application/json"),
            br#"{"grant_type":"password","email":"a@b.co","organization_id":null,"extra":5}"#,
        )
        .unwrap();
        assert_eq!(request.grant_type.as_deref(), Some("password"));
        assert_eq!(request.email.as_deref(), Some("a@b.co"));
        assert_eq!(request.organization_id, None);
    }

    #[test]
    fn parse_reads_form_bodies() {
        let request = parse(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"grant_type=refresh_token&refresh_token=a%2Eb",
        )
        .unwrap();
        assert_eq!(request.grant_type.as_deref(), Some("refresh_token"));
        assert_eq!(request.refresh_token.as_deref(), Some("a.b"));
    }

    #[test]
    fn parse_rejects_non_objects_and_non_strings() {
        for body in [&b""[..], b"[]", b"\"x\"", b"{", br#"{"grant_type":5}"#] {
            let error = parse(Some("application/json"), body).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{body:?}");
            assert!(
                matches!(
                    error,
                    ApiError::OAuth {
                        error: "invalid_request",
                        ..
                    }
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn grant_names() {
        let with = |grant_type: Option<&str>| AuthenticateRequest {
            grant_type: grant_type.map(str::to_owned),
            ..AuthenticateRequest::default()
        };
        assert_eq!(grant(&with(Some("password"))).unwrap(), Grant::Password);
        assert_eq!(
            grant(&with(Some(ORGANIZATION_SELECTION_GRANT))).unwrap(),
            Grant::OrganizationSelection
        );
        assert!(matches!(
            grant(&with(None)),
            Err(ApiError::OAuth {
                error: "invalid_request",
                ..
            })
        ));
        assert!(matches!(
            grant(&with(Some("authorization_code"))),
            Err(ApiError::OAuth {
                error: "unsupported_grant_type",
                ..
            })
        ));
    }
}
