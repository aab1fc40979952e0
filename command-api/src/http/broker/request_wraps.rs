//! The read flow's end, the requester's side: which values an agent handed over for the
//! request (`GET .../wraps`, value-free) and each value once (`GET .../wraps/{wrap_id}`).
//! `user_id` is the document's stop-gap for the requester's identity: it must name the
//! authenticated user, who must be the requester; anyone else is 403 and nothing is consumed.

use super::errors::broker_error;
use super::requests::{person, request_id};
use super::wraps::{no_store, WrapValue};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::command_context;
use crate::http::extract::{CommandHeaders, Query};
use crate::http::openapi::{AuthErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_broker_services::requests;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retrieve))
        .layer(axum::middleware::map_response(no_store))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserQuery {
    /// The requester: must be the authenticated user.
    pub user_id: Option<String>,
}

/// A wrap, never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct WrapSummaryBody {
    pub id: String,
    pub key_name: String,
    pub consumed: bool,
    pub expires_at: DateTime<Utc>,
}

fn wrap_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("wrap not found"))
}

/// The request's wraps, value-free: which keys have a value waiting and whether it was taken.
#[utoipa::path(get, path = "/api/v1/requests/{id}/wraps", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path), UserQuery),
    responses(
        (status = 200, description = "The wraps, oldest first", body = [WrapSummaryBody]),
        (status = 403, description = "Not the requester", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        AuthErrors,
    ))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<Reply, ApiError> {
    let user = person(&principal, q.user_id.as_deref())?;
    let id = request_id(&raw)?;
    let tenant = principal.tenant()?;
    let wraps = requests::wraps_of(&state, tenant.0, id, user)
        .await
        .map_err(broker_error)?;
    let body: Vec<WrapSummaryBody> = wraps
        .into_iter()
        .map(|w| WrapSummaryBody {
            id: w.id,
            key_name: w.key_name,
            consumed: w.consumed,
            expires_at: w.expires_at,
        })
        .collect();
    Ok(Reply::body(StatusCode::OK, body))
}

/// Retrieve a value, once: the first retrieval gets it, every later one 410.
#[utoipa::path(get, path = "/api/v1/requests/{id}/wraps/{wrap_id}", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path), ("wrap_id" = String, Path), UserQuery),
    responses(
        (status = 200, description = "The value, this once", body = WrapValue),
        (status = 403, description = "only the original requester may retrieve", body = ErrorBody),
        (status = 404, description = "No such request, or no such wrap of it", body = ErrorBody),
        (status = 409, description = "The request is not approved (any more)", body = ErrorBody),
        (status = 410, description = "wrap already consumed, or wrap expired", body = ErrorBody),
        AuthErrors,
    ))]
async fn retrieve(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path((raw, raw_wrap)): Path<(String, String)>,
    Query(q): Query<UserQuery>,
) -> Result<Reply, ApiError> {
    let user = person(&principal, q.user_id.as_deref())?;
    let id = request_id(&raw)?;
    let wrap = wrap_id(&raw_wrap)?;
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let got = requests::retrieve_wrap(&state, &ctx, tenant.0, id, wrap, user)
        .await
        .map_err(broker_error)?;
    tracing::info!(%tenant, request = %id, wrap_id = %wrap, "wrap retrieved by its requester");
    Ok(Reply::body(StatusCode::OK, WrapValue::of(wrap, &got)).at(got.position, 1))
}
