//! Scheduled reports (seed 000's `/reports/scheduled`): list, create, read, update, delete,
//! run now, list runs, and download a run's output.

use super::fields::name;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_integrations::reports::{
    Cadence, Command, Definition, Report, ReportFormat, ReportKind, Trigger,
};
use aegis_integrations::webhooks::WebhookKind;
use aegis_integrations::{ReportAggregate, ReportError, WebhookAggregate};
use aegis_integrations_services::reports::produce;
use aegis_projectors::integrations::IntegrationsProjection;
use aegis_projectors::Projection;
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
        .routes(routes!(create, list))
        .routes(routes!(detail, update, delete))
        .routes(routes!(run_now))
        .routes(routes!(runs))
        .routes(routes!(download))
}

fn report_error(e: ReportError) -> ApiError {
    match e {
        ReportError::NotFound => ApiError::not_found("report not found"),
        ReportError::AlreadyExists => ApiError::conflict("the report already exists"),
    }
}

/// A scheduled report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    pub name: String,
    pub kind: ReportKind,
    /// Five fields: minute hour day-of-month month day-of-week (0 or 7 is Sunday), e.g.
    /// `0 9 * * 1` for Mondays at nine.
    pub cron: String,
    /// IANA time zone the cron is read in; default `UTC`.
    pub timezone: Option<String>,
    /// Default `json`.
    pub format: Option<ReportFormat>,
    /// The period each run covers, ending when it runs; 1 to 2160 hours, default 24.
    pub window_hours: Option<u32>,
    /// A generic webhook that receives each run, signed; default none (download only).
    pub webhook_id: Option<Uuid>,
    pub enabled: Option<bool>,
}

/// A change: what is left out stays. `webhook_id: null` stops delivery.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportPatch {
    pub name: Option<String>,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    pub format: Option<ReportFormat>,
    pub window_hours: Option<u32>,
    #[serde(default, deserialize_with = "crate::http::extract::nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub webhook_id: Option<Option<Uuid>>,
    pub enabled: Option<bool>,
}

fn cadence(cron: &str, timezone: &str) -> Result<Cadence, ApiError> {
    if cron.len() > 200 {
        return Err(ApiError::validation(
            "cron",
            "cron is at most 200 characters",
        ));
    }
    Cadence::parse(cron, timezone).map_err(|e| {
        let field = if e.contains("time zone") {
            "timezone"
        } else {
            "cron"
        };
        ApiError::validation(field, e)
    })
}

fn window(hours: Option<u32>) -> Result<u32, ApiError> {
    let h = hours.unwrap_or(24);
    if !(1..=2160).contains(&h) {
        return Err(ApiError::validation(
            "window_hours",
            "window_hours must be between 1 and 2160 (90 days)",
        ));
    }
    Ok(h)
}

/// A report's webhook must be one of the tenant's generic webhooks: its receivers verify the
/// signature; Slack and PagerDuty have no place for a report.
async fn webhook(
    state: &AppState,
    principal: &Principal,
    id: Option<Uuid>,
) -> Result<Option<String>, ApiError> {
    let Some(id) = id else { return Ok(None) };
    let tenant = principal.tenant()?;
    match current::<WebhookAggregate>(state, tenant, id.to_string())
        .await?
        .0
    {
        Some(w) if !w.deleted && w.definition.kind == WebhookKind::Generic => {
            Ok(Some(id.to_string()))
        }
        Some(w) if !w.deleted => Err(ApiError::validation(
            "webhook_id",
            "reports go to generic webhooks (signed); this one is not",
        )),
        _ => Err(ApiError::validation("webhook_id", "no such webhook")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub id: String,
    pub name: String,
    pub kind: ReportKind,
    pub cron: String,
    pub timezone: String,
    pub format: ReportFormat,
    pub window_hours: u32,
    pub webhook_id: Option<String>,
    pub enabled: bool,
    /// When it runs next (absent while disabled).
    pub next_run_at: Option<DateTime<Utc>>,
    pub runs: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(r: &Report) -> ReportView {
    let d = &r.definition;
    let next = d
        .enabled
        .then(|| Cadence::parse(&d.cron, &d.timezone).ok())
        .flatten()
        .and_then(|c| c.next_after(Utc::now()));
    ReportView {
        id: r.id.clone(),
        name: d.name.clone(),
        kind: d.kind,
        cron: d.cron.clone(),
        timezone: d.timezone.clone(),
        format: d.format,
        window_hours: d.window_hours,
        webhook_id: d.webhook_id.clone(),
        enabled: d.enabled,
        next_run_at: next,
        runs: r.runs,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// The most scheduled reports a tenant holds.
pub const MAX_REPORTS: i64 = 50;

/// Create a scheduled report (ADMIN).
#[utoipa::path(post, path = "/reports/scheduled", tag = "integrations", security(("bearer" = [])),
    params(params::Tenant), request_body = ReportBody,
    responses((status = 201, description = "Created", body = Data<ReportView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 409, description = "The tenant holds the most reports it may", body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<ReportBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let timezone = body.timezone.unwrap_or_else(|| "UTC".into());
    cadence(&body.cron, &timezone)?;
    let definition = Definition {
        name: name(&body.name)?,
        kind: body.kind,
        cron: body.cron.split_whitespace().collect::<Vec<_>>().join(" "),
        timezone,
        format: body.format.unwrap_or(ReportFormat::Json),
        window_hours: window(body.window_hours)?,
        webhook_id: webhook(&state, &principal, body.webhook_id).await?,
        enabled: body.enabled.unwrap_or(true),
    };
    ensure_tenant(&state, tenant).await?;
    MinPosition::caught_up(&state, &[IntegrationsProjection::NAME]).await?;
    TenantQuery::new("scheduled_reports", "tenant_id", tenant.0)
        .when(true, "NOT deleted")
        .at_most(&state.pool, MAX_REPORTS, "scheduled reports")
        .await?;
    let agg = aggregate::<ReportAggregate>(tenant.0, Uuid::now_v7().to_string())?;
    let outcome = execute::<ReportAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create(definition),
        true,
        report_error,
    )
    .await?;
    let r = outcome
        .state
        .ok_or_else(|| ApiError::internal(&ReportError::NotFound))?;
    Ok(Reply::data(StatusCode::CREATED, view(&r)).at(outcome.position, outcome.version))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    pub kind: Option<ReportKind>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ReportRow {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub cron: String,
    pub timezone: String,
    pub format: String,
    pub window_hours: i32,
    pub webhook_id: Option<Uuid>,
    pub enabled: bool,
    pub last_run_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// The tenant's scheduled reports, newest first (AUDITOR and up).
#[utoipa::path(get, path = "/reports/scheduled", tag = "integrations", security(("bearer" = [])),
    params(ReportQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of reports", body = Paged<ReportRow>), AuthErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<ReportQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[IntegrationsProjection::NAME]).await?;
    let kind = q.kind.map(|k| k.as_str().to_string());
    let (rows, total): (Vec<ReportRow>, i64) =
        TenantQuery::new("scheduled_reports", "tenant_id", tenant.0)
            .when(true, "NOT deleted")
            .eq_text("kind", kind.as_deref())
            .page(
                &state.pool,
                "id, name, kind, cron, timezone, format, window_hours, webhook_id, enabled, last_run_at, created_by, created_at",
                "created_at DESC, id DESC",
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

async fn live(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<(Report, u64, u64), ApiError> {
    let tenant = principal.tenant()?;
    let (r, position, version) = current::<ReportAggregate>(state, tenant, id.to_string()).await?;
    match r {
        Some(r) if !r.deleted => Ok((r, position, version)),
        _ => Err(ApiError::not_found("report not found")),
    }
}

/// One report, with when it runs next.
#[utoipa::path(get, path = "/reports/scheduled/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 200, description = "The report", body = Data<ReportView>, headers(("ETag" = String))),
        AuthErrors, (status = 404, description = "No such report", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let (r, position, version) = live(&state, &principal, id).await?;
    Ok(Reply::data(StatusCode::OK, view(&r)).at(position, version))
}

/// Change a report; `If-Match` guards against overwriting a change you have not seen.
#[utoipa::path(put, path = "/reports/scheduled/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::IfMatch), request_body = ReportPatch,
    responses((status = 200, description = "The report", body = Data<ReportView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such report", body = ErrorBody),
        (status = 409, description = "Stale If-Match", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<ReportPatch>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (r, _, _) = live(&state, &principal, id).await?;
    let mut d = r.definition.clone();
    if let Some(n) = &body.name {
        d.name = name(n)?;
    }
    if let Some(c) = &body.cron {
        d.cron = c.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    if let Some(t) = body.timezone {
        d.timezone = t;
    }
    cadence(&d.cron, &d.timezone)?;
    if let Some(f) = body.format {
        d.format = f;
    }
    if body.window_hours.is_some() {
        d.window_hours = window(body.window_hours)?;
    }
    if let Some(w) = body.webhook_id {
        d.webhook_id = webhook(&state, &principal, w).await?;
    }
    if let Some(e) = body.enabled {
        d.enabled = e;
    }
    let agg = aggregate::<ReportAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<ReportAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Update(d),
        false,
        report_error,
    )
    .await?;
    let r = outcome
        .state
        .ok_or_else(|| ApiError::not_found("report not found"))?;
    Ok(Reply::data(StatusCode::OK, view(&r)).at(outcome.position, outcome.version))
}

/// Delete a report: it stops running; its runs stay on the record.
#[utoipa::path(delete, path = "/reports/scheduled/{id}", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 204, description = "Deleted"), AuthErrors,
        (status = 404, description = "No such report", body = ErrorBody)))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    let agg = aggregate::<ReportAggregate>(tenant.0, id.to_string())?;
    execute::<ReportAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Delete,
        false,
        report_error,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ReportRunRow {
    pub id: Uuid,
    pub report_id: Uuid,
    /// schedule | manual
    pub trigger: String,
    /// The cron slot a scheduled run was for.
    pub slot: Option<DateTime<Utc>>,
    /// succeeded | failed
    pub status: String,
    pub rows: i32,
    pub bytes: i64,
    /// `download`, or `webhook <id>: <outcome>`.
    pub delivery: String,
    pub detail: String,
    pub window_from: DateTime<Utc>,
    pub window_to: DateTime<Utc>,
    pub ran_by: String,
    pub ran_at: DateTime<Utc>,
}

/// Run a report now, over the window ending now; answers the run.
#[utoipa::path(post, path = "/reports/scheduled/{id}/run", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses((status = 201, description = "The run; its output is ready to download", body = Data<ReportRunRow>),
        AuthErrors, (status = 404, description = "No such report", body = ErrorBody),
        (status = 429, description = "Too many manual runs for this tenant (Retry-After)", body = ErrorBody)))]
async fn run_now(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (r, _, _) = live(&state, &principal, id).await?;
    // A run reads a whole window and keeps its output: a tenant's runs on demand are rationed.
    if let Err(wait) = state
        .limits
        .report_runs
        .reserve(&tenant.to_string(), std::time::Instant::now())
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "a tenant may run reports by hand {} times in ten minutes",
                crate::limits::MANUAL_REPORT_RUNS
            ),
        )
        .with_retry_after(wait.as_secs().max(1)));
    }
    let run = produce(
        &state,
        tenant.0,
        &r.id,
        &r.definition,
        Trigger::Manual,
        None,
    )
    .await;
    let run_id = run.run_id.clone();
    let agg = aggregate::<ReportAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<ReportAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Record(run),
        false,
        report_error,
    )
    .await?;
    MinPosition::at(outcome.position)
        .wait(&state, &[IntegrationsProjection::NAME])
        .await?;
    let row: ReportRunRow =
        sqlx::query_as(&format!("{RUN_SELECT} WHERE tenant_id = $1 AND id = $2"))
            .bind(tenant.0)
            .bind(Uuid::parse_str(&run_id).map_err(|e| ApiError::internal(&e))?)
            .fetch_one(&state.pool)
            .await?;
    Ok(Reply::data(StatusCode::CREATED, row))
}

const RUN_SELECT: &str =
    "SELECT id, report_id, trigger, slot, status, rows, bytes, delivery, detail, \
     window_from, window_to, ran_by, ran_at FROM report_runs";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// A report's runs, newest first.
#[utoipa::path(get, path = "/reports/scheduled/{id}/runs", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), RunQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of runs", body = Paged<ReportRunRow>), AuthErrors,
        (status = 404, description = "No such report", body = ErrorBody),
        (status = 422, description = "Invalid paging", body = ErrorBody)))]
async fn runs(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    UuidPath(id): UuidPath,
    Query(q): Query<RunQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    live(&state, &principal, id).await?;
    min.wait(&state, &[IntegrationsProjection::NAME]).await?;
    let rows: Vec<ReportRunRow> = sqlx::query_as(&format!(
        "{RUN_SELECT} WHERE tenant_id = $1 AND report_id = $2 ORDER BY ran_at DESC, id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(tenant.0)
    .bind(id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let (total,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM report_runs WHERE tenant_id = $1 AND report_id = $2")
            .bind(tenant.0)
            .bind(id)
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

/// A run's output as it was produced (JSON or CSV).
#[utoipa::path(get, path = "/reports/scheduled/{id}/runs/{run_id}/download", tag = "integrations", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("run_id" = Uuid, Path), params::Tenant),
    responses((status = 200, description = "The report", content_type = "application/json"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        AuthErrors, (status = 404, description = "No such run", body = ErrorBody)))]
async fn download(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, run_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let missing = || ApiError::not_found("no such run");
    let id = Uuid::parse_str(&id).map_err(|_| missing())?;
    let run_id = Uuid::parse_str(&run_id).map_err(|_| missing())?;
    let found: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT content_type, content FROM report_outputs \
         WHERE tenant_id = $1 AND report_id = $2 AND run_id = $3",
    )
    .bind(tenant.0)
    .bind(id)
    .bind(run_id)
    .fetch_optional(&state.pool)
    .await?;
    let (content_type, content) = found.ok_or_else(missing)?;
    let ext = if content_type.starts_with("text/csv") {
        "csv"
    } else {
        "json"
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"report-{run_id}.{ext}\""),
            ),
        ],
        content,
    )
        .into_response())
}
