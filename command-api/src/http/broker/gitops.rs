//! Seed 004's GitOps integrations, behind `AEGIS_GITOPS_ENABLED`: while it is off every route
//! here answers 404, as the document says (`auth::authorize` answers it for `routes::GITOPS`,
//! before a handler runs). Argo CD endpoints: added with a write-once token (sealed, never
//! shown: the answer says only `token_set`), a URL the SSRF guard accepts; enabled or
//! disabled; removed; the applications one holds, read with GET; app mappings (an application
//! tied to exactly one target). A request's observations are in `request_gitops.rs`.

use super::errors::broker_error;
use super::rules_http::{millis, not_found_id, Edited};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_broker::gitops::{Endpoint, Mapping, MappingTarget};
use aegis_broker_services::gitops;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use zeroize::Zeroizing;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add, list))
        .routes(routes!(remove))
        .routes(routes!(set_enabled))
        .routes(routes!(discovered_apps))
        .routes(routes!(add_mapping, list_mappings))
        .routes(routes!(remove_mapping))
}

/// No `Debug`: the body carries the endpoint's token. secrets-bridge clients send
/// `base_url` and `token_b64`; `url` and a plain `token` are accepted too.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    pub name: String,
    /// The Argo CD server, `https://argocd.example`.
    #[serde(alias = "url")]
    pub base_url: String,
    /// An Argo CD API token (read-only suffices), standard base64: sealed at once, never shown
    /// again. Exactly one of `token_b64` and `token`.
    #[serde(default)]
    pub token_b64: Option<String>,
    /// The token as text.
    #[serde(default)]
    pub token: Option<String>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Accepted for secrets-bridge clients; an endpoint is not tied to one environment here.
    #[serde(default, rename = "environment_id")]
    pub _environment_id: Option<String>,
}

/// The token a body carries: exactly one of its two spellings, not blank, at most 8 KiB.
fn token_of(body: &mut EndpointBody) -> Result<Zeroizing<String>, ApiError> {
    let bad = |why: &str| ApiError::bad_request(why.to_string()).with("field", "token_b64");
    let token = match (body.token_b64.take(), body.token.take()) {
        (Some(b64), None) => {
            let raw = Zeroizing::new(
                STANDARD
                    .decode(b64.trim())
                    .map_err(|_| bad("token_b64 is not valid base64"))?,
            );
            Zeroizing::new(
                String::from_utf8(raw.to_vec()).map_err(|_| bad("the token is not text"))?,
            )
        }
        (None, Some(t)) => Zeroizing::new(t),
        _ => return Err(bad("exactly one of token_b64 and token is required")),
    };
    if token.trim().is_empty() || token.len() > 8192 {
        return Err(bad("the token is required (at most 8 KiB)"));
    }
    Ok(token)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    pub name: String,
    pub base_url: String,
    pub enabled: bool,
    /// The token is there (it is never shown).
    pub token_set: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(id: Uuid, e: &Endpoint) -> EndpointView {
    EndpointView {
        id,
        name: e.name.clone(),
        base_url: e.url.clone(),
        enabled: e.enabled,
        token_set: true,
        created_at: millis(e.created_at),
        updated_at: millis(e.updated_at),
    }
}

fn id_of(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| not_found_id("argo cd endpoint"))
}

/// Add an Argo CD endpoint (201). Its URL must pass the SSRF guard; its token is write-once.
#[utoipa::path(post, path = "/api/v1/argocd-endpoints", tag = "gitops", security(("bearer" = [])),
    request_body = EndpointBody,
    responses(
        (status = 201, description = "Added", body = EndpointView),
        (status = 400, description = "No token, a bad name, or a URL the SSRF guard refuses", body = ErrorBody),
        (status = 404, description = "GitOps is turned off", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn add(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(mut body): Json<EndpointBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(&state, tenant).await?;
    let token = token_of(&mut body)?;
    let ctx = command_context(&principal, &headers, None);
    let (id, g, position) = gitops::add_endpoint(
        &state,
        &ctx,
        tenant.0,
        body.name.trim().to_string(),
        body.base_url.trim().to_string(),
        token,
        body.enabled.unwrap_or(true),
    )
    .await
    .map_err(broker_error)?;
    let e = g
        .endpoints
        .get(&id)
        .ok_or_else(|| not_found_id("argo cd endpoint"))?;
    Ok(Reply::body(StatusCode::CREATED, view(id, e)).at(position, 1))
}

/// The tenant's Argo CD endpoints, by name; never a token.
#[utoipa::path(get, path = "/api/v1/argocd-endpoints", tag = "gitops", security(("bearer" = [])),
    responses((status = 200, description = "The endpoints", body = [EndpointView]),
        (status = 404, description = "GitOps is turned off", body = ErrorBody), AuthErrors))]
async fn list(State(state): State<AppState>, principal: Principal) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let g = gitops::get(&state, tenant.0).await.map_err(broker_error)?;
    let mut all: Vec<EndpointView> = g.endpoints.iter().map(|(id, e)| view(*id, e)).collect();
    all.sort_by_key(|e| e.name.to_lowercase());
    Ok(Reply::body(StatusCode::OK, all))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnabledBody {
    pub enabled: bool,
}

/// Enable or disable an endpoint (204).
#[utoipa::path(put, path = "/api/v1/argocd-endpoints/{id}/enabled", tag = "gitops", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = EnabledBody,
    responses((status = 204, description = "Set"),
        (status = 404, description = "No such endpoint, or GitOps is turned off", body = ErrorBody),
        AuthErrors, BodyErrors))]
async fn set_enabled(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<EnabledBody>,
) -> Result<Edited, ApiError> {
    let tenant = principal.tenant()?;
    let id = id_of(&raw)?;
    let ctx = command_context(&principal, &headers, None);
    let position = gitops::set_enabled(&state, &ctx, tenant.0, id, body.enabled)
        .await
        .map_err(broker_error)?;
    Ok(Edited(position))
}

/// Remove an endpoint (204); its token's key is destroyed.
#[utoipa::path(delete, path = "/api/v1/argocd-endpoints/{id}", tag = "gitops", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint, or GitOps is turned off", body = ErrorBody),
        AuthErrors))]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
) -> Result<Edited, ApiError> {
    let tenant = principal.tenant()?;
    let id = id_of(&raw)?;
    let ctx = command_context(&principal, &headers, None);
    let position = gitops::remove(&state, &ctx, tenant.0, id)
        .await
        .map_err(broker_error)?;
    Ok(Edited(position))
}

/// An application an endpoint holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppView {
    pub name: String,
    pub namespace: String,
    pub project: String,
    /// Argo CD's sync status: `Synced`, `OutOfSync`, `Unknown`.
    pub sync_status: String,
    /// Argo CD's health status: `Healthy`, `Progressing`, `Degraded`, `Missing`, ...
    pub health_status: String,
}

/// The applications an enabled endpoint holds, read now from Argo CD (GET only).
#[utoipa::path(get, path = "/api/v1/argocd-endpoints/{id}/discovered-apps", tag = "gitops", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The applications", body = [AppView]),
        (status = 404, description = "No such endpoint, or GitOps is turned off", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
        (status = 502, description = "Argo CD could not be read", body = ErrorBody), AuthErrors))]
async fn discovered_apps(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let id = id_of(&raw)?;
    let apps = gitops::discovered_apps(&state, tenant.0, id)
        .await
        .map_err(broker_error)?;
    let apps: Vec<AppView> = apps
        .into_iter()
        .map(|a| AppView {
            name: a.name,
            namespace: a.namespace,
            project: a.project,
            sync_status: a.sync_status,
            health_status: a.health_status,
        })
        .collect();
    Ok(Reply::body(StatusCode::OK, apps))
}

/// With the feature on, what is not built yet says so.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingBody {
    pub argocd_endpoint_id: Uuid,
    pub application_name: String,
    #[serde(default)]
    pub application_namespace: Option<String>,
    #[serde(default)]
    pub project_name: Option<String>,
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// Exactly one of this and `provider_connection_id`.
    #[serde(default)]
    pub secret_mapping_id: Option<Uuid>,
    #[serde(default)]
    pub provider_connection_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappingView {
    pub id: Uuid,
    pub argocd_endpoint_id: Uuid,
    pub application_name: String,
    pub application_namespace: String,
    pub project_name: String,
    pub cluster_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_mapping_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_connection_id: Option<Uuid>,
    pub enabled: bool,
}

fn mapping_view(id: Uuid, m: &Mapping) -> MappingView {
    let (secret_mapping_id, provider_connection_id) = match m.target {
        MappingTarget::SecretMapping(t) => (Some(t), None),
        MappingTarget::ProviderConnection(t) => (None, Some(t)),
    };
    MappingView {
        id,
        argocd_endpoint_id: m.endpoint_id,
        application_name: m.application_name.clone(),
        application_namespace: m.application_namespace.clone(),
        project_name: m.project_name.clone(),
        cluster_name: m.cluster_name.clone(),
        secret_mapping_id,
        provider_connection_id,
        enabled: true,
    }
}

/// Map an Argo CD application to exactly one target (201).
#[utoipa::path(post, path = "/api/v1/gitops-app-mappings", tag = "gitops", security(("bearer" = [])),
    request_body = MappingBody,
    responses((status = 201, description = "Mapped", body = MappingView),
        (status = 400, description = "Not exactly one target, or no application name", body = ErrorBody),
        (status = 404, description = "No such endpoint, or GitOps is turned off", body = ErrorBody),
        AuthErrors, BodyErrors))]
async fn add_mapping(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<MappingBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(&state, tenant).await?;
    let target = match (body.secret_mapping_id, body.provider_connection_id) {
        (Some(s), None) => MappingTarget::SecretMapping(s),
        (None, Some(p)) => MappingTarget::ProviderConnection(p),
        _ => {
            return Err(ApiError::bad_request(
                "exactly one of secret_mapping_id or provider_connection_id required",
            )
            .with("field", "secret_mapping_id"))
        }
    };
    let mapping = Mapping {
        endpoint_id: body.argocd_endpoint_id,
        application_name: body.application_name.trim().to_string(),
        application_namespace: body.application_namespace.unwrap_or_default(),
        project_name: body.project_name.unwrap_or_default(),
        cluster_name: body.cluster_name.unwrap_or_default(),
        target,
    };
    let ctx = command_context(&principal, &headers, None);
    let (id, g, position) = gitops::add_mapping(&state, &ctx, tenant.0, mapping)
        .await
        .map_err(broker_error)?;
    let m = g
        .mappings
        .get(&id)
        .ok_or_else(|| not_found_id("gitops mapping"))?;
    Ok(Reply::body(StatusCode::CREATED, mapping_view(id, m)).at(position, 1))
}

/// The app mappings.
#[utoipa::path(get, path = "/api/v1/gitops-app-mappings", tag = "gitops", security(("bearer" = [])),
    responses((status = 200, description = "The mappings", body = [MappingView]),
        (status = 404, description = "GitOps is turned off", body = ErrorBody), AuthErrors))]
async fn list_mappings(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let g = gitops::get(&state, tenant.0).await.map_err(broker_error)?;
    let all: Vec<MappingView> = g
        .mappings
        .iter()
        .map(|(id, m)| mapping_view(*id, m))
        .collect();
    Ok(Reply::body(StatusCode::OK, all))
}

/// Remove an app mapping (204).
#[utoipa::path(delete, path = "/api/v1/gitops-app-mappings/{id}", tag = "gitops", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such mapping, or GitOps is turned off", body = ErrorBody), AuthErrors))]
async fn remove_mapping(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
) -> Result<Edited, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| not_found_id("gitops mapping"))?;
    let ctx = command_context(&principal, &headers, None);
    let position = gitops::remove_mapping(&state, &ctx, tenant.0, id)
        .await
        .map_err(broker_error)?;
    Ok(Edited(position))
}
