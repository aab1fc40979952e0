//! Read model of the integrations context: each webhook's and SIEM connection's definition
//! in force, their secrets still sealed (`webhooks`, `siem_connections`), and scheduled
//! reports with their runs (`scheduled_reports`, `report_runs`).

use crate::event::{decode, occurred_at, one, uuid};
use crate::runner::{Projection, ProjectionError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::integrations::v1 as pb;
use aegis_streams::StoredCommit;
use sqlx::PgConnection;

pub struct IntegrationsProjection;

impl Projection for IntegrationsProjection {
    const NAME: &'static str = "integrations";
    const TABLES: &'static [&'static str] = &[
        "webhooks",
        "siem_connections",
        "scheduled_reports",
        "report_runs",
    ];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "integrations"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        s: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        let position = commit.position as i64;
        for env in commit.events.iter().filter(|e| self.handles(e)) {
            match env.aggregate_type.as_str() {
                "siem" => siem(tx, s, env, position).await?,
                "report" => report(tx, s, env, position).await?,
                _ => webhook(tx, s, env, position).await?,
            }
        }
        Ok(())
    }
}

/// An integration's sealed secrets: in the envelope's `credential` (where they are written,
/// out of every payload), else in the payload of older events.
fn secrets(
    env: &Envelope,
    legacy: Option<pb::SealedSecrets>,
) -> Result<Option<pb::SealedSecrets>, ProjectionError> {
    if env.credential.is_empty() {
        return Ok(legacy);
    }
    use aegis_schemas::Message;
    pb::SealedSecrets::decode(env.credential.as_slice())
        .map(Some)
        .map_err(|e| ProjectionError::Decode(e.to_string()))
}

async fn webhook(
    tx: &mut PgConnection,
    s: &str,
    env: &Envelope,
    position: i64,
) -> Result<(), ProjectionError> {
    let tenant = uuid(&env.tenant_id)?;
    let id = uuid(&env.aggregate_id)?;
    let at = occurred_at(env);
    let v = env.aggregate_version as i64;
    let r = match env.event_type.as_str() {
        "webhook.created.v1" => {
            let m: pb::WebhookCreated = decode(env)?;
            let d = m.definition.unwrap_or_default();
            let sealed = secrets(env, m.secrets)?.unwrap_or_default();
            let by = env
                .actor
                .as_ref()
                .map(|a| format!("{}:{}", a.kind, a.subject))
                .unwrap_or_default();
            sqlx::query(&format!(
                "INSERT INTO webhooks{s} (tenant_id, id, name, kind, host, topics, enabled, secret_version, \
                 secret_nonce, secret_ciphertext, created_by, created_at, updated_at, agg_version, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&d.name)
            .bind(&d.kind)
            .bind(&d.host)
            .bind(&d.topics)
            .bind(d.enabled)
            .bind(sealed.version as i64)
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(&by)
            .bind(at)
            .bind(v)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        "webhook.updated.v1" => {
            let m: pb::WebhookUpdated = decode(env)?;
            let d = m.definition.unwrap_or_default();
            let (version, nonce, ciphertext) = match secrets(env, m.secrets)? {
                Some(s) => (Some(s.version as i64), Some(s.nonce), Some(s.ciphertext)),
                None => (None, None, None),
            };
            sqlx::query(&format!(
                "UPDATE webhooks{s} SET name = $4, host = $5, topics = $6, enabled = $7, \
                 secret_version = coalesce($8, secret_version), secret_nonce = coalesce($9, secret_nonce), \
                 secret_ciphertext = coalesce($10, secret_ciphertext), updated_at = $11, agg_version = $3, \
                 position = $12 WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
            ))
            .bind(tenant)
            .bind(id)
            .bind(v)
            .bind(&d.name)
            .bind(&d.host)
            .bind(&d.topics)
            .bind(d.enabled)
            .bind(version)
            .bind(nonce)
            .bind(ciphertext)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?
        }
        "webhook.deleted.v1" | "webhook.delivery_replayed.v1" => {
            let deleted = env.event_type == "webhook.deleted.v1";
            sqlx::query(&format!(
                "UPDATE webhooks{s} SET deleted = deleted OR $4, updated_at = $5, agg_version = $3, \
                 position = $6 WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
            ))
            .bind(tenant)
            .bind(id)
            .bind(v)
            .bind(deleted)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "unknown integrations event {other}"
            )))
        }
    };
    one(r, env)
}

async fn siem(
    tx: &mut PgConnection,
    s: &str,
    env: &Envelope,
    position: i64,
) -> Result<(), ProjectionError> {
    let tenant = uuid(&env.tenant_id)?;
    let id = uuid(&env.aggregate_id)?;
    let at = occurred_at(env);
    let v = env.aggregate_version as i64;
    let (definition, sealed) = match env.event_type.as_str() {
        "siem.created.v1" => {
            let m: pb::SiemCreated = decode(env)?;
            (m.definition.unwrap_or_default(), secrets(env, m.secrets)?)
        }
        "siem.updated.v1" => {
            let m: pb::SiemUpdated = decode(env)?;
            (m.definition.unwrap_or_default(), secrets(env, m.secrets)?)
        }
        "siem.deleted.v1" => {
            let r = sqlx::query(&format!(
                "UPDATE siem_connections{s} SET deleted = true, updated_at = $4, agg_version = $3, \
                 position = $5 WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
            ))
            .bind(tenant)
            .bind(id)
            .bind(v)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            return one(r, env);
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "unknown integrations event {other}"
            )))
        }
    };
    let d = definition;
    let (version, nonce, ciphertext) = match sealed {
        Some(x) => (Some(x.version as i64), Some(x.nonce), Some(x.ciphertext)),
        None => (None, None, None),
    };
    if env.event_type == "siem.created.v1" {
        let by = env
            .actor
            .as_ref()
            .map(|a| format!("{}:{}", a.kind, a.subject))
            .unwrap_or_default();
        sqlx::query(&format!(
            "INSERT INTO siem_connections{s} (tenant_id, id, name, kind, host, index_name, sourcetype, site, \
             contexts, event_types, enabled, start_position, secret_version, secret_nonce, secret_ciphertext, \
             created_by, created_at, updated_at, agg_version, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19)"
        ))
        .bind(tenant)
        .bind(id)
        .bind(&d.name)
        .bind(&d.kind)
        .bind(&d.host)
        .bind(&d.index)
        .bind(&d.sourcetype)
        .bind(&d.site)
        .bind(&d.contexts)
        .bind(&d.event_types)
        .bind(d.enabled)
        .bind(d.start_position as i64)
        .bind(version.unwrap_or(1))
        .bind(nonce.unwrap_or_default())
        .bind(ciphertext.unwrap_or_default())
        .bind(&by)
        .bind(at)
        .bind(v)
        .bind(position)
        .execute(&mut *tx)
        .await?;
        return Ok(());
    }
    let r = sqlx::query(&format!(
        "UPDATE siem_connections{s} SET name = $4, host = $5, index_name = $6, sourcetype = $7, site = $8, \
         contexts = $9, event_types = $10, enabled = $11, \
         secret_version = coalesce($12, secret_version), secret_nonce = coalesce($13, secret_nonce), \
         secret_ciphertext = coalesce($14, secret_ciphertext), updated_at = $15, agg_version = $3, \
         position = $16 WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
    ))
    .bind(tenant)
    .bind(id)
    .bind(v)
    .bind(&d.name)
    .bind(&d.host)
    .bind(&d.index)
    .bind(&d.sourcetype)
    .bind(&d.site)
    .bind(&d.contexts)
    .bind(&d.event_types)
    .bind(d.enabled)
    .bind(version)
    .bind(nonce)
    .bind(ciphertext)
    .bind(at)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    one(r, env)
}

fn at_secs(secs: i64) -> Result<chrono::DateTime<chrono::Utc>, ProjectionError> {
    chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| ProjectionError::Decode(format!("time {secs} out of range")))
}

async fn report(
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
        .map(|a| format!("{}:{}", a.kind, a.subject))
        .unwrap_or_default();
    let webhook = |d: &pb::ReportDefinition| -> Result<Option<uuid::Uuid>, ProjectionError> {
        (!d.webhook_id.is_empty())
            .then(|| uuid(&d.webhook_id))
            .transpose()
    };
    let r = match env.event_type.as_str() {
        "report.created.v1" => {
            let d = decode::<pb::ReportCreated>(env)?
                .definition
                .unwrap_or_default();
            sqlx::query(&format!(
                "INSERT INTO scheduled_reports{s} (tenant_id, id, name, kind, cron, timezone, format, window_hours, \
                 webhook_id, enabled, created_by, created_at, updated_at, agg_version, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14)"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&d.name)
            .bind(&d.kind)
            .bind(&d.cron)
            .bind(&d.timezone)
            .bind(&d.format)
            .bind(d.window_hours as i32)
            .bind(webhook(&d)?)
            .bind(d.enabled)
            .bind(&by)
            .bind(at)
            .bind(v)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        "report.updated.v1" => {
            let d = decode::<pb::ReportUpdated>(env)?
                .definition
                .unwrap_or_default();
            sqlx::query(&format!(
                "UPDATE scheduled_reports{s} SET name = $4, cron = $5, timezone = $6, format = $7, \
                 window_hours = $8, webhook_id = $9, enabled = $10, updated_at = $11, agg_version = $3, \
                 position = $12 WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
            ))
            .bind(tenant)
            .bind(id)
            .bind(v)
            .bind(&d.name)
            .bind(&d.cron)
            .bind(&d.timezone)
            .bind(&d.format)
            .bind(d.window_hours as i32)
            .bind(webhook(&d)?)
            .bind(d.enabled)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?
        }
        "report.deleted.v1" => {
            sqlx::query(&format!(
            "UPDATE scheduled_reports{s} SET deleted = true, updated_at = $4, agg_version = $3, \
                 position = $5 WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
        ))
            .bind(tenant)
            .bind(id)
            .bind(v)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?
        }
        "report.ran.v1" => {
            let m: pb::ReportRan = decode(env)?;
            let slot = (m.slot > 0).then(|| at_secs(m.slot)).transpose()?;
            sqlx::query(&format!(
                "INSERT INTO report_runs{s} (tenant_id, id, report_id, trigger, slot, status, rows, bytes, \
                 delivery, detail, window_from, window_to, ran_by, ran_at, position) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(tenant)
            .bind(uuid(&m.run_id)?)
            .bind(id)
            .bind(&m.trigger)
            .bind(slot)
            .bind(&m.status)
            .bind(m.rows as i32)
            .bind(m.bytes as i64)
            .bind(&m.delivery)
            .bind(&m.detail)
            .bind(at_secs(m.window_from)?)
            .bind(at_secs(m.window_to)?)
            .bind(&by)
            .bind(at)
            .bind(position)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "UPDATE scheduled_reports{s} SET last_run_at = $4, \
                 last_slot = CASE WHEN $5::timestamptz IS NULL THEN last_slot ELSE greatest(last_slot, $5) END, \
                 agg_version = $3, position = $6 \
                 WHERE tenant_id = $1 AND id = $2 AND agg_version = $3 - 1"
            ))
            .bind(tenant)
            .bind(id)
            .bind(v)
            .bind(at)
            .bind(slot)
            .bind(position)
            .execute(&mut *tx)
            .await?
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "unknown integrations event {other}"
            )))
        }
    };
    one(r, env)
}
