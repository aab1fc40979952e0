//! Leakage incidents: reported by hand or opened by scans, listed, triaged, counted, and
//! checked per secret.

use super::shapes::*;
use super::{refused, word, SEVERITIES};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::command_context;
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition};
use crate::http::openapi::params;
use crate::http::paged::page;
use crate::http::platform::PlatformErrors;
use crate::http::reply::Reply;
use crate::http::vault::versioned::resolve;
use crate::state::AppState;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_vault::leakage::incident::{LeakIncidentStatus, NewIncident, StatusChange};
use aegis_vault::leakage::LeakSeverity;
use aegis_vault_services::leakage;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;

/// Report a leak seen elsewhere. The secret must be one of the tenant's.
#[utoipa::path(post, path = "/v1/leakage-detection/incidents", tag = "vault", security(("bearer" = [])),
    params(params::Tenant), request_body = LeakIncidentBody,
    responses((status = 201, description = "Opened", body = LeakIncidentCreated), PlatformErrors))]
pub(super) async fn report_incident(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<LeakIncidentBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let severity = word("severity", &body.severity, LeakSeverity::parse, SEVERITIES)?;
    for (field, text, max) in [
        ("source", &body.source, 100),
        ("location", &body.location, 2000),
    ] {
        if text.trim().is_empty() {
            return Err(ApiError::validation(field, format!("{field} is required")));
        }
        max_chars(field, Some(text), max)?;
    }
    let details = body.details.unwrap_or_else(|| json!({}));
    if !details.is_object() || details.to_string().len() > 16 * 1024 {
        return Err(ApiError::validation(
            "details",
            "details must be a JSON object of at most 16 KiB",
        ));
    }
    let name = resolve(&state, tenant.0, &body.secret_id).await?;
    // From the log, not the read model: a secret written a moment ago is there.
    aegis_vault_services::load(&state, tenant.0, &name).await?;
    let ctx = command_context(&principal, &headers, None);
    let incident = NewIncident {
        secret_id: name,
        secret_version: 0,
        source: body.source,
        location: body.location,
        detected_at: body.detected_at.unwrap_or_else(Utc::now),
        severity,
        details: details.to_string(),
        scan_id: String::new(),
        reported_by: principal.subject.to_string(),
        policy_id: String::new(),
        notify: vec![],
    };
    let (incident_id, i, position) = leakage::report(&state, &ctx, tenant.0, incident)
        .await
        .map_err(refused)?;
    Ok(Reply::body(
        StatusCode::CREATED,
        LeakIncidentCreated {
            incident_id,
            status: i.status.as_str(),
            created_at: i.updated_at,
        },
    )
    .at(position, 1))
}

/// The name of the secret a `secretId` names (a credential's name, or its id, the id
/// first as `resolve` reads it), in one query; one the tenant does not have is 404, not a
/// clean bill.
async fn known_secret(
    state: &AppState,
    tenant: uuid::Uuid,
    secret_id: &str,
) -> Result<String, ApiError> {
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM vault_credentials WHERE tenant_id = $1 AND (name = $2 OR id = $2) \
         ORDER BY (id = $2) DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(secret_id)
    .fetch_optional(&state.pool)
    .await?;
    found
        .map(|(name,)| name)
        .ok_or_else(|| ApiError::not_found(format!("secret not found: {secret_id}")))
}

/// The tenant's incidents, newest first, filtered by status, severity and time.
#[utoipa::path(get, path = "/v1/leakage-detection/incidents", tag = "vault", security(("bearer" = [])),
    params(IncidentQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "The incidents", body = LeakIncidentList), PlatformErrors))]
pub(super) async fn list_incidents(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<IncidentQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            word(
                "status",
                s,
                LeakIncidentStatus::parse,
                "open, investigating, resolved, false_positive",
            )
        })
        .transpose()?;
    let severity = q
        .severity
        .as_deref()
        .map(|s| word("severity", s, LeakSeverity::parse, SEVERITIES))
        .transpose()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let incidents: Vec<LeakIncidentSummary> = sqlx::query_as(
        "SELECT id AS incident_id, secret_id, source, severity, status, detected_at FROM vault_leak_incidents \
         WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR severity = $3) \
           AND ($4::timestamptz IS NULL OR detected_at >= $4) \
         ORDER BY detected_at DESC, id LIMIT $5 OFFSET $6",
    )
    .bind(tenant.0)
    .bind(status.map(|s| s.as_str()))
    .bind(severity.map(|s| s.as_str()))
    .bind(q.since)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(StatusCode::OK, LeakIncidentList { incidents }))
}

pub(super) async fn incident_view(
    state: &AppState,
    tenant: uuid::Uuid,
    id: &str,
) -> Result<LeakIncidentView, ApiError> {
    sqlx::query_as(
        "SELECT id AS incident_id, secret_id, source, location, severity, status, details, timeline, \
         resolution, notes, detected_at, updated_at FROM vault_leak_incidents WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::not_found("leakage incident not found"))
}

#[utoipa::path(get, path = "/v1/leakage-detection/incidents/{incidentId}", tag = "vault", security(("bearer" = [])),
    params(("incidentId" = String, Path, description = "The incident"), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The incident and its timeline", body = LeakIncidentView), PlatformErrors))]
pub(super) async fn get_incident(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(incident_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    Ok(Reply::body(
        StatusCode::OK,
        incident_view(&state, tenant.0, &incident_id).await?,
    ))
}

/// Triage: investigating, resolved or false_positive, with a resolution and notes.
#[utoipa::path(patch, path = "/v1/leakage-detection/incidents/{incidentId}", tag = "vault", security(("bearer" = [])),
    params(("incidentId" = String, Path, description = "The incident"), params::Tenant),
    request_body = LeakIncidentPatch,
    responses((status = 200, description = "Updated", body = LeakIncidentUpdated), PlatformErrors))]
pub(super) async fn update_incident(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(incident_id): Path<String>,
    Json(body): Json<LeakIncidentPatch>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let status = word(
        "status",
        &body.status,
        LeakIncidentStatus::parse,
        "investigating, resolved, false_positive",
    )?;
    max_chars("resolution", body.resolution.as_deref(), 2000)?;
    max_chars("notes", body.notes.as_deref(), 4000)?;
    let ctx = command_context(&principal, &headers, None);
    let change = StatusChange {
        status,
        resolution: body.resolution.unwrap_or_default(),
        notes: body.notes.unwrap_or_default(),
        changed_by: principal.subject.to_string(),
    };
    let (i, position, version) = leakage::set_status(&state, &ctx, tenant.0, &incident_id, change)
        .await
        .map_err(refused)?;
    Ok(Reply::body(
        StatusCode::OK,
        LeakIncidentUpdated {
            incident_id,
            status: i.status.as_str().into(),
            updated_at: i.updated_at,
        },
    )
    .at(position, version))
}

#[utoipa::path(get, path = "/v1/leakage-detection/stats", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::MinPosition),
    responses((status = 200, description = "The counts", body = LeakStats), PlatformErrors))]
pub(super) async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    type Counts = (i64, i64, i64, i64, i64, i64, i64);
    let (total, open, resolved, critical, high, medium, low): Counts = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status IN ('open', 'investigating')), \
         count(*) FILTER (WHERE status IN ('resolved', 'false_positive')), \
         count(*) FILTER (WHERE severity = 'critical'), count(*) FILTER (WHERE severity = 'high'), \
         count(*) FILTER (WHERE severity = 'medium'), count(*) FILTER (WHERE severity = 'low') \
         FROM vault_leak_incidents WHERE tenant_id = $1",
    )
    .bind(tenant.0)
    .fetch_one(&state.pool)
    .await?;
    let by_source: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source, count(*) FROM vault_leak_incidents WHERE tenant_id = $1 GROUP BY source",
    )
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        LeakStats {
            total_incidents: total,
            open_incidents: open,
            resolved_incidents: resolved,
            by_severity: LeakBySeverity {
                critical,
                high,
                medium,
                low,
            },
            by_source: by_source.into_iter().collect(),
        },
    ))
}

/// Whether a secret has open or investigating incidents, answered from the incidents.
#[utoipa::path(post, path = "/v1/leakage-detection/secrets/{secretId}/check", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "A credential's name or id"), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The secret's active incidents", body = LeakCheck), PlatformErrors))]
pub(super) async fn check(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(secret_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let name = known_secret(&state, tenant.0, &secret_id).await?;
    let incidents: Vec<LeakCheckIncident> = sqlx::query_as(
        "SELECT id AS incident_id, severity, source, detected_at FROM vault_leak_incidents \
         WHERE tenant_id = $1 AND secret_id = $2 AND status IN ('open', 'investigating') \
         ORDER BY detected_at DESC, id LIMIT 500",
    )
    .bind(tenant.0)
    .bind(&name)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        LeakCheck {
            secret_id: name,
            has_active_incidents: !incidents.is_empty(),
            incidents,
        },
    ))
}
