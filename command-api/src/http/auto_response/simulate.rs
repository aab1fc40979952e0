//! `POST /auto-response/simulate`: replays a range of the tenant's real events through a saved
//! rule version or an inline draft and streams, as NDJSON, every match with the actions that
//! would have run (the throttle applied as it would have been), progress lines, and a summary.
//! It reads the log and writes nothing: no command, no event.

use super::rules::RuleBody;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::audit::reconstruct::Moment;
use crate::http::current;
use crate::http::extract::Json;
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::state::AppState;
use aegis_auto_response::document::document;
use aegis_auto_response::rules::Definition;
use aegis_auto_response::runs::{self, Admission, RuleRuns, RunMode, RunResult, Started};
use aegis_auto_response::{RuleAggregate, RunsAggregate};
use aegis_kernel::Aggregate;
use aegis_schemas::envelope::v1::Envelope;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// A progress line every this many events scanned.
const PROGRESS_EVERY: u64 = 10_000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(simulate))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateBody {
    /// A saved rule (its version in force unless `version` says otherwise)...
    pub rule_id: Option<Uuid>,
    pub version: Option<u32>,
    /// ...or an inline draft.
    pub rule: Option<RuleBody>,
    /// A log position or an RFC 3339 time; default the start of the log.
    pub from: Option<String>,
    /// A log position or an RFC 3339 time; default the head when the replay starts.
    pub to: Option<String>,
}

fn line(v: Value) -> Bytes {
    let mut b = v.to_string().into_bytes();
    b.push(b'\n');
    Bytes::from(b)
}

/// Replay history through a rule (ADMIN, SECURITY). Streams NDJSON: `{"type": "match", ...}`
/// per match with the actions that would run, `{"type": "progress", ...}` every 10,000 events,
/// and a final `{"type": "summary", ...}`. Nothing is executed or appended.
#[utoipa::path(post, path = "/auto-response/simulate", tag = "auto-response", security(("bearer" = [])),
    params(params::Tenant), request_body = SimulateBody,
    responses((status = 200, description = "NDJSON lines: match, progress, summary", content_type = "application/x-ndjson"),
        AuthErrors, BodyErrors,
        (status = 404, description = "No such rule or version", body = ErrorBody)))]
async fn simulate(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SimulateBody>,
) -> Result<Response, ApiError> {
    let tenant = principal.tenant()?;
    let (definition, label, rule_key): (Definition, Value, String) =
        match (&body.rule_id, &body.rule) {
            (Some(id), None) => {
                let (rule, _, _) = current::<RuleAggregate>(&state, tenant, id.to_string()).await?;
                let rule = rule.ok_or_else(|| ApiError::not_found("rule not found"))?;
                let v = match body.version {
                    Some(n) => rule
                        .versions
                        .iter()
                        .find(|v| v.version == n)
                        .ok_or_else(|| {
                            ApiError::not_found(format!("rule {id} has no version {n}"))
                        })?,
                    None => rule
                        .current()
                        .ok_or_else(|| ApiError::not_found("rule not found"))?,
                };
                (
                    v.definition.clone(),
                    json!({ "rule_id": id, "version": v.version }),
                    id.to_string(),
                )
            }
            (None, Some(draft)) => {
                if body.version.is_some() {
                    return Err(ApiError::validation("version", "a draft has no versions"));
                }
                (
                    draft.definition()?,
                    json!({ "draft": true }),
                    "draft".to_string(),
                )
            }
            _ => {
                return Err(ApiError::validation(
                    "rule_id",
                    "give either rule_id (a saved rule) or rule (an inline draft)",
                ))
            }
        };
    let from = body
        .from
        .as_deref()
        .map(|r| Moment::parse("from", r))
        .transpose()?;
    let to = body
        .to
        .as_deref()
        .map(|r| Moment::parse("to", r))
        .transpose()?;
    let store = state.executor.store().clone();
    let head = store.head().await?;
    let start = match from {
        Some(Moment::Position(p)) => p.max(1),
        _ => 1,
    };
    let end = match to {
        Some(Moment::Position(p)) => p.min(head),
        _ => head,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut runs = RuleRuns::default();
        let mut tripped_at: Option<u64> = None;
        let (mut scanned, mut matched, mut would_run, mut throttled, mut braked) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut last = start.saturating_sub(1);
        if start <= end {
            let stored = match store.read_tenant_range(tenant.0, start, end).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx
                        .send(line(json!({ "type": "error", "message": e.to_string() })))
                        .await;
                    return;
                }
            };
            // Reading and decoding commits run on their own task, matching on this one: two
            // cores' worth. The channel is bounded, so memory stays flat on any range.
            let (commit_tx, mut commits) = tokio::sync::mpsc::channel(4096);
            tokio::spawn(async move {
                let mut read = std::pin::pin!(stored);
                while let Some(commit) = read.next().await {
                    let stop = commit.is_err();
                    if commit_tx.send(commit).await.is_err() || stop {
                        break;
                    }
                }
            });
            while let Some(commit) = commits.recv().await {
                let commit = match commit {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx
                            .send(line(json!({ "type": "error", "message": e.to_string() })))
                            .await;
                        return;
                    }
                };
                last = commit.position;
                for env in &commit.events {
                    let at = aegis_kernel::occurred_at(env);
                    if matches!(from, Some(Moment::Time(t)) if at < t) {
                        continue;
                    }
                    if matches!(to, Some(Moment::Time(t)) if at > t) {
                        continue;
                    }
                    scanned += 1;
                    if scanned % PROGRESS_EVERY == 0 {
                        let progress = json!({ "type": "progress", "scanned": scanned, "position": commit.position, "head": end });
                        if tx.send(line(progress)).await.is_err() {
                            return;
                        }
                    }
                    let doc = document(env);
                    if !definition.matcher.matches(&doc) {
                        continue;
                    }
                    matched += 1;
                    // After the brake would have tripped, the rule would only have simulated.
                    let mode = if tripped_at.is_some() {
                        RunMode::Simulate
                    } else {
                        RunMode::Active
                    };
                    let run =
                        Started::of(&rule_key, 0, mode, &definition, env, commit.position, &doc);
                    let (run_id, actions) = (run.run_id, run.actions.clone());
                    let start = runs::Command::start(run, &definition);
                    let mut events = RunsAggregate::decide(&runs, &start).unwrap_or_default();
                    // The replay completes what a live run would complete after acting.
                    events.push(runs::Event::Completed {
                        run_id,
                        result: RunResult::Simulated,
                        actions: Value::Null,
                    });
                    let mut admission = Admission::Admitted;
                    let mut trips = false;
                    for e in &events {
                        match e {
                            runs::Event::Started(s) => admission = s.admission,
                            runs::Event::BrakeTripped { .. } => trips = true,
                            runs::Event::Completed { .. } => {}
                        }
                        runs = RunsAggregate::evolve(runs, e, &Envelope::default());
                    }
                    if trips {
                        tripped_at = Some(commit.position);
                    }
                    let runs_now = admission == Admission::Admitted && mode == RunMode::Active;
                    match admission {
                        Admission::Admitted if runs_now => would_run += 1,
                        Admission::Admitted => {}
                        Admission::Throttled => throttled += 1,
                        Admission::Braked => braked += 1,
                    }
                    let hit = json!({
                        "type": "match", "position": commit.position, "event_id": env.event_id,
                        "event_type": env.event_type, "occurred_at": at,
                        "aggregate": format!("{}/{}", env.aggregate_type, env.aggregate_id),
                        "admission": admission, "throttled": admission == Admission::Throttled,
                        "brake_tripped": trips, "would_run": runs_now,
                        "approval_required": definition.approval_required,
                        "actions": actions,
                    });
                    if tx.send(line(hit)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let summary = json!({
            "type": "summary", "rule": label, "from": start, "to": last.max(start.saturating_sub(1)),
            "scanned": scanned, "matched": matched, "would_run": would_run, "throttled": throttled,
            "braked": braked, "brake_tripped_at": tripped_at, "executed": 0,
        });
        let _ = tx.send(line(summary)).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
