//! A credential's values: read one (audited before it leaves), roll back, rotate, and
//! destroy them all (crypto-shredding).

use super::errors::{credential_error, key_error, missing};
use super::path_name;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, CommandHeaders, Json};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{aggregate, command_context, execute};
use crate::state::AppState;
use aegis_vault::credentials::Command;
use aegis_vault::CredentialAggregate;
use aegis_vault_services::{for_value_read, open, rotate, versioned};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(value))
        .routes(routes!(rotate_now))
        .routes(routes!(rollback))
        .routes(routes!(destroy))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialValue {
    pub name: String,
    pub version: u64,
    pub credential_type: String,
    /// The value in clear. Not cached, not logged.
    pub value: String,
}

/// The current value, for workloads. Each read is recorded in the log (actor, version)
/// before the value is answered, and counts in `usage_stats`.
#[utoipa::path(get, path = "/credentials/{name}/value", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant),
    responses((status = 200, description = "The value (Cache-Control: no-store)", body = CredentialValue),
        AuthErrors,
        (status = 404, description = "No such credential", body = ErrorBody),
        (status = 409, description = "Retired, or no value yet", body = ErrorBody),
        (status = 410, description = "Destroyed: the values were crypto-shredded", body = ErrorBody)))]
async fn value(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    let ctx = command_context(&principal, &headers, None);
    // Retired, destroyed or valueless: refused, and the refusal recorded.
    let c = for_value_read(&state, &ctx, tenant.0, &name).await?;
    let clear = open(&state, tenant.0, &c, None).await?;
    let body = CredentialValue {
        name: c.name.clone(),
        version: c.version(),
        credential_type: c.credential_type.clone(),
        value: clear.to_string(),
    };
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Reply::body(StatusCode::OK, body),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// `manual` or `emergency`.
    pub trigger: String,
    /// Up to 500 characters.
    pub reason: Option<String>,
}

/// Rotate now. Only one rotation runs at a time (409 with `retry_after_ms`); a failed one
/// leaves the old version active, is recorded, and opens an incident (502).
#[utoipa::path(post, path = "/credentials/{name}/rotate", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant),
    request_body = RotateBody,
    responses((status = 200, description = "Rotated", body = Rotated),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such credential", body = ErrorBody),
        (status = 409, description = "Another rotation is running, or the credential is retired", body = ErrorBody),
        (status = 410, description = "The tenant's data key was destroyed", body = ErrorBody),
        (status = 502, description = "The rotator failed; the old version stays active", body = ErrorBody)))]
async fn rotate_now(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
    Json(body): Json<RotateBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    if !matches!(body.trigger.as_str(), "manual" | "emergency") {
        return Err(ApiError::validation(
            "trigger",
            "trigger must be `manual` or `emergency`",
        ));
    }
    let reason = body.reason.unwrap_or_default();
    max_chars("reason", Some(&reason), 500)?;
    let ctx = command_context(&principal, &headers, None);
    let (rotated, _) = rotate(&state, &ctx, tenant.0, &name, &body.trigger, &reason).await?;
    Ok(Reply::body(StatusCode::OK, Rotated::from(rotated)))
}

/// What a completed rotation answers (seed 001).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rotated {
    pub status: &'static str,
    pub credential: String,
    pub previous_version: u64,
    pub new_version: u64,
    pub duration_ms: u64,
    pub rotated_at: DateTime<Utc>,
}

impl From<aegis_vault_services::Rotated> for Rotated {
    fn from(r: aegis_vault_services::Rotated) -> Self {
        Self {
            status: r.status,
            credential: r.credential,
            previous_version: r.previous_version,
            new_version: r.new_version,
            duration_ms: r.duration_ms,
            rotated_at: r.rotated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version whose value becomes current again (as a new version).
    #[schema(minimum = 1, maximum = 9223372036854775807_u64)]
    pub version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolledBack {
    pub status: String,
    pub credential: String,
    pub from_version: u64,
    pub to_version: u64,
    /// The version that now holds the restored value: history is never rewritten.
    pub new_version: u64,
    pub rolled_back_at: DateTime<Utc>,
}

/// Roll back to an earlier version's value, recorded as a new version.
#[utoipa::path(post, path = "/credentials/{name}/rollback", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant),
    request_body = RollbackBody,
    responses((status = 200, description = "Rolled back", body = RolledBack),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such credential", body = ErrorBody),
        (status = 409, description = "Rotating, retired, or changed meanwhile", body = ErrorBody),
        (status = 410, description = "Destroyed", body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
    Json(body): Json<RollbackBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    // Checked before the credential is read: a body out of range is refused as such, whatever
    // state the credential is in.
    if body.version == 0 || body.version > i64::MAX as u64 {
        return Err(ApiError::validation(
            "version",
            "version must be between 1 and 9223372036854775807",
        ));
    }
    let ctx = command_context(&principal, &headers, None);
    let (done, from) =
        versioned::rollback(&state, &ctx, tenant.0, &name, body.version, None).await?;
    let version = done.credential.version();
    Ok(Reply::body(
        StatusCode::OK,
        RolledBack {
            status: "rolled_back".into(),
            credential: name,
            from_version: from,
            to_version: body.version,
            new_version: version,
            rolled_back_at: Utc::now(),
        },
    )
    .at(done.position, done.version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyBody {
    /// Why, for the audit log; up to 500 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialDestroyed {
    pub status: String,
    pub credential: String,
    /// How many versions' ciphertexts can no longer be opened.
    pub versions_shredded: usize,
    pub destroyed_at: DateTime<Utc>,
}

/// Destroy every version: the credential's key is deleted, so the ciphertexts the log keeps
/// can never be opened again. Irreversible; repeating it answers the same.
#[utoipa::path(post, path = "/credentials/{name}/destroy", tag = "vault", security(("bearer" = [])),
    params(("name" = String, Path, description = "The credential's name"), params::Tenant),
    request_body = DestroyBody,
    responses((status = 200, description = "Destroyed", body = CredentialDestroyed),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such credential", body = ErrorBody)))]
async fn destroy(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(name): Path<String>,
    Json(body): Json<DestroyBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    path_name(&name)?;
    let reason = body.reason.unwrap_or_default();
    max_chars("reason", Some(&reason), 500)?;
    let agg = aggregate::<CredentialAggregate>(tenant.0, name.as_str())?;
    // The intent is recorded first; the key goes even when this is a retry, so a destroy
    // interrupted between the two completes on the next call.
    let outcome = execute::<CredentialAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Destroy { reason },
        false,
        credential_error(&name),
    )
    .await?;
    let c = outcome.state.ok_or_else(|| missing(&name))?;
    aegis_vault_services::keys::destroy_all(&state, tenant.0, &c)
        .await
        .map_err(|e| key_error(&name, e))?;
    tracing::warn!(credential = %name, tenant = %tenant, versions = c.versions.len(), "credential destroyed: its key is gone");
    Ok(Reply::body(
        StatusCode::OK,
        CredentialDestroyed {
            status: "destroyed".into(),
            credential: name,
            versions_shredded: c.versions.len(),
            destroyed_at: c.updated_at,
        },
    )
    .at(outcome.position, outcome.version))
}
