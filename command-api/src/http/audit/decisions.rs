//! The decision log, read back: `GET /audit/decisions`, the tenant's access decisions on
//! seed 003's audited routes, oldest first, from `AEGIS_ACCESS` itself (there is no read
//! model: the stream is the record, bounded by its retention).

use crate::access_log::{self, Cursor, Decision};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, Query};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DecisionsQuery {
    /// Who asked: a user, key or agent id.
    pub principal: Option<String>,
    /// `allowed` or `denied`.
    pub decision: Option<String>,
    /// The route, e.g. `POST /v1/leakage-detection/scan`.
    pub action: Option<String>,
    pub correlation_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the page before.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionEntry {
    /// The decision log's sequence of the batch that holds it (what access checkpoints
    /// cover).
    pub sequence: u64,
    #[serde(flatten)]
    pub decision: Decision,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionsPage {
    pub data: Vec<DecisionEntry>,
    /// Pass as `cursor` for the next page; absent at the end of the log.
    pub next_cursor: Option<String>,
}

/// The tenant's access decisions on audited seed 003 routes, oldest first.
#[utoipa::path(get, path = "/audit/decisions", tag = "audit", security(("bearer" = [])),
    params(DecisionsQuery, params::Tenant),
    responses(
        (status = 200, description = "A page of decisions", body = DecisionsPage),
        AuthErrors,
        (status = 422, description = "Invalid filter or cursor", body = ErrorBody),
    ))]
pub(super) async fn decisions(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<DecisionsQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let limit = match q.limit {
        None => 100,
        Some(l) if (1..=1000).contains(&l) => l as usize,
        Some(_) => return Err(ApiError::validation("limit", "limit must be 1 to 1000")),
    };
    if let Some(d) = q
        .decision
        .as_deref()
        .filter(|d| !["allowed", "denied"].contains(d))
    {
        return Err(ApiError::validation(
            "decision",
            format!("decision must be allowed or denied, not `{d}`"),
        ));
    }
    max_chars("principal", q.principal.as_deref(), 200)?;
    max_chars("action", q.action.as_deref(), 300)?;
    max_chars("correlation_id", q.correlation_id.as_deref(), 200)?;
    let from = match q.cursor.as_deref() {
        None => Cursor::START,
        Some(c) => Cursor::parse(c)
            .ok_or_else(|| ApiError::validation("cursor", "not a cursor this route gave"))?,
    };
    let keep = |d: &Decision| {
        q.principal.as_deref().is_none_or(|p| d.principal == p)
            && q.decision.as_deref().is_none_or(|x| d.decision == x)
            && q.action.as_deref().is_none_or(|a| d.action == a)
            && q.correlation_id
                .as_deref()
                .is_none_or(|c| d.correlation_id.as_deref() == Some(c))
            && q.since.is_none_or(|s| d.at >= s)
            && q.until.is_none_or(|u| d.at < u)
    };
    let js = state.executor.store().jetstream();
    let (found, next) = access_log::read(js, tenant.0, from, limit, keep)
        .await
        .map_err(|e| ApiError::unavailable(format!("the decision log cannot be read: {e}"), 1))?;
    Ok(Reply::body(
        StatusCode::OK,
        DecisionsPage {
            data: found
                .into_iter()
                .map(|(sequence, decision)| DecisionEntry { sequence, decision })
                .collect(),
            next_cursor: next.map(|c| c.to_string()),
        },
    ))
}
