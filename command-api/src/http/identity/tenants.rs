//! The platform admin's tenant directory (seed 000's admin tag).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::reply::{idempotent, Data, Paged, Reply};
use crate::http::{aggregate, command_context, platform_tenant};
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;
use aegis_identity::controls::Plan;
use aegis_identity::{
    ClaimName, Tenant, TenantAggregate, TenantCommand, TenantError, TenantId, TenantName,
    TenantNameAggregate,
};
use aegis_projectors::Projection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(tenant_detail))
        .routes(routes!(set_plan))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantBody {
    /// 1 to 100 characters, unique regardless of case.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

fn tenant_error(e: TenantError) -> ApiError {
    match e {
        TenantError::NameTaken(name) => {
            ApiError::conflict(format!("a tenant named `{name}` already exists")).with("name", name)
        }
        TenantError::AlreadyExists => ApiError::conflict("the tenant already exists"),
        TenantError::NotFound => ApiError::not_found("tenant not found"),
    }
}

/// Create a tenant (platform admin).
#[utoipa::path(post, path = "/admin/tenants", tag = "admin", security(("bearer" = [])),
    params(params::Idempotency), request_body = CreateTenantBody,
    responses(
        (status = 201, description = "Created", body = Data<TenantView>,
            headers(("Aegis-Position" = u64, description = "Log position of the commit"), ("ETag" = String))),
        AuthErrors,
        (status = 409, description = "A tenant with this name exists", body = ErrorBody),
        BodyErrors,
    ))]
async fn create_tenant(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<CreateTenantBody>,
) -> Result<Response, ApiError> {
    let name = TenantName::parse(&body.name)
        .map_err(|m| ApiError::validation("name", format!("name {m}")))?;
    let key = headers
        .idempotency_key
        .as_deref()
        .map(|k| IdempotencyKey::new(k, &["tenants", &principal.subject], body.name.as_bytes()))
        .transpose()?;
    let shared = state.clone();
    idempotent(&shared, key, |key| async move {
        let tenant = TenantId(Uuid::now_v7());
        let claim_ctx =
            command_context(&principal, &headers, key.as_ref().map(|k| k.msg_id("name")));
        let claim = aggregate::<TenantNameAggregate>(platform_tenant(), name.uniqueness_key())?;
        let (holder, _) = state
            .executor
            .load::<TenantNameAggregate>(&claim)
            .await
            .map_err(|e| e.into_api(tenant_error))?;
        let holder_alive = match holder {
            Some(h) => {
                let agg = aggregate::<TenantAggregate>(h.tenant.0, h.tenant.0.to_string())?;
                state
                    .executor
                    .load::<TenantAggregate>(&agg)
                    .await
                    .map_err(|e| e.into_api(tenant_error))?
                    .0
                    .is_some()
            }
            None => false,
        };
        let claimed = state
            .executor
            .execute::<TenantNameAggregate>(
                &claim,
                &ClaimName {
                    name: name.clone(),
                    tenant,
                    holder_alive,
                    now: chrono::Utc::now(),
                },
                &claim_ctx,
                false,
            )
            .await
            .map_err(|e| e.into_api(tenant_error))?;
        // A retry with the same Idempotency-Key finds its first claim (deduplicated by the
        // stream) naming the id minted then: the tenant is created under that id, so the
        // name never points at a tenant that does not exist.
        let tenant = claimed.state.map_or(tenant, |c| c.tenant);
        let ctx = command_context(
            &principal,
            &headers,
            key.as_ref().map(|k| k.msg_id("tenant")),
        );
        let agg = aggregate::<TenantAggregate>(tenant.0, tenant.0.to_string())?;
        let outcome = state
            .executor
            .execute::<TenantAggregate>(&agg, &TenantCommand::Create { name }, &ctx, true)
            .await
            .map_err(|e| e.into_api(tenant_error))?;
        let created = outcome
            .state
            .ok_or_else(|| ApiError::internal(&TenantError::AlreadyExists))?;
        tracing::info!(tenant = %created.id, "tenant created");
        Ok(Reply::data(StatusCode::CREATED, TenantView::of(&created))
            .at(outcome.position, outcome.version))
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

impl Page {
    pub fn resolve(&self) -> Result<(i64, i64), ApiError> {
        page(self.limit, self.offset)
    }
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Tenants, newest first (platform admin).
#[utoipa::path(get, path = "/admin/tenants", tag = "admin", security(("bearer" = [])),
    params(Page, params::MinPosition),
    responses(
        (status = 200, description = "A page of tenants", body = Paged<TenantRow>),
        AuthErrors,
        (status = 422, description = "Invalid limit or offset", body = ErrorBody),
        (status = 503, description = "Read model behind Aegis-Min-Position or halted", body = ErrorBody),
    ))]
async fn list_tenants(
    State(state): State<AppState>,
    min: MinPosition,
    Query(page): Query<Page>,
) -> Result<Reply, ApiError> {
    let (limit, offset) = page.resolve()?;
    min.wait(
        &state,
        &[aegis_projectors::identity::TenantsProjection::NAME],
    )
    .await?;
    let rows: Vec<TenantRow> =
        sqlx::query_as("SELECT id, name, created_at FROM tenants ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2")
            .bind(limit)
            .bind(offset)
            .fetch_all(&state.pool)
            .await?;
    let (total,): (i64,) = sqlx::query_as("SELECT count(*) FROM tenants")
        .fetch_one(&state.pool)
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

/// What a tenant may use (seed 003's controls).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanBody {
    /// Add-ons enabled: `vault`, `edge`, `auto_response`, `threat_intel`.
    #[serde(default)]
    pub addons: Vec<String>,
    /// Billable operation (`user.create`, `api_key.create`, `agent.mint`) → most runs per
    /// calendar month (UTC). An operation not named has no limit.
    #[serde(default)]
    pub quotas: std::collections::BTreeMap<String, u64>,
    /// Requests per second for the tenant; absent: the server's default.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub requests_per_second: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub plan: PlanBody,
}

impl TenantView {
    pub fn of(t: &Tenant) -> Self {
        Self {
            id: t.id.0,
            name: t.name.clone(),
            created_at: t.created_at,
            plan: PlanBody {
                addons: t
                    .plan
                    .addons
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect(),
                quotas: t.plan.quotas.clone(),
                requests_per_second: t.plan.requests_per_second,
            },
        }
    }
}

/// One tenant with its plan, from the log (platform admin).
#[utoipa::path(get, path = "/admin/tenants/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, description = "The tenant", body = Data<TenantView>, headers(("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such tenant", body = ErrorBody),
    ))]
async fn tenant_detail(
    State(state): State<AppState>,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let (tenant, position, version) =
        crate::http::current::<TenantAggregate>(&state, TenantId(id), id.to_string()).await?;
    let tenant = tenant.ok_or_else(|| ApiError::not_found("tenant not found"))?;
    Ok(Reply::data(StatusCode::OK, TenantView::of(&tenant)).at(position, version))
}

/// Replace a tenant's plan: entitlements, quotas and request rate (platform admin). Takes
/// effect on the tenant's next request.
#[utoipa::path(put, path = "/admin/tenants/{id}/plan", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::IfMatch), request_body = PlanBody,
    responses(
        (status = 200, description = "The tenant with its new plan", body = Data<TenantView>,
            headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Stale If-Match", body = ErrorBody),
        BodyErrors,
    ))]
async fn set_plan(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<PlanBody>,
) -> Result<Reply, ApiError> {
    let plan = Plan::parse(&body.addons, &body.quotas, body.requests_per_second)
        .map_err(|(field, m)| ApiError::validation(field, m))?;
    let agg = aggregate::<TenantAggregate>(id, id.to_string())?;
    let outcome = crate::http::execute::<TenantAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &TenantCommand::SetPlan(plan),
        false,
        tenant_error,
    )
    .await?;
    let tenant = outcome
        .state
        .ok_or_else(|| ApiError::not_found("tenant not found"))?;
    if outcome.appended {
        tracing::info!(tenant = %id, "tenant plan changed");
    }
    Ok(Reply::data(StatusCode::OK, TenantView::of(&tenant)).at(outcome.position, outcome.version))
}
