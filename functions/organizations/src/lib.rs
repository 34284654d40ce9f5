//! The `organizations` function: the WorkOS `/organizations` routes, with API-key auth scoped to
//! the key's environment. Handlers only translate HTTP; the rules live in
//! `shared::organizations`.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use shared::auth::Authenticated;
use shared::error::ApiError;
use shared::http::JsonBody;
use shared::organizations::{self, CreateOrganization, UpdateOrganization};
use shared::state::AppState;

/// Builds the router of the organizations routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/organizations", get(list).post(create))
        .route(
            "/organizations/{id}",
            get(get_one).put(update).delete(delete),
        )
        .route(
            "/organizations/external_id/{external_id}",
            get(get_by_external_id),
        )
        .with_state(state)
}

fn path_value(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(value)| value)
        .map_err(|rejection| ApiError::BadRequest {
            code: "invalid_path",
            message: format!("The path is invalid: {}.", rejection.body_text()),
        })
}

// TODO: honour `Idempotency-Key` here as the sessions routes do, so that an SDK retry after a
// lost response cannot create a second organization. Until then, an `external_id` makes such a
// retry fail with a 409.
async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(request): JsonBody<CreateOrganization>,
) -> Result<Response, ApiError> {
    let organization = organizations::create(&state, &auth.environment_id, request).await?;
    Ok((
        StatusCode::CREATED,
        Json(organizations::to_json(&organization)),
    )
        .into_response())
}

async fn get_one(
    State(state): State<AppState>,
    auth: Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_value(id)?;
    let organization = organizations::get(&state, &auth.environment_id, &id).await?;
    Ok(Json(organizations::to_json(&organization)).into_response())
}

async fn get_by_external_id(
    State(state): State<AppState>,
    auth: Authenticated,
    external_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let external_id = path_value(external_id)?;
    let organization =
        organizations::get_by_external_id(&state, &auth.environment_id, &external_id).await?;
    Ok(Json(organizations::to_json(&organization)).into_response())
}

async fn list(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest {
        code: "invalid_query",
        message: format!("The query string is invalid: {}.", rejection.body_text()),
    })?;
    let query = organizations::list_query(&params)?;
    let page = organizations::list(&state, &auth.environment_id, &query).await?;
    Ok(Json(organizations::page_to_json(&page)).into_response())
}

async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    id: Result<Path<String>, PathRejection>,
    JsonBody(request): JsonBody<UpdateOrganization>,
) -> Result<Response, ApiError> {
    let id = path_value(id)?;
    let organization = organizations::update(&state, &auth.environment_id, &id, request).await?;
    Ok(Json(organizations::to_json(&organization)).into_response())
}

async fn delete(
    State(state): State<AppState>,
    auth: Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_value(id)?;
    organizations::delete(&state, &auth.environment_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
