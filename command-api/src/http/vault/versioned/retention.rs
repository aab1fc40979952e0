//! A versioned secret's retention: the policy, applying it now, and the tenant's counts.

use super::shapes::*;
use super::{answered, resolve};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::command_context;
use crate::http::extract::{CommandHeaders, Json, MinPosition};
use crate::http::openapi::params;
use crate::http::platform::PlatformErrors;
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_kernel::duration::IsoDuration;
use aegis_projectors::vault::VaultProjection;
use aegis_projectors::Projection;
use aegis_vault::versions::{Retention, VersionState};
use aegis_vault_services::versioned;
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// Set how many versions the secret keeps and for how long. The current version is never
/// destroyed by it.
#[utoipa::path(put, path = "/v1/versioned-secrets/{secretId}/retention-policy", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"), params::Tenant, params::IfMatch),
    request_body = SecretRetentionBody,
    responses((status = 200, description = "The policy", body = SecretRetentionSet, headers(("ETag" = String))),
        PlatformErrors))]
pub(super) async fn retention(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(secret_id): Path<String>,
    Json(body): Json<SecretRetentionBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    if body.max_versions.is_some_and(|m| m == 0 || m > 10_000) {
        return Err(ApiError::validation(
            "maxVersions",
            "maxVersions must be between 1 and 10000",
        ));
    }
    if let Some(d) = &body.delete_after {
        let parsed = IsoDuration::parse("deleteAfter", d)
            .map_err(|e| ApiError::validation("deleteAfter", e.to_string()))?;
        if parsed.is_zero() {
            return Err(ApiError::validation(
                "deleteAfter",
                "deleteAfter must be longer than zero",
            ));
        }
    }
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let ctx = command_context(&principal, &headers, None);
    let policy = Retention {
        max_versions: body.max_versions,
        delete_after: body.delete_after.clone(),
        auto_destroy: body.auto_destroy,
    };
    let w = versioned::set_retention(&state, &ctx, tenant.0, &name, policy).await?;
    let updated_at = w.credential.updated_at;
    Ok(answered(
        &w,
        StatusCode::OK,
        SecretRetentionSet {
            secret_id: name,
            retention_policy: body,
            updated_at,
        },
    ))
}

/// Apply the retention policy now. Counts only what really became unreadable.
#[utoipa::path(post, path = "/v1/versioned-secrets/{secretId}/enforce-retention", tag = "vault", security(("bearer" = [])),
    params(("secretId" = String, Path, description = "The secret's name or id"), params::Tenant),
    responses((status = 200, description = "What was destroyed", body = SecretRetentionEnforced), PlatformErrors))]
pub(super) async fn enforce(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(secret_id): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let name = resolve(&state, tenant.0, &secret_id).await?;
    let ctx = command_context(&principal, &headers, None);
    let (w, destroyed) = versioned::enforce_retention(&state, &ctx, tenant.0, &name).await?;
    let retained = w
        .credential
        .versions
        .iter()
        .filter(|v| v.state != VersionState::Destroyed)
        .count();
    Ok(answered(
        &w,
        StatusCode::OK,
        SecretRetentionEnforced {
            secret_id: name,
            versions_deleted: destroyed.len(),
            versions_retained: retained,
        },
    ))
}

/// Counts over the tenant's secrets and their versions.
#[utoipa::path(get, path = "/v1/versioned-secrets/stats", tag = "vault", security(("bearer" = [])),
    params(params::Tenant, params::MinPosition),
    responses((status = 200, description = "The counts", body = SecretStats), PlatformErrors))]
pub(super) async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    min.wait(&state, &[VaultProjection::NAME]).await?;
    let (secrets, versions, active, deprecated, destroyed): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT count(DISTINCT name), count(*), count(*) FILTER (WHERE state = 'active'), \
             count(*) FILTER (WHERE state = 'deprecated'), count(*) FILTER (WHERE state = 'destroyed') \
             FROM vault_credential_versions WHERE tenant_id = $1",
        )
        .bind(tenant.0)
        .fetch_one(&state.pool)
        .await?;
    let average = if secrets == 0 {
        0.0
    } else {
        ((versions as f64 / secrets as f64) * 100.0).round() / 100.0
    };
    Ok(Reply::body(
        StatusCode::OK,
        SecretStats {
            total_secrets: secrets,
            total_versions: versions,
            average_versions_per_secret: average,
            by_state: SecretsByState {
                active,
                deprecated,
                destroyed,
            },
        },
    ))
}
