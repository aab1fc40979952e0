//! Rotating a credential: the same path for `POST /credentials/{name}/rotate`, the
//! auto-response `rotate_credential` action and the rotation reactor.

use crate::access::open;
use crate::error::VaultError;
use crate::rotators;
use aegis_incidents::{IncidentId, NewIncident, Severity};
use aegis_runtime::command::CommandContext;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_vault::credentials::{Command, NewVersion};
use aegis_vault::{Credential, CredentialAggregate};
use chrono::{DateTime, Utc};
use std::time::Instant;
use uuid::Uuid;

/// What a completed rotation answers (seed 001).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotated {
    pub status: &'static str,
    pub credential: String,
    pub previous_version: u64,
    pub new_version: u64,
    pub duration_ms: u64,
    pub rotated_at: DateTime<Utc>,
}

/// Rotates `name`: takes the lease (409 while another rotation holds it), gets the next value
/// from the rotator, seals and records it. A failure leaves the old version active, records
/// the failure and opens an incident.
pub async fn rotate(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    name: &str,
    trigger: &str,
    reason: &str,
) -> Result<(Rotated, u64), VaultError> {
    let started = Instant::now();
    let agg = address::<CredentialAggregate>(tenant, name)
        .map_err(|e| VaultError::credential(name)(e.into()))?;
    let rotation = Uuid::now_v7().to_string();
    let start = rt
        .executor
        .execute::<CredentialAggregate>(
            &agg,
            &Command::StartRotation {
                id: rotation.clone(),
                trigger: trigger.into(),
                reason: reason.into(),
                now: Utc::now(),
            },
            ctx,
            false,
        )
        .await
        .map_err(VaultError::credential(name))?;
    let c = start
        .state
        .ok_or_else(|| VaultError::Missing(name.into()))?;
    let previous = c.version();
    let current = match c.current() {
        Some(_) => Some(open(rt, tenant, &c, None).await?),
        None => None,
    };
    let next = rotators::next_value(
        rt.config.egress(),
        &c.settings.rotator,
        name,
        current.as_deref().map(|s| s.as_str()),
    )
    .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let next = match next {
        Ok(v) => v,
        Err(e) => {
            let error = e.to_string();
            tracing::warn!(credential = %name, %tenant, error = %error, "rotation failed; the old version stays active");
            let failed = rt
                .executor
                .execute::<CredentialAggregate>(
                    &agg,
                    &Command::FailRotation {
                        id: rotation,
                        error: error.clone(),
                        duration_ms,
                    },
                    ctx,
                    false,
                )
                .await;
            if let Err(e) = failed {
                tracing::error!(credential = %name, error = %e, "could not record the failed rotation");
            }
            let incident = open_rotation_incident(rt, ctx, tenant, &c, &error).await;
            // The failure and its incident were recorded: the log's head covers both, so the
            // caller's next read reflects them.
            let position = rt.executor.store().head().await.ok();
            return Err(VaultError::RotationFailed {
                name: name.into(),
                previous,
                error,
                incident,
                position,
            });
        }
    };
    let version = previous + 1;
    let sealed = crate::keys::seal_version(rt, tenant, &c.id, version, next.as_bytes())
        .await
        .map_err(VaultError::key(name))?;
    let done = rt
        .executor
        .execute::<CredentialAggregate>(
            &agg,
            &Command::AddVersion {
                version: NewVersion {
                    version,
                    reason: "rotation".into(),
                    trigger: trigger.into(),
                    restored_from: None,
                    duration_ms,
                    sealed,
                    rotation_id: Some(rotation),
                    changed_by: String::new(),
                    own_key: true,
                },
                now: Utc::now(),
            },
            ctx,
            false,
        )
        .await
        .map_err(VaultError::credential(name))?;
    tracing::info!(credential = %name, %tenant, previous, version, duration_ms, trigger, "credential rotated");
    Ok((
        Rotated {
            status: "rotated",
            credential: name.into(),
            previous_version: previous,
            new_version: version,
            duration_ms,
            rotated_at: Utc::now(),
        },
        done.position,
    ))
}

/// One incident per credential version whose rotation fails: its id is derived from both, so
/// a retried or rescheduled failure finds the incident already open.
async fn open_rotation_incident(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    c: &Credential,
    error: &str,
) -> Option<IncidentId> {
    let id = IncidentId(aegis_kernel::derived_id(
        "aegis/rotation-failed/v1",
        &[
            tenant.as_bytes(),
            c.id.as_bytes(),
            &c.version().to_be_bytes(),
        ],
    ));
    aegis_incidents_services::open_once(
        rt,
        ctx,
        tenant,
        NewIncident {
            id,
            title: format!("Credential rotation failed: {}", c.name),
            severity: Severity::High,
            source: "vault".into(),
            description: format!(
                "Rotating `{}` failed and version {} stays active. Error: {error}",
                c.name,
                c.version()
            ),
            agent_id: None,
            dedup_key: None,
        },
    )
    .await
}
