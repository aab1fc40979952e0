//! Erasure of a whole tenant's secrets: destroying its data key crypto-shreds every value it
//! ever sealed. The log keeps the ciphertext (the chain still verifies) and the record of the
//! destruction; no key to open them exists anywhere any more.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, UuidPath};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{aggregate, ensure_tenant, execute};
use crate::state::AppState;
use aegis_identity::TenantId;
use aegis_vault::tenant_key::{Destroy, TenantKeyAggregate};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(destroy_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyKeyBody {
    /// The tenant's id again: this cannot be undone.
    pub confirm: uuid::Uuid,
    /// Why, for the record; up to 500 characters.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyDestroyed {
    pub status: String,
    pub tenant_id: uuid::Uuid,
    pub reason: String,
    pub destroyed_at: DateTime<Utc>,
}

/// Destroy a tenant's data key (platform admin): every credential value the tenant sealed
/// becomes unreadable for good, and nothing new can be sealed for it. Repeating it answers
/// the first record.
#[utoipa::path(post, path = "/admin/tenants/{id}/destroy-key", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The tenant")),
    request_body = DestroyKeyBody,
    responses((status = 200, description = "Destroyed", body = KeyDestroyed),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such tenant", body = ErrorBody)))]
async fn destroy_key(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<DestroyKeyBody>,
) -> Result<Reply, ApiError> {
    if body.confirm != id {
        return Err(ApiError::validation(
            "confirm",
            "confirm must repeat the tenant's id: destroying its key cannot be undone",
        ));
    }
    if body.reason.trim().is_empty()
        || body.reason.chars().count() > 500
        || body.reason.chars().any(char::is_control)
    {
        return Err(ApiError::validation(
            "reason",
            "reason is required: 1 to 500 printable characters",
        ));
    }
    ensure_tenant(&state, TenantId(id)).await?;
    let agg = aggregate::<TenantKeyAggregate>(id, id.to_string())?;
    let outcome = execute::<TenantKeyAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Destroy {
            reason: body.reason,
        },
        false,
        |never| match never {},
    )
    .await?;
    // The record comes first; the key goes even on a retry, so an interrupted erasure
    // completes when repeated.
    state
        .keys
        .destroy_tenant(id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let done = outcome
        .state
        .ok_or_else(|| ApiError::not_found(format!("tenant not found: {id}")))?;
    tracing::warn!(tenant = %id, "tenant data key destroyed: its sealed values are crypto-shredded");
    Ok(Reply::body(
        StatusCode::OK,
        KeyDestroyed {
            status: "destroyed".into(),
            tenant_id: id,
            reason: done.reason,
            destroyed_at: done.at,
        },
    )
    .at(outcome.position, outcome.version))
}
