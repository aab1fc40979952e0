//! Approval workflows (seed 004): who must approve a request and how many, and how long it and
//! its wraps live. Edited with `workflow.edit`; a request keeps the rules of the workflow it
//! was bound to when it was submitted. Shapes as the open-source secrets-bridge API's
//! (lifetimes in seconds; `PUT` and `DELETE` answer 204).

use super::errors::broker_error;
use super::rules_http::{millis, not_found_id, Edited};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_broker::rules::{Command, Stamped, Workflow};
use aegis_broker_services::rules;
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

const DAY: i64 = 86_400;

/// A workflow as its editor writes it; what is left out takes its default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// 0 approves a request on submission. Default 1.
    #[serde(default)]
    pub min_approvers: Option<u32>,
    /// The role an approver must hold (a role's id); absent: anyone with `secret.approve`.
    #[serde(default)]
    pub approver_role_id: Option<String>,
    /// How long a patch's values may wait sealed before approval (default 7 days).
    #[serde(default)]
    pub wrap_ttl_created_seconds: Option<i64>,
    /// How long a wrap made at approval waits for its agent (default 1 hour).
    #[serde(default)]
    pub wrap_ttl_approved_seconds: Option<i64>,
    /// How long a claimed job's wraps wait (default 5 minutes).
    #[serde(default)]
    pub wrap_ttl_claimed_seconds: Option<i64>,
    /// How long a pending request waits for its approvals (default 7 days).
    #[serde(default)]
    pub request_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub require_justification: Option<bool>,
    #[serde(default)]
    pub allow_self_approval: Option<bool>,
    /// Webhook ids told about the workflow's requests.
    #[serde(default)]
    pub notification_channels: Option<Vec<String>>,
    /// Makes it the default (the one before stops being it).
    #[serde(default)]
    pub is_default: Option<bool>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Users who may bypass the approvals (break-glass) with a mandatory reason; every bypass
    /// is recorded, told to the notification channels and opens an incident.
    #[serde(default)]
    pub break_glass_user_ids: Option<Vec<Uuid>>,
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

impl WorkflowBody {
    fn workflow(self) -> Workflow {
        Workflow {
            name: self.name.trim().to_string(),
            description: self.description.unwrap_or_default(),
            min_approvers: self.min_approvers.unwrap_or(1),
            approver_role_id: self.approver_role_id.unwrap_or_default().trim().to_string(),
            wrap_ttl_created_seconds: self.wrap_ttl_created_seconds.unwrap_or(7 * DAY),
            wrap_ttl_approved_seconds: self.wrap_ttl_approved_seconds.unwrap_or(3600),
            wrap_ttl_claimed_seconds: self.wrap_ttl_claimed_seconds.unwrap_or(300),
            request_ttl_seconds: self.request_ttl_seconds.unwrap_or(7 * DAY),
            require_justification: self.require_justification.unwrap_or(true),
            allow_self_approval: self.allow_self_approval.unwrap_or(false),
            notification_channels: self.notification_channels.unwrap_or_default(),
            is_default: self.is_default.unwrap_or(false),
            enabled: self.enabled.unwrap_or(true),
            break_glass_user_ids: self.break_glass_user_ids.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub min_approvers: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approver_role_id: Option<String>,
    pub wrap_ttl_created_seconds: i64,
    pub wrap_ttl_approved_seconds: i64,
    pub wrap_ttl_claimed_seconds: i64,
    pub request_ttl_seconds: i64,
    pub require_justification: bool,
    pub allow_self_approval: bool,
    pub notification_channels: Vec<String>,
    pub is_default: bool,
    pub enabled: bool,
    pub break_glass_user_ids: Vec<Uuid>,
    pub is_system: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(id: Uuid, w: &Stamped<Workflow>) -> WorkflowView {
    let v = &w.value;
    WorkflowView {
        id,
        name: v.name.clone(),
        description: v.description.clone(),
        min_approvers: v.min_approvers,
        approver_role_id: (!v.approver_role_id.is_empty()).then(|| v.approver_role_id.clone()),
        wrap_ttl_created_seconds: v.wrap_ttl_created_seconds,
        wrap_ttl_approved_seconds: v.wrap_ttl_approved_seconds,
        wrap_ttl_claimed_seconds: v.wrap_ttl_claimed_seconds,
        request_ttl_seconds: v.request_ttl_seconds,
        require_justification: v.require_justification,
        allow_self_approval: v.allow_self_approval,
        notification_channels: v.notification_channels.clone(),
        is_default: v.is_default,
        enabled: v.enabled,
        break_glass_user_ids: v.break_glass_user_ids.clone(),
        is_system: false,
        created_at: millis(w.created_at),
        updated_at: millis(w.updated_at),
    }
}

/// The channels must be the tenant's webhooks (400 naming the first that is not).
async fn channels_ok(state: &AppState, tenant: Uuid, w: &Workflow) -> Result<(), ApiError> {
    let unknown = rules::unknown_channels(state, tenant, &w.notification_channels)
        .await
        .map_err(broker_error)?;
    match unknown.first() {
        Some(c) => Err(ApiError::bad_request(format!(
            "notification channel `{c}` is not a webhook of this tenant"
        ))
        .with("field", "notification_channels")),
        None => Ok(()),
    }
}

/// Create a workflow (201).
#[utoipa::path(post, path = "/api/v1/workflows", tag = "workflows", security(("bearer" = [])),
    request_body = WorkflowBody,
    responses(
        (status = 201, description = "Created", body = WorkflowView),
        (status = 400, description = "A value out of range, or a channel that is no webhook", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<WorkflowBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(&state, tenant).await?;
    let workflow = body.workflow();
    channels_ok(&state, tenant.0, &workflow).await?;
    let id = Uuid::now_v7();
    let ctx = command_context(&principal, &headers, None);
    let (rules, position) = rules::edit(
        &state,
        &ctx,
        tenant.0,
        Command::CreateWorkflow { id, workflow },
    )
    .await
    .map_err(broker_error)?;
    let made = rules
        .workflows
        .get(&id)
        .ok_or_else(|| not_found_id("workflow"))?;
    Ok(Reply::body(StatusCode::CREATED, view(id, made)).at(position, 1))
}

/// Every workflow, by name.
#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows", security(("bearer" = [])),
    responses((status = 200, description = "The workflows", body = [WorkflowView]), AuthErrors))]
async fn list(State(state): State<AppState>, principal: Principal) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let rules = rules::get(&state, tenant.0).await.map_err(broker_error)?;
    let mut all: Vec<WorkflowView> = rules.workflows.iter().map(|(id, w)| view(*id, w)).collect();
    all.sort_by_key(|w| w.name.to_lowercase());
    Ok(Reply::body(StatusCode::OK, all))
}

/// One workflow.
#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The workflow", body = WorkflowView),
        (status = 404, description = "No such workflow", body = ErrorBody), AuthErrors))]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| not_found_id("workflow"))?;
    let rules = rules::get(&state, tenant.0).await.map_err(broker_error)?;
    let w = rules
        .workflows
        .get(&id)
        .ok_or_else(|| not_found_id("workflow"))?;
    Ok(Reply::body(StatusCode::OK, view(id, w)))
}

/// Replace a workflow (204). Requests already submitted keep the rules they were bound to.
#[utoipa::path(put, path = "/api/v1/workflows/{id}", tag = "workflows", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = WorkflowBody,
    responses(
        (status = 204, description = "Replaced"),
        (status = 400, description = "A value out of range, or a channel that is no webhook", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<WorkflowBody>,
) -> Result<Edited, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| not_found_id("workflow"))?;
    let workflow = body.workflow();
    channels_ok(&state, tenant.0, &workflow).await?;
    let ctx = command_context(&principal, &headers, None);
    let (_, position) = rules::edit(
        &state,
        &ctx,
        tenant.0,
        Command::UpdateWorkflow { id, workflow },
    )
    .await
    .map_err(broker_error)?;
    Ok(Edited(position))
}

/// Delete a workflow (204): 409 while a policy names it or it is the default.
#[utoipa::path(delete, path = "/api/v1/workflows/{id}", tag = "workflows", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such workflow", body = ErrorBody),
        (status = 409, description = "In use by a policy, or the default", body = ErrorBody),
        AuthErrors,
    ))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
) -> Result<Edited, ApiError> {
    let tenant = principal.tenant()?;
    let id = Uuid::parse_str(&raw).map_err(|_| not_found_id("workflow"))?;
    let ctx = command_context(&principal, &headers, None);
    let (_, position) = rules::edit(&state, &ctx, tenant.0, Command::DeleteWorkflow { id })
        .await
        .map_err(broker_error)?;
    Ok(Edited(position))
}
