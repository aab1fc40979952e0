//! Deciding approvals: an approval executes the run's actions (as the rule's system actor,
//! recorded with the approver) and records the outcome; overdue approvals are expired by the
//! reactor role, each expiry an event.

use crate::actions::{execute_all, RunContext};
use aegis_auto_response::approvals::{
    Approval, ApprovalAggregate, ApprovalError, ApprovalStatus, Command,
};
use aegis_auto_response::{RuleAggregate, RuleError};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use chrono::Utc;
use uuid::Uuid;

/// How many overdue approvals one pass expires; the rest wait for the next pass.
const BATCH: i64 = 100;

/// Why an approval could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalFailure {
    /// The approval's decider refused (none, expired, decided), or the log could not be
    /// reached.
    #[error(transparent)]
    Approval(#[from] CommandError<ApprovalError>),
    /// The approved rule could not be read.
    #[error(transparent)]
    Rule(#[from] CommandError<RuleError>),
}

async fn decide(
    state: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    key: Uuid,
    cmd: &Command,
) -> Result<Approval, ApprovalFailure> {
    let agg = address::<ApprovalAggregate>(tenant, key.to_string())
        .map_err(|e| ApprovalFailure::Approval(e.into()))?;
    let outcome = state
        .executor
        .execute::<ApprovalAggregate>(&agg, cmd, ctx, false)
        .await;
    match outcome {
        Ok(o) => o
            .state
            .ok_or(ApprovalFailure::Approval(CommandError::Domain(
                ApprovalError::NotFound,
            ))),
        // Too late: the expiry is recorded now (if the reactor has not yet), then refused.
        Err(CommandError::Domain(ApprovalError::Expired(at))) => {
            let expire = Command::Expire { now: Utc::now() };
            let system = CommandContext::system("auto-response-approvals");
            let _ = state
                .executor
                .execute::<ApprovalAggregate>(&agg, &expire, &system, false)
                .await;
            Err(CommandError::Domain(ApprovalError::Expired(at)).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Approves a pending approval and runs its actions; approving again finishes one whose
/// execution was interrupted and otherwise answers the recorded outcome.
pub async fn approve(
    state: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    key: Uuid,
    comment: String,
) -> Result<Approval, ApprovalFailure> {
    let cmd = Command::Approve {
        comment,
        now: Utc::now(),
    };
    let approval = decide(state, ctx, tenant, key, &cmd).await?;
    if approval.status != ApprovalStatus::Approved {
        return Ok(approval);
    }
    let rule_name = state
        .current::<RuleAggregate>(tenant, approval.request.rule_id.to_string())
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
    state: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    key: Uuid,
    reason: String,
) -> Result<Approval, ApprovalFailure> {
    let cmd = Command::Reject {
        reason,
        now: Utc::now(),
    };
    decide(state, ctx, tenant, key, &cmd).await
}

/// Expires every approval past its TTL. Returns how many it expired.
pub async fn expire_due(state: &Runtime) -> Result<usize, sqlx::Error> {
    let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT tenant_id, id FROM auto_response_approvals \
         WHERE status = 'pending' AND expires_at <= now() ORDER BY expires_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await?;
    let ctx = CommandContext::system("auto-response-approvals");
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
                tracing::warn!(approval = %key, %tenant, error = %e, "could not expire an approval")
            }
        }
    }
    Ok(expired)
}
