//! Reading access requests: the list (`GET /api/v1/requests`) and one with its approvals
//! (`GET /api/v1/requests/{id}`), from the broker's read model. An approver sees the tenant's
//! requests; anyone else only their own.

use super::errors::broker_error;
use super::requests::{from_state, person, request_id, scope, ApprovalBody, RequestBody};
use crate::auth::{Principal, PrincipalKind};
use crate::error::ApiError;
use crate::http::extract::{MinPosition, Query};
use crate::http::openapi::{AuthErrors, ErrorBody};
use crate::http::paged::page;
use crate::http::paged::TenantQuery;
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_broker_services::jobs::PROJECTION;
use aegis_broker_services::requests;
use aegis_identity::permissions::Permission;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    kind: String,
    requester_id: Uuid,
    project_id: String,
    environment: String,
    provider_type: String,
    provider_config: Value,
    secret_ref: String,
    keys: Vec<String>,
    justification: String,
    status: String,
    workflow_id: String,
    min_approvers: i32,
    reject_reason: Option<String>,
    error: Option<String>,
    job_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, kind, requester_id, project_id, environment, provider_type, provider_config, \
    secret_ref, keys, justification, status, workflow_id, min_approvers, reject_reason, error, job_id, \
    created_at, updated_at, expires_at";

impl From<Row> for RequestBody {
    fn from(r: Row) -> Self {
        RequestBody {
            id: r.id,
            requester_id: r.requester_id,
            kind: r.kind,
            justification: r.justification,
            status: r.status,
            workflow_id: r.workflow_id,
            min_approvers: r.min_approvers,
            target_provider_type: r.provider_type,
            target_provider_config: r.provider_config,
            target_secret_ref: r.secret_ref,
            target_keys: r.keys,
            target_scope: scope(&r.project_id, &r.environment),
            job_id: r.job_id,
            reject_reason: r.reject_reason,
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
            break_glass: None,
            approvals: None,
        }
    }
}

const STATUSES: &[&str] = &[
    "pending",
    "approved",
    "rejected",
    "cancelled",
    "expired",
    "executed",
    "failed",
];

/// `GET /api/v1/requests`' filters; unknown parameters are 400.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Only this requester's (an approver's filter: anyone else sees only their own).
    pub requester_id: Option<Uuid>,
    /// pending, approved, rejected, cancelled, expired, executed or failed.
    pub status: Option<String>,
    /// 1 to 500 (50).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Whether the caller sees every request of the tenant (an approver, or a platform admin
/// looking on) or only its own.
fn sees_all(principal: &Principal) -> bool {
    principal.permissions.contains(Permission::SecretApprove)
        || principal.kind == PrincipalKind::PlatformAdmin
}

/// Access requests, newest first: `requester_id`, `status` (`limit`, `offset`). An approver
/// (`secret.approve`) sees the tenant's; anyone else only their own, whatever they filter.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", security(("bearer" = [])),
    params(RequestQuery),
    responses((status = 200, description = "A page of requests", body = [RequestBody]),
        (status = 400, description = "An unknown filter or status", body = ErrorBody), AuthErrors))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    min: MinPosition,
    Query(q): Query<RequestQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    if let Some(s) = status.filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!(
            "unknown status `{s}`: one of {}",
            STATUSES.join(", ")
        ))
        .with("field", "status"));
    }
    let (limit, offset) = page(q.limit, q.offset)?;
    let requester = if sees_all(&principal) {
        q.requester_id
    } else {
        Some(person(&principal, None)?)
    };
    min.wait(&state, &[PROJECTION]).await?;
    let (rows, _): (Vec<Row>, i64) = TenantQuery::new("broker_requests", "tenant_id", tenant.0)
        .eq_uuid("requester_id", requester)
        .eq_text("status", status)
        .page(
            &state.pool,
            COLUMNS,
            "created_at DESC, id DESC",
            limit,
            offset,
        )
        .await?;
    let items: Vec<RequestBody> = rows.into_iter().map(RequestBody::from).collect();
    Ok(Reply::body(StatusCode::OK, items))
}

/// One request with every approver's decision, from its own history (so it is as fresh as
/// the last vote, whoever cast it). Someone who is neither its requester nor an approver is
/// told it does not exist.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The request and its approvals", body = RequestBody),
        (status = 404, description = "No such request the caller may see", body = ErrorBody), AuthErrors))]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let id = request_id(&raw)?;
    let request = requests::get(&state, tenant.0, id)
        .await
        .map_err(broker_error)?;
    if !sees_all(&principal) && person(&principal, None).ok() != Some(request.new.requester) {
        return Err(ApiError::not_found("request not found"));
    }
    let mut body = from_state(id, &request);
    body.approvals = Some(
        request
            .votes
            .iter()
            .map(|v| ApprovalBody {
                id: v.id.clone(),
                approver_id: v.approver,
                decision: if v.approve { "approved" } else { "rejected" }.into(),
                comment: v.text.clone(),
                created_at: DateTime::from_timestamp_millis(v.at).unwrap_or_default(),
            })
            .collect(),
    );
    Ok(Reply::body(StatusCode::OK, body))
}
