//! Access requests (seed 004): submit a patch (`POST /api/v1/requests`) or a read
//! (`POST /api/v1/requests/read`), list and read them. Votes are in `request_votes.rs`, the
//! requester's wraps in `request_wraps.rs`. Shapes as the open-source secrets-bridge API
//! answers them; a patch's values go in and never come out.

use super::errors::broker_error;
use super::json_object;
use crate::auth::{Principal, PrincipalKind};
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_broker::requests::{Kind, Request, Status};
use aegis_broker_services::requests::{self, Submission};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use zeroize::Zeroizing;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(submit_patch))
        .routes(routes!(submit_read))
}

/// The most keys one request names.
const MAX_KEYS: usize = 64;
/// The longest text field (a reference, a justification).
const MAX_TEXT: usize = 4096;

/// The person a request is made or decided by: the authenticated user (or API key). A body
/// field naming someone else is refused: nobody acts in another's name.
pub(super) fn person(principal: &Principal, named: Option<&str>) -> Result<Uuid, ApiError> {
    let me = match principal.kind {
        PrincipalKind::User | PrincipalKind::ApiKey => Uuid::parse_str(&principal.subject).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        // The platform's bootstrap token holds every permission but is nobody: a request
        // and its votes name a person.
        ApiError::new(
            StatusCode::FORBIDDEN,
            "not_a_person",
            "access requests are made and decided by a tenant's users (or API keys), in their own name",
        )
    })?;
    match named.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if Uuid::parse_str(n).ok() != Some(me) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the body names someone other than the authenticated user: nobody acts in another's name",
        )),
        _ => Ok(me),
    }
}

/// A request's id from the path: anything but a UUID names no request (404).
pub(super) fn request_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("request not found"))
}

/// No `Debug`: the body carries secret values.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitPatchBody {
    /// The authenticated user; another user's id is 403.
    #[serde(default)]
    pub requester_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    /// e.g. `kubernetes`.
    #[serde(default)]
    pub target_provider_type: String,
    /// Where the secret lives (a cluster, a namespace): a JSON object.
    #[serde(default)]
    pub target_provider_config: Option<Value>,
    #[serde(default)]
    pub target_secret_ref: String,
    /// The keys to set and their new values: sealed at once, never returned or logged.
    #[serde(default)]
    pub key_values: BTreeMap<String, String>,
    #[serde(default)]
    pub justification: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitReadBody {
    #[serde(default)]
    pub requester_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub target_provider_type: String,
    #[serde(default)]
    pub target_provider_config: Option<Value>,
    #[serde(default)]
    pub target_secret_ref: String,
    /// The keys whose values the requester wants to see.
    #[serde(default)]
    pub target_keys: Vec<String>,
    #[serde(default)]
    pub justification: Option<String>,
}

/// One approver's decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalBody {
    pub id: String,
    pub approver_id: Uuid,
    /// `approved` or `rejected`.
    pub decision: String,
    /// The approval's comment or the rejection's reason.
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

/// An access request: the key names, never a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestBody {
    pub id: String,
    pub requester_id: Uuid,
    /// `read` or `patch`.
    #[serde(rename = "type")]
    pub kind: String,
    pub justification: String,
    /// pending, approved, rejected, cancelled, expired, executed, failed.
    pub status: String,
    pub workflow_id: String,
    pub min_approvers: i32,
    pub target_provider_type: String,
    #[schema(value_type = Object)]
    pub target_provider_config: Value,
    pub target_secret_ref: String,
    pub target_keys: Vec<String>,
    /// `{project_id, environment}` as submitted.
    #[schema(value_type = Object)]
    pub target_scope: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// Why the agent's job failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a pending request expires.
    pub expires_at: DateTime<Utc>,
    /// Who bypassed the approvals and why (`{actor_id, reason}`), when someone did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub break_glass: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<ApprovalBody>>,
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(super) fn scope(project_id: &str, environment: &str) -> Value {
    json!({ "project_id": project_id, "environment": environment })
}

/// A request as its history has it (the answer to a command).
pub(super) fn from_state(id: Uuid, r: &Request) -> RequestBody {
    let n = &r.new;
    let reject_reason = (r.status == Status::Rejected)
        .then(|| r.votes.iter().find(|v| !v.approve).map(|v| v.text.clone()))
        .flatten();
    RequestBody {
        id: id.to_string(),
        requester_id: n.requester,
        kind: n.kind.as_str().into(),
        justification: n.justification.clone(),
        status: r.status.as_str().into(),
        workflow_id: n.binding.workflow_id.clone(),
        min_approvers: n.binding.min_approvers as i32,
        target_provider_type: n.provider_type.clone(),
        target_provider_config: serde_json::from_str(&n.provider_config)
            .unwrap_or_else(|_| json!({})),
        target_secret_ref: n.secret_ref.clone(),
        target_keys: n.keys.clone(),
        target_scope: scope(&n.project_id, &n.environment),
        // An approved request's job has the request's id.
        job_id: matches!(
            r.status,
            Status::Approved | Status::Executed | Status::Failed
        )
        .then(|| id.to_string()),
        reject_reason,
        error: (!r.error.is_empty()).then(|| r.error.clone()),
        created_at: millis(r.submitted_at),
        updated_at: millis(r.updated_at),
        expires_at: millis(r.expires_at()),
        break_glass: r
            .broken_glass
            .as_ref()
            .map(|(actor, reason)| json!({ "actor_id": actor, "reason": reason })),
        approvals: None,
    }
}

fn text(field: &str, v: Option<String>, required: bool) -> Result<String, ApiError> {
    let v = v.map(|s| s.trim().to_string()).unwrap_or_default();
    if required && v.is_empty() {
        return Err(ApiError::bad_request(format!("{field} is required")).with("field", field));
    }
    if v.len() > MAX_TEXT {
        return Err(
            ApiError::bad_request(format!("{field} is at most {MAX_TEXT} bytes"))
                .with("field", field),
        );
    }
    Ok(v)
}

struct Target {
    project_id: String,
    environment: String,
    provider_type: String,
    provider_config: String,
    secret_ref: String,
    justification: String,
}

fn target(
    project_id: Option<String>,
    environment: Option<String>,
    provider_type: String,
    provider_config: Option<Value>,
    secret_ref: String,
    justification: Option<String>,
) -> Result<Target, ApiError> {
    Ok(Target {
        project_id: text("project_id", project_id, false)?,
        environment: text("environment", environment, false)?,
        provider_type: text("target_provider_type", Some(provider_type), true)?,
        provider_config: json_object("target_provider_config", provider_config)?.to_string(),
        secret_ref: text("target_secret_ref", Some(secret_ref), true)?,
        justification: text("justification", justification, false)?,
    })
}

fn keys_ok(field: &str, keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Err(
            ApiError::bad_request(format!("{field} must contain at least one entry"))
                .with("field", field),
        );
    }
    if keys.len() > MAX_KEYS {
        return Err(
            ApiError::bad_request(format!("{field} names at most {MAX_KEYS} keys"))
                .with("field", field),
        );
    }
    if keys.iter().any(|k| k.trim().is_empty() || k.len() > 253) {
        return Err(ApiError::bad_request(format!(
            "{field} keys must be non-empty (and at most 253 bytes)"
        ))
        .with("field", field));
    }
    Ok(())
}

async fn submit(
    state: &AppState,
    principal: &Principal,
    headers: &CommandHeaders,
    requester: Uuid,
    s: Submission,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    ensure_tenant(state, tenant).await?;
    let ctx = command_context(principal, headers, None);
    let kind = s.kind;
    let done = requests::submit(state, &ctx, tenant.0, requester, s)
        .await
        .map_err(broker_error)?;
    tracing::info!(%tenant, request = %done.id, kind = kind.as_str(), status = done.request.status.as_str(), "access request submitted");
    Ok(Reply::body(StatusCode::CREATED, from_state(done.id, &done.request)).at(done.position, 1))
}

/// Ask to set keys of a secret. The values are sealed at once; the answer names the keys only.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", security(("bearer" = [])),
    request_body = SubmitPatchBody,
    responses(
        (status = 201, description = "Submitted (pending, or approved when its workflow needs no approver)", body = RequestBody),
        (status = 400, description = "No key_values, a blank key, a missing justification or target", body = ErrorBody),
        (status = 403, description = "requester_id names someone else", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn submit_patch(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<SubmitPatchBody>,
) -> Result<Reply, ApiError> {
    let requester = person(&principal, body.requester_id.as_deref())?;
    let keys: Vec<String> = body.key_values.keys().cloned().collect();
    keys_ok("key_values", &keys)?;
    let t = target(
        body.project_id,
        body.environment,
        body.target_provider_type,
        body.target_provider_config,
        body.target_secret_ref,
        body.justification,
    )?;
    let values = body
        .key_values
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v.into_bytes())))
        .collect();
    let s = Submission {
        kind: Kind::Patch,
        project_id: t.project_id,
        environment: t.environment,
        provider_type: t.provider_type,
        provider_config: t.provider_config,
        secret_ref: t.secret_ref,
        keys,
        values,
        justification: t.justification,
    };
    submit(&state, &principal, &headers, requester, s).await
}

/// Ask to see keys of a secret: after approval an agent fetches them and the requester
/// retrieves each once.
#[utoipa::path(post, path = "/api/v1/requests/read", tag = "requests", security(("bearer" = [])),
    request_body = SubmitReadBody,
    responses(
        (status = 201, description = "Submitted", body = RequestBody),
        (status = 400, description = "No target_keys, a blank key, a missing justification or target", body = ErrorBody),
        (status = 403, description = "requester_id names someone else", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn submit_read(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<SubmitReadBody>,
) -> Result<Reply, ApiError> {
    let requester = person(&principal, body.requester_id.as_deref())?;
    keys_ok("target_keys", &body.target_keys)?;
    let mut keys: Vec<String> = body.target_keys.iter().map(|k| k.trim().into()).collect();
    keys.dedup();
    let t = target(
        body.project_id,
        body.environment,
        body.target_provider_type,
        body.target_provider_config,
        body.target_secret_ref,
        body.justification,
    )?;
    let s = Submission {
        kind: Kind::Read,
        project_id: t.project_id,
        environment: t.environment,
        provider_type: t.provider_type,
        provider_config: t.provider_config,
        secret_ref: t.secret_ref,
        keys,
        values: Vec::new(),
        justification: t.justification,
    };
    submit(&state, &principal, &headers, requester, s).await
}
