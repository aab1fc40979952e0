//! `GET /audit/verify`: walks the hash chain over a tenant's log (or one resource) and reports
//! how many events it checked and the first break, if any.

use super::reconstruct::{resource, Moment};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, Query};
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::Reply;
use crate::state::AppState;
use aegis_streams::chain::Walker;
use aegis_streams::StoreError;
use axum::extract::State;
use axum::http::StatusCode;
use futures::future::Either;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// One resource (`<type>/<id>`); default the whole tenant.
    #[param(max_length = 300)]
    pub resource: Option<String>,
    /// Start: a log position or an RFC 3339 time; default the beginning.
    #[param(max_length = 64)]
    pub from: Option<String>,
    /// End (inclusive): a log position or an RFC 3339 time; default the head.
    #[param(max_length = 64)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChainBreak {
    pub position: u64,
    pub index: usize,
    pub event_id: String,
    pub subject: String,
    pub version: u64,
    /// `tampered`, `broken_link` or `version_gap`.
    pub kind: &'static str,
    /// Hex: the hash the chain requires here.
    pub expected: String,
    /// Hex: what the event carries.
    pub found: String,
    /// Why, when the commit's bytes do not even decode (then `subject`, `event_id`, `expected`
    /// and `found` are empty: nothing in it can be trusted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    /// `intact` or `broken`.
    pub status: &'static str,
    pub from: u64,
    pub to: u64,
    pub events_checked: u64,
    pub aggregates: usize,
    pub first_break: Option<ChainBreak>,
}

/// The first position at or after a time, from the audit projection.
async fn position_at(
    state: &AppState,
    tenant: uuid::Uuid,
    m: Moment,
    end: bool,
) -> Result<u64, ApiError> {
    match m {
        Moment::Position(p) => Ok(p),
        Moment::Time(t) => {
            let sql = if end {
                "SELECT coalesce(max(position), 0) FROM audit_events WHERE tenant_id = $1 AND occurred_at <= $2"
            } else {
                "SELECT coalesce(min(position), 9223372036854775807) FROM audit_events WHERE tenant_id = $1 AND occurred_at >= $2"
            };
            let (p,): (i64,) = sqlx::query_as(sql)
                .bind(tenant)
                .bind(t)
                .fetch_one(&state.pool)
                .await?;
            Ok(p.max(0) as u64)
        }
    }
}

/// Verify the hash chain of the tenant's log, or of one resource, over a range.
#[utoipa::path(get, path = "/audit/verify", tag = "audit", security(("bearer" = [])),
    params(VerifyQuery, params::Tenant),
    responses(
        (status = 200, description = "What was checked and the first break, if any", body = Verification),
        AuthErrors,
        (status = 422, description = "Bad resource or range", body = ErrorBody),
    ))]
pub(super) async fn verify(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<VerifyQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    max_chars("resource", q.resource.as_deref(), 300)?;
    max_chars("from", q.from.as_deref(), 64)?;
    max_chars("to", q.to.as_deref(), 64)?;
    let store = state.executor.store();
    let head = store.head().await?;
    let from = match q.from.as_deref() {
        Some(raw) => position_at(&state, tenant.0, Moment::parse("from", raw)?, false).await?,
        None => 1,
    }
    .max(1);
    let to = match q.to.as_deref() {
        Some(raw) => position_at(&state, tenant.0, Moment::parse("to", raw)?, true).await?,
        None => head,
    }
    .min(head);
    let resource = match q.resource.as_deref() {
        Some(raw) => Some(resource(tenant.0, raw)?.0),
        None => None,
    };
    let mut walker = Walker::default();
    let mut first_break = None;
    if from <= to && head > 0 {
        // Reading and decoding run on their own task, hashing on this one: two cores' worth.
        let commits = match resource {
            Some(agg) => Either::Left(
                store
                    .read_range(vec![agg.subject()], from, Some(to))
                    .await?,
            ),
            None => Either::Right(store.read_tenant_range(tenant.0, from, to).await?),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let reader = tokio::spawn(async move {
            let mut commits = Box::pin(commits);
            while let Some(commit) = commits.next().await {
                let stop = commit.is_err();
                if tx.send(commit).await.is_err() || stop {
                    break;
                }
            }
        });
        while let Some(commit) = rx.recv().await {
            let mut commit = match commit {
                Ok(c) => c,
                // Bytes that are no commit at all: tampered with (or rotted) at that position.
                Err(StoreError::Decode { position, reason }) => {
                    first_break = Some(ChainBreak {
                        position,
                        index: 0,
                        event_id: String::new(),
                        subject: String::new(),
                        version: 0,
                        kind: "tampered",
                        expected: String::new(),
                        found: String::new(),
                        reason: Some(reason),
                    });
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            if let Err(b) = walker.check(commit.position, &commit.subject, &mut commit.events) {
                first_break = Some(ChainBreak {
                    position: b.position,
                    index: b.index,
                    event_id: b.event_id,
                    subject: b.subject,
                    version: b.version,
                    kind: b.kind,
                    expected: hex::encode(b.expected),
                    found: hex::encode(b.found),
                    reason: None,
                });
                break;
            }
        }
        reader.abort();
    }
    if let Some(b) = &first_break {
        tracing::warn!(position = b.position, kind = b.kind, subject = %b.subject, "audit chain broken");
    }
    Ok(Reply::body(
        StatusCode::OK,
        Verification {
            status: if first_break.is_some() {
                "broken"
            } else {
                "intact"
            },
            from,
            to,
            events_checked: walker.checked,
            aggregates: walker.aggregates(),
            first_break,
        },
    ))
}
