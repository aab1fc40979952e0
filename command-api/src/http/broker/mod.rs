//! Seed 004's secret broker: the routes an agent calls with its own `X-Agent-Secret` on its
//! own path (`/api/v1/agents/{id}/...`), and the access requests people make and decide
//! (`/api/v1/requests...`).

mod errors;
mod gitops;
mod jobs;
mod keys;
mod policies;
mod projects;
mod request_gitops;
mod request_reads;
mod request_votes;
mod request_wraps;
mod requests;
mod rules_http;
mod secrets;
mod workflows;
mod wraps;

use crate::auth::{Principal, PrincipalKind};
use crate::error::ApiError;
use crate::http::exposition::Exposition;
use crate::state::AppState;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    keys::router()
        .merge(jobs::router())
        .merge(secrets::router())
        .merge(wraps::router())
        .merge(requests::router())
        .merge(request_reads::router())
        .merge(request_votes::router())
        .merge(request_wraps::router())
        .merge(workflows::router())
        .merge(policies::router())
        .merge(projects::router())
        .merge(gitops::router())
        .merge(request_gitops::router())
}

/// The agent of an agent's own path: the id must be a UUID (400), and the caller that agent
/// (401: another agent's secret, or no agent's, proves nothing about this one).
pub(crate) fn own_agent(principal: &Principal, raw: &str) -> Result<Uuid, ApiError> {
    let id = Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not an agent id (a UUID)")))?;
    if principal.kind != PrincipalKind::Agent || principal.subject != id.to_string() {
        return Err(ApiError::unauthorized(
            "this route takes the X-Agent-Secret of the agent it names",
        ));
    }
    Ok(id)
}

/// A JSON object field of a request body: absent or null is `{}`, anything else but an
/// object is 400 naming the field.
pub(crate) fn json_object(field: &str, v: Option<Value>) -> Result<Value, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Value::Object(Default::default())),
        Some(o @ Value::Object(_)) => Ok(o),
        Some(_) => Err(
            ApiError::bad_request(format!("{field} must be a JSON object")).with("field", field),
        ),
    }
}

/// The broker's metrics, read from the jobs read model at scrape time: jobs by status (the
/// queue's depth is `status="queued"`) and claims made (reclaims after a lost lease included).
pub(crate) async fn metrics(state: &AppState, out: &mut Exposition) {
    let rows: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
        "SELECT tenant_id, status, count(*), coalesce(sum(attempts), 0)::bigint \
         FROM broker_jobs GROUP BY 1, 2",
    )
    .fetch_all(&state.pool)
    .await
    .unwrap_or_default();
    out.family(
        "broker_jobs",
        "gauge",
        "Jobs for agents by status (seed 004).",
    );
    for (tenant, status, n, _) in &rows {
        out.sample(
            "broker_jobs",
            &[("tenant_id", &tenant.to_string()), ("status", status)],
            *n as f64,
        );
    }
    out.family("broker_jobs_queued", "gauge", "Jobs waiting for an agent.");
    for (tenant, status, n, _) in &rows {
        if status == "queued" {
            out.sample(
                "broker_jobs_queued",
                &[("tenant_id", &tenant.to_string())],
                *n as f64,
            );
        }
    }
    out.family(
        "broker_job_claims_total",
        "counter",
        "Claims agents made, a reclaim after a lost lease included.",
    );
    let mut claims: std::collections::BTreeMap<Uuid, i64> = Default::default();
    for (tenant, _, _, attempts) in &rows {
        *claims.entry(*tenant).or_default() += attempts;
    }
    for (tenant, n) in claims {
        out.sample(
            "broker_job_claims_total",
            &[("tenant_id", &tenant.to_string())],
            n as f64,
        );
    }
    wrap_metrics(state, out).await;
}

/// Wraps, from their read model: retrieved, ended unretrieved, and refusals by reason.
async fn wrap_metrics(state: &AppState, out: &mut Exposition) {
    let rows: Vec<(Uuid, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT tenant_id, count(*) FILTER (WHERE retrieved_at IS NOT NULL), \
         count(*) FILTER (WHERE expired_at IS NOT NULL), \
         coalesce(sum(denied_consumed), 0)::bigint, coalesce(sum(denied_expired), 0)::bigint, \
         coalesce(sum(denied_not_approved), 0)::bigint FROM broker_wraps GROUP BY 1",
    )
    .fetch_all(&state.pool)
    .await
    .unwrap_or_default();
    out.family(
        "broker_wraps_consumed_total",
        "counter",
        "Wraps retrieved (each exactly once).",
    );
    for (tenant, consumed, ..) in &rows {
        let t = tenant.to_string();
        out.sample(
            "broker_wraps_consumed_total",
            &[("tenant_id", &t)],
            *consumed as f64,
        );
    }
    out.family(
        "broker_wraps_expired_total",
        "counter",
        "Wraps whose time ran out before anyone retrieved them (their keys destroyed).",
    );
    for (tenant, _, expired, ..) in &rows {
        let t = tenant.to_string();
        out.sample(
            "broker_wraps_expired_total",
            &[("tenant_id", &t)],
            *expired as f64,
        );
    }
    out.family(
        "broker_wrap_denials_total",
        "counter",
        "Wrap retrievals refused, by reason (consumed, expired, not_approved).",
    );
    for (tenant, _, _, consumed, expired, not_approved) in &rows {
        let t = tenant.to_string();
        for (reason, n) in [
            ("consumed", consumed),
            ("expired", expired),
            ("not_approved", not_approved),
        ] {
            out.sample(
                "broker_wrap_denials_total",
                &[("tenant_id", &t), ("reason", reason)],
                *n as f64,
            );
        }
    }
}
