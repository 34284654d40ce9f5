//! The `sessions` function: the WorkOS `/user_management` routes (users, organization
//! memberships, authenticate, session revocation), the JWKS of each environment, and the cookie
//! refresh route. Handlers only translate HTTP; the rules live in `shared::sessions`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use axum::{Json, Router};
use http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;
use shared::auth::Authenticated;
use shared::config::ConfigError;
use shared::error::ApiError;
use shared::http::{parse_json, read_body};
use shared::sessions::idempotency::{self, KeyedRequest};
use shared::sessions::{Sessions, authenticate, cookie_refresh, jwks, memberships, revoke, users};
use shared::state::AppState;

/// Error of building the router from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "ENTITLEMENTS_PATH is invalid: {0:?} must start with '/' and contain no '{{', '}}' or '*'"
    )]
    EntitlementsPath(String),
}

/// Builds the router. Without a usable `KEY_ENCRYPTION_KEY` or `ENTITLEMENTS_PATH` every route
/// returns 500 and the cause is logged; [`try_router`] reports it instead.
pub fn router(state: AppState) -> Router {
    let entitlements_path = state.config.entitlements_path.clone();
    match try_router(state) {
        Ok(router) => router,
        Err(error) => {
            tracing::error!(%error, "the sessions routes cannot serve requests");
            let message = error.to_string();
            let method_router = |_| {
                let message = message.clone();
                any(move || unavailable(message.clone()))
            };
            // An invalid path would make the router panic, so it is left out.
            let path = valid_path(&entitlements_path).then_some(entitlements_path.as_str());
            routes(method_router, path)
                .into_iter()
                .fold(Router::new(), |router, (path, method_router)| {
                    router.route(&path, method_router)
                })
        }
    }
}

/// Builds the router, or fails when the configuration lacks what signing needs.
pub fn try_router(state: AppState) -> Result<Router, RouterError> {
    let entitlements_path = state.config.entitlements_path.clone();
    if !valid_path(&entitlements_path) {
        return Err(RouterError::EntitlementsPath(entitlements_path));
    }
    let sessions = Sessions::new(state)?;
    let router = routes(handlers, Some(&entitlements_path))
        .into_iter()
        .fold(Router::new(), |router, (path, method_router)| {
            router.route(&path, method_router)
        });
    Ok(router.with_state(sessions))
}

fn valid_path(path: &str) -> bool {
    path.starts_with('/') && !path.contains(['{', '}', '*'])
}

/// The routes of this function.
#[derive(Debug, Clone, Copy)]
enum Route {
    Users,
    User,
    Memberships,
    Membership,
    Authenticate,
    Revoke,
    Jwks,
    Entitlements,
}

fn routes<S: Clone + Send + Sync + 'static>(
    method_router: impl Fn(Route) -> MethodRouter<S>,
    entitlements_path: Option<&str>,
) -> Vec<(String, MethodRouter<S>)> {
    let entitlements = entitlements_path.map(|path| (path, Route::Entitlements));
    [
        ("/user_management/users", Route::Users),
        ("/user_management/users/{id}", Route::User),
        (
            "/user_management/organization_memberships",
            Route::Memberships,
        ),
        (
            "/user_management/organization_memberships/{id}",
            Route::Membership,
        ),
        ("/user_management/authenticate", Route::Authenticate),
        ("/user_management/sessions/revoke", Route::Revoke),
        ("/sso/jwks/{client_id}", Route::Jwks),
    ]
    .into_iter()
    .chain(entitlements)
    .map(|(path, route)| (path.to_owned(), method_router(route)))
    .collect()
}

fn handlers(route: Route) -> MethodRouter<Sessions> {
    match route {
        Route::Users => post(create_user),
        Route::User => get(get_user).delete(delete_user),
        Route::Memberships => post(create_membership),
        Route::Membership => get(get_membership).delete(delete_membership),
        Route::Authenticate => post(authenticate),
        Route::Revoke => post(revoke_session),
        Route::Jwks => get(jwks_document),
        Route::Entitlements => get(entitlements),
    }
}

async fn unavailable(message: String) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(message))
}

fn path_value(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(value)| value)
        .map_err(|rejection| ApiError::BadRequest {
            code: "invalid_path",
            message: format!("The path is invalid: {}.", rejection.body_text()),
        })
}

/// A POST with a JSON body, run once per `Idempotency-Key`.
struct KeyedPost<T> {
    body: T,
    raw: axum::body::Bytes,
    key: Option<String>,
}

async fn keyed_post<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<KeyedPost<T>, ApiError> {
    let raw = read_body(body).await?;
    let parsed = parse_json(&raw)?;
    let key = idempotency::key_from_headers(headers)?;
    Ok(KeyedPost {
        body: parsed,
        raw,
        key,
    })
}

fn json_result(status: StatusCode, result: Result<serde_json::Value, ApiError>) -> Response {
    match result {
        Ok(body) => (status, Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn create_user(
    State(sessions): State<Sessions>,
    auth: Authenticated,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let post = keyed_post::<users::CreateUser>(&headers, body).await?;
    let keyed = KeyedRequest {
        environment_id: &auth.environment_id,
        key: post.key.as_deref(),
        method: &method,
        path: uri.path(),
        body: &post.raw,
        retention: idempotency::RETENTION,
    };
    let response = idempotency::run(&sessions, keyed, || async {
        let created = users::create(&sessions.state, &auth.environment_id, post.body).await;
        json_result(
            StatusCode::CREATED,
            created.map(|user| users::to_json(&user)),
        )
    })
    .await;
    Ok(response)
}

async fn get_user(
    State(sessions): State<Sessions>,
    auth: Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_value(id)?;
    let user = users::get(&sessions.state, &auth.environment_id, &id).await?;
    Ok(Json(users::to_json(&user)).into_response())
}

async fn delete_user(
    State(sessions): State<Sessions>,
    auth: Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_value(id)?;
    users::delete(&sessions.state, &auth.environment_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_membership(
    State(sessions): State<Sessions>,
    auth: Authenticated,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let post = keyed_post::<memberships::CreateMembership>(&headers, body).await?;
    let keyed = KeyedRequest {
        environment_id: &auth.environment_id,
        key: post.key.as_deref(),
        method: &method,
        path: uri.path(),
        body: &post.raw,
        retention: idempotency::RETENTION,
    };
    let response = idempotency::run(&sessions, keyed, || async {
        let created = memberships::create(&sessions.state, &auth.environment_id, post.body).await;
        json_result(
            StatusCode::CREATED,
            created.map(|(membership, organization)| {
                memberships::to_json(&membership, Some(&organization))
            }),
        )
    })
    .await;
    Ok(response)
}

async fn get_membership(
    State(sessions): State<Sessions>,
    auth: Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_value(id)?;
    let (membership, organization) =
        memberships::get(&sessions.state, &auth.environment_id, &id).await?;
    Ok(Json(memberships::to_json(&membership, organization.as_ref())).into_response())
}

async fn delete_membership(
    State(sessions): State<Sessions>,
    auth: Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_value(id)?;
    memberships::delete(&sessions.state, &auth.environment_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Authenticates itself: the refresh grant checks the API key in its batched read.
async fn authenticate(
    State(sessions): State<Sessions>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let request = authenticate::HttpRequest {
        method: &method,
        path: uri.path(),
        headers: &headers,
        body: &body,
    };
    Ok(authenticate::handle(&sessions, request).await)
}

async fn revoke_session(
    State(sessions): State<Sessions>,
    auth: Authenticated,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let post = keyed_post::<revoke::RevokeSession>(&headers, body).await?;
    let keyed = KeyedRequest {
        environment_id: &auth.environment_id,
        key: post.key.as_deref(),
        method: &method,
        path: uri.path(),
        body: &post.raw,
        retention: idempotency::RETENTION,
    };
    let response = idempotency::run(&sessions, keyed, || async {
        match revoke::revoke(&sessions.state, &auth.environment_id, &post.body).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(error) => error.into_response(),
        }
    })
    .await;
    Ok(response)
}

async fn jwks_document(
    State(sessions): State<Sessions>,
    client_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let client_id = path_value(client_id)?;
    let document = jwks::document(&sessions.state, &client_id).await?;
    Ok(Json(document).into_response())
}

async fn entitlements(State(sessions): State<Sessions>, headers: HeaderMap) -> Response {
    cookie_refresh::handle(&sessions, &headers).await
}
