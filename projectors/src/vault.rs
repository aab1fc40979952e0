//! Read model of the vault context: one row per credential (never its value), the reads that
//! make usage_stats, and the health dashboard's alerts.

use crate::event::{decode, occurred_at, one, uuid};
use crate::runner::{Projection, ProjectionError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_streams::StoredCommit;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct VaultProjection;

/// The settings columns, in the order [`bind_settings`] binds them from `$4`.
const SETTINGS: &str = "description = $4, expires_at = $5, rotation_enabled = $6, \
    rotation_interval_hours = $7, rotation_strategy = $8, rotator = $9, alert_threshold_hours = $10, \
    tags = $11, metadata = $12, provider_credential_id = $13";

/// When a self-rotating credential is next due, from its settings and the current value's age.
const NEXT_ROTATION: &str = "next_rotation_at = CASE \
    WHEN NOT rotation_enabled THEN NULL \
    WHEN rotation_strategy = 'scheduled' THEN value_since + make_interval(hours => rotation_interval_hours) \
    WHEN rotation_strategy = 'on_expiry' THEN expires_at - make_interval(hours => LEAST(alert_threshold_hours, 24)) \
    END";

/// Recomputes when the credential is next due, after its settings or its value changed.
async fn reschedule(
    tx: &mut PgConnection,
    s: &str,
    tenant: Uuid,
    name: &str,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "UPDATE vault_credentials{s} SET {NEXT_ROTATION} WHERE tenant_id = $1 AND name = $2"
    ))
    .bind(tenant)
    .bind(name)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_settings<'q>(q: Query<'q>, s: &'q pb::Settings) -> Query<'q> {
    let expires = (s.expires_at != 0)
        .then(|| DateTime::<Utc>::from_timestamp(s.expires_at, 0))
        .flatten();
    // metadata_json, when written, is the whole metadata (any JSON values).
    let metadata = serde_json::from_str::<serde_json::Value>(&s.metadata_json)
        .ok()
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::to_value(&s.metadata).unwrap_or_default());
    q.bind(&s.description)
        .bind(expires)
        .bind(s.rotation_enabled)
        .bind(s.rotation_interval_hours as i32)
        .bind(&s.rotation_strategy)
        .bind(s.rotator.as_ref().map_or("generated", |r| r.kind.as_str()))
        .bind(s.alert_threshold_hours as i32)
        .bind(&s.tags)
        .bind(metadata)
        .bind((!s.provider_credential_id.is_empty()).then_some(&s.provider_credential_id))
}

async fn alert(
    tx: &mut PgConnection,
    s: &str,
    key: (Uuid, &str, DateTime<Utc>, i64, i32),
    alert_type: &str,
    message: String,
) -> Result<(), ProjectionError> {
    let (tenant, name, at, position, idx) = key;
    sqlx::query(&format!(
        "INSERT INTO vault_alerts{s} (tenant_id, name, alert_type, message, created_at, position, idx) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(tenant)
    .bind(name)
    .bind(alert_type)
    .bind(message)
    .bind(at)
    .bind(position)
    .bind(idx)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Projection for VaultProjection {
    const NAME: &'static str = "vault";
    const TABLES: &'static [&'static str] = &[
        "vault_credentials",
        "vault_credential_uses",
        "vault_alerts",
        "vault_credential_versions",
        "vault_dynamic_configs",
        "vault_dynamic_leases",
        "vault_leak_policies",
        "vault_leak_incidents",
        "vault_leak_scans",
    ];

    fn handles(&self, e: &Envelope) -> bool {
        e.context == "vault"
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        s: &str,
        commit: &StoredCommit,
    ) -> Result<(), ProjectionError> {
        if crate::vault_reads::only_reads(commit) {
            return crate::vault_reads::apply(tx, s, commit).await;
        }
        let position = commit.position as i64;
        for (idx, env) in commit.events.iter().enumerate() {
            // A batch that holds vault events hands this projection every commit in it.
            if !self.handles(env) {
                continue;
            }
            if crate::vault_leakage::handles(env) {
                crate::vault_leakage::apply(tx, s, env).await?;
                continue;
            }
            let tenant = uuid(&env.tenant_id)?;
            let at = occurred_at(env);
            let v = env.aggregate_version as i64;
            let name = env.aggregate_id.as_str();
            let key = (tenant, name, at, position, idx as i32);
            // Every change to a credential row names the version it expects the row at.
            let update = |set: &str| {
                format!(
                    "UPDATE vault_credentials{s} SET {set}, agg_version = $3, position = {position} \
                     WHERE tenant_id = $1 AND name = $2 AND agg_version = $3 - 1"
                )
            };
            match env.event_type.as_str() {
                "credential.created.v1" => {
                    let m: pb::CredentialCreated = decode(env)?;
                    let settings = m.settings.unwrap_or_default();
                    let sql = format!(
                        "INSERT INTO vault_credentials{s} (tenant_id, name, agg_version, description, expires_at, \
                         rotation_enabled, rotation_interval_hours, rotation_strategy, rotator, \
                         alert_threshold_hours, tags, metadata, provider_credential_id, id, credential_type, \
                         provider, lifecycle, version, value_since, created_at, updated_at, position) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                         'active', 0, $17, $17, $17, $18)"
                    );
                    let q = sqlx::query(&sql).bind(tenant).bind(name).bind(v);
                    bind_settings(q, &settings)
                        .bind(&m.id)
                        .bind(&m.credential_type)
                        .bind(&m.provider)
                        .bind(at)
                        .bind(position)
                        .execute(&mut *tx)
                        .await?;
                    reschedule(tx, s, tenant, name).await?;
                }
                "credential.updated.v1" => {
                    let m: pb::CredentialUpdated = decode(env)?;
                    let settings = m.settings.unwrap_or_default();
                    let sql = update(&format!("{SETTINGS}, updated_at = $14"));
                    let q = sqlx::query(&sql).bind(tenant).bind(name).bind(v);
                    one(
                        bind_settings(q, &settings)
                            .bind(at)
                            .execute(&mut *tx)
                            .await?,
                        env,
                    )?;
                    reschedule(tx, s, tenant, name).await?;
                }
                "credential.version_added.v1" => {
                    let m: pb::VersionAdded = decode(env)?;
                    let rotated = m.reason == "rotation";
                    let r = sqlx::query(&update(
                        "version = $4, value_since = $5, updated_at = $5, \
                         rotating = CASE WHEN $6 THEN false ELSE rotating END, \
                         last_rotated_at = CASE WHEN $6 THEN $5 ELSE last_rotated_at END, \
                         last_rotation_error = CASE WHEN $6 THEN NULL ELSE last_rotation_error END",
                    ))
                    .bind(tenant)
                    .bind(name)
                    .bind(v)
                    .bind(m.version as i64)
                    .bind(at)
                    .bind(rotated)
                    .execute(&mut *tx)
                    .await?;
                    one(r, env)?;
                    sqlx::query(&format!(
                        "INSERT INTO vault_credential_versions{s} (tenant_id, name, version, state, created_at) \
                         VALUES ($1, $2, $3, 'active', $4)"
                    ))
                    .bind(tenant)
                    .bind(name)
                    .bind(m.version as i64)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    reschedule(tx, s, tenant, name).await?;
                }
                // Both change the credential (its version moves on); a state also moves in
                // the version table.
                "credential.version_state_changed.v1" | "credential.retention_set.v1" => {
                    let r = sqlx::query(&update("updated_at = $4"))
                        .bind(tenant)
                        .bind(name)
                        .bind(v)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    one(r, env)?;
                    if env.event_type == "credential.version_state_changed.v1" {
                        let m: pb::VersionStateChanged = decode(env)?;
                        sqlx::query(&format!(
                            "UPDATE vault_credential_versions{s} SET state = $4 \
                             WHERE tenant_id = $1 AND name = $2 AND version = $3"
                        ))
                        .bind(tenant)
                        .bind(name)
                        .bind(m.version as i64)
                        .bind(&m.state)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                "credential.rotation_started.v1" => {
                    let r = sqlx::query(&update("rotating = true"))
                        .bind(tenant)
                        .bind(name)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                    one(r, env)?;
                }
                "credential.rotation_failed.v1" => {
                    let m: pb::RotationFailed = decode(env)?;
                    let r = sqlx::query(&update("rotating = false, last_rotation_error = $4"))
                        .bind(tenant)
                        .bind(name)
                        .bind(v)
                        .bind(&m.error)
                        .execute(&mut *tx)
                        .await?;
                    one(r, env)?;
                    alert(
                        tx,
                        s,
                        key,
                        "rotation_failed",
                        format!("Rotation failed: {}", m.error),
                    )
                    .await?;
                }
                "credential.retired.v1" | "credential.destroyed.v1" => {
                    let lifecycle = if env.event_type == "credential.retired.v1" {
                        "retired"
                    } else {
                        "destroyed"
                    };
                    let r = sqlx::query(&update(
                        "lifecycle = $4, updated_at = $5, rotating = false, next_rotation_at = NULL",
                    ))
                    .bind(tenant)
                    .bind(name)
                    .bind(v)
                    .bind(lifecycle)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    one(r, env)?;
                    if lifecycle == "destroyed" {
                        sqlx::query(&format!(
                            "UPDATE vault_credential_versions{s} SET state = 'destroyed' \
                             WHERE tenant_id = $1 AND name = $2"
                        ))
                        .bind(tenant)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                "credential.health_checked.v1" => {
                    let m: pb::HealthChecked = decode(env)?;
                    let health = if m.healthy { "healthy" } else { "unhealthy" };
                    let r = sqlx::query(&update(
                        "health = $4, health_error = $5, last_health_check = $6, health_response_ms = $7",
                    ))
                    .bind(tenant)
                    .bind(name)
                    .bind(v)
                    .bind(health)
                    .bind((!m.error.is_empty()).then_some(&m.error))
                    .bind(at)
                    .bind(m.response_time_ms as i64)
                    .execute(&mut *tx)
                    .await?;
                    one(r, env)?;
                    if !m.healthy {
                        alert(
                            tx,
                            s,
                            key,
                            "unhealthy",
                            format!("Health check failed: {}", m.error),
                        )
                        .await?;
                    }
                }
                "credential.expiry_alerted.v1" => {
                    let m: pb::ExpiryAlerted = decode(env)?;
                    let r = sqlx::query(&update("alerted_version = $4"))
                        .bind(tenant)
                        .bind(name)
                        .bind(v)
                        .bind(m.version as i64)
                        .execute(&mut *tx)
                        .await?;
                    one(r, env)?;
                    let expires =
                        DateTime::<Utc>::from_timestamp(m.expires_at, 0).unwrap_or_default();
                    let hours = (expires - at).num_hours().max(0);
                    let message = if hours >= 48 {
                        format!("Credential expires in {} days", hours / 24)
                    } else {
                        format!("Credential expires in {hours} hours")
                    };
                    alert(tx, s, key, "expiring", message).await?;
                }
                "credential.applied.v1" => {
                    let r = sqlx::query(&update("updated_at = updated_at"))
                        .bind(tenant)
                        .bind(name)
                        .bind(v)
                        .execute(&mut *tx)
                        .await?;
                    one(r, env)?;
                }
                // A read is a commit of reads of its own: `crate::vault_reads` applied it.
                "credential.value_read.v1" => {}
                // The values are unreadable now; the rows keep what they said (names, history),
                // and a read answers 410.
                "tenant_key.destroyed.v1" => {}
                "dynamic_config.created.v1" => {
                    let m: pb::DynamicConfigCreated = decode(env)?;
                    sqlx::query(&format!(
                        "INSERT INTO vault_dynamic_configs{s} (tenant_id, id, name, kind, backend, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)"
                    ))
                    .bind(tenant)
                    .bind(&m.id)
                    .bind(&m.name)
                    .bind(&m.kind)
                    .bind(&m.backend)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                "lease.issued.v1" => {
                    let m: pb::LeaseIssued = decode(env)?;
                    sqlx::query(&format!(
                        "INSERT INTO vault_dynamic_leases{s} (tenant_id, id, config_id, username, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)"
                    ))
                    .bind(tenant)
                    .bind(name)
                    .bind(&m.config_id)
                    .bind(&m.username)
                    .bind(at)
                    .bind(DateTime::from_timestamp(m.expires_at, 0).unwrap_or_default())
                    .execute(&mut *tx)
                    .await?;
                }
                "lease.renewed.v1" | "lease.revoked.v1" => {
                    let (set, value) = if env.event_type == "lease.renewed.v1" {
                        let m: pb::LeaseRenewed = decode(env)?;
                        ("expires_at = $3", DateTime::from_timestamp(m.expires_at, 0))
                    } else {
                        ("ended_at = $3", Some(at))
                    };
                    let ended = if env.event_type == "lease.revoked.v1" {
                        Some(decode::<pb::LeaseRevoked>(env)?.reason)
                    } else {
                        None
                    };
                    sqlx::query(&format!(
                        "UPDATE vault_dynamic_leases{s} SET {set}, ended = COALESCE($4, ended) \
                         WHERE tenant_id = $1 AND id = $2"
                    ))
                    .bind(tenant)
                    .bind(name)
                    .bind(value.unwrap_or_default())
                    .bind(ended)
                    .execute(&mut *tx)
                    .await?;
                }
                other => {
                    return Err(ProjectionError::Decode(format!(
                        "unknown vault event {other}"
                    )))
                }
            }
        }
        Ok(())
    }
}
