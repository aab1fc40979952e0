//! The broker's read model (seed 004): jobs, as a claim looks for candidates among them, the
//! secrets agents discovered (`broker_secrets`; when each was last listed is presence, kept
//! beside it by the sync), single-shot wraps without their values (`broker_wraps`) and access
//! requests (`broker_requests`, in `broker_requests.rs`).

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
    const TABLES: &'static [&'static str] = &[
        "broker_jobs",
        "broker_secrets",
        "broker_wraps",
        "broker_requests",
    ];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "broker"
            && matches!(
                e.aggregate_type.as_str(),
                "job" | "discovered_secret" | "wrap" | "request"
            )
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
            if env.aggregate_type == "request" {
                crate::broker_requests::apply(tx, s, env, position).await?;
                continue;
            }
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
                    if !m.request_id.is_empty() {
                        crate::broker_requests::job_enqueued(tx, s, tenant, id, &m.request_id)
                            .await?;
                    }
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
                "discovered_secret.observed.v1" | "discovered_secret.changed.v1" => {
                    let m: pb::SecretObserved = decode(env)?;
                    let when = |ms: i64| {
                        (ms > 0)
                            .then(|| DateTime::from_timestamp_millis(ms))
                            .flatten()
                    };
                    sqlx::query(&format!(
                        "INSERT INTO broker_secrets{s} (tenant_id, id, cluster_name, provider_type, secret_ref, \
                         provider_config, labels, version, created_at_source, updated_at_source, status, \
                         observations, reported_by, first_seen_at, changed_at, position) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'present', 1, $11, $12, $12, $13) \
                         ON CONFLICT (tenant_id, id) DO UPDATE SET provider_config = $6, labels = $7, version = $8, \
                         created_at_source = $9, updated_at_source = $10, status = 'present', \
                         observations = broker_secrets{s}.observations + 1, reported_by = $11, changed_at = $12, \
                         position = $13"
                    ))
                    .bind(tenant)
                    .bind(uuid(id)?)
                    .bind(&m.cluster_name)
                    .bind(&m.provider_type)
                    .bind(&m.reference)
                    .bind(object(&m.provider_config_json))
                    .bind(object(&m.labels_json))
                    .bind(&m.version)
                    .bind(when(m.created_at_source))
                    .bind(when(m.updated_at_source))
                    .bind(uuid(&m.agent_id)?)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "discovered_secret.gone.v1" => {
                    sqlx::query(&format!(
                        "UPDATE broker_secrets{s} SET status = 'gone', changed_at = $3, position = $4 \
                         WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(uuid(id)?)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "wrap.created.v1" => {
                    let m: pb::WrapCreated = decode(env)?;
                    sqlx::query(&format!(
                        "INSERT INTO broker_wraps{s} (tenant_id, id, request_id, key_name, agent_id, byte_length, \
                         source, created_at, expires_at, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT DO NOTHING"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(&m.request_id)
                    .bind(&m.key_name)
                    .bind(uuid(&m.agent_id)?)
                    .bind(m.byte_length as i64)
                    .bind(&m.source)
                    .bind(at)
                    .bind(DateTime::from_timestamp_millis(m.expires_at))
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "wrap.retrieved.v1" => {
                    let m: pb::WrapRetrieved = decode(env)?;
                    sqlx::query(&format!(
                        "UPDATE broker_wraps{s} SET retrieved_at = $3, retrieved_via = $4, position = $5 \
                         WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(at)
                    .bind(&m.via)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "wrap.expired.v1" | "wrap.key_destroyed.v1" => {
                    // The column is chosen from a closed set, never from the event's text.
                    let column = if env.event_type == "wrap.expired.v1" {
                        "expired_at"
                    } else {
                        "key_destroyed_at"
                    };
                    sqlx::query(&format!(
                        "UPDATE broker_wraps{s} SET {column} = $3, position = $4 \
                         WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                "wrap.denied.v1" => {
                    let m: pb::WrapDenied = decode(env)?;
                    // The column is chosen from a closed set, never from the event's text.
                    let column = match m.reason.as_str() {
                        "consumed" => "denied_consumed",
                        "expired" => "denied_expired",
                        _ => "denied_not_approved",
                    };
                    sqlx::query(&format!(
                        "UPDATE broker_wraps{s} SET {column} = {column} + 1, position = $3 \
                         WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
                }
                other => {
                    return Err(ProjectionError::Decode(format!(
                        "{other} is not a broker event this projection knows"
                    )))
                }
            }
        }
        Ok(())
    }
}
