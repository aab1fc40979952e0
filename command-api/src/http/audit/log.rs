//! The audit log, read from one projection of every event: seed 004's
//! `GET /api/v1/audit-events` and seed 001's `GET /audit/log`.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, MinPosition, Query};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_projectors::audit::AuditProjection;
use aegis_projectors::Projection;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit_events))
        .routes(routes!(audit_log))
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct AuditEvent {
    /// Log position of the commit; with `index`, the event's address in the log.
    pub position: i64,
    pub index: i32,
    pub event_id: String,
    pub event_type: String,
    /// The event type without its schema version, e.g. `api_key.revoked`.
    pub action: String,
    pub context: String,
    pub resource_type: String,
    pub resource_id: String,
    /// `<resource_type>:<resource_id>`.
    pub resource: String,
    pub actor_kind: String,
    pub actor: String,
    pub correlation_id: String,
    pub occurred_at: DateTime<Utc>,
}

/// One filter set for both surfaces.
#[derive(Default)]
struct Filter {
    tenant: Uuid,
    actor: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    correlation_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    context: Option<String>,
    /// Resume strictly below this `(position, index)`.
    before: Option<(i64, i32)>,
}

const COLUMNS: &str = "position, idx AS index, event_id, event_type, action, context, resource_type, \
     resource_id, resource_type || ':' || resource_id AS resource, actor_kind, actor, correlation_id, occurred_at";

const WHERE: &str = "tenant_id = $1 AND ($2::text IS NULL OR actor = $2 OR requested_by = $2) \
     AND ($3::text IS NULL OR action = $3 OR event_type = $3 OR vault_action = $3) \
     AND ($4::text IS NULL OR resource_id = $4 OR resource_type || ':' || resource_id = $4 \
          OR (resource_type = 'credential_read' AND split_part(resource_id, '/', 1) = $4)) \
     AND ($5::text IS NULL OR correlation_id = $5) \
     AND ($6::timestamptz IS NULL OR occurred_at >= $6) AND ($7::timestamptz IS NULL OR occurred_at < $7) \
     AND ($8::text IS NULL OR context = $8) AND ($9::bigint IS NULL OR (position, idx) < ($9, $10))";

/// A row as seed 001's log shows it: the generic row and the vault's own view of it.
#[derive(sqlx::FromRow)]
struct VaultRow {
    #[sqlx(flatten)]
    event: AuditEvent,
    vault_action: Option<String>,
    requested_by: Option<String>,
    target: Option<String>,
    success: bool,
}

impl Filter {
    async fn rows<R>(&self, state: &AppState, limit: i64) -> Result<Vec<R>, ApiError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS}, vault_action, requested_by, target, success FROM audit_events \
             WHERE {WHERE} ORDER BY position DESC, idx DESC LIMIT $11"
        ))
        .bind(self.tenant)
        .bind(&self.actor)
        .bind(&self.action)
        .bind(&self.resource)
        .bind(&self.correlation_id)
        .bind(self.since)
        .bind(self.until)
        .bind(&self.context)
        .bind(self.before.map(|b| b.0))
        .bind(self.before.map_or(0, |b| b.1))
        .bind(limit)
        .fetch_all(&state.pool)
        .await?)
    }

    async fn count(&self, state: &AppState) -> Result<i64, ApiError> {
        let (n,): (i64,) =
            sqlx::query_as(&format!("SELECT count(*) FROM audit_events WHERE {WHERE}"))
                .bind(self.tenant)
                .bind(&self.actor)
                .bind(&self.action)
                .bind(&self.resource)
                .bind(&self.correlation_id)
                .bind(self.since)
                .bind(self.until)
                .bind(&self.context)
                .bind(self.before.map(|b| b.0))
                .bind(self.before.map_or(0, |b| b.1))
                .fetch_one(&state.pool)
                .await?;
        Ok(n)
    }
}

/// An event's address in the log, `<position>.<index>`.
fn parse_cursor(raw: &str) -> Result<(i64, i32), ApiError> {
    raw.split_once('.')
        .and_then(|(p, i)| Some((p.parse().ok()?, i.parse().ok()?)))
        .ok_or_else(|| ApiError::validation("cursor", "cursor must be a next_cursor this API sent"))
}

fn limit(raw: Option<i64>, default: i64) -> Result<i64, ApiError> {
    let limit = raw.unwrap_or(default);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    Ok(limit)
}

fn range(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Result<(), ApiError> {
    match (since, until) {
        (Some(s), Some(u)) if s > u => Err(ApiError::validation(
            "since",
            "the start of the range is after its end",
        )),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Actor subject: a user, API key or agent id, `bootstrap` or `internal`.
    #[param(max_length = 200)]
    pub actor: Option<String>,
    /// Event action (`incident.opened`) or versioned type (`incident.opened.v1`).
    #[param(max_length = 200)]
    pub action: Option<String>,
    /// A resource id, or `<type>:<id>`.
    #[param(max_length = 300)]
    pub resource: Option<String>,
    #[param(max_length = 200)]
    pub correlation_id: Option<String>,
    /// Inclusive start (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Exclusive end (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page: `<position>.<index>` of its last event.
    #[param(max_length = 41)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    pub data: Vec<AuditEvent>,
    /// Pass as `cursor` for older events; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Audit events of the tenant, newest first (seed 004).
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "audit", security(("bearer" = [])),
    params(EventsQuery, params::Tenant, params::MinPosition),
    responses(
        (status = 200, description = "A page of audit events", body = EventsPage),
        AuthErrors,
        (status = 422, description = "Invalid limit or range", body = ErrorBody),
    ))]
async fn audit_events(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<EventsQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let limit = limit(q.limit, 100)?;
    range(q.since, q.until)?;
    max_chars("actor", q.actor.as_deref(), 200)?;
    max_chars("action", q.action.as_deref(), 200)?;
    max_chars("resource", q.resource.as_deref(), 300)?;
    max_chars("correlation_id", q.correlation_id.as_deref(), 200)?;
    max_chars("cursor", q.cursor.as_deref(), 41)?;
    min.wait(&state, &[AuditProjection::NAME]).await?;
    let filter = Filter {
        tenant: tenant.0,
        actor: q.actor,
        action: q.action,
        resource: q.resource,
        correlation_id: q.correlation_id,
        since: q.since,
        until: q.until,
        before: q.cursor.as_deref().map(parse_cursor).transpose()?,
        ..Filter::default()
    };
    // One row more than asked says whether another page exists.
    let mut data: Vec<AuditEvent> = filter.rows(&state, limit + 1).await?;
    let next_cursor = if data.len() as i64 > limit {
        data.truncate(limit as usize);
        data.last().map(|e| format!("{}.{}", e.position, e.index))
    } else {
        None
    };
    Ok(Reply::body(
        StatusCode::OK,
        EventsPage { data, next_cursor },
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// A credential name (vault resources).
    #[param(max_length = 300)]
    pub credential_name: Option<String>,
    #[param(max_length = 200)]
    pub action: Option<String>,
    #[param(max_length = 200)]
    pub actor: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogEntry {
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub credential_name: Option<String>,
    /// Seed 001's action: `created`, `updated`, `value_set`, `rotated`, `rolled_back`,
    /// `rotation_started`, `read`, `applied`, `tested`, `expiry_alerted`, `retired`,
    /// `destroyed`; other contexts' events by their type without its version.
    pub action: String,
    /// Who asked: the `requested_by` an apply recorded, else the caller.
    pub actor: String,
    /// An apply's `<workflow>/<node>`, else `<resource_type>:<resource_id>`.
    pub target: String,
    /// False for what failed: a failed rotation, an unhealthy test.
    pub success: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogReply {
    pub log: Vec<LogEntry>,
    pub total: i64,
}

/// The credential access audit log (seed 001's shape), newest first.
#[utoipa::path(get, path = "/audit/log", tag = "audit", security(("bearer" = [])),
    params(LogQuery, params::Tenant, params::MinPosition),
    responses(
        (status = 200, description = "Audit log entries", body = LogReply),
        AuthErrors,
        (status = 422, description = "Invalid limit or range", body = ErrorBody),
    ))]
async fn audit_log(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<LogQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let limit = limit(q.limit, 100)?;
    range(q.start_date, q.end_date)?;
    max_chars("credential_name", q.credential_name.as_deref(), 300)?;
    max_chars("action", q.action.as_deref(), 200)?;
    max_chars("actor", q.actor.as_deref(), 200)?;
    min.wait(&state, &[AuditProjection::NAME]).await?;
    let vault = q.credential_name.is_some();
    let filter = Filter {
        tenant: tenant.0,
        actor: q.actor,
        action: q.action,
        resource: q.credential_name,
        since: q.start_date,
        until: q.end_date,
        context: vault.then(|| "vault".to_string()),
        ..Filter::default()
    };
    let rows: Vec<VaultRow> = filter.rows(&state, limit).await?;
    let total = filter.count(&state).await?;
    let log = rows
        .into_iter()
        .map(|r| {
            let e = r.event;
            LogEntry {
                id: e.event_id,
                timestamp: e.occurred_at,
                // A read is its own aggregate, `<name>/<read id>`: the log files it by name.
                credential_name: (e.context == "vault").then(|| {
                    e.resource_id
                        .split_once('/')
                        .map_or(e.resource_id.as_str(), |(name, _)| name)
                        .to_string()
                }),
                action: r.vault_action.unwrap_or(e.action),
                actor: r.requested_by.unwrap_or(e.actor),
                target: r.target.unwrap_or(e.resource),
                success: r.success,
            }
        })
        .collect();
    Ok(Reply::body(StatusCode::OK, LogReply { log, total }))
}
