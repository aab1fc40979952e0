//! Read model of the auto-response context: each rule's version in force, every run with its
//! outcome (`auto_response_runs`), and approvals (`auto_response_approvals`).

use crate::event::{decode, occurred_at, one, uuid};
use crate::runner::{Projection, ProjectionError};
use aegis_schemas::auto_response::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_streams::StoredCommit;
use sqlx::PgConnection;

pub struct AutoResponseProjection;

fn json(s: &str) -> Result<serde_json::Value, ProjectionError> {
    serde_json::from_str(s).map_err(|e| ProjectionError::Decode(format!("rule definition: {e}")))
}

impl Projection for AutoResponseProjection {
    const NAME: &'static str = "auto_response";
    const TABLES: &'static [&'static str] = &[
        "auto_response_rules",
        "auto_response_runs",
        "auto_response_approvals",
    ];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "auto_response"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        s: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        let position = commit.position as i64;
        for env in &commit.events {
            if !self.handles(env) {
                continue;
            }
            match env.aggregate_type.as_str() {
                "runs" => {
                    runs(tx, s, env, position).await?;
                    continue;
                }
                "approval" => {
                    approvals(tx, s, env, position).await?;
                    continue;
                }
                _ => {}
            }
            let tenant = uuid(&env.tenant_id)?;
            let id = uuid(&env.aggregate_id)?;
            let at = occurred_at(env);
            let v = env.aggregate_version as i64;
            let by = env
                .actor
                .as_ref()
                .map(|a| format!("{}:{}", a.kind, a.subject))
                .unwrap_or_default();
            match env.event_type.as_str() {
                "rule.created.v1" => {
                    let m: pb::RuleCreated = decode(env)?;
                    let d = m.definition.unwrap_or_default();
                    sqlx::query(&format!(
                        "INSERT INTO auto_response_rules{s} (tenant_id, id, name, description, version, match, actions, \
                         mode, approval_required, throttle_max_runs, throttle_window_secs, created_by, created_at, \
                         updated_at, agg_version, position, brake_max_targets, brake_window_secs) \
                         VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16)"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(&d.name)
                    .bind(&d.description)
                    .bind(json(&d.match_json)?)
                    .bind(json(&d.actions_json)?)
                    .bind(&m.mode)
                    .bind(d.approval_required)
                    .bind(d.throttle_max_runs as i32)
                    .bind(d.throttle_window_secs as i32)
                    .bind(&by)
                    .bind(at)
                    .bind(v)
                    .bind(position)
                    .bind(d.brake_max_targets as i32)
                    .bind(d.brake_window_secs as i32)
                    .execute(&mut *tx)
                    .await?;
                }
                "rule.updated.v1" => {
                    let d = decode::<pb::RuleUpdated>(env)?
                        .definition
                        .unwrap_or_default();
                    let r = sqlx::query(&format!(
                        "UPDATE auto_response_rules{s} SET name = $4, description = $5, version = version + 1, \
                         match = $6, actions = $7, approval_required = $8, throttle_max_runs = $9, \
                         throttle_window_secs = $10, updated_at = $11, agg_version = $3, position = $12, \
                         brake_max_targets = $13, brake_window_secs = $14 \
                         WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(v)
                    .bind(&d.name)
                    .bind(&d.description)
                    .bind(json(&d.match_json)?)
                    .bind(json(&d.actions_json)?)
                    .bind(d.approval_required)
                    .bind(d.throttle_max_runs as i32)
                    .bind(d.throttle_window_secs as i32)
                    .bind(at)
                    .bind(position)
                    .bind(d.brake_max_targets as i32)
                    .bind(d.brake_window_secs as i32)
                    .execute(&mut *tx)
                    .await?;
                    one(r, env)?;
                }
                "rule.mode_set.v1" | "rule.deleted.v1" => {
                    let (set, m) = if env.event_type == "rule.deleted.v1" {
                        ("deleted = true", pb::RuleModeSet::default())
                    } else {
                        (
                            "mode = $6, mode_reason = $7",
                            decode::<pb::RuleModeSet>(env)?,
                        )
                    };
                    let r = sqlx::query(&format!(
                        "UPDATE auto_response_rules{s} SET {set}, updated_at = $4, agg_version = $3, position = $5 \
                         WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1 \
                         AND ($6::text IS NOT NULL) AND ($7::text IS NOT NULL)"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(v)
                    .bind(at)
                    .bind(position)
                    .bind(m.mode)
                    .bind(m.reason)
                    .execute(&mut *tx)
                    .await?;
                    one(r, env)?;
                }
                other => {
                    return Err(ProjectionError::Decode(format!(
                        "unknown rule event {other}"
                    )))
                }
            }
        }
        Ok(())
    }
}

async fn runs(
    tx: &mut PgConnection,
    s: &str,
    env: &Envelope,
    position: i64,
) -> Result<(), ProjectionError> {
    let tenant = uuid(&env.tenant_id)?;
    let at = occurred_at(env);
    match env.event_type.as_str() {
        "run.started.v1" => {
            let m: pb::RunStarted = decode(env)?;
            sqlx::query(&format!(
                "INSERT INTO auto_response_runs{s} (tenant_id, id, rule_id, rule_version, mode, admission, \
                 result, trigger_event_id, trigger_position, trigger_event_type, trigger_aggregate, targets, \
                 actions, approval_required, started_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (tenant_id, id) DO NOTHING"
            ))
            .bind(tenant)
            .bind(uuid(&m.run_id)?)
            .bind(uuid(&env.aggregate_id)?)
            .bind(m.rule_version as i32)
            .bind(&m.mode)
            .bind(&m.admission)
            .bind(&m.trigger_event_id)
            .bind(m.trigger_position as i64)
            .bind(&m.trigger_event_type)
            .bind(&m.trigger_aggregate)
            .bind(serde_json::json!(m.targets))
            .bind(json(&m.actions_json)?)
            .bind(m.approval_required)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        "run.completed.v1" => {
            let m: pb::RunCompleted = decode(env)?;
            sqlx::query(&format!(
                // An approval decided before this arrived already holds the final result.
                "UPDATE auto_response_runs{s} SET completed_result = $3, position = $6, \
                 result = CASE WHEN result = 'running' THEN $3 ELSE result END, \
                 actions = CASE WHEN result = 'running' THEN $4 ELSE actions END, \
                 completed_at = coalesce(completed_at, $5) \
                 WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(uuid(&m.run_id)?)
            .bind(&m.result)
            .bind(json(&m.actions_json)?)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        "brake.tripped.v1" => {
            let m: pb::BrakeTripped = decode(env)?;
            sqlx::query(&format!(
                "UPDATE auto_response_runs{s} SET brake_tripped = true WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(uuid(&m.run_id)?)
            .execute(&mut *tx)
            .await?;
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "unknown run event {other}"
            )))
        }
    }
    Ok(())
}

async fn approvals(
    tx: &mut PgConnection,
    s: &str,
    env: &Envelope,
    position: i64,
) -> Result<(), ProjectionError> {
    let tenant = uuid(&env.tenant_id)?;
    let id = uuid(&env.aggregate_id)?;
    let at = occurred_at(env);
    let v = env.aggregate_version as i64;
    let by = env
        .actor
        .as_ref()
        .map(|a| format!("{}:{}", a.kind, a.subject));
    if env.event_type == "approval.requested.v1" {
        let m: pb::ApprovalRequested = decode(env)?;
        let expires = chrono::DateTime::from_timestamp(m.expires_at, 0)
            .ok_or_else(|| ProjectionError::Decode("expires_at out of range".into()))?;
        sqlx::query(&format!(
            "INSERT INTO auto_response_approvals{s} (tenant_id, id, rule_id, rule_version, actions, \
             trigger_event_id, trigger_event_type, status, expires_at, requested_at, updated_at, agg_version, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $9, $10, $11)"
        ))
        .bind(tenant)
        .bind(id)
        .bind(uuid(&m.rule_id)?)
        .bind(m.rule_version as i32)
        .bind(json(&m.actions_json)?)
        .bind(&m.trigger_event_id)
        .bind(&m.trigger_event_type)
        .bind(expires)
        .bind(at)
        .bind(v)
        .bind(position)
        .execute(&mut *tx)
        .await?;
        return Ok(());
    }
    // status, who decided (None keeps it), note, result, outcome
    let (status, decider, note, result, outcome): (
        &str,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<serde_json::Value>,
    ) = match env.event_type.as_str() {
        "approval.approved.v1" => {
            let m: pb::ApprovalApproved = decode(env)?;
            ("approved", by, Some(m.comment), None, None)
        }
        "approval.rejected.v1" => {
            let m: pb::ApprovalRejected = decode(env)?;
            (
                "rejected",
                by,
                Some(m.reason),
                Some("rejected".into()),
                None,
            )
        }
        "approval.expired.v1" => ("expired", None, None, Some("expired".into()), None),
        "approval.executed.v1" => {
            let m: pb::ApprovalExecuted = decode(env)?;
            (
                "executed",
                None,
                None,
                Some(m.result),
                Some(json(&m.actions_json)?),
            )
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "unknown approval event {other}"
            )))
        }
    };
    let r = sqlx::query(&format!(
        "UPDATE auto_response_approvals{s} SET status = $4, decided_by = coalesce($5, decided_by), \
         note = coalesce($6, note), result = coalesce($7, result), outcome = coalesce($8, outcome), \
         updated_at = $9, agg_version = $3, position = $10 \
         WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
    ))
    .bind(tenant)
    .bind(id)
    .bind(v)
    .bind(status)
    .bind(&decider)
    .bind(&note)
    .bind(&result)
    .bind(&outcome)
    .bind(at)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    one(r, env)?;
    // The run waited on this approval: its row shows how it ended.
    if let Some(result) = result {
        sqlx::query(&format!(
            "UPDATE auto_response_runs{s} SET result = $3, actions = coalesce($4, actions), completed_at = $5 \
             WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .bind(&result)
        .bind(&outcome)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
