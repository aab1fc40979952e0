//! Access requests in the broker's read model (`broker_requests`): what was asked and how it
//! stands. A patch's values never
//! reach it: they ride sealed in the envelope's credential field, which is not read here.

use crate::event::{decode, occurred_at, uuid};
use crate::runner::ProjectionError;
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use chrono::{DateTime, Duration};
use sqlx::PgConnection;

/// A JSON object from an event, `{}` when it is not one.
fn object(raw: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}))
}

/// Applies one request event (`s`: the tables' suffix).
pub(crate) async fn apply(
    tx: &mut PgConnection,
    s: &str,
    env: &Envelope,
    position: i64,
) -> Result<(), ProjectionError> {
    let tenant = uuid(&env.tenant_id)?;
    let id = env.aggregate_id.as_str();
    let at = occurred_at(env);
    // Every transition but the vote itself: the status it leads to.
    let status = match env.event_type.as_str() {
        "request.submitted.v1" => {
            let m: pb::RequestSubmitted = decode(env)?;
            let b = m.binding.unwrap_or_default();
            let created = DateTime::from_timestamp_millis(m.submitted_at).unwrap_or(at);
            sqlx::query(&format!(
                "INSERT INTO broker_requests{s} (tenant_id, id, kind, requester_id, project_id, environment, \
                 provider_type, provider_config, secret_ref, keys, justification, status, workflow_id, \
                 min_approvers, created_at, updated_at, expires_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14, $14, $15, $16) \
                 ON CONFLICT DO NOTHING"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&m.kind)
            .bind(uuid(&m.requester_id)?)
            .bind(&m.project_id)
            .bind(&m.environment)
            .bind(&m.provider_type)
            .bind(object(&m.provider_config_json))
            .bind(&m.target_ref)
            .bind(&m.keys)
            .bind(&m.justification)
            .bind(&b.workflow_id)
            .bind(b.min_approvers as i32)
            .bind(created)
            .bind(created + Duration::milliseconds(b.ttl_ms))
            .bind(position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        "request.vote_cast.v1" => {
            let m: pb::RequestVoteCast = decode(env)?;
            sqlx::query(&format!(
                "UPDATE broker_requests{s} SET approvals = approvals + $3::int, updated_at = $4, position = $5 \
                 WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .bind(i32::from(m.approve))
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        "request.approved.v1" => "approved",
        "request.rejected.v1" => {
            let m: pb::RequestRejected = decode(env)?;
            sqlx::query(&format!(
                "UPDATE broker_requests{s} SET reject_reason = $3 WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&m.reason)
            .execute(&mut *tx)
            .await?;
            "rejected"
        }
        "request.cancelled.v1" => "cancelled",
        "request.expired.v1" => "expired",
        "request.finished.v1" => {
            let m: pb::RequestFinished = decode(env)?;
            sqlx::query(&format!(
                "UPDATE broker_requests{s} SET error = nullif($3, '') WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&m.error)
            .execute(&mut *tx)
            .await?;
            if m.succeeded {
                "executed"
            } else {
                "failed"
            }
        }
        "request.gitops_queued.v1" => {
            let m: pb::RequestGitopsQueued = decode(env)?;
            let open = i32::try_from(m.watches.len()).unwrap_or(i32::MAX);
            sqlx::query(&format!(
                "UPDATE broker_requests{s} SET gitops_open = gitops_open + $3, position = $4 \
                 WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .bind(open)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        "request.gitops_polled.v1" => {
            let m: pb::RequestGitopsPolled = decode(env)?;
            let settled = matches!(
                m.polling_state.as_str(),
                "applied" | "applied_unverified" | "failed"
            );
            let polled = DateTime::from_timestamp_millis(m.at).unwrap_or(at);
            sqlx::query(&format!(
                "UPDATE broker_requests{s} SET gitops_open = greatest(gitops_open - $3::int, 0), \
                 gitops_polled_at = $4, position = $5 WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .bind(i32::from(settled))
            .bind(polled)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "{other} is not an access request event this projection knows"
            )))
        }
    };
    sqlx::query(&format!(
        "UPDATE broker_requests{s} SET status = $3, updated_at = $4, position = $5 \
         WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .bind(status)
    .bind(at)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A job enqueued for a request names it on the request's row.
pub(crate) async fn job_enqueued(
    tx: &mut PgConnection,
    s: &str,
    tenant: uuid::Uuid,
    job_id: &str,
    request_id: &str,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "UPDATE broker_requests{s} SET job_id = $3 WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(request_id)
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
