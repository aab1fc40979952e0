//! Read model of the incidents context: one row per incident, newest first per tenant.
//!
//! Each update names the version it expects the row to be at, so a gap or a replay can never
//! corrupt the row silently: it halts the projection instead.

use crate::event::{decode, occurred_at, uuid};
use crate::runner::{Projection, ProjectionError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::incidents::v1 as pb;
use aegis_streams::StoredCommit;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct IncidentsProjection;

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// An `incident.opened.v1` waiting to be inserted with others in one statement.
struct Opened {
    tenant: Uuid,
    id: Uuid,
    m: pb::IncidentOpened,
    version: i64,
    at: DateTime<Utc>,
    position: i64,
}

/// Inserts every buffered open in one statement (UNNEST of column arrays).
async fn insert_opened(
    tx: &mut PgConnection,
    table: &str,
    rows: &mut Vec<Opened>,
) -> Result<(), ProjectionError> {
    if rows.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Opened) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let result = sqlx::query(&format!(
        "INSERT INTO {table} (tenant_id, id, title, severity, status, source, description, agent_id, dedup_key, \
         version, created_at, updated_at, position) \
         SELECT t, i, ti, se, 'open', so, de, ag, dk, v, c, c, p FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], \
         $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::timestamptz[], $11::bigint[]) \
         AS u(t, i, ti, se, so, de, ag, dk, v, c, p)"
    ))
    .bind(rows.iter().map(|r| r.tenant).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(col(|r| Some(r.m.title.clone())))
    .bind(col(|r| Some(r.m.severity.clone())))
    .bind(col(|r| Some(r.m.source.clone())))
    .bind(col(|r| Some(r.m.description.clone())))
    .bind(col(|r| non_empty(&r.m.agent_id).map(String::from)))
    .bind(col(|r| non_empty(&r.m.dedup_key).map(String::from)))
    .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    if result.rows_affected() != rows.len() as u64 {
        return Err(ProjectionError::Invariant(format!(
            "inserted {} of {} opened incidents",
            result.rows_affected(),
            rows.len()
        )));
    }
    rows.clear();
    Ok(())
}

/// Applies one event that changes an existing row, naming the version it must follow.
async fn apply_change(
    tx: &mut PgConnection,
    table: &str,
    env: &Envelope,
    position: i64,
) -> Result<(), ProjectionError> {
    let tenant = uuid(&env.tenant_id)?;
    let id = uuid(&env.aggregate_id)?;
    let at = occurred_at(env);
    let version = env.aggregate_version as i64;
    let update = |set: &str| {
        format!(
            "UPDATE {table} SET {set}, version = $3, updated_at = $4, position = $5 \
             WHERE tenant_id = $1 AND id = $2 AND version = $3 - 1"
        )
    };
    let (sql, value): (String, Option<String>) = match env.event_type.as_str() {
        "incident.status_changed.v1" => {
            let m: pb::IncidentStatusChanged = decode(env)?;
            (
                update(
                    "status = $6, resolved_at = CASE $6 WHEN 'resolved' THEN $4 \
                     WHEN 'closed' THEN coalesce(resolved_at, $4) ELSE NULL END",
                ),
                Some(m.to),
            )
        }
        "incident.assigned.v1" => {
            let m: pb::IncidentAssigned = decode(env)?;
            (
                update("assigned_to = $6"),
                non_empty(&m.assigned_to).map(String::from),
            )
        }
        "incident.action_recorded.v1" => {
            let m: pb::IncidentActionRecorded = decode(env)?;
            (
                update("actions_taken = actions_taken || jsonb_build_array($6::text)"),
                Some(m.action),
            )
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "unknown incident event type {other}"
            )))
        }
    };
    let result = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .bind(version)
        .bind(at)
        .bind(position)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    if result.rows_affected() != 1 {
        return Err(ProjectionError::Invariant(format!(
            "incident {id} of tenant {tenant}: {} at version {version} does not follow the read model",
            env.event_type
        )));
    }
    Ok(())
}

impl Projection for IncidentsProjection {
    const NAME: &'static str = "incidents";
    const TABLES: &'static [&'static str] = &["incidents"];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "incidents" && e.aggregate_type == "incident"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        self.apply_many(tx, suffix, std::slice::from_ref(commit))
            .await
    }

    /// Opens are buffered and inserted together; a change to any row flushes them first, so
    /// the order of the log is kept.
    async fn apply_many(
        &self,
        tx: &mut PgConnection,
        suffix: &str,
        commits: &[StoredCommit],
    ) -> Result<(), ProjectionError> {
        let table = format!("incidents{suffix}");
        let mut opened = Vec::new();
        for commit in commits {
            for env in commit
                .events
                .iter()
                .filter(|e| e.context == "incidents" && e.aggregate_type == "incident")
            {
                if env.event_type == "incident.opened.v1" {
                    opened.push(Opened {
                        tenant: uuid(&env.tenant_id)?,
                        id: uuid(&env.aggregate_id)?,
                        m: decode(env)?,
                        version: env.aggregate_version as i64,
                        at: occurred_at(env),
                        position: commit.position as i64,
                    });
                } else {
                    insert_opened(tx, &table, &mut opened).await?;
                    apply_change(tx, &table, env, commit.position as i64).await?;
                }
            }
        }
        insert_opened(tx, &table, &mut opened).await
    }
}
