//! A patch request's GitOps observations (seed 004, BRD §26; 404 while GitOps is off): for each
//! Argo CD application mapped to what the request changed, how the watch stands. Its
//! requester's alone, as its wraps are (`user_id`, when sent, must name the authenticated user).

use super::errors::broker_error;
use super::request_wraps::UserQuery;
use super::requests::{person, request_id};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::Query;
use crate::http::openapi::{AuthErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_broker::requests::observations::Observation;
use aegis_broker_services::requests;
use aegis_kernel::derived_id;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(observations))
}

/// One watched application.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObservationBody {
    pub id: Uuid,
    /// The app mapping that named the application.
    pub mapping_id: Uuid,
    pub argocd_endpoint_id: Uuid,
    pub application_name: String,
    pub application_namespace: String,
    /// `queued`, `active`, then `applied` (Synced and Healthy after the request executed),
    /// `applied_unverified` (timed out) or `failed`.
    pub polling_state: String,
    /// `sync/health` as Argo CD last reported them.
    pub observed_state: Option<String>,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub polls_count: u32,
    pub last_error: Option<String>,
    pub timeout_at: Option<DateTime<Utc>>,
    pub terminal_at: Option<DateTime<Utc>>,
}

fn time(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

fn text(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn body(request: Uuid, o: &Observation) -> ObservationBody {
    let w = &o.watch;
    ObservationBody {
        // Stable for a request and mapping, so a client can follow one across reads.
        id: derived_id(
            "broker.gitops_observation",
            &[request.as_bytes(), w.mapping_id.as_bytes()],
        ),
        mapping_id: w.mapping_id,
        argocd_endpoint_id: w.endpoint_id,
        application_name: w.application_name.clone(),
        application_namespace: w.application_namespace.clone(),
        polling_state: o.state.as_str().into(),
        observed_state: text(&o.observed_state),
        last_polled_at: o.last_polled_at.and_then(time),
        polls_count: o.polls_count,
        last_error: text(&o.last_error),
        timeout_at: time(w.timeout_at),
        terminal_at: o.terminal_at.and_then(time),
    }
}

/// The request's GitOps observations (empty until a mapped patch executes).
#[utoipa::path(get, path = "/api/v1/requests/{id}/gitops", tag = "gitops", security(("bearer" = [])),
    params(("id" = String, Path), UserQuery),
    responses(
        (status = 200, description = "The observations, by mapping", body = [ObservationBody]),
        (status = 403, description = "Not the requester", body = ErrorBody),
        (status = 404, description = "No such request, or GitOps is turned off", body = ErrorBody),
        AuthErrors,
    ))]
async fn observations(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    Query(q): Query<UserQuery>,
) -> Result<Reply, ApiError> {
    let user = person(&principal, q.user_id.as_deref())?;
    let id = request_id(&raw)?;
    let tenant = principal.tenant()?;
    let seen = requests::observations(&state, tenant.0, id, user)
        .await
        .map_err(broker_error)?;
    let all: Vec<ObservationBody> = seen.iter().map(|o| body(id, o)).collect();
    Ok(Reply::body(StatusCode::OK, all))
}
