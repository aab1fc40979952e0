//! API keys (seed 000): created with scopes and shown once, listed by prefix, revoked.
//! The key is never stored, logged or replayed: only its keyed HMAC reaches the log.

use crate::auth::{grants, Principal};
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_identity::api_keys::{ApiKey, ApiKeyAggregate, ApiKeyError, Command, NewApiKey};
use aegis_identity::permissions::Permissions;
use aegis_projectors::identity::IdentityProjection;
use aegis_projectors::Projection;
use aegis_runtime::tokens::{self, CredentialKind};
use axum::extract::State;
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
        .routes(routes!(detail, revoke))
}

fn key_error(e: ApiKeyError) -> ApiError {
    match e {
        ApiKeyError::NotFound => ApiError::not_found("API key not found"),
        ApiKeyError::AlreadyExists => ApiError::conflict("the API key already exists"),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Permission names the key may use; at most the creator's own.
    pub scopes: Vec<String>,
}

/// The one answer that holds the key.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// `acp_...`: shown once, never again.
    pub key: String,
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl KeyView {
    pub(crate) fn of(k: &ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.names(),
            created_by: k.created_by.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// Create an API key; the answer holds the key, once (no `Idempotency-Key` replay, which
/// would have to store it).
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(params::Tenant), request_body = CreateKeyBody,
    responses(
        (status = 201, description = "Created; copy the key now", body = Data<CreatedKey>, headers(("Aegis-Position" = u64))),
        AuthErrors,
        BodyErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<CreateKeyBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let name = super::users::display_name(Some(&body.name))?.unwrap_or_default();
    let scopes = Permissions::parse_grantable(&body.scopes)
        .map_err(|m| ApiError::validation("scopes", m))?;
    // No escalation: a key can do at most what its creator can.
    grants::may_grant(&principal, scopes)?;
    ensure_tenant(&state, tenant).await?;
    let id = Uuid::now_v7();
    let minted = tokens::mint(CredentialKind::ApiKey, tenant.0, id);
    let agg = aggregate::<ApiKeyAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<ApiKeyAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Create(NewApiKey {
            name,
            prefix: minted.prefix.clone(),
            digest: state.keyring.digest(&minted.credential),
            scopes,
            created_by: format!("{}:{}", principal.kind.as_str(), principal.subject),
        }),
        true,
        key_error,
    )
    .await?;
    let key = outcome
        .state
        .ok_or_else(|| ApiError::internal(&ApiKeyError::NotFound))?;
    tracing::info!(key = %id, prefix = %key.prefix, tenant = %tenant, "API key created");
    let reply = Reply::data(
        StatusCode::CREATED,
        CreatedKey {
            key: minted.credential,
            id,
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes.names(),
            created_at: key.created_at,
        },
    )
    .at(outcome.position, outcome.version);
    Ok(([(header::CACHE_CONTROL, "no-store")], reply).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// Include revoked keys (default false).
    pub include_revoked: Option<bool>,
}

/// API keys of the tenant, newest first: prefix and metadata, never the key.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(KeyQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of keys", body = Paged<KeyView>), AuthErrors,
        (status = 422, description = "Invalid paging or filter values", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<KeyQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[IdentityProjection::NAME]).await?;
    let all = q.include_revoked.unwrap_or(false);
    let (rows, total): (Vec<KeyView>, i64) = TenantQuery::new("api_keys", "tenant_id", tenant.0)
        .when(!all, "revoked_at IS NULL")
        .page(
            &state.pool,
            "id, name, prefix, scopes, created_by, created_at, revoked_at",
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

/// One API key's metadata, from the log.
#[utoipa::path(get, path = "/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses(
        (status = 200, description = "The key's metadata", body = Data<KeyView>),
        AuthErrors,
        (status = 404, description = "No such key in this tenant", body = ErrorBody),
    ))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(id): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (key, position, version) =
        current::<ApiKeyAggregate>(&state, tenant, id.to_string()).await?;
    let key = key.ok_or_else(|| ApiError::not_found("API key not found"))?;
    Ok(Reply::data(StatusCode::OK, KeyView::of(&key)).at(position, version))
}

/// Revoke an API key: the very next request with it is refused. Revoking twice is a no-op.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path), params::Tenant),
    responses(
        (status = 204, description = "Revoked"),
        AuthErrors,
        (status = 404, description = "No such key in this tenant", body = ErrorBody),
    ))]
async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(id): UuidPath,
) -> Result<StatusCode, ApiError> {
    let tenant = principal.tenant()?;
    let agg = aggregate::<ApiKeyAggregate>(tenant.0, id.to_string())?;
    let outcome = execute::<ApiKeyAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Command::Revoke,
        false,
        key_error,
    )
    .await?;
    // This instance's cache already holds the revoked state; make sure nothing trusts older.
    state.directory.invalidate(&agg.subject());
    if outcome.appended {
        tracing::info!(key = %id, tenant = %tenant, "API key revoked");
    }
    Ok(StatusCode::NO_CONTENT)
}
