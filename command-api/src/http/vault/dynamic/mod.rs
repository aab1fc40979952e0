//! Seed 003's dynamic secrets (`/v1/dynamic-secrets`, also at `/vault/v1`): HTTP over
//! `aegis_vault_services::dynamic`. Bodies are camelCase, as the document writes them.

use crate::auth::Principal;
use crate::error::{ApiError, IntoApi};
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition};
use crate::http::openapi::params;
use crate::http::platform::PlatformErrors;
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_kernel::duration::IsoDuration;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_vault::dynamic::{ConfigError, LeaseEnd, LeaseError};
use aegis_vault_services::dynamic::{self, ConfigInput, DynamicError};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};
use utoipa_axum::{router::OpenApiRouter, routes};
use zeroize::Zeroizing;

pub mod shapes;

use shapes::*;

pub fn router() -> OpenApiRouter<AppState> {
    let aliases: axum::Router<AppState> = axum::Router::new()
        .route(
            "/vault/v1/dynamic-secrets/configs",
            post(create_config).get(list_configs),
        )
        .route(
            "/vault/v1/dynamic-secrets/configs/{configId}/credentials",
            post(issue),
        )
        .route(
            "/vault/v1/dynamic-secrets/configs/{configId}/leases",
            get(leases),
        )
        .route(
            "/vault/v1/dynamic-secrets/leases/{leaseId}/renew",
            post(renew),
        )
        .route(
            "/vault/v1/dynamic-secrets/leases/{leaseId}/revoke",
            post(revoke),
        )
        .route("/vault/v1/dynamic-secrets/stats", get(stats));
    OpenApiRouter::new()
        .routes(routes!(create_config, list_configs))
        .routes(routes!(issue))
        .routes(routes!(leases))
        .routes(routes!(renew))
        .routes(routes!(revoke))
        .routes(routes!(stats))
        .merge(OpenApiRouter::from(aliases))
}

/// The one mapping of what dynamic secrets refuse.
fn refused(e: DynamicError) -> ApiError {
    match e {
        e @ DynamicError::Unsupported(_) => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            e.to_string(),
        ),
        e @ (DynamicError::BadConnection
        | DynamicError::NotPrivileged
        | DynamicError::Unreachable(_)) => {
            ApiError::validation("backend.connectionString", e.to_string())
        }
        e @ DynamicError::Template(_) => {
            ApiError::validation("template.roleTemplate", e.to_string())
        }
        e @ (DynamicError::NoConfig(_) | DynamicError::NoLease(_)) => {
            ApiError::not_found(e.to_string())
        }
        DynamicError::Config(e) => e.into_api(|e| match e {
            ConfigError::Exists => ApiError::conflict(e.to_string()),
        }),
        DynamicError::Lease(e) => e.into_api(|e| match e {
            LeaseError::NotFound => ApiError::not_found(e.to_string()),
            e @ (LeaseError::Issued | LeaseError::Ended(_)) => ApiError::conflict(e.to_string()),
        }),
        DynamicError::Key(e) => super::errors::key_error("dynamic secret configuration", e),
    }
}

/// A backend that cannot be reached once configured is the backend's failure, not the caller's.
fn unavailable(e: DynamicError) -> ApiError {
    match e {
        DynamicError::Unreachable(why) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "backend_unavailable",
            format!("the backend could not be reached: {why}"),
        ),
        other => refused(other),
    }
}

fn ttl(field: &str, text: Option<&str>) -> Result<Option<TimeDelta>, ApiError> {
    text.map(|t| {
        let d =
            IsoDuration::fixed(field, t).map_err(|e| ApiError::validation(field, e.to_string()))?;
        if d <= TimeDelta::zero() {
            return Err(ApiError::validation(
                field,
                format!("{field} must be longer than zero"),
            ));
        }
        Ok(d)
    })
    .transpose()
}

/// Create a configuration. The connection is tried now: unreachable, or a user that cannot
/// create roles, is 422.
#[utoipa::path(post, path = "/v1/dynamic-secrets/configs", tag = "vault", security(("bearer" = [])),
    params(params::Tenant), request_body = DynamicConfigBody,
    responses((status = 201, description = "Created", body = DynamicConfigCreated),
        (status = 501, description = "A backend not built yet", body = crate::http::platform::PlatformErrorBody),
        PlatformErrors))]
async fn create_config(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<DynamicConfigBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    if body.name.trim().is_empty() {
        return Err(ApiError::validation("name", "name is required"));
    }
    max_chars("name", Some(&body.name), 100)?;
    if !["database", "cloud_credentials", "api_key", "certificate"].contains(&body.kind.as_str()) {
        return Err(ApiError::validation(
            "type",
            "type must be database, cloud_credentials, api_key or certificate",
        ));
    }
    if !["postgres", "mysql", "mongodb", "aws", "azure", "gcp"]
        .contains(&body.backend.kind.as_str())
    {
        return Err(ApiError::validation(
            "backend.type",
            "backend.type must be postgres, mysql, mongodb, aws, azure or gcp",
        ));
    }
    max_chars(
        "backend.connectionString",
        Some(&body.backend.connection_string),
        2000,
    )?;
    let template = body.template.unwrap_or(DynamicTemplate {
        username_template: None,
        role_template: None,
    });
    max_chars(
        "template.usernameTemplate",
        template.username_template.as_deref(),
        100,
    )?;
    max_chars(
        "template.roleTemplate",
        template.role_template.as_deref(),
        4000,
    )?;
    let default = ttl("ttl.default", Some(&body.ttl.default))?.unwrap_or_default();
    let max = ttl("ttl.max", Some(&body.ttl.max))?.unwrap_or_default();
    if default > max {
        return Err(ApiError::validation(
            "ttl.default",
            "ttl.default must not exceed ttl.max",
        ));
    }
    ensure_tenant(&state, tenant).await?;
    let ctx = command_context(&principal, &headers, None);
    let (c, position) = dynamic::create_config(
        &state,
        &ctx,
        tenant.0,
        ConfigInput {
            name: body.name,
            kind: body.kind,
            backend: body.backend.kind,
            connection: Zeroizing::new(body.backend.connection_string),
            username_template: template.username_template.unwrap_or_default(),
            role_template: template.role_template.unwrap_or_default(),
            ttl_default: default,
            ttl_max: max,
        },
    )
    .await
    .map_err(refused)?;
    Ok(Reply::body(
        StatusCode::CREATED,
        DynamicConfigCreated {
            config_id: c.new.id,
            name: c.new.name,
            kind: c.new.kind,
            created_at: c.created_at,
        },
    )
    .at(position, 1))
}

/// The tenant's configurations, newest first, with their active leases. Never a connection.
#[utoipa::path(get, path = "/v1/dynamic-secrets/configs", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::MinPosition),
    responses((status = 200, description = "The configurations", body = DynamicConfigs), PlatformErrors))]
async fn list_configs(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT c.id, c.name, c.kind, c.backend, \
         (SELECT count(*) FROM vault_dynamic_leases l WHERE l.tenant_id = c.tenant_id \
          AND l.config_id = c.id AND l.ended IS NULL AND l.expires_at > now()) \
         FROM vault_dynamic_configs c WHERE c.tenant_id = $1 ORDER BY c.created_at DESC LIMIT 500",
    )
    .bind(tenant.0)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        DynamicConfigs {
            configs: rows
                .into_iter()
                .map(
                    |(config_id, name, kind, backend, active_leases)| DynamicConfigSummary {
                        config_id,
                        name,
                        kind,
                        backend,
                        active_leases,
                    },
                )
                .collect(),
        },
    ))
}

/// Make a credential: a real role that logs in until the lease ends.
#[utoipa::path(post, path = "/v1/dynamic-secrets/configs/{configId}/credentials", tag = "vault", security(("bearer" = [])),
    params(("configId" = String, Path, description = "The configuration"), params::Tenant),
    request_body = IssueBody,
    responses((status = 200, description = "The credential (Cache-Control: no-store)", body = IssuedLease),
        (status = 502, description = "The backend could not be reached", body = crate::http::platform::PlatformErrorBody),
        PlatformErrors))]
async fn issue(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(config_id): Path<String>,
    Json(body): Json<IssueBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let ttl = ttl("ttl", body.ttl.as_deref())?;
    let meta = body.metadata.unwrap_or(IssueMetadata {
        purpose: None,
        requested_by: None,
    });
    max_chars("metadata.purpose", meta.purpose.as_deref(), 500)?;
    max_chars("metadata.requestedBy", meta.requested_by.as_deref(), 200)?;
    let ctx = command_context(&principal, &headers, None);
    let issued = dynamic::issue(
        &state,
        &ctx,
        tenant.0,
        &config_id,
        ttl,
        meta.purpose.unwrap_or_default(),
        meta.requested_by.unwrap_or_default(),
    )
    .await
    .map_err(unavailable)?;
    let reply = Reply::body(
        StatusCode::OK,
        IssuedLease {
            lease_id: issued.lease_id,
            credentials: DynamicCredentials {
                username: issued.username,
                password: issued.password.to_string(),
            },
            expires_at: issued.expires_at,
            renewable: true,
        },
    )
    .at(issued.position, 1);
    Ok(([(header::CACHE_CONTROL, "no-store")], reply).into_response())
}

/// A configuration's leases, newest first (500 at most).
#[utoipa::path(get, path = "/v1/dynamic-secrets/configs/{configId}/leases", tag = "vault", security(("bearer" = [])),
    params(("configId" = String, Path, description = "The configuration"), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The leases", body = Leases), PlatformErrors))]
async fn leases(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(config_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    dynamic::config(&state, tenant.0, &config_id)
        .await
        .map_err(refused)?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let rows: Vec<(String, DateTime<Utc>, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT id, created_at, expires_at, \
         COALESCE(ended, CASE WHEN expires_at <= now() THEN 'expired' ELSE 'active' END) \
         FROM vault_dynamic_leases WHERE tenant_id = $1 AND config_id = $2 \
         ORDER BY created_at DESC LIMIT 500",
    )
    .bind(tenant.0)
    .bind(&config_id)
    .fetch_all(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        Leases {
            leases: rows
                .into_iter()
                .map(|(lease_id, created_at, expires_at, status)| LeaseSummary {
                    lease_id,
                    created_at,
                    expires_at,
                    status,
                })
                .collect(),
        },
    ))
}

/// Extend a lease; the role's `VALID UNTIL` moves with it.
#[utoipa::path(post, path = "/v1/dynamic-secrets/leases/{leaseId}/renew", tag = "vault", security(("bearer" = [])),
    params(("leaseId" = String, Path, description = "The lease"), params::Tenant),
    request_body = RenewBody,
    responses((status = 200, description = "Renewed", body = LeaseRenewed), PlatformErrors))]
async fn renew(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(lease_id): Path<String>,
    Json(body): Json<RenewBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let ttl = ttl("ttl", body.ttl.as_deref())?;
    let ctx = command_context(&principal, &headers, None);
    let (expires_at, position) = dynamic::renew(&state, &ctx, tenant.0, &lease_id, ttl)
        .await
        .map_err(unavailable)?;
    Ok(Reply::body(
        StatusCode::OK,
        LeaseRenewed {
            lease_id,
            expires_at,
        },
    )
    .at(position, 1))
}

/// End a lease now: the role's sessions are ended and the role dropped. Repeating it
/// answers the same.
#[utoipa::path(post, path = "/v1/dynamic-secrets/leases/{leaseId}/revoke", tag = "vault", security(("bearer" = [])),
    params(("leaseId" = String, Path, description = "The lease"), params::Tenant),
    responses((status = 200, description = "Revoked", body = LeaseRevoked), PlatformErrors))]
async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(lease_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let (lease, position) = dynamic::end(&state, &ctx, tenant.0, &lease_id, LeaseEnd::Revoked)
        .await
        .map_err(unavailable)?;
    Ok(Reply::body(
        StatusCode::OK,
        LeaseRevoked {
            lease_id,
            revoked_at: lease.ended.map_or_else(Utc::now, |(_, at)| at),
        },
    )
    .at(position, 1))
}

/// Counts over the tenant's configurations and leases.
#[utoipa::path(get, path = "/v1/dynamic-secrets/stats", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::MinPosition),
    responses((status = 200, description = "The counts", body = DynamicStats), PlatformErrors))]
async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let (total, database, cloud, api_key, certificate): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE kind = 'database'), \
         count(*) FILTER (WHERE kind = 'cloud_credentials'), count(*) FILTER (WHERE kind = 'api_key'), \
         count(*) FILTER (WHERE kind = 'certificate') FROM vault_dynamic_configs WHERE tenant_id = $1",
    )
    .bind(tenant.0)
    .fetch_one(&state.pool)
    .await?;
    let (active, expired, revoked): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE ended IS NULL AND expires_at > now()), \
         count(*) FILTER (WHERE ended = 'expired' OR (ended IS NULL AND expires_at <= now())), \
         count(*) FILTER (WHERE ended = 'revoked') FROM vault_dynamic_leases WHERE tenant_id = $1",
    )
    .bind(tenant.0)
    .fetch_one(&state.pool)
    .await?;
    Ok(Reply::body(
        StatusCode::OK,
        DynamicStats {
            total_configs: total,
            active_leases: active,
            expired_leases: expired,
            revoked_leases: revoked,
            by_type: DynamicByType {
                database,
                cloud_credentials: cloud,
                api_key,
                certificate,
            },
        },
    ))
}
