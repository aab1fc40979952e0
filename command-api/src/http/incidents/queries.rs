//! Reading incidents: one, a filtered page, and counts by status and severity.

use super::{severity, status, READ_MODELS};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::{Data, Paged, Reply};
use crate::state::AppState;
use aegis_incidents::{Severity, Status};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub total: i64,
    /// Not yet resolved or closed.
    pub open: i64,
    pub by_status: std::collections::BTreeMap<String, i64>,
    pub by_severity: std::collections::BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryReply {
    pub data: Summary,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct IncidentRow {
    pub id: Uuid,
    pub title: String,
    #[schema(value_type = Severity)]
    pub severity: String,
    #[schema(value_type = Status)]
    pub status: String,
    pub source: String,
    pub description: String,
    pub agent_id: Option<String>,
    pub dedup_key: Option<String>,
    pub assigned_to: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub actions_taken: sqlx::types::Json<Vec<String>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, title, severity, status, source, description, agent_id, dedup_key, assigned_to, \
                       actions_taken, version, created_at, updated_at, resolved_at";

/// One incident.
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents", security(("bearer" = []), ("internal_secret" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::MinPosition),
    responses(
        (status = 200, description = "The incident", body = Data<IncidentRow>, headers(("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such incident in this tenant", body = ErrorBody),
        (status = 503, description = "Read model behind Aegis-Min-Position or halted", body = ErrorBody),
    ))]
pub(super) async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, READ_MODELS).await?;
    let row: Option<IncidentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM incidents WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found(format!("incident not found: {id}")))?;
    let version = row.version as u64;
    let mut reply = Reply::data(StatusCode::OK, row);
    reply.version = Some(version);
    Ok(reply)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(value_type = Option<Status>)]
    pub status: Option<String>,
    #[param(value_type = Option<Severity>)]
    pub severity: Option<String>,
    #[param(max_length = 200)]
    pub assigned_to: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Incidents, newest first.
#[utoipa::path(get, path = "/incidents", tag = "incidents", security(("bearer" = []), ("internal_secret" = [])),
    params(ListQuery, params::Tenant, params::MinPosition),
    responses(
        (status = 200, description = "A page of incidents", body = Paged<IncidentRow>),
        AuthErrors,
        (status = 422, description = "Invalid filter value", body = ErrorBody),
        (status = 503, description = "Read model behind Aegis-Min-Position or halted", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = crate::http::identity::Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve()?;
    crate::http::extract::max_chars("assigned_to", q.assigned_to.as_deref(), 200)?;
    let status = q
        .status
        .as_deref()
        .map(status)
        .transpose()?
        .map(Status::as_str);
    let severity = q
        .severity
        .as_deref()
        .map(severity)
        .transpose()?
        .map(Severity::as_str);
    min.wait(&state, READ_MODELS).await?;
    let filter = "tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR severity = $3) \
                  AND ($4::text IS NULL OR assigned_to = $4)";
    let rows: Vec<IncidentRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM incidents WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
    ))
    .bind(tenant.0)
    .bind(status)
    .bind(severity)
    .bind(q.assigned_to.as_deref())
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as(&format!("SELECT count(*) FROM incidents WHERE {filter}"))
            .bind(tenant.0)
            .bind(status)
            .bind(severity)
            .bind(q.assigned_to.as_deref())
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

/// Counts by status and severity.
#[utoipa::path(get, path = "/incidents/summary", tag = "incidents", security(("bearer" = []), ("internal_secret" = [])),
    params(params::Tenant, params::MinPosition),
    responses(
        (status = 200, description = "Counts", body = SummaryReply),
        AuthErrors,
        (status = 503, description = "Read model behind Aegis-Min-Position or halted", body = ErrorBody),
    ))]
pub(super) async fn summary(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, READ_MODELS).await?;
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT status, severity, count(*) FROM incidents WHERE tenant_id = $1 GROUP BY status, severity")
            .bind(tenant.0)
            .fetch_all(&state.pool)
            .await?;
    let mut summary = Summary {
        total: 0,
        open: 0,
        by_status: Status::ALL.iter().map(|s| (s.to_string(), 0)).collect(),
        by_severity: Severity::ALL.iter().map(|s| (s.to_string(), 0)).collect(),
    };
    for (st, sev, n) in rows {
        summary.total += n;
        if Status::parse(&st).is_some_and(Status::is_active) {
            summary.open += n;
        }
        *summary.by_status.entry(st).or_default() += n;
        *summary.by_severity.entry(sev).or_default() += n;
    }
    Ok(Reply::body(StatusCode::OK, SummaryReply { data: summary }))
}
