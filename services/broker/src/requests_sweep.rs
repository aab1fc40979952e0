//! The requests' background pass: pending requests whose time ran out are expired, and an
//! approval whose follow-up a crash interrupted (no job, or a job that ended while the
//! request still says approved) is carried through. The read model only names candidates;
//! each request's history decides.

use super::{finish, get, job_outcome, on_approved, Command, Status};
use crate::{correlated, BrokerError};
use aegis_broker::jobs::JobStatus;
use aegis_runtime::command::CommandContext;
use aegis_runtime::Runtime;
use chrono::Utc;
use uuid::Uuid;

/// Expires up to `batch` pending requests past their time, oldest first; answers how many.
pub async fn expire_due(rt: &Runtime, batch: i64) -> Result<usize, BrokerError> {
    let due: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT tenant_id, id FROM broker_requests WHERE status = 'pending' AND expires_at <= now() \
         ORDER BY expires_at LIMIT $1",
    )
    .bind(batch)
    .fetch_all(&rt.pool)
    .await?;
    let ctx = CommandContext::system("request-expiry");
    let mut ended = 0;
    for (tenant, id) in due {
        let Ok(id) = Uuid::parse_str(&id) else {
            continue;
        };
        let command = Command::Expire {
            now: Utc::now().timestamp_millis(),
        };
        let done = super::execute(rt, &ctx, tenant, id, &command, false).await?;
        if done.appended {
            if let Some(request) = &done.state {
                super::forget_values(rt, tenant, id, request).await?;
            }
            ended += 1;
        }
    }
    Ok(ended)
}

/// Carries through up to `batch` approvals left half done a while ago: enqueues the missing
/// job, or finishes a request whose job ended. Answers how many it touched.
pub async fn settle_approved(rt: &Runtime, batch: i64) -> Result<usize, BrokerError> {
    let stuck: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
        "SELECT r.tenant_id, r.id, j.status FROM broker_requests r \
         LEFT JOIN broker_jobs j ON j.tenant_id = r.tenant_id AND j.id = r.id \
         WHERE r.status = 'approved' AND r.updated_at < now() - interval '30 seconds' \
         AND (j.id IS NULL OR j.status IN ('succeeded', 'failed', 'expired')) LIMIT $1",
    )
    .bind(batch)
    .fetch_all(&rt.pool)
    .await?;
    let ctx = CommandContext::system("request-settle");
    let mut touched = 0;
    for (tenant, id, job_status) in stuck {
        let Ok(id) = Uuid::parse_str(&id) else {
            continue;
        };
        let ctx = correlated(&ctx, &id.to_string());
        let request = get(rt, tenant, id).await?;
        if request.status != Status::Approved {
            continue;
        }
        let ended = job_status.as_deref().and_then(|s| match s {
            "succeeded" => job_outcome(JobStatus::Succeeded),
            "failed" => job_outcome(JobStatus::Failed),
            "expired" => job_outcome(JobStatus::Expired),
            _ => None,
        });
        match ended {
            Some(succeeded) => {
                let error = if succeeded {
                    String::new()
                } else {
                    format!("the job {}", job_status.unwrap_or_default())
                };
                finish(rt, &ctx, tenant, id, succeeded, error).await?;
            }
            None => on_approved(rt, &ctx, tenant, id, &request).await?,
        }
        touched += 1;
    }
    Ok(touched)
}
