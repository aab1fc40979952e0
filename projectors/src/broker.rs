//! The broker's read model (seed 004): jobs, as a claim looks for candidates among them.

use crate::event::{decode, occurred_at, uuid};
use crate::runner::{Projection, ProjectionError};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_streams::StoredCommit;
use chrono::DateTime;
use sqlx::PgConnection;

pub struct BrokerProjection;

/// A JSON object from an event, `{}` when it is not one.
fn object(raw: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}))
}

impl Projection for BrokerProjection {
    const NAME: &'static str = "broker";
    const TABLES: &'static [&'static str] = &["broker_jobs"];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "broker" && e.aggregate_type == "job"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        s: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        let position = commit.position as i64;
        for env in commit.events.iter().filter(|e| self.handles(e)) {
            let tenant = uuid(&env.tenant_id)?;
            let id = env.aggregate_id.as_str();
            let at = occurred_at(env);
            match env.event_type.as_str() {
                "job.enqueued.v1" => {
                    let m: pb::JobEnqueued = decode(env)?;
                    let scoped = match m.scoped_agent_id.as_str() {
                        "" => None,
                        a => Some(uuid(a)?),
                    };
                    sqlx::query(&format!(
                        "INSERT INTO broker_jobs{s} (tenant_id, id, job_type, payload, agent_scope, scoped_agent, \
                         request_id, status, enqueued_by, enqueued_at, updated_at, position) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $9, $10) ON CONFLICT DO NOTHING"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(&m.job_type)
                    .bind(object(&m.payload_json))
                    .bind(object(&m.agent_scope_json))
                    .bind(scoped)
                    .bind((!m.request_id.is_empty()).then_some(&m.request_id))
                    .bind(&m.enqueued_by)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "job.claimed.v1" => {
                    let m: pb::JobClaimed = decode(env)?;
                    sqlx::query(&format!(
                        "UPDATE broker_jobs{s} SET status = 'claimed', agent_id = $3, lease_expires_at = $4, \
                         attempts = $5, updated_at = $6, position = $7 WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(uuid(&m.agent_id)?)
                    .bind(DateTime::from_timestamp_millis(m.lease_expires_at))
                    .bind(m.attempt as i32)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "job.completed.v1" => {
                    let m: pb::JobCompleted = decode(env)?;
                    sqlx::query(&format!(
                        "UPDATE broker_jobs{s} SET status = $3, error = $4, updated_at = $5, position = $6 \
                         WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(&m.status)
                    .bind(&m.error)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "job.expired.v1" => {
                    sqlx::query(&format!(
                        "UPDATE broker_jobs{s} SET status = 'expired', updated_at = $3, position = $4 \
                         WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                other => {
                    return Err(ProjectionError::Decode(format!(
                        "{other} is not a job event this projection knows"
                    )))
                }
            }
        }
        Ok(())
    }
}
