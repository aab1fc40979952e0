//! Pending approvals (seed 000's `ar_pending`): list them, read one, approve (its actions run
//! and the outcome is answered) or reject. An approval past its TTL is `expired`: approving it
//! answers 410 and nothing runs.

use crate::auth::Principal;
use crate::error::{ApiError, IntoApi};
use crate::http::extract::{max_chars, CommandHeaders, Json, MinPosition, Query, UuidPath};
use crate::http::identity::agents::ReasonBody;
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::{Data, Paged, Reply};
use crate::http::{command_context, current};
use crate::state::AppState;
use aegis_auto_response::approvals::{Approval, ApprovalAggregate, ApprovalStatus};
use aegis_auto_response::runs::RunResult;
use aegis_auto_response::ApprovalError;
use aegis_auto_response_services::{
    approve as run_approved, reject as record_rejection, ApprovalFailure,
};
use aegis_projectors::auto_response::AutoResponseProjection;
use aegis_projectors::Projection;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(approve))
        .routes(routes!(reject))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    /// Default `pending`.
    pub status: Option<ApprovalStatus>,
    pub rule_id: Option<Uuid>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// An approval; its key is the id of the run that waits on it.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ApprovalView {
    pub key: Uuid,
    pub rule_id: Uuid,
    pub rule_version: i32,
    #[schema(value_type = ApprovalStatus)]
    pub status: String,
    /// What will run on approval, templates filled.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    pub trigger_event_id: String,
    pub trigger_event_type: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub note: String,
    #[schema(value_type = Option<RunResult>)]
    pub result: Option<String>,
    /// The actions with their outcomes, once executed.
    #[schema(value_type = Option<Vec<Object>>)]
    pub outcome: Option<Value>,
}

fn view(key: Uuid, a: Approval) -> ApprovalView {
    ApprovalView {
        key,
        rule_id: a.request.rule_id,
        rule_version: a.request.rule_version as i32,
        status: a.status.as_str().into(),
        actions: a.request.actions,
        trigger_event_id: a.request.trigger_event_id,
        trigger_event_type: a.request.trigger_event_type,
        requested_at: a.requested_at,
        expires_at: a.request.expires_at,
        decided_by: a.decided_by,
        note: a.note,
        result: a.result.map(|r| r.as_str().into()),
        outcome: a.outcome,
    }
}

/// Approvals waiting for a decision (or, with `status`, those decided), newest first.
#[utoipa::path(get, path = "/auto-response/pending", tag = "auto-response", security(("bearer" = [])),
    params(PendingQuery, params::Tenant, params::MinPosition),
    responses((status = 200, description = "A page of approvals", body = Paged<ApprovalView>), AuthErrors,
        (status = 422, description = "Invalid filter or paging", body = ErrorBody)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<PendingQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (limit, offset) = page(q.limit, q.offset)?;
    min.wait(&state, &[AutoResponseProjection::NAME]).await?;
    let status = q.status.unwrap_or(ApprovalStatus::Pending).as_str();
    let (rows, total): (Vec<ApprovalView>, i64) =
        TenantQuery::new("auto_response_approvals", "tenant_id", tenant.0)
            .eq_text("status", Some(status))
            .eq_uuid("rule_id", q.rule_id)
            .page(
                &state.pool,
                "id AS key, rule_id, rule_version, status, actions, trigger_event_id, trigger_event_type, requested_at, expires_at, decided_by, note, result, outcome",
                "requested_at DESC, id DESC",
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

/// One approval, from the log.
#[utoipa::path(get, path = "/auto-response/pending/{key}", tag = "auto-response", security(("bearer" = [])),
    params(("key" = Uuid, Path), params::Tenant),
    responses((status = 200, description = "The approval", body = Data<ApprovalView>), AuthErrors,
        (status = 404, description = "No such approval", body = ErrorBody)))]
async fn detail(
    State(state): State<AppState>,
    principal: Principal,
    UuidPath(key): UuidPath,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (a, _, _) = current::<ApprovalAggregate>(&state, tenant, key.to_string()).await?;
    let a = a.ok_or_else(|| ApiError::not_found("no such approval"))?;
    Ok(Reply::data(StatusCode::OK, view(key, a)))
}

/// The optional body's `reason`: a comment (approve) or why (reject).
fn decision(body: ReasonBody) -> Result<String, ApiError> {
    let reason = body.reason.unwrap_or_default();
    max_chars("reason", Some(&reason), 500)?;
    Ok(reason.trim().to_string())
}

/// Approve: the actions run now, as the rule's system actor, and the answer carries their
/// outcomes. Approving again answers the recorded outcome.
#[utoipa::path(post, path = "/auto-response/pending/{key}/approve", tag = "auto-response", security(("bearer" = [])),
    params(("key" = Uuid, Path), params::Tenant), request_body(content = Option<ReasonBody>),
    responses((status = 200, description = "Approved and executed", body = Data<ApprovalView>), AuthErrors, BodyErrors,
        (status = 404, description = "No such approval", body = ErrorBody),
        (status = 409, description = "Already rejected", body = ErrorBody),
        (status = 410, description = "Expired: nothing ran", body = ErrorBody)))]
async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(key): UuidPath,
    Json(body): Json<ReasonBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let a = run_approved(&state, &ctx, tenant.0, key, decision(body)?).await?;
    Ok(Reply::data(StatusCode::OK, view(key, a)))
}

/// Reject: nothing runs; the run is recorded as rejected.
#[utoipa::path(post, path = "/auto-response/pending/{key}/reject", tag = "auto-response", security(("bearer" = [])),
    params(("key" = Uuid, Path), params::Tenant), request_body(content = Option<ReasonBody>),
    responses((status = 200, description = "Rejected", body = Data<ApprovalView>), AuthErrors, BodyErrors,
        (status = 404, description = "No such approval", body = ErrorBody),
        (status = 409, description = "Already approved", body = ErrorBody),
        (status = 410, description = "Expired", body = ErrorBody)))]
async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    UuidPath(key): UuidPath,
    Json(body): Json<ReasonBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let a = record_rejection(&state, &ctx, tenant.0, key, decision(body)?).await?;
    Ok(Reply::data(StatusCode::OK, view(key, a)))
}

/// Seed 000's answers for an approval that cannot be decided.
fn approval_error(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound => ApiError::not_found("no such approval"),
        e @ ApprovalError::Expired(_) => ApiError::new(StatusCode::GONE, "gone", e.to_string()),
        e @ ApprovalError::Decided(_) => ApiError::conflict(e.to_string()),
    }
}

impl From<ApprovalFailure> for ApiError {
    fn from(e: ApprovalFailure) -> Self {
        match e {
            ApprovalFailure::Approval(e) => e.into_api(approval_error),
            ApprovalFailure::Rule(e) => e.into_api(|e| ApiError::internal(&e)),
        }
    }
}
