//! Agents (seed 004): minted with a secret shown once, listed without credentials, revoked
//! or quarantined by operators; an active agent heartbeats with its own secret.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::broker::own_agent;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, ensure_tenant, execute};
use crate::state::AppState;
use aegis_identity::agents::{Agent, AgentAggregate, AgentError, AgentStatus, Command};
use aegis_projectors::identity::IdentityProjection;
use aegis_projectors::Projection;
use aegis_runtime::tokens::{self, CredentialKind};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mint, list))
        .routes(routes!(revoke))
        .routes(routes!(quarantine))
        .routes(routes!(release))
        .routes(routes!(heartbeat))
}

fn agent_error(e: AgentError) -> ApiError {
    match e {
        AgentError::NotFound => ApiError::not_found("agent not found"),
        AgentError::AlreadyExists => ApiError::conflict("the agent already exists"),
        AgentError::Revoked => ApiError::conflict("the agent is revoked; revocation is final")
            .with("current_status", "revoked"),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub status: AgentStatus,
    pub created_at: DateTime<Utc>,
}

impl AgentView {
    pub(crate) fn of(a: &Agent) -> Self {
        Self {
            id: a.id,
            name: a.name.clone(),
            prefix: a.prefix.clone(),
            status: a.status,
            created_at: a.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MintedAgent {
    #[serde(flatten)]
    pub agent: AgentView,
    /// `aga_...`: send as `X-Agent-Secret`. Shown once, never again.
    pub agent_secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// Mint an agent; the answer holds its secret, once.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    params(params::Tenant), request_body = MintBody,
    responses(
        (status = 201, description = "Minted; copy the secret now", body = Data<MintedAgent>, headers(("Aegis-Position" = u64))),
        AuthErrors,
        BodyErrors,
    ))]
async fn mint(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<MintBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let name = super::users::display_name(Some(&body.name))?.unwrap_or_default();
    ensure_tenant(&state, tenant).await?;
    let id = Uuid::now_v7();
    let minted = tokens::mint(CredentialKind::Agent, tenant.0, id);
    let agg = aggregate::<AgentAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<AgentAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Mint {
            name,
            prefix: minted.prefix.clone(),
            digest: state.keyring.digest(&minted.credential),
        },
        true,
        agent_error,
    )
    .await?;
    let agent = outcome
        .state
        .ok_or_else(|| ApiError::internal(&AgentError::NotFound))?;
    tracing::info!(agent = %id, tenant = %tenant, "agent minted");
    let reply = Reply::data(
        StatusCode::CREATED,
        MintedAgent {
            agent: AgentView::of(&agent),
            agent_secret: minted.credential,
        },
    )
    .at(outcome.position, outcome.version);
    Ok(([(header::CACHE_CONTROL, "no-store")], reply).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AgentQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    #[param(inline)]
    pub status: Option<AgentStatus>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct AgentRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    #[schema(value_type = AgentStatus)]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Hex SHA-256 of the X25519 wire key it registered (`PUT .../public-key`), if any.
    pub public_key_fingerprint: Option<String>,
}

/// Agents of the tenant, newest first (no credentials).
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("bearer" = [])),
    params(AgentQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of agents", body = Paged<AgentRow>), AuthErrors,
        (status = 422, description = "Invalid paging or filter values", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<AgentQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[IdentityProjection::NAME]).await?;
    let status = q.status.map(AgentStatus::as_str);
    let (rows, total): (Vec<AgentRow>, i64) = TenantQuery::new(
        "agents a LEFT JOIN agent_presence p ON p.tenant_id = a.tenant_id AND p.agent_id = a.id",
        "a.tenant_id",
        tenant.0,
    )
    .eq_text("a.status", status)
    .page(
        &state.pool,
        "a.id, a.name, a.prefix, a.status, a.created_at, a.updated_at, p.last_seen_at, \
         a.wire_key_fingerprint AS public_key_fingerprint",
        "a.created_at DESC, a.id DESC",
        limit,
        offset,
    )
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        Paged {
            data: rows,
            total,
            limit,
            offset,
        },
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why, for the audit log (up to 500 characters).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

async fn set_status(
    state: &AppState,
    principal: &Principal,
    headers: &CommandHeaders,
    id: Uuid,
    status: AgentStatus,
    reason: Option<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let raw = reason.unwrap_or_default();
    let reason = raw.trim().to_string();
    if raw.chars().count() > 500 {
        return Err(ApiError::validation(
            "reason",
            "reason must be at most 500 characters",
        ));
    }
    let agg = aggregate::<AgentAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<AgentAggregate>(
        state,
        principal,
        headers,
        &agg,
        &Command::SetStatus { status, reason },
        false,
        agent_error,
    )
    .await?;
    state.directory.invalidate(&agg.subject());
    let agent = outcome
        .state
        .ok_or_else(|| ApiError::not_found("agent not found"))?;
    if outcome.appended {
        tracing::info!(agent = %id, tenant = %tenant, status = %status, "agent status changed");
    }
    Ok(Reply::data(StatusCode::OK, AgentView::of(&agent)).at(outcome.position, outcome.version))
}

/// Revoke an agent: its secret stops working at once, for good.
#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant), request_body(content = Option<ReasonBody>),
    responses(
        (status = 200, description = "Revoked", body = Data<AgentView>, headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such agent in this tenant", body = ErrorBody),
        BodyErrors,
    ))]
async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<ReasonBody>,
) -> Result<Reply, ApiError> {
    let reason = body.reason;
    set_status(
        &state,
        &principal,
        &headers,
        id,
        AgentStatus::Revoked,
        reason,
    )
    .await
}

/// Quarantine an agent: its secret is refused on agent routes until it is released.
#[utoipa::path(post, path = "/api/v1/agents/{id}/quarantine", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant), request_body(content = Option<ReasonBody>),
    responses(
        (status = 200, description = "Quarantined", body = Data<AgentView>, headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such agent in this tenant", body = ErrorBody),
        (status = 409, description = "The agent is revoked", body = ErrorBody),
        BodyErrors,
    ))]
async fn quarantine(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<ReasonBody>,
) -> Result<Reply, ApiError> {
    let reason = body.reason;
    set_status(
        &state,
        &principal,
        &headers,
        id,
        AgentStatus::Quarantined,
        reason,
    )
    .await
}

/// Release a quarantined agent: its secret works again. A revoked agent stays revoked (409).
#[utoipa::path(post, path = "/api/v1/agents/{id}/release", tag = "agents", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant), request_body(content = Option<ReasonBody>),
    responses(
        (status = 200, description = "Active again", body = Data<AgentView>, headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such agent in this tenant", body = ErrorBody),
        (status = 409, description = "The agent is revoked", body = ErrorBody),
        BodyErrors,
    ))]
async fn release(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<ReasonBody>,
) -> Result<Reply, ApiError> {
    let reason = body.reason;
    set_status(
        &state,
        &principal,
        &headers,
        id,
        AgentStatus::Active,
        reason,
    )
    .await
}

/// The agent reports it is alive (X-Agent-Secret); bumps `last_seen_at`.
#[utoipa::path(post, path = "/api/v1/agents/{id}/heartbeat", tag = "agents", security(("agent_secret" = [])),
    params(("id" = String, Path, description = "The agent's id (its own)")),
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "An id that is not a UUID", body = ErrorBody),
        AuthErrors,
    ))]
async fn heartbeat(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    // Presence is telemetry, not history: it goes straight to its table, not to the log.
    sqlx::query(
        "INSERT INTO agent_presence (tenant_id, agent_id, last_seen_at) VALUES ($1, $2, now()) \
         ON CONFLICT (tenant_id, agent_id) DO UPDATE SET last_seen_at = now()",
    )
    .bind(tenant.0)
    .bind(id)
    .execute(&state.pool)
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
