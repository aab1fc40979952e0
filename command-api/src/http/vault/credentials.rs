//! Credentials (seed 001): create, list, read, update and retire. Values go in sealed and
//! never come back out here; `values.rs` is the one way to read them.

use super::body::{CreateBody, PatchBody, RotatorBody};
use super::errors::{credential_error, key_error, missing};
use super::{path_name, STATUS_SQL};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition, Query};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{aggregate, ensure_tenant, execute};
use crate::state::AppState;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_vault::credentials::{Command, Lifecycle, NewCredential, NewVersion};
use aegis_vault::settings::MetaValue;
use aegis_vault::{Credential, CredentialAggregate};
use aegis_vault_services::keys::seal_version;
use aegis_vault_services::load;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(detail, update, retire))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialCreated {
    pub id: String,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// Whether a value was stored (always sealed).
    pub encrypted: bool,
    pub version: u64,
}

/// Register a credential. The value is sealed under the credential's own key before it
/// reaches the log; names are unique per tenant and never reused.
#[utoipa::path(post, path = "/credentials", tag = "vault", security(("bearer" = [])),
    params(params::Tenant), request_body = CreateBody,
    responses(
        (status = 201, description = "Registered", body = CredentialCreated, headers(("Aegis-Position" = u64), ("ETag" = String))),
        (status = 400, description = "The name is taken", body = ErrorBody),
        (status = 410, description = "The tenant's data key was destroyed", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(mut body): Json<CreateBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let valid = body.validate()?;
    ensure_tenant(&state, tenant).await?;
    let id = format!("cred_{}", Uuid::now_v7().simple());
    let value = match body.value.take() {
        Some(v) => Some(NewVersion {
            version: 1,
            reason: "initial".into(),
            trigger: String::new(),
            restored_from: None,
            duration_ms: 0,
            sealed: seal_version(&state, tenant.0, &id, 1, v.as_bytes())
                .await
                .map_err(|e| key_error(&body.name, e))?,
            rotation_id: None,
            changed_by: String::new(),
            own_key: true,
        }),
        None => None,
    };
    let agg = aggregate::<CredentialAggregate>(tenant.0, body.name.as_str())?;
    let outcome = execute::<CredentialAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create {
            credential: NewCredential {
                id,
                name: body.name.clone(),
                credential_type: valid.credential_type,
                provider: valid.provider,
                settings: valid.settings,
            },
            value,
        },
        true,
        credential_error(&body.name),
    )
    .await?;
    let c = outcome.state.ok_or_else(|| missing(&body.name))?;
    tracing::info!(credential = %c.name, id = %c.id, tenant = %tenant, "credential registered");
    Ok(Reply::body(
        StatusCode::CREATED,
        CredentialCreated {
            id: c.id.clone(),
            name: c.name.clone(),
            status: status(&c),
            created_at: c.created_at,
            encrypted: c.current().is_some(),
            version: c.version(),
        },
    )
    .at(outcome.position, outcome.version))
}

/// The status a caller sees (see [`STATUS_SQL`], which the listing uses).
pub fn status(c: &Credential) -> String {
    if c.lifecycle != Lifecycle::Active {
        return c.lifecycle.as_str().into();
    }
    let now = Utc::now();
    match c.settings.expires_at {
        Some(e) if e <= now => "expired".into(),
        Some(e)
            if e - chrono::Duration::hours(i64::from(c.settings.alert_threshold_hours)) <= now =>
        {
            "expiring".into()
        }
        _ => "active".into(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// active, expiring, expired, retired or destroyed.
    pub status: Option<String>,
    /// n8n, supabase, api, env, ...
    #[param(max_length = 64)]
    pub provider: Option<String>,
    /// The credential type.
    #[param(max_length = 64)]
    #[serde(rename = "type")]
    pub credential_type: Option<String>,
    /// 1 to 500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct CredentialSummary {
    pub id: String,
    pub name: String,
    pub credential_type: String,
    pub provider: String,
    pub status: String,
    pub description: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub rotation_enabled: bool,
    pub rotation_interval_hours: i32,
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    /// healthy, unhealthy or unknown (never tested).
    pub health: String,
    pub version: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListReply {
    pub credentials: Vec<CredentialSummary>,
    /// Credentials matching the filters.
    pub total: i64,
    /// Of the tenant's credentials: active, not expiring, not failing their health check.
    pub healthy: i64,
    pub expiring: i64,
    pub expired: i64,
    pub limit: i64,
    pub offset: i64,
}

const STATUSES: &[&str] = &["active", "expiring", "expired", "retired", "destroyed"];

/// The tenant's credentials, by name; never a value.
#[utoipa::path(get, path = "/credentials", tag = "vault", security(("bearer" = [])),
    params(ListQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of credentials", body = ListReply), AuthErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<ListQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let limit = q.limit.unwrap_or(100);
    let offset = q.offset.unwrap_or(0);
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
    if let Some(s) = q.status.as_deref() {
        if !STATUSES.contains(&s) {
            return Err(ApiError::validation(
                "status",
                format!("status must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    max_chars("provider", q.provider.as_deref(), 64)?;
    max_chars("type", q.credential_type.as_deref(), 64)?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let filter = format!(
        "tenant_id = $1 AND ($2::text IS NULL OR ({STATUS_SQL}) = $2) \
         AND ($3::text IS NULL OR provider = $3) AND ($4::text IS NULL OR credential_type = $4)"
    );
    let rows: Vec<CredentialSummary> = sqlx::query_as(&format!(
        "SELECT id, name, credential_type, provider, {STATUS_SQL} AS status, description, expires_at, \
         last_used_at, rotation_enabled, rotation_interval_hours, next_rotation_at, tags, health, version \
         FROM vault_credentials WHERE {filter} ORDER BY name LIMIT $5 OFFSET $6"
    ))
    .bind(tenant.0)
    .bind(&q.status)
    .bind(&q.provider)
    .bind(&q.credential_type)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let (total,): (i64,) = sqlx::query_as(&format!(
        "SELECT count(*) FROM vault_credentials WHERE {filter}"
    ))
    .bind(tenant.0)
    .bind(&q.status)
    .bind(&q.provider)
    .bind(&q.credential_type)
    .fetch_one(&state.pool)
    .await?;
    let counts = super::health::counts(&state, tenant.0).await?;
    Ok(Reply::body(
        StatusCode::OK,
        ListReply {
            credentials: rows,
            total,
            healthy: counts.healthy,
            expiring: counts.expiring,
            expired: counts.expired,
            limit,
            offset,
        },
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageStats {
    pub total_uses: i64,
    pub uses_last_24h: i64,
    pub uses_last_7d: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionEntry {
    pub version: u64,
    pub created_at: DateTime<Utc>,
    /// initial, rotation, rollback or update.
    pub reason: String,
    /// For a rotation: manual, emergency, scheduled or on_expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// For a rollback: the version whose value was restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialDetail {
    pub id: String,
    pub name: String,
    pub credential_type: String,
    pub provider: String,
    pub status: String,
    pub description: String,
    pub provider_credential_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_rotated_at: Option<DateTime<Utc>>,
    pub last_health_check: Option<DateTime<Utc>>,
    pub health: String,
    pub rotation_enabled: bool,
    pub rotation_interval_hours: u32,
    pub rotation_strategy: String,
    pub next_rotation_at: Option<DateTime<Utc>>,
    /// Whether a rotation holds the lease right now.
    pub rotating: bool,
    pub alert_threshold_hours: u32,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: BTreeMap<String, MetaValue>,
    pub rotator: RotatorBody,
    pub usage_stats: UsageStats,
    pub version: u64,
    /// Newest first.
    pub version_history: Vec<VersionEntry>,
}

/// One credential with its usage and version history (from the log; usage from the read
/// model). Never the value.
#[utoipa::path(get, path = "/credentials/{name}", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The credential", body = CredentialDetail, headers(("ETag" = String))),
        AuthErrors, (status = 404, description = "No such credential", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(name): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    let (c, position, version) = load(&state, tenant.0, &name).await?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let (total_uses, uses_last_24h, uses_last_7d, last_used_at): (
        i64,
        i64,
        i64,
        Option<DateTime<Utc>>,
    ) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE used_at > now() - interval '24 hours'), \
             count(*) FILTER (WHERE used_at > now() - interval '7 days'), max(used_at) \
             FROM vault_credential_uses WHERE tenant_id = $1 AND name = $2",
    )
    .bind(tenant.0)
    .bind(&name)
    .fetch_one(&state.pool)
    .await?;
    let health = match &c.health {
        Some(h) if h.healthy => "healthy",
        Some(_) => "unhealthy",
        None => "unknown",
    };
    Ok(Reply::body(
        StatusCode::OK,
        CredentialDetail {
            id: c.id.clone(),
            name: c.name.clone(),
            credential_type: c.credential_type.clone(),
            provider: c.provider.clone(),
            status: status(&c),
            description: c.settings.description.clone(),
            provider_credential_id: c.settings.provider_credential_id.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            expires_at: c.settings.expires_at,
            last_used_at,
            last_rotated_at: c.last_rotated_at,
            last_health_check: c.health.as_ref().map(|h| h.checked_at),
            health: health.into(),
            rotation_enabled: c.settings.rotation_enabled,
            rotation_interval_hours: c.settings.rotation_interval_hours,
            rotation_strategy: c.settings.rotation_strategy.as_str().into(),
            next_rotation_at: (c.lifecycle == Lifecycle::Active)
                .then(|| c.settings.next_rotation(c.value_since()))
                .flatten(),
            rotating: c.rotating(Utc::now()).is_some(),
            alert_threshold_hours: c.settings.alert_threshold_hours,
            tags: c.settings.tags.clone(),
            metadata: c.settings.metadata.clone(),
            rotator: RotatorBody::of(&c.settings.rotator),
            usage_stats: UsageStats {
                total_uses,
                uses_last_24h,
                uses_last_7d,
            },
            version: c.version(),
            version_history: c
                .versions
                .iter()
                .rev()
                .map(|v| VersionEntry {
                    version: v.version,
                    created_at: v.created_at,
                    reason: v.reason.clone(),
                    trigger: (!v.trigger.is_empty()).then(|| v.trigger.clone()),
                    restored_from: v.restored_from,
                })
                .collect(),
        },
    )
    .at(position, version))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialUpdated {
    pub id: String,
    pub name: String,
    pub status: String,
    pub updated_at: DateTime<Utc>,
    pub updated_fields: Vec<String>,
    pub version: u64,
}

/// Change settings (any subset); a `value` makes a new version. `If-Match` guards against
/// overwriting a change you have not seen (409).
#[utoipa::path(patch, path = "/credentials/{name}", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant, params::IfMatch),
    request_body = PatchBody,
    responses((status = 200, description = "CredentialUpdated", body = CredentialUpdated, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such credential", body = ErrorBody),
        (status = 409, description = "Stale If-Match, retired, or rotating", body = ErrorBody),
        (status = 410, description = "The tenant's data key was destroyed", body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
    Json(mut body): Json<PatchBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    let (c, _, _) = load(&state, tenant.0, &name).await?;
    let (settings, mut fields) = body.apply(c.settings.clone())?;
    let value = match body.value.take() {
        Some(v) => {
            let version = c.version() + 1;
            fields.push("value".into());
            Some(NewVersion {
                version,
                reason: "update".into(),
                trigger: String::new(),
                restored_from: None,
                duration_ms: 0,
                sealed: seal_version(&state, tenant.0, &c.id, version, v.as_bytes())
                    .await
                    .map_err(|e| key_error(&name, e))?,
                rotation_id: None,
                changed_by: String::new(),
                own_key: true,
            })
        }
        None => None,
    };
    let settings_fields: Vec<String> = fields.iter().filter(|f| *f != "value").cloned().collect();
    let agg = aggregate::<CredentialAggregate>(tenant.0, name.as_str())?;
    let outcome = execute::<CredentialAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Update {
            settings,
            fields: settings_fields,
            value,
            now: Utc::now(),
        },
        false,
        credential_error(&name),
    )
    .await?;
    let c = outcome.state.ok_or_else(|| missing(&name))?;
    Ok(Reply::body(
        StatusCode::OK,
        CredentialUpdated {
            id: c.id.clone(),
            name: c.name.clone(),
            status: status(&c),
            updated_at: c.updated_at,
            updated_fields: fields,
            version: c.version(),
        },
    )
    .at(outcome.position, outcome.version))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialRetired {
    pub status: String,
    pub credential_name: String,
    pub retired_at: DateTime<Utc>,
}

/// Retire a credential: it stays in history and its name stays taken; values can no longer
/// be read or rotated. Retiring again answers the same.
#[utoipa::path(delete, path = "/credentials/{name}", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant),
    responses((status = 200, description = "CredentialRetired", body = CredentialRetired),
        AuthErrors, (status = 404, description = "No such credential", body = ErrorBody)))]
async fn retire(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    let agg = aggregate::<CredentialAggregate>(tenant.0, name.as_str())?;
    let outcome = execute::<CredentialAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Retire,
        false,
        credential_error(&name),
    )
    .await?;
    let c = outcome.state.ok_or_else(|| missing(&name))?;
    Ok(Reply::body(
        StatusCode::OK,
        CredentialRetired {
            status: c.lifecycle.as_str().into(),
            credential_name: c.name,
            retired_at: c.updated_at,
        },
    )
    .at(outcome.position, outcome.version))
}
