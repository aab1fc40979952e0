//! The platform admin's tenant directory (seed 000's admin tag).

use crate::auth::Principal;
use crate::domain::identity::{
    ClaimName, CreateTenant, TenantAggregate, TenantError, TenantId, TenantName,
    TenantNameAggregate,
};
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::{idempotent, Data, Paged, Reply};
use crate::http::{aggregate, command_context, platform_tenant};
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;
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
    OpenApiRouter::new().routes(routes!(list_tenants, create_tenant))
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
    }
}

/// Create a tenant (platform admin).
#[utoipa::path(post, path = "/admin/tenants", tag = "admin", security(("bearer" = [])),
    params(params::Idempotency), request_body = CreateTenantBody,
    responses(
        (status = 201, description = "Created", body = Data<TenantRow>,
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
        state
            .executor
            .execute::<TenantNameAggregate>(
                &claim,
                &ClaimName {
                    name: name.clone(),
                    tenant,
                },
                &claim_ctx,
                false,
            )
            .await
            .map_err(|e| e.into_api(tenant_error))?;
        let ctx = command_context(
            &principal,
            &headers,
            key.as_ref().map(|k| k.msg_id("tenant")),
        );
        let agg = aggregate::<TenantAggregate>(tenant.0, tenant.0.to_string())?;
        let outcome = state
            .executor
            .execute::<TenantAggregate>(&agg, &CreateTenant { name }, &ctx, true)
            .await
            .map_err(|e| e.into_api(tenant_error))?;
        let created = outcome
            .state
            .ok_or_else(|| ApiError::internal(&TenantError::AlreadyExists))?;
        tracing::info!(tenant = %created.id, "tenant created");
        Ok(Reply::data(StatusCode::CREATED, created).at(outcome.position, outcome.version))
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

/// Validates paging parameters: limit 1 to 500 (default 50), offset not negative.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    if offset < 0 {
        return Err(ApiError::validation(
            "offset",
            "offset must not be negative",
        ));
    }
    Ok((limit, offset))
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
