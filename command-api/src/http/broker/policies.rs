//! Policies (seed 004): a selector (project, environment, provider type, secret reference
//! prefix; a key left out matches anything) and a priority pick the workflow a request is
//! bound to. Edited with `policy.edit`; listed highest priority first.

use super::errors::broker_error;
use super::rules_http::{millis, not_found_id, Edited};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_broker::rules::{Command, Policy, Selector, Stamped};
use aegis_broker_services::{rules, tenancy};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, delete))
}

/// Which requests a policy applies to; a key left out matches anything.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<String>,
    /// The request's `target_secret_ref` starts with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref_prefix: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    pub name: String,
    #[serde(default)]
    pub selector: Option<SelectorBody>,
    pub workflow_id: Uuid,
    /// Higher wins (default 0).
    #[serde(default)]
    pub priority: Option<i32>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// What a read answered, sent back by a client that edits a copy: ignored.
    #[serde(default, rename = "id")]
    pub _id: Option<serde_json::Value>,
    #[serde(default, rename = "is_system")]
    pub _is_system: Option<serde_json::Value>,
    #[serde(default, rename = "created_at")]
    pub _created_at: Option<serde_json::Value>,
    #[serde(default, rename = "updated_at")]
    pub _updated_at: Option<serde_json::Value>,
}

/// A selector's project must be one of the tenant's (by id): a policy on a project that does
/// not exist would never match.
async fn project_ok(state: &AppState, tenant: Uuid, p: &Policy) -> Result<(), ApiError> {
    let Some(raw) = &p.selector.project_id else {
        return Ok(());
    };
    let t = tenancy::get(state, tenant).await.map_err(broker_error)?;
    match Uuid::parse_str(raw)
        .ok()
        .filter(|id| t.projects.contains_key(id))
    {
        Some(_) => Ok(()),
        None => Err(ApiError::bad_request(format!(
            "selector.project_id `{raw}` is not a project of this tenant"
        ))
        .with("field", "selector.project_id")),
    }
}

impl PolicyBody {
    fn policy(self) -> Policy {
        let s = self.selector.unwrap_or_default();
        Policy {
            name: self.name.trim().to_string(),
            selector: Selector {
                project_id: s.project_id,
                environment: s.environment,
                provider_type: s.provider_type,
                secret_ref_prefix: s.secret_ref_prefix,
            },
            workflow_id: self.workflow_id,
            priority: self.priority.unwrap_or(0),
            enabled: self.enabled.unwrap_or(true),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    pub id: Uuid,
    pub name: String,
    pub selector: SelectorBody,
    pub workflow_id: Uuid,
    pub priority: i32,
    pub enabled: bool,
    pub is_system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(id: Uuid, p: &Stamped<Policy>) -> PolicyView {
    let v = &p.value;
    let s = &v.selector;
    PolicyView {
        id,
        name: v.name.clone(),
        selector: SelectorBody {
            project_id: s.project_id.clone(),
            environment: s.environment.clone(),
            provider_type: s.provider_type.clone(),
            secret_ref_prefix: s.secret_ref_prefix.clone(),
        },
        workflow_id: v.workflow_id,
        priority: v.priority,
        enabled: v.enabled,
        is_system: false,
        created_at: millis(p.created_at),
        updated_at: millis(p.updated_at),
    }
}

/// Create a policy (201).
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", security(("bearer" = [])),
    request_body = PolicyBody,
    responses(
        (status = 201, description = "Created", body = PolicyView),
        (status = 400, description = "An empty selector value, or a workflow that does not exist", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<PolicyBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(&state, tenant).await?;
    let id = Uuid::now_v7();
    let ctx = command_context(&principal, &headers, None);
    let policy = body.policy();
    project_ok(&state, tenant.0, &policy).await?;
    let command = Command::CreatePolicy { id, policy };
    let (rules, position) = rules::edit(&state, &ctx, tenant.0, command)
        .await
        .map_err(broker_error)?;
    let made = rules
        .policies
        .get(&id)
        .ok_or_else(|| not_found_id("policy"))?;
    Ok(Reply::body(StatusCode::CREATED, view(id, made)).at(position, 1))
}

/// Every policy, highest priority first.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", security(("bearer" = [])),
    responses((status = 200, description = "The policies", body = [PolicyView]), AuthErrors))]
async fn list(State(state): State<AppState>, principal: Principal) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let rules = rules::get(&state, tenant.0).await.map_err(broker_error)?;
    let mut all: Vec<(&Uuid, &Stamped<Policy>)> = rules.policies.iter().collect();
    all.sort_by_key(|(id, p)| (std::cmp::Reverse(p.value.priority), p.created_at, **id));
    let all: Vec<PolicyView> = all.into_iter().map(|(id, p)| view(*id, p)).collect();
    Ok(Reply::body(StatusCode::OK, all))
}

/// One policy.
#[utoipa::path(get, path = "/api/v1/policies/{id}", tag = "policies", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The policy", body = PolicyView),
        (status = 404, description = "No such policy", body = ErrorBody), AuthErrors))]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| not_found_id("policy"))?;
    let rules = rules::get(&state, tenant.0).await.map_err(broker_error)?;
    let p = rules
        .policies
        .get(&id)
        .ok_or_else(|| not_found_id("policy"))?;
    Ok(Reply::body(StatusCode::OK, view(id, p)))
}

/// Replace a policy (204).
#[utoipa::path(put, path = "/api/v1/policies/{id}", tag = "policies", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PolicyBody,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "An empty selector value, or a workflow that does not exist", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<PolicyBody>,
) -> Result<Edited, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| not_found_id("policy"))?;
    let ctx = command_context(&principal, &headers, None);
    let policy = body.policy();
    project_ok(&state, tenant.0, &policy).await?;
    let command = Command::UpdatePolicy { id, policy };
    let (_, position) = rules::edit(&state, &ctx, tenant.0, command)
        .await
        .map_err(broker_error)?;
    Ok(Edited(position))
}

/// Delete a policy (204).
#[utoipa::path(delete, path = "/api/v1/policies/{id}", tag = "policies", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such policy", body = ErrorBody), AuthErrors))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
) -> Result<Edited, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| not_found_id("policy"))?;
    let ctx = command_context(&principal, &headers, None);
    let (_, position) = rules::edit(&state, &ctx, tenant.0, Command::DeletePolicy { id })
        .await
        .map_err(broker_error)?;
    Ok(Edited(position))
}
