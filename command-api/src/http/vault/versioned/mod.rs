//! Seed 003's versioned secrets (`/v1/versioned-secrets`, also at `/vault/v1`): HTTP over
//! `aegis_vault_services::versioned`. A `secretId` is a credential's name, or its id.

use super::path_name;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition};
use crate::http::openapi::params;
use crate::http::platform::PlatformErrors;
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_vault::versions::{Version, VersionState};
use aegis_vault::Credential;
use aegis_vault_services::versioned::{self, WriteNote, Written};
use aegis_vault_services::VaultError;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

mod audit;
mod retention;
pub mod shapes;

use shapes::*;

pub fn router() -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new()
        .routes(routes!(write))
        .routes(routes!(history))
        .routes(routes!(read))
        .routes(routes!(set_state))
        .routes(routes!(rollback))
        .routes(routes!(compare))
        .routes(routes!(retention::retention))
        .routes(routes!(audit))
        .routes(routes!(retention::enforce))
        .routes(routes!(retention::stats));
    // The document's base path, `/vault/v1`, answers too (the table documents it).
    let aliases: axum::Router<AppState> = axum::Router::new()
        .route("/vault/v1/versioned-secrets", axum::routing::post(write))
        .route(
            "/vault/v1/versioned-secrets/{secretId}/history",
            axum::routing::get(history),
        )
        .route(
            "/vault/v1/versioned-secrets/{secretId}/versions/{version}",
            axum::routing::get(read),
        )
        .route(
            "/vault/v1/versioned-secrets/{secretId}/versions/{version}/state",
            axum::routing::patch(set_state),
        )
        .route(
            "/vault/v1/versioned-secrets/{secretId}/rollback",
            axum::routing::post(rollback),
        )
        .route(
            "/vault/v1/versioned-secrets/{secretId}/compare",
            axum::routing::post(compare),
        )
        .route(
            "/vault/v1/versioned-secrets/{secretId}/retention-policy",
            axum::routing::put(retention::retention),
        )
        .route(
            "/vault/v1/versioned-secrets/{secretId}/audit",
            axum::routing::get(audit),
        )
        .route(
            "/vault/v1/versioned-secrets/{secretId}/enforce-retention",
            axum::routing::post(retention::enforce),
        )
        .route(
            "/vault/v1/versioned-secrets/stats",
            axum::routing::get(retention::stats),
        );
    router.merge(OpenApiRouter::from(aliases))
}

/// The credential a `secretId` names: the name itself, or the name of the credential whose
/// id it is (from the read model).
pub(crate) async fn resolve(
    state: &AppState,
    tenant: uuid::Uuid,
    secret_id: &str,
) -> Result<String, ApiError> {
    if secret_id.starts_with("cred_") {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT name FROM vault_credentials WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(secret_id)
                .fetch_optional(&state.pool)
                .await?;
        if let Some((name,)) = found {
            return Ok(name);
        }
    }
    path_name(secret_id)?;
    Ok(secret_id.to_string())
}

/// A version number from the path: a missing one is simply not found.
fn version_number(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>()
        .ok()
        .filter(|v| *v >= 1 && *v <= i64::MAX as u64)
        .ok_or_else(|| ApiError::not_found(format!("no version `{raw}`")))
}

/// A version that does not exist is not found here (seed 001's routes answer 422).
fn not_found_version(e: VaultError) -> ApiError {
    match e {
        VaultError::NoSuchVersion(n) => ApiError::not_found(format!("version {n} does not exist")),
        other => other.into(),
    }
}

pub(super) fn answered(w: &Written, status: StatusCode, body: impl Serialize) -> Reply {
    Reply::body(status, body).at(w.position, w.version)
}

/// Create a new version (the secret itself on its first write). `If-Match` guards it.
#[utoipa::path(post, path = "/v1/versioned-secrets", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::IfMatch),
    request_body = SecretWriteBody,
    responses((status = 201, description = "Written", body = SecretVersionWritten, headers(("ETag" = String))),
        PlatformErrors))]
async fn write(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<SecretWriteBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    if body.value.is_empty() || body.value.len() > 64 * 1024 {
        return Err(ApiError::validation(
            "value",
            "value must be 1 byte to 64 KiB",
        ));
    }
    let note = body.metadata.unwrap_or(SecretWriteMetadata {
        reason: None,
        changed_by: None,
    });
    max_chars("metadata.reason", note.reason.as_deref(), 500)?;
    max_chars("metadata.changedBy", note.changed_by.as_deref(), 200)?;
    ensure_tenant(&state, tenant).await?;
    let name = resolve(&state, tenant.0, &body.secret_id).await?;
    let ctx = command_context(&principal, &headers, None);
    let w = versioned::write(
        &state,
        &ctx,
        tenant.0,
        &name,
        &body.value,
        WriteNote {
            reason: note.reason,
            changed_by: note.changed_by,
        },
    )
    .await?;
    let current = w.credential.current().map(|v| (v.version, v.created_at));
    let (version, created_at) = current.unwrap_or((0, w.credential.updated_at));
    Ok(answered(
        &w,
        StatusCode::CREATED,
        SecretVersionWritten {
            secret_id: name,
            version,
            created_at,
        },
    ))
}

fn summary(v: &Version) -> SecretVersionSummary {
    let mut metadata = json!({ "reason": v.reason });
    if !v.changed_by.is_empty() {
        metadata["changedBy"] = json!(v.changed_by);
    }
    if let Some(from) = v.restored_from {
        metadata["restoredFrom"] = json!(from);
    }
    SecretVersionSummary {
        version: v.version,
        state: v.state.as_str().into(),
        created_at: v.created_at,
        created_by: v.created_by.clone(),
        metadata,
    }
}

async fn credential(
    state: &AppState,
    tenant: uuid::Uuid,
    name: &str,
) -> Result<(Credential, u64), ApiError> {
    let (c, _, version) = aegis_vault_services::load(state, tenant, name).await?;
    Ok((c, version))
}

/// Every version, oldest first, with its state, who wrote it and why. Never a value.
#[utoipa::path(get, path = "/v1/versioned-secrets/{secretId}/history", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"), params::Tenant),
    responses((status = 200, description = "The history", body = SecretHistory, headers(("ETag" = String))),
        PlatformErrors))]
async fn history(
    State(state): State<AppState>,
    principal: Principal,
    Path(secret_id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let (c, version) = credential(&state, tenant.0, &name).await?;
    let body = SecretHistory {
        secret_id: name,
        versions: c.versions.iter().map(summary).collect(),
    };
    Ok(([(header::ETAG, format!("\"{version}\""))], axum::Json(body)).into_response())
}

/// One version's value. The read is recorded before the value leaves; a deprecated version
/// is served with a `Warning`; a destroyed one is 410 (and the refused read recorded).
#[utoipa::path(get, path = "/v1/versioned-secrets/{secretId}/versions/{version}", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"),
        ("version" = String, Path, description = "The version number"), params::Tenant),
    responses((status = 200, description = "The value (Cache-Control: no-store)", body = SecretVersionValue),
        PlatformErrors))]
async fn read(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path((secret_id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let version = version_number(&version)?;
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let ctx = command_context(&principal, &headers, None);
    let (_, v, clear) = versioned::read(&state, &ctx, tenant.0, &name, version)
        .await
        .map_err(not_found_version)?;
    let s = summary(&v);
    let mut response = (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(SecretVersionValue {
            secret_id: name,
            version,
            value: clear.to_string(),
            state: s.state,
            created_at: v.created_at,
            metadata: s.metadata,
        }),
    )
        .into_response();
    if v.state == VersionState::Deprecated {
        if let Ok(w) = HeaderValue::from_str(&format!(
            "299 aegis \"version {version} is deprecated; read the current version\""
        )) {
            response.headers_mut().insert(header::WARNING, w);
        }
    }
    Ok(response)
}

/// Deprecate or destroy one version. Repeating it answers the same.
#[utoipa::path(patch, path = "/v1/versioned-secrets/{secretId}/versions/{version}/state", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"),
        ("version" = String, Path, description = "The version number"), params::Tenant, params::IfMatch),
    request_body = SecretStateBody,
    responses((status = 200, description = "The version's state", body = SecretStateChanged, headers(("ETag" = String))),
        PlatformErrors))]
async fn set_state(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path((secret_id, version)): Path<(String, String)>,
    Json(body): Json<SecretStateBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let to = match VersionState::parse(&body.state) {
        Some(s @ (VersionState::Deprecated | VersionState::Destroyed)) => s,
        _ => {
            return Err(ApiError::validation(
                "state",
                "state must be `deprecated` or `destroyed`",
            ))
        }
    };
    max_chars("reason", body.reason.as_deref(), 500)?;
    let version = version_number(&version)?;
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let ctx = command_context(&principal, &headers, None);
    let w = versioned::set_state(
        &state,
        &ctx,
        tenant.0,
        &name,
        version,
        to,
        body.reason.unwrap_or_default(),
    )
    .await
    .map_err(not_found_version)?;
    let updated_at = w.credential.updated_at;
    Ok(answered(
        &w,
        StatusCode::OK,
        SecretStateChanged {
            secret_id: name,
            version,
            state: to.as_str().into(),
            updated_at,
        },
    ))
}

/// Write an earlier version's value as a new version; a destroyed target is 409.
#[utoipa::path(post, path = "/v1/versioned-secrets/{secretId}/rollback", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"), params::Tenant, params::IfMatch),
    request_body = SecretRollbackBody,
    responses((status = 200, description = "Rolled back", body = SecretRolledBack, headers(("ETag" = String))),
        PlatformErrors))]
async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(secret_id): Path<String>,
    Json(body): Json<SecretRollbackBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    if body.target_version == 0 || body.target_version > i64::MAX as u64 {
        return Err(ApiError::validation(
            "targetVersion",
            "targetVersion must be between 1 and 9223372036854775807",
        ));
    }
    max_chars("reason", body.reason.as_deref(), 500)?;
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let ctx = command_context(&principal, &headers, None);
    let (w, from) = versioned::rollback(
        &state,
        &ctx,
        tenant.0,
        &name,
        body.target_version,
        body.reason,
    )
    .await
    .map_err(|e| match e {
        e @ (VaultError::NoSuchVersion(_) | VaultError::AlreadyCurrent(_)) => {
            ApiError::validation("targetVersion", e.to_string())
        }
        other => other.into(),
    })?;
    let new_version = w.credential.version();
    Ok(answered(
        &w,
        StatusCode::OK,
        SecretRolledBack {
            secret_id: name,
            new_version,
            rolled_back_from: from,
            rolled_back_to: body.target_version,
        },
    ))
}

/// Whether two versions hold different values; neither value leaves.
#[utoipa::path(post, path = "/v1/versioned-secrets/{secretId}/compare", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"), params::Tenant),
    request_body = SecretCompareBody,
    responses((status = 200, description = "The comparison", body = SecretComparison), PlatformErrors))]
async fn compare(
    State(state): State<AppState>,
    principal: Principal,
    Path(secret_id): Path<String>,
    Json(body): Json<SecretCompareBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    for (field, v) in [("version1", body.version1), ("version2", body.version2)] {
        if v == 0 || v > i64::MAX as u64 {
            return Err(ApiError::validation(
                field,
                format!("{field} must be between 1 and 9223372036854775807"),
            ));
        }
    }
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let (_, c) = versioned::compare(&state, tenant.0, &name, body.version1, body.version2)
        .await
        .map_err(|e| match e {
            VaultError::NoSuchVersion(n) => {
                ApiError::validation("version", format!("version {n} does not exist"))
            }
            other => other.into(),
        })?;
    let side = |(v, hash): (Version, String)| SecretComparedVersion {
        version: v.version,
        created_at: v.created_at,
        hash,
    };
    Ok(Reply::body(
        StatusCode::OK,
        SecretComparison {
            secret_id: name,
            version1: side(c.first),
            version2: side(c.second),
            different: c.different,
        },
    ))
}

/// The most value reads one audit answer lists (the newest).
const READS: i64 = 200;

/// What happened to the secret's versions, oldest first: writes, rollbacks and state
/// changes from the secret's own history, and its value reads (the newest 200).
#[utoipa::path(get, path = "/v1/versioned-secrets/{secretId}/audit", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"), params::Tenant, params::MinPosition),
    responses((status = 200, description = "The audit trail", body = SecretAudit), PlatformErrors))]
async fn audit(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Path(secret_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let events = audit::trail(&state, &min, tenant.0, &name, READS).await?;
    Ok(Reply::body(
        StatusCode::OK,
        SecretAudit {
            secret_id: name,
            events,
        },
    ))
}
