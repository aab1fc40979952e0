//! Credential health (seed 001): the dashboard, what expires soon, testing one credential or
//! all of them against their targets, and the rotation schedule.

use super::errors::credential_error;
use super::path_name;
use super::STATUS_SQL;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::http::extract::{CommandHeaders, MinPosition, Query};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{aggregate, command_context};
use crate::state::AppState;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_runtime::command::CommandContext;
use aegis_vault::credentials::{Command, Lifecycle};
use aegis_vault::CredentialAggregate;
use aegis_vault_services::rotators::probe;
use aegis_vault_services::{load, open};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// How many credentials `check-all` tests at once.
const CHECK_CONCURRENCY: usize = 8;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(expiring))
        .routes(routes!(check_all))
        .routes(routes!(test))
        .routes(routes!(schedule))
}

#[derive(Debug, Default, Serialize, ToSchema, sqlx::FromRow)]
pub struct Counts {
    pub total: i64,
    pub healthy: i64,
    pub expiring: i64,
    pub expired: i64,
    /// Active credentials whose last health check failed.
    pub failed: i64,
}

/// The tenant's credential counts, retired and destroyed ones aside.
pub async fn counts(state: &AppState, tenant: Uuid) -> Result<Counts, ApiError> {
    Ok(sqlx::query_as(&format!(
        "SELECT count(*) AS total, \
         count(*) FILTER (WHERE s = 'active' AND health <> 'unhealthy') AS healthy, \
         count(*) FILTER (WHERE s = 'expiring') AS expiring, \
         count(*) FILTER (WHERE s = 'expired') AS expired, \
         count(*) FILTER (WHERE health = 'unhealthy') AS failed \
         FROM (SELECT {STATUS_SQL} AS s, health FROM vault_credentials \
               WHERE tenant_id = $1 AND lifecycle = 'active') c"
    ))
    .bind(tenant)
    .fetch_one(&state.pool)
    .await?)
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct HealthRow {
    pub name: String,
    pub status: String,
    /// healthy, unhealthy or unknown.
    pub health: String,
    pub expires_in_hours: Option<i64>,
    pub last_used: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Alert {
    pub credential: String,
    /// expiring, rotation_failed or unhealthy.
    pub alert_type: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub summary: Counts,
    pub credentials: Vec<HealthRow>,
    /// The 50 most recent.
    pub alerts: Vec<Alert>,
    pub generated_at: DateTime<Utc>,
}

const EXPIRES_IN: &str =
    "CASE WHEN expires_at IS NULL THEN NULL ELSE floor(extract(epoch FROM expires_at - now()) / 3600)::bigint END";

/// Health of every active credential, with the recent alerts.
#[utoipa::path(get, path = "/health/dashboard", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::MinPosition),
    responses((status = 200, description = "The dashboard", body = Dashboard), AuthErrors))]
async fn dashboard(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let summary = counts(&state, tenant.0).await?;
    let credentials: Vec<HealthRow> = sqlx::query_as(&format!(
        "SELECT name, {STATUS_SQL} AS status, health, {EXPIRES_IN} AS expires_in_hours, last_used_at AS last_used \
         FROM vault_credentials WHERE tenant_id = $1 AND lifecycle = 'active' ORDER BY name LIMIT 1000"
    ))
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    let alerts: Vec<Alert> = sqlx::query_as(
        "SELECT name AS credential, alert_type, message, created_at FROM vault_alerts \
         WHERE tenant_id = $1 ORDER BY created_at DESC, position DESC LIMIT 50",
    )
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        Dashboard {
            summary,
            credentials,
            alerts,
            generated_at: Utc::now(),
        },
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    /// 1 to 87600 hours ahead (default 168).
    #[param(minimum = 1, maximum = 87600)]
    pub threshold_hours: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ExpiringRow {
    pub name: String,
    pub expires_at: DateTime<Utc>,
    pub expires_in_hours: i64,
    pub rotation_enabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiringReply {
    pub credentials: Vec<ExpiringRow>,
    pub count: usize,
    pub threshold_hours: i64,
}

/// Active credentials expiring within the threshold (expired ones included), soonest first.
#[utoipa::path(get, path = "/health/expiring", tag = "vault", security(("bearer" = [])),
    params(ExpiringQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "Expiring credentials", body = ExpiringReply), AuthErrors,
        (status = 422, description = "Invalid threshold", body = ErrorBody)))]
async fn expiring(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<ExpiringQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let threshold = q.threshold_hours.unwrap_or(168);
    if !(1..=87_600).contains(&threshold) {
        return Err(ApiError::validation(
            "threshold_hours",
            "threshold_hours must be between 1 and 87600",
        ));
    }
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let credentials: Vec<ExpiringRow> = sqlx::query_as(&format!(
        "SELECT name, expires_at, {EXPIRES_IN} AS expires_in_hours, rotation_enabled FROM vault_credentials \
         WHERE tenant_id = $1 AND lifecycle = 'active' AND expires_at IS NOT NULL \
           AND expires_at <= now() + make_interval(hours => $2::int) \
         ORDER BY expires_at LIMIT 1000"
    ))
    .bind(tenant.0)
    .bind(threshold as i32)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        ExpiringReply {
            count: credentials.len(),
            credentials,
            threshold_hours: threshold,
        },
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestReply {
    /// healthy or unhealthy.
    pub status: String,
    pub credential: String,
    pub response_time_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub tested_at: DateTime<Utc>,
}

/// Tests one credential and records the outcome (an event; a failure raises an alert).
async fn test_one(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
) -> Result<TestReply, ApiError> {
    let (c, _, _) = load(state, tenant, name).await?;
    if c.lifecycle != Lifecycle::Active {
        return Err(
            ApiError::conflict(format!("the credential is {}", c.lifecycle))
                .with("credential", name),
        );
    }
    let outcome = match open(state, tenant, &c, None).await {
        Ok(value) => probe(state.config.egress(), &c.settings.rotator, &value).await,
        Err(e) => aegis_vault_services::rotators::Probe {
            healthy: false,
            error: Some(ApiError::from(e).message),
            response_time_ms: 0,
            details: serde_json::json!({ "decrypted": false }),
        },
    };
    let agg = aggregate::<CredentialAggregate>(tenant, name)?;
    state
        .executor
        .execute::<CredentialAggregate>(
            &agg,
            &Command::RecordHealth {
                healthy: outcome.healthy,
                error: outcome.error.clone(),
                response_time_ms: outcome.response_time_ms,
            },
            ctx,
            false,
        )
        .await
        .map_err(|e| e.into_api(credential_error(name)))?;
    Ok(TestReply {
        status: if outcome.healthy {
            "healthy"
        } else {
            "unhealthy"
        }
        .into(),
        credential: name.into(),
        response_time_ms: outcome.response_time_ms,
        error: outcome.error,
        details: outcome.details,
        tested_at: Utc::now(),
    })
}

/// Test a credential against its target: a Postgres role logs in; an `http` credential calls
/// its health URL with the value as a bearer token; others must decrypt.
#[utoipa::path(post, path = "/credentials/{name}/test", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant),
    responses((status = 200, description = "Tested (see status)", body = TestReply),
        AuthErrors,
        (status = 404, description = "No such credential", body = ErrorBody),
        (status = 409, description = "Retired or destroyed", body = ErrorBody)))]
async fn test(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    let ctx = command_context(&principal, &headers, None);
    Ok(Reply::body(
        StatusCode::OK,
        test_one(&state, &ctx, tenant.0, &name).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckDetail {
    pub name: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub response_time_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckAllReply {
    pub checked: usize,
    pub healthy: usize,
    pub unhealthy: usize,
    /// The unhealthy ones.
    pub details: Vec<CheckDetail>,
    pub checked_at: DateTime<Utc>,
    pub duration_ms: u64,
}

/// Test every active credential, a few at a time, each within its own timeout.
#[utoipa::path(post, path = "/health/check-all", tag = "vault", security(("bearer" = [])),
    params(params::Tenant),
    responses((status = 200, description = "Checked", body = CheckAllReply), AuthErrors))]
async fn check_all(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let started = Instant::now();
    // From the log's own view of names would need a scan; the read model lists them.
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM vault_credentials WHERE tenant_id = $1 AND lifecycle = 'active' ORDER BY name LIMIT 1000",
    )
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    let ctx = command_context(&principal, &headers, None);
    let results: Vec<CheckDetail> = futures::stream::iter(names)
        .map(|(name,)| {
            let (state, ctx) = (&state, &ctx);
            async move {
                match test_one(state, ctx, tenant.0, &name).await {
                    Ok(r) => CheckDetail {
                        name,
                        status: r.status,
                        error: r.error,
                        response_time_ms: r.response_time_ms,
                    },
                    Err(e) => CheckDetail {
                        name,
                        status: "unhealthy".into(),
                        error: Some(e.message),
                        response_time_ms: 0,
                    },
                }
            }
        })
        .buffer_unordered(CHECK_CONCURRENCY)
        .collect()
        .await;
    let healthy = results.iter().filter(|r| r.status == "healthy").count();
    let checked = results.len();
    let mut details: Vec<CheckDetail> = results
        .into_iter()
        .filter(|r| r.status != "healthy")
        .collect();
    details.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Reply::body(
        StatusCode::OK,
        CheckAllReply {
            checked,
            healthy,
            unhealthy: checked - healthy,
            details,
            checked_at: Utc::now(),
            duration_ms: started.elapsed().as_millis() as u64,
        },
    ))
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Scheduled {
    pub credential: String,
    pub scheduled_at: DateTime<Utc>,
    /// scheduled or on_expiry.
    pub strategy: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleReply {
    pub upcoming_rotations: Vec<Scheduled>,
    pub overdue_rotations: Vec<Scheduled>,
    pub generated_at: DateTime<Utc>,
}

/// Rotations due: upcoming (soonest first) and overdue.
#[utoipa::path(get, path = "/rotation/schedule", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::MinPosition),
    responses((status = 200, description = "The schedule", body = ScheduleReply), AuthErrors))]
async fn schedule(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let rows: Vec<Scheduled> = sqlx::query_as(
        "SELECT name AS credential, next_rotation_at AS scheduled_at, rotation_strategy AS strategy \
         FROM vault_credentials WHERE tenant_id = $1 AND lifecycle = 'active' AND next_rotation_at IS NOT NULL \
         ORDER BY next_rotation_at LIMIT 1000",
    )
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    let now = Utc::now();
    let (overdue, upcoming) = rows.into_iter().partition(|r| r.scheduled_at <= now);
    Ok(Reply::body(
        StatusCode::OK,
        ScheduleReply {
            upcoming_rotations: upcoming,
            overdue_rotations: overdue,
            generated_at: now,
        },
    ))
}
