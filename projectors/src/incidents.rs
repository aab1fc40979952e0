//! Read model of the incidents context: one row per incident, newest first per tenant.
//!
//! Each update names the version it expects the row to be at, so a gap or a replay can never
//! corrupt the row silently: it halts the projection instead.

use crate::runner::{Projection, ProjectionError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::incidents::v1 as pb;
use aegis_schemas::Message;
use aegis_streams::StoredCommit;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct IncidentsProjection;

pub(crate) fn occurred_at(env: &Envelope) -> DateTime<Utc> {
    env.occurred_at
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default()
}

fn decode<M: Message + Default>(env: &Envelope) -> Result<M, ProjectionError> {
    M::decode(env.payload.as_slice())
        .map_err(|e| ProjectionError::Decode(format!("{}: {e}", env.event_type)))
}

fn uuid(s: &str) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(s).map_err(|e| ProjectionError::Decode(format!("bad id {s}: {e}")))
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl Projection for IncidentsProjection {
    const NAME: &'static str = "incidents";
    const TABLES: &'static [&'static str] = &["incidents"];

    async fn apply(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        for env in commit
            .events
            .iter()
            .filter(|e| e.context == "incidents" && e.aggregate_type == "incident")
        {
            let tenant = uuid(&env.tenant_id)?;
            let id = uuid(&env.aggregate_id)?;
            let at = occurred_at(env);
            let version = env.aggregate_version as i64;
            let position = commit.position as i64;
            let table = format!("incidents{suffix}");
            let update = |set: &str| {
                format!(
                    "UPDATE {table} SET {set}, version = $3, updated_at = $4, position = $5 \
                     WHERE tenant_id = $1 AND id = $2 AND version = $3 - 1"
                )
            };
            let result = match env.event_type.as_str() {
                "incident.opened.v1" => {
                    let m: pb::IncidentOpened = decode(env)?;
                    sqlx::query(&format!(
                        "INSERT INTO {table} (tenant_id, id, title, severity, status, source, description, agent_id, \
                         dedup_key, version, created_at, updated_at, position) \
                         VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $10, $11)"
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(&m.title)
                    .bind(&m.severity)
                    .bind(&m.source)
                    .bind(&m.description)
                    .bind(non_empty(&m.agent_id))
                    .bind(non_empty(&m.dedup_key))
                    .bind(version)
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?
                }
                "incident.status_changed.v1" => {
                    let m: pb::IncidentStatusChanged = decode(env)?;
                    sqlx::query(&update(
                        "status = $6, resolved_at = CASE $6 WHEN 'resolved' THEN $4 \
                         WHEN 'closed' THEN coalesce(resolved_at, $4) ELSE NULL END",
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(version)
                    .bind(at)
                    .bind(position)
                    .bind(&m.to)
                    .execute(&mut *tx)
                    .await?
                }
                "incident.assigned.v1" => {
                    let m: pb::IncidentAssigned = decode(env)?;
                    sqlx::query(&update("assigned_to = $6"))
                        .bind(tenant)
                        .bind(id)
                        .bind(version)
                        .bind(at)
                        .bind(position)
                        .bind(non_empty(&m.assigned_to))
                        .execute(&mut *tx)
                        .await?
                }
                "incident.action_recorded.v1" => {
                    let m: pb::IncidentActionRecorded = decode(env)?;
                    sqlx::query(&update(
                        "actions_taken = actions_taken || jsonb_build_array($6::text)",
                    ))
                    .bind(tenant)
                    .bind(id)
                    .bind(version)
                    .bind(at)
                    .bind(position)
                    .bind(&m.action)
                    .execute(&mut *tx)
                    .await?
                }
                other => {
                    return Err(ProjectionError::Decode(format!(
                        "unknown incident event type {other}"
                    )));
                }
            };
            if result.rows_affected() != 1 {
                return Err(ProjectionError::Invariant(format!(
                    "incident {id} of tenant {tenant}: {} at version {version} does not follow the read model",
                    env.event_type
                )));
            }
        }
        Ok(())
    }
}
