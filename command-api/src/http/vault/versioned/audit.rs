//! The audit trail of one versioned secret (`GET /v1/versioned-secrets/{secretId}/audit`):
//! its writes, rollbacks and state changes from the secret's own history in the log, and its
//! value reads from the audit read model, each read's version from its commit.

use super::super::errors::missing;
use super::shapes::SecretAuditEntry;
use crate::error::ApiError;
use crate::http::aggregate;
use crate::http::extract::MinPosition;
use crate::state::AppState;
use aegis_kernel::{occurred_at, Aggregate};
use aegis_projectors::audit::AuditProjection;
use aegis_projectors::Projection;
use aegis_schemas::envelope::v1::Envelope;
use aegis_streams::Expected;
use aegis_vault::credentials::Event;
use aegis_vault::reads::CredentialReadAggregate;
use aegis_vault::CredentialAggregate;
use uuid::Uuid;

fn actor(env: &Envelope) -> String {
    env.actor
        .as_ref()
        .map(|a| a.subject.clone())
        .unwrap_or_default()
}

fn entry(env: &Envelope, action: &str, version: u64, success: bool) -> SecretAuditEntry {
    SecretAuditEntry {
        event_id: env.event_id.clone(),
        action: action.into(),
        version,
        actor: actor(env),
        timestamp: occurred_at(env),
        success,
    }
}

/// `name`'s trail, oldest first, with at most `reads` of its value reads (the newest).
pub async fn trail(
    state: &AppState,
    min: &MinPosition,
    tenant: Uuid,
    name: &str,
    reads: i64,
) -> Result<Vec<SecretAuditEntry>, ApiError> {
    let agg = aggregate::<CredentialAggregate>(tenant, name)?;
    let history = state.executor.store().load(&agg, Expected::NEW).await?;
    if history.commits.is_empty() {
        return Err(missing(name));
    }
    let mut out = Vec::new();
    for env in history.commits.iter().flat_map(|c| &c.events) {
        match CredentialAggregate::decode(env)? {
            Event::VersionAdded(v) if v.restored_from.is_some() => {
                out.push(entry(env, "rollback", v.version, true));
            }
            Event::VersionAdded(v) => out.push(entry(env, "created", v.version, true)),
            Event::VersionStateChanged { version, state, .. } => {
                out.push(entry(env, state.as_str(), version, true));
            }
            _ => {}
        }
    }
    min.wait(state, &[AuditProjection::NAME]).await?;
    let pattern = format!(
        "{}/%",
        name.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT position, idx FROM audit_events WHERE tenant_id = $1 \
         AND event_type = 'credential.value_read.v1' AND resource_id LIKE $2 ESCAPE '\\' \
         ORDER BY position DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(&pattern)
    .bind(reads)
    .fetch_all(&state.pool)
    .await?;
    for (position, idx) in rows {
        let commit = state.executor.store().get(position as u64).await?;
        let Some(env) = commit.events.get(idx as usize) else {
            continue;
        };
        let read = CredentialReadAggregate::decode(env)?;
        // The pattern's prefix is the name; the aggregate id confirms it exactly.
        if read.name == name {
            out.push(entry(env, "read", read.version, read.refused.is_none()));
        }
    }
    out.sort_by_key(|e| (e.timestamp, e.event_id.clone()));
    Ok(out)
}
