//! The leakage part of the vault's read model: policies, incidents (their timeline a JSON
//! array the events append to) and scans.

use crate::event::{decode, occurred_at, uuid};
use crate::runner::ProjectionError;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use chrono::DateTime;
use serde_json::json;
use sqlx::PgConnection;

/// Whether `env` is a leakage event (the vault projection hands these here).
pub fn handles(env: &Envelope) -> bool {
    env.aggregate_type.starts_with("leak_")
}

async fn timeline(
    tx: &mut PgConnection,
    s: &str,
    env: &Envelope,
    entry: serde_json::Value,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "UPDATE vault_leak_incidents{s} SET timeline = timeline || jsonb_build_array($3::jsonb), updated_at = $4 \
         WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(uuid(&env.tenant_id)?)
    .bind(&env.aggregate_id)
    .bind(entry)
    .bind(occurred_at(env))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub async fn apply(tx: &mut PgConnection, s: &str, env: &Envelope) -> Result<(), ProjectionError> {
    let tenant = uuid(&env.tenant_id)?;
    let id = env.aggregate_id.as_str();
    let at = occurred_at(env);
    match env.event_type.as_str() {
        "leak_policy.created.v1" => {
            let m: pb::LeakPolicyCreated = decode(env)?;
            let patterns: Vec<_> = m
                .patterns
                .iter()
                .map(|p| json!({"type": p.r#type, "pattern": p.pattern, "severity": p.severity}))
                .collect();
            sqlx::query(&format!(
                "INSERT INTO vault_leak_policies{s} (tenant_id, id, name, description, patterns, scan_targets, actions, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&m.name)
            .bind(&m.description)
            .bind(json!(patterns))
            .bind(&m.scan_targets)
            .bind(json!({"onDetection": m.on_detection, "notificationChannels": m.notification_channels}))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        "leak_policy.deleted.v1" => {
            sqlx::query(&format!(
                "DELETE FROM vault_leak_policies{s} WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        "leak_incident.reported.v1" => {
            let m: pb::LeakIncidentReported = decode(env)?;
            let details = serde_json::from_str::<serde_json::Value>(&m.details_json)
                .ok()
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| json!({}));
            let detected = DateTime::from_timestamp_millis(m.detected_at).unwrap_or(at);
            let first = json!({
                "at": at, "event": "detected", "by": m.reported_by, "scanId": m.scan_id,
                "location": m.location,
            });
            sqlx::query(&format!(
                "INSERT INTO vault_leak_incidents{s} (tenant_id, id, secret_id, secret_version, source, location, \
                 severity, status, details, timeline, detected_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, jsonb_build_array($9::jsonb), $10, $11, $11) \
                 ON CONFLICT DO NOTHING"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&m.credential_name)
            .bind(m.credential_version)
            .bind(&m.source)
            .bind(&m.location)
            .bind(&m.severity)
            .bind(details)
            .bind(first)
            .bind(detected)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        "leak_incident.seen_again.v1" => {
            let m: pb::LeakIncidentSeenAgain = decode(env)?;
            let entry = json!({"at": at, "event": "seen_again", "scanId": m.scan_id, "location": m.location});
            timeline(tx, s, env, entry).await?;
        }
        "leak_incident.status_changed.v1" => {
            let m: pb::LeakIncidentStatusChanged = decode(env)?;
            let entry = json!({
                "at": at, "event": "status_changed", "status": m.status, "by": m.changed_by,
                "resolution": m.resolution, "notes": m.notes,
            });
            timeline(tx, s, env, entry).await?;
            sqlx::query(&format!(
                "UPDATE vault_leak_incidents{s} SET status = $3, \
                 resolution = CASE WHEN $4 = '' THEN resolution ELSE $4 END, \
                 notes = CASE WHEN $5 = '' THEN notes ELSE $5 END WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&m.status)
            .bind(&m.resolution)
            .bind(&m.notes)
            .execute(&mut *tx)
            .await?;
        }
        "leak_incident.acted.v1" => {
            let m: pb::LeakIncidentActed = decode(env)?;
            let event = match (m.action.as_str(), m.outcome.as_str()) {
                ("rotate", "done") => "rotated",
                ("revoke", "done") => "revoked",
                _ => "action_failed",
            };
            let entry = json!({"at": at, "event": event, "action": m.action, "outcome": m.outcome, "detail": m.detail});
            timeline(tx, s, env, entry).await?;
        }
        "leak_scan.queued.v1" => {
            let m: pb::LeakScanQueued = decode(env)?;
            sqlx::query(&format!(
                "INSERT INTO vault_leak_scans{s} (tenant_id, id, status, targets_total, queued_at, touched_at) \
                 VALUES ($1, $2, 'queued', $3, $4, $4) ON CONFLICT DO NOTHING"
            ))
            .bind(tenant)
            .bind(id)
            .bind((m.repositories.len() + m.urls.len()) as i32)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        "leak_scan.started.v1" => {
            let set = "status = 'running', started_at = $3, targets_done = 0, bytes_scanned = 0, findings = 0";
            scan(tx, s, env, set, Tally::default()).await?;
        }
        "leak_scan.progressed.v1" => {
            let m: pb::LeakScanProgressed = decode(env)?;
            let tally = Tally {
                done: m.targets_done.into(),
                bytes: m.bytes_scanned as i64,
                findings: m.findings.into(),
                reason: None,
            };
            scan(
                tx,
                s,
                env,
                "targets_done = $4, bytes_scanned = $5, findings = $6",
                tally,
            )
            .await?;
        }
        "leak_scan.completed.v1" => {
            let m: pb::LeakScanCompleted = decode(env)?;
            let tally = Tally {
                done: 0,
                bytes: m.bytes_scanned as i64,
                findings: m.findings.into(),
                reason: None,
            };
            let set = "status = 'completed', completed_at = $3, targets_done = targets_total, bytes_scanned = $5, findings = $6";
            scan(tx, s, env, set, tally).await?;
        }
        "leak_scan.failed.v1" => {
            let m: pb::LeakScanFailed = decode(env)?;
            let tally = Tally {
                done: 0,
                bytes: m.bytes_scanned as i64,
                findings: m.findings.into(),
                reason: Some(m.reason),
            };
            let set = "status = 'failed', completed_at = $3, bytes_scanned = $5, findings = $6";
            scan(tx, s, env, set, tally).await?;
        }
        other => {
            return Err(ProjectionError::Decode(format!(
                "unknown leakage event {other}"
            )))
        }
    }
    Ok(())
}

/// What a scan event says of its progress.
#[derive(Default)]
struct Tally {
    done: i64,
    bytes: i64,
    findings: i64,
    reason: Option<String>,
}

/// Updates a scan row: `set` may use $3 (when), $4 (targets done), $5 (bytes), $6 (findings);
/// the statement declares all their types, so one `set` leaves unused is fine.
async fn scan(
    tx: &mut PgConnection,
    s: &str,
    env: &Envelope,
    set: &str,
    t: Tally,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "UPDATE vault_leak_scans{s} SET {set}, reason = COALESCE($7, reason), touched_at = $3 \
         WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(uuid(&env.tenant_id)?)
    .bind(&env.aggregate_id)
    .bind(occurred_at(env))
    .bind(t.done)
    .bind(t.bytes)
    .bind(t.findings)
    .bind(t.reason)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
