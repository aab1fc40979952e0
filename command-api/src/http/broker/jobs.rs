//! Jobs for agents: operators enqueue (`POST /api/v1/jobs`), agents claim the oldest one they
//! may have and report how it went. Shapes as the open-source secrets-bridge API answers them.

use super::errors::broker_error;
use super::{json_object, own_agent};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::{Reply, POSITION_HEADER};
use crate::http::{command_context, ensure_tenant};
use crate::state::AppState;
use aegis_broker::jobs::{Job, NewJob};
use aegis_broker_services::{jobs, requests};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enqueue))
        .routes(routes!(claim))
        .routes(routes!(complete))
}

/// The most a job's payload and scope may weigh together, serialized.
const MAX_JOB_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueBody {
    /// What the agent is to do, e.g. `sync`, `read_secret`, `patch_secret` (1 to 64 of
    /// `a-z 0-9 _ . -`).
    pub job_type: String,
    /// What the agent needs to do it: references (a secret's name, a namespace), never values.
    #[serde(default)]
    pub payload: Option<Value>,
    /// Which agents may claim it; `{"agent_id": "<uuid>"}` limits it to that one.
    #[serde(default)]
    pub agent_scope: Option<Value>,
    /// The access request it serves.
    #[serde(default)]
    pub request_id: Option<Uuid>,
    /// Ties the job's records together; one is made when absent.
    #[serde(default)]
    pub correlation_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Enqueued {
    pub id: Uuid,
    pub correlation_id: String,
    /// `queued`.
    pub status: &'static str,
    pub job_type: String,
}

/// Enqueue a job for the tenant's agents (201, `queued`).
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", security(("bearer" = [])),
    request_body = EnqueueBody,
    responses(
        (status = 201, description = "Queued", body = Enqueued, headers(("Aegis-Position" = u64))),
        (status = 400, description = "A job type, payload or scope that cannot be queued", body = ErrorBody),
        AuthErrors,
        BodyErrors,
    ))]
async fn enqueue(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<EnqueueBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let job_type = body.job_type.trim().to_string();
    if job_type.is_empty()
        || job_type.len() > 64
        || !job_type
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c))
    {
        return Err(ApiError::bad_request(
            "job_type is required: 1 to 64 of a-z, 0-9, `_`, `.`, `-`",
        )
        .with("field", "job_type"));
    }
    let payload = json_object("payload", body.payload)?;
    let scope = json_object("agent_scope", body.agent_scope)?;
    let only_agent = match scope.get("agent_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("agent_scope.agent_id must be an agent's id (a UUID)")
                        .with("field", "agent_scope.agent_id")
                })?,
        ),
    };
    let (payload, scope) = (payload.to_string(), scope.to_string());
    if payload.len() + scope.len() > MAX_JOB_BYTES {
        return Err(ApiError::bad_request(format!(
            "payload and agent_scope weigh at most {} KiB together",
            MAX_JOB_BYTES / 1024
        ))
        .with("field", "payload"));
    }
    ensure_tenant(&state, tenant).await?;
    let correlation = body
        .correlation_id
        .map(|c| c.to_string())
        .or_else(|| headers.request_id.clone())
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    let ctx = principal.command_context(Some(correlation.clone()), None, None);
    let new = NewJob {
        job_type: job_type.clone(),
        payload,
        agent_scope: scope,
        only_agent,
        request_id: body.request_id.map(|r| r.to_string()),
        enqueued_by: principal.subject.to_string(),
    };
    let (id, _, position) = jobs::enqueue(&state, &ctx, tenant.0, new)
        .await
        .map_err(broker_error)?;
    tracing::info!(%tenant, job = %id, job_type = %job_type, "job enqueued");
    Ok(Reply::body(
        StatusCode::CREATED,
        Enqueued {
            id,
            correlation_id: correlation,
            status: "queued",
            job_type,
        },
    )
    .at(position, 1)
    .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Claimed {
    pub id: Uuid,
    pub job_type: String,
    pub payload: Value,
    pub agent_scope: Value,
    pub request_id: Option<String>,
    /// Which claim of the job this is (above 1: an earlier holder's lease ran out).
    pub attempt: u32,
    /// Complete before this, or another agent may be given the job.
    pub claim_expires_at: DateTime<Utc>,
}

fn claimed(id: Uuid, job: Job) -> Claimed {
    let parse = |raw: &str| serde_json::from_str(raw).unwrap_or(Value::Object(Default::default()));
    Claimed {
        id,
        job_type: job.new.job_type,
        payload: parse(&job.new.payload),
        agent_scope: parse(&job.new.agent_scope),
        request_id: job.new.request_id,
        attempt: job.attempts,
        claim_expires_at: DateTime::from_timestamp_millis(job.lease_expires_at).unwrap_or_default(),
    }
}

/// Claim the oldest job this agent may have: 200 with it, 204 when there is none. However
/// many agents claim at once, each job goes to one.
#[utoipa::path(post, path = "/api/v1/agents/{id}/jobs/claim", tag = "jobs", security(("agent_secret" = [])),
    params(("id" = String, Path, description = "The agent's id (its own)")),
    responses(
        (status = 200, description = "Claimed, until claim_expires_at", body = Claimed),
        (status = 204, description = "Nothing to claim"),
        (status = 400, description = "An id that is not a UUID", body = ErrorBody),
        AuthErrors,
    ))]
async fn claim(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    let ctx = || command_context(&principal, &headers, None);
    match jobs::claim(&state, ctx, tenant.0, agent)
        .await
        .map_err(broker_error)?
    {
        Some((id, job, position)) => Ok(Reply::body(StatusCode::OK, claimed(id, job))
            .at(position, 1)
            .into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// `succeeded` or `failed`.
    pub status: String,
    /// Why it failed (up to 2,000 characters).
    #[serde(default)]
    pub error: Option<String>,
}

/// Report how a claimed job went (204). Only the agent holding a live lease may; a second
/// report, another agent's, or one after the lease ran out is 409 and changes nothing.
#[utoipa::path(post, path = "/api/v1/agents/{id}/jobs/{job_id}/complete", tag = "jobs", security(("agent_secret" = [])),
    params(("id" = String, Path, description = "The agent's id (its own)"),
        ("job_id" = String, Path, description = "The job")),
    request_body = CompleteBody,
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "A status other than succeeded or failed, or ids that are not UUIDs", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "Not this agent's to complete (any more)", body = ErrorBody),
        AuthErrors,
        BodyErrors,
    ))]
async fn complete(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Path((raw, job)): Path<(String, String)>,
    Json(body): Json<CompleteBody>,
) -> Result<Response, ApiError> {
    let agent = own_agent(&principal, &raw)?;
    let tenant = principal.tenant()?;
    let job = Uuid::parse_str(&job)
        .map_err(|_| ApiError::bad_request("invalid job id").with("field", "job_id"))?;
    let succeeded = match body.status.as_str() {
        "succeeded" => true,
        "failed" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "status `{other}` is not succeeded or failed"
            ))
            .with("field", "status"))
        }
    };
    let error = body.error.unwrap_or_default();
    if error.chars().count() > 2000 {
        return Err(
            ApiError::bad_request("error is at most 2,000 characters").with("field", "error")
        );
    }
    let ctx = command_context(&principal, &headers, None);
    let position = requests::complete_job(&state, &ctx, tenant.0, agent, job, succeeded, error)
        .await
        .map_err(broker_error)?;
    Ok((
        StatusCode::NO_CONTENT,
        [(POSITION_HEADER, position.to_string())],
    )
        .into_response())
}
