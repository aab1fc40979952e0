//! Deciding approvals: an approval executes the run's actions (as the rule's system actor,
//! recorded with the approver) and records the outcome; overdue approvals are expired by the
//! reactor role, each expiry an event.

use super::actions::{execute_all, RunContext};
use crate::command::CommandContext;
use crate::domain::auto_response::approvals::{
    Approval, ApprovalAggregate, ApprovalError, ApprovalStatus, Command,
};
use crate::domain::auto_response::RuleAggregate;
use crate::error::ApiError;
use crate::error::IntoApi;
use crate::http::aggregate;
use crate::state::AppState;
use axum::http::StatusCode;
use chrono::Utc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// How many overdue approvals one pass expires; the rest wait for the next pass.
const BATCH: i64 = 100;

pub fn approval_error(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound => ApiError::not_found("no such approval"),
        e @ ApprovalError::Expired(_) => ApiError::new(StatusCode::GONE, "gone", e.to_string()),
        e @ ApprovalError::Decided(_) => ApiError::conflict(e.to_string()),
    }
}

async fn decide(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    key: Uuid,
    cmd: &Command,
) -> Result<Approval, ApiError> {
    let agg = aggregate::<ApprovalAggregate>(tenant, key.to_string())?;
    let outcome = state
        .executor
        .execute::<ApprovalAggregate>(&agg, cmd, ctx, false)
        .await;
    match outcome {
        Ok(o) => o
            .state
            .ok_or_else(|| ApiError::internal(&ApprovalError::NotFound)),
        // Too late: the expiry is recorded now (if the reactor has not yet), then refused.
        Err(crate::command::CommandError::Domain(ApprovalError::Expired(at))) => {
            let expire = Command::Expire { now: Utc::now() };
            let system = crate::vault::system_context("auto-response-approvals");
            let _ = state
                .executor
                .execute::<ApprovalAggregate>(&agg, &expire, &system, false)
                .await;
            Err(approval_error(ApprovalError::Expired(at)))
        }
        Err(e) => Err(e.into_api(approval_error)),
    }
}

/// Approves a pending approval and runs its actions; approving again finishes one whose
/// execution was interrupted and otherwise answers the recorded outcome.
pub async fn approve(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    key: Uuid,
    comment: String,
) -> Result<Approval, ApiError> {
    let cmd = Command::Approve {
        comment,
        now: Utc::now(),
    };
    let approval = decide(state, ctx, tenant, key, &cmd).await?;
    if approval.status != ApprovalStatus::Approved {
        return Ok(approval);
    }
    let rule_name = crate::http::current::<RuleAggregate>(
        state,
        crate::domain::identity::TenantId(tenant),
        approval.request.rule_id.to_string(),
    )
    .await?
    .0
    .and_then(|r| r.current().map(|v| v.definition.name.clone()))
    .unwrap_or_default();
    let run = RunContext::new(
        tenant,
        approval.request.rule_id,
        &rule_name,
        key,
        &approval.request.trigger_event_id,
    );
    let (result, actions) = execute_all(state, &run, &approval.request.actions).await;
    decide(
        state,
        &run.ctx,
        tenant,
        key,
        &Command::RecordExecution { result, actions },
    )
    .await
}

pub async fn reject(
    state: &AppState,
    ctx: &CommandContext,
    tenant: Uuid,
    key: Uuid,
    reason: String,
) -> Result<Approval, ApiError> {
    let cmd = Command::Reject {
        reason,
        now: Utc::now(),
    };
    decide(state, ctx, tenant, key, &cmd).await
}

/// Expires every approval past its TTL. Returns how many it expired.
pub async fn expire_due(state: &AppState) -> Result<usize, sqlx::Error> {
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT tenant_id, id FROM auto_response_approvals \
         WHERE status = 'pending' AND expires_at <= now() ORDER BY expires_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await?;
    let ctx = crate::vault::system_context("auto-response-approvals");
    let mut expired = 0;
    for (tenant, key) in due {
        match decide(
            state,
            &ctx,
            tenant,
            key,
            &Command::Expire { now: Utc::now() },
        )
        .await
        {
            Ok(a) if a.status == ApprovalStatus::Expired => expired += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(approval = %key, %tenant, error = %e.message, "could not expire an approval")
            }
        }
    }
    Ok(expired)
}

/// The expiry pass, every `every`, until shutdown.
pub async fn run(state: AppState, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match expire_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "auto-response approvals expired"),
            Err(e) => tracing::warn!(error = %e, "approval expiry pass failed; retrying next tick"),
        }
    }
}
