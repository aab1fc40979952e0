//! Incident routes (seed 000): open (internal only), list, detail, update, summary.

use super::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use super::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use super::reply::{idempotent, Data, Paged, Reply};
use super::{aggregate, command_context, ensure_tenant};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;
use aegis_incidents::{
    ClaimDedup, Command, DedupAggregate, DedupError, Incident, IncidentAggregate, IncidentError,
    IncidentId, NewIncident, Severity, Status,
};
use aegis_projectors::incidents::IncidentsProjection;
use aegis_projectors::Projection;
use aegis_runtime::command::CommandError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, open))
        .routes(routes!(summary))
        .routes(routes!(detail, update))
}

/// The open incident that already holds the dedup key.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeduplicatedReply {
    pub data: IncidentRow,
    pub deduplicated: bool,
}

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

const READ_MODELS: &[&str] = &[IncidentsProjection::NAME];

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenBody {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(value_type = Severity)]
    pub severity: String,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub dedup_key: Option<String>,
}

fn text(
    field: &str,
    value: Option<String>,
    max: usize,
    required: bool,
) -> Result<Option<String>, ApiError> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    match value {
        None if required => Err(ApiError::validation(field, format!("{field} is required"))),
        Some(v) if v.chars().count() > max => Err(ApiError::validation(
            field,
            format!("{field} must be at most {max} characters"),
        )),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(ApiError::validation(
                field,
                format!("{field} must not contain control characters"),
            ))
        }
        v => Ok(v),
    }
}

fn severity(raw: &str) -> Result<Severity, ApiError> {
    Severity::parse(raw).ok_or_else(|| {
        ApiError::validation(
            "severity",
            format!("severity must be one of {}", names(Severity::ALL)),
        )
        .with("allowed", names_json(Severity::ALL))
    })
}

fn status(raw: &str) -> Result<Status, ApiError> {
    Status::parse(raw).ok_or_else(|| {
        ApiError::validation(
            "status",
            format!("status must be one of {}", names(Status::ALL)),
        )
        .with("allowed", names_json(Status::ALL))
    })
}

fn names<T: std::fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn names_json<T: std::fmt::Display>(all: &[T]) -> serde_json::Value {
    all.iter().map(|s| json!(s.to_string())).collect()
}

impl OpenBody {
    fn validate(self, id: IncidentId) -> Result<NewIncident, ApiError> {
        Ok(NewIncident {
            id,
            severity: severity(&self.severity)?,
            title: text("title", Some(self.title), 200, true)?.unwrap_or_default(),
            source: text("source", self.source, 100, false)?.unwrap_or_else(|| "api".into()),
            description: text("description", self.description, 10_000, false)?.unwrap_or_default(),
            agent_id: text("agent_id", self.agent_id, 200, false)?,
            dedup_key: text("dedup_key", self.dedup_key, 200, false)?,
        })
    }
}

fn incident_error(e: IncidentError) -> ApiError {
    match e {
        IncidentError::NotFound => ApiError::not_found("incident not found"),
        IncidentError::AlreadyExists => ApiError::conflict("incident already exists"),
        IncidentError::IllegalTransition { from, to, allowed } => ApiError::conflict(format!(
            "an incident cannot move from {from} to {to}; from {from} it can move to: {}",
            names(allowed)
        ))
        .with("current_status", from.as_str())
        .with("allowed", names_json(allowed)),
    }
}

/// Open an incident (internal only). A `dedup_key` held by an active incident returns that one.
#[utoipa::path(post, path = "/incidents", tag = "incidents", security(("internal_secret" = [])),
    params(params::Tenant, params::Idempotency), request_body = OpenBody,
    responses(
        (status = 201, description = "Opened", body = Data<IncidentRow>,
            headers(("Aegis-Position" = u64, description = "Log position of the commit"), ("ETag" = String))),
        (status = 200, description = "An active incident already holds the dedup key", body = DeduplicatedReply),
        AuthErrors,
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        BodyErrors,
    ))]
async fn open(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<OpenBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let fingerprint = serde_json::to_vec(&body).unwrap_or_default();
    let new = body.validate(IncidentId(Uuid::now_v7()))?;
    ensure_tenant(&state, tenant).await?;
    let key = headers
        .idempotency_key
        .as_deref()
        .map(|k| {
            IdempotencyKey::new(
                k,
                &["incidents.open", &tenant.to_string(), &principal.subject],
                &fingerprint,
            )
        })
        .transpose()?;
    let shared = state.clone();
    idempotent(&shared, key, |key| async move {
        if let Some(dedup_key) = &new.dedup_key {
            if let Some(existing) = claim_dedup(
                &state,
                &principal,
                &headers,
                tenant.0,
                dedup_key,
                new.id,
                key.as_ref(),
            )
            .await?
            {
                let mut reply = Reply::data(StatusCode::OK, &existing).at(0, existing.version);
                reply.body["deduplicated"] = true.into();
                reply.position = None;
                return Ok(reply);
            }
        }
        let agg = aggregate::<IncidentAggregate>(tenant.0, new.id.to_string())?;
        let ctx = command_context(
            &principal,
            &headers,
            key.as_ref().map(|k| k.msg_id("incident")),
        );
        let outcome = state
            .executor
            .execute::<IncidentAggregate>(&agg, &Command::Open(new), &ctx, true)
            .await
            .map_err(|e| e.into_api(incident_error))?;
        let incident = outcome
            .state
            .ok_or_else(|| ApiError::internal(&IncidentError::NotFound))?;
        Ok(Reply::data(StatusCode::CREATED, incident).at(outcome.position, outcome.version))
    })
    .await
}

/// Claims `dedup_key` for `incident`, or returns the active incident that already holds it.
async fn claim_dedup(
    state: &AppState,
    principal: &Principal,
    headers: &CommandHeaders,
    tenant: Uuid,
    dedup_key: &str,
    incident: IncidentId,
    key: Option<&IdempotencyKey>,
) -> Result<Option<Incident>, ApiError> {
    let dedup = aggregate::<DedupAggregate>(tenant, dedup_key)?;
    for _ in 0..8 {
        let (holder, _) = state
            .executor
            .load::<DedupAggregate>(&dedup)
            .await
            .map_err(|e| e.into_api(|_| unreachable_dedup()))?;
        let mut active = None;
        if let Some(h) = holder {
            let agg = aggregate::<IncidentAggregate>(tenant, h.to_string())?;
            let (current, _) = state
                .executor
                .load::<IncidentAggregate>(&agg)
                .await
                .map_err(|e| e.into_api(incident_error))?;
            active = current.filter(|i| i.status.is_active());
        }
        let claim = ClaimDedup {
            incident,
            seen_holder: holder,
            active_holder: active.as_ref().map(|i| i.id),
        };
        let ctx = command_context(principal, headers, key.map(|k| k.msg_id("dedup")));
        match state
            .executor
            .execute::<DedupAggregate>(&dedup, &claim, &ctx, false)
            .await
        {
            Ok(_) => return Ok(None),
            Err(CommandError::Domain(DedupError::Held(_))) => return Ok(active),
            // Someone claimed or released it since we looked: look again.
            Err(CommandError::Domain(DedupError::Changed)) => continue,
            Err(e) => return Err(e.into_api(|_| unreachable_dedup())),
        }
    }
    Err(
        ApiError::conflict("too many concurrent opens with this dedup_key; retry")
            .with("retry_after_ms", 100),
    )
}

fn unreachable_dedup() -> ApiError {
    ApiError::conflict("the dedup key changed while it was being claimed; retry")
        .with("retry_after_ms", 50)
}

/// Deserializes a present-but-null field as `Some(None)`, so `"assigned_to": null` unassigns.
fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(value_type = Option<Status>)]
    pub status: Option<String>,
    /// A name to assign, or null to unassign.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub assigned_to: Option<Option<String>>,
    #[serde(default)]
    pub actions_taken: Option<Vec<String>>,
}

impl UpdateBody {
    fn validate(self) -> Result<Command, ApiError> {
        if self.status.is_none() && self.assigned_to.is_none() && self.actions_taken.is_none() {
            return Err(ApiError::validation(
                "body",
                "send at least one of status, assigned_to, actions_taken",
            ));
        }
        let status = self.status.as_deref().map(status).transpose()?;
        let assigned_to = match self.assigned_to {
            Some(a) => Some(text("assigned_to", a, 200, false)?),
            None => None,
        };
        let actions = self.actions_taken.unwrap_or_default();
        if actions.len() > 50 {
            return Err(ApiError::validation(
                "actions_taken",
                "at most 50 actions per update",
            ));
        }
        let actions_taken = actions
            .into_iter()
            .map(|a| text("actions_taken", Some(a), 1_000, true).map(Option::unwrap_or_default))
            .collect::<Result<_, _>>()?;
        Ok(Command::Update {
            status,
            assigned_to,
            actions_taken,
        })
    }
}

/// Change status (lifecycle), assignee, or append actions taken.
#[utoipa::path(patch, path = "/incidents/{id}", tag = "incidents", security(("bearer" = []), ("internal_secret" = [])),
    params(("id" = Uuid, Path), params::Tenant, params::Idempotency, params::IfMatch), request_body = UpdateBody,
    responses(
        (status = 200, description = "Updated", body = Data<IncidentRow>,
            headers(("Aegis-Position" = u64), ("ETag" = String))),
        AuthErrors,
        (status = 404, description = "No such incident in this tenant", body = ErrorBody),
        (status = 409, description = "Illegal transition (names the allowed ones) or stale If-Match", body = ErrorBody),
        BodyErrors,
    ))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
    Json(body): Json<UpdateBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let fingerprint = serde_json::to_vec(&body).unwrap_or_default();
    let command = body.validate()?;
    let key = headers
        .idempotency_key
        .as_deref()
        .map(|k| {
            IdempotencyKey::new(
                k,
                &[
                    "incidents.update",
                    &tenant.to_string(),
                    &id.to_string(),
                    &principal.subject,
                ],
                &fingerprint,
            )
        })
        .transpose()?;
    let shared = state.clone();
    idempotent(&shared, key, |key| async move {
        let agg = aggregate::<IncidentAggregate>(tenant.0, id.to_string())?;
        let ctx = command_context(
            &principal,
            &headers,
            key.as_ref().map(|k| k.msg_id("incident")),
        );
        let outcome = state
            .executor
            .execute::<IncidentAggregate>(&agg, &command, &ctx, false)
            .await
            .map_err(|e| match e {
                // An incident the tenant cannot see does not exist for it.
                CommandError::VersionMismatch { current: 0 } => {
                    ApiError::not_found("incident not found")
                }
                e => e.into_api(incident_error),
            })?;
        let incident = outcome
            .state
            .ok_or_else(|| ApiError::not_found("incident not found"))?;
        Ok(Reply::data(StatusCode::OK, incident).at(outcome.position, outcome.version))
    })
    .await
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
async fn detail(
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
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = super::identity::Page {
        limit: q.limit,
        offset: q.offset,
    }
    .resolve()?;
    super::extract::max_chars("assigned_to", q.assigned_to.as_deref(), 200)?;
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
async fn summary(
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

pub use aegis_incidents_services::open_once;
