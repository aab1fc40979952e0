//! Deciding access requests: approve, reject (an approver, `secret.approve`) and cancel (the
//! requester). The actor is always the authenticated user; a body naming someone else is 403.

use super::errors::broker_error;
use super::requests::{from_state, person, request_id, RequestBody};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::command_context;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_broker_services::requests::{self, Decided};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(cancel))
        .routes(routes!(break_glass))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The authenticated user; anyone else is 403.
    #[serde(default)]
    pub approver_id: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    #[serde(default)]
    pub approver_id: Option<String>,
    /// Required.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// The authenticated user, who must be the requester.
    #[serde(default)]
    pub actor_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    /// Why the approvals cannot wait: required, kept, told to the approvers.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The longest comment or reason kept with a decision.
const MAX_TEXT: usize = 4096;

fn bounded(field: &str, v: Option<String>) -> Result<String, ApiError> {
    let v = v.unwrap_or_default();
    if v.len() > MAX_TEXT {
        return Err(
            ApiError::bad_request(format!("{field} is at most {MAX_TEXT} bytes"))
                .with("field", field),
        );
    }
    Ok(v)
}

fn answer(done: Decided, what: &str) -> Reply {
    tracing::info!(request = %done.id, status = done.request.status.as_str(), "access request {what}");
    Reply::body(StatusCode::OK, from_state(done.id, &done.request)).at(done.position, 1)
}

/// Approve. The vote that reaches the workflow's `min_approvers` approves the request (once,
/// however many vote at the same moment) and enqueues its agent job.
#[utoipa::path(post, path = "/api/v1/requests/{id}/approve", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ApproveBody,
    responses(
        (status = 200, description = "The vote is recorded; the request as it stands", body = RequestBody),
        (status = 403, description = "requester cannot approve own request, or approver_id names someone else", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "approver has already voted on this request, or request is not pending", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<ApproveBody>,
) -> Result<Reply, ApiError> {
    let approver = person(&principal, body.approver_id.as_deref())?;
    let id = request_id(&raw)?;
    let comment = bounded("comment", body.comment)?;
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let done = requests::approve(&state, &ctx, tenant.0, id, approver, comment)
        .await
        .map_err(broker_error)?;
    Ok(answer(done, "approved by a vote"))
}

/// Reject, with a reason: one rejection ends the request.
#[utoipa::path(post, path = "/api/v1/requests/{id}/reject", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RejectBody,
    responses(
        (status = 200, description = "Rejected", body = RequestBody),
        (status = 400, description = "No reason", body = ErrorBody),
        (status = 403, description = "requester cannot approve own request, or approver_id names someone else", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "approver has already voted on this request, or request is not pending", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<RejectBody>,
) -> Result<Reply, ApiError> {
    let approver = person(&principal, body.approver_id.as_deref())?;
    let id = request_id(&raw)?;
    let reason = bounded("reason", body.reason)?;
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let done = requests::reject(&state, &ctx, tenant.0, id, approver, reason)
        .await
        .map_err(broker_error)?;
    Ok(answer(done, "rejected"))
}

/// The requester withdraws a pending request.
#[utoipa::path(post, path = "/api/v1/requests/{id}/cancel", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CancelBody,
    responses(
        (status = 200, description = "Cancelled", body = RequestBody),
        (status = 403, description = "only the original requester can cancel", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "request is not pending", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<CancelBody>,
) -> Result<Reply, ApiError> {
    let actor = person(&principal, body.actor_id.as_deref())?;
    let id = request_id(&raw)?;
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let done = requests::cancel(&state, &ctx, tenant.0, id, actor)
        .await
        .map_err(broker_error)?;
    Ok(answer(done, "cancelled"))
}

/// Bypass the approvals (break-glass), as someone the request's workflow names, with a
/// reason: the request is approved at once, the bypass recorded as such, every approver told
/// through the workflow's channels, and an incident opened.
#[utoipa::path(post, path = "/api/v1/requests/{id}/break-glass", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = BreakGlassBody,
    responses(
        (status = 200, description = "Approved by a bypass", body = RequestBody),
        (status = 400, description = "No reason", body = ErrorBody),
        (status = 403, description = "The workflow does not name the caller", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "request is not pending", body = ErrorBody),
        AuthErrors, BodyErrors,
    ))]
async fn break_glass(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
    Json(body): Json<BreakGlassBody>,
) -> Result<Reply, ApiError> {
    let actor = person(&principal, None)?;
    let id = request_id(&raw)?;
    let reason = bounded("reason", body.reason)?;
    let tenant = principal.tenant()?;
    let ctx = command_context(&principal, &headers, None);
    let done = requests::break_glass(&state, &ctx, tenant.0, id, actor, reason)
        .await
        .map_err(broker_error)?;
    Ok(answer(done, "approved by break-glass"))
}
