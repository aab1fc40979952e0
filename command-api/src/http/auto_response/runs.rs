//! `GET /auto-response/runs` and `/runs/{id}`: what every rule did, with the rule version, the
//! triggering event, the actions and their outcomes (seed 000's `auto_response_runs`).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::state::AppState;
use aegis_auto_response::runs::{Admission, RunMode, RunResult};
use aegis_projectors::auto_response::AutoResponseProjection;
use aegis_projectors::Projection;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    pub rule_id: Option<Uuid>,
    pub result: Option<RunResult>,
    pub mode: Option<RunMode>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_version: i32,
    /// `active` acted; `simulate` only recorded what it would have done.
    #[schema(value_type = RunMode)]
    pub mode: String,
    /// `admitted`, or stopped by the `throttled` or the blast-radius brake (`braked`).
    #[schema(value_type = Admission)]
    pub admission: String,
    #[schema(value_type = RunResult)]
    pub result: String,
    pub trigger_event_id: String,
    pub trigger_position: i64,
    pub trigger_event_type: String,
    pub trigger_aggregate: String,
    #[schema(value_type = Vec<String>)]
    pub targets: Value,
    /// The actions, templates filled, each with `outcome` (`done`, `unchanged`, `recorded`,
    /// `failed`) and `detail` once the run completed.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    pub approval_required: bool,
    pub brake_tripped: bool,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, rule_id, rule_version, mode, admission, result, trigger_event_id, \
    trigger_position, trigger_event_type, trigger_aggregate, targets, actions, approval_required, \
    brake_tripped, started_at, completed_at";

/// The tenant's runs, newest first; filter by rule, result or mode.
#[utoipa::path(get, path = "/auto-response/runs", tag = "auto-response", security(("bearer" = [])),
    params(RunQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of runs", body = Paged<RunRow>), AuthErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<RunQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[AutoResponseProjection::NAME]).await?;
    let result = q.result.map(|r| r.as_str());
    let mode = q.mode.map(|m| m.as_str());
    let (rows, total): (Vec<RunRow>, i64) =
        TenantQuery::new("auto_response_runs", "tenant_id", tenant.0)
            .eq_uuid("rule_id", q.rule_id)
            .eq_text("result", result)
            .eq_text("mode", mode)
            .page(
                &state.pool,
                COLUMNS,
                "started_at DESC, id DESC",
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

/// One run.
#[utoipa::path(get, path = "/auto-response/runs/{id}", tag = "auto-response", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The run", body = Data<RunRow>), AuthErrors,
        (status = 404, description = "No such run", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[AutoResponseProjection::NAME]).await?;
    let row: Option<RunRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM auto_response_runs WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found("run not found"))?;
    Ok(Reply::data(StatusCode::OK, row))
}
