//! The rotation reactor: rotates credentials whose scheduled or on-expiry rotation is due and
//! raises expiry alerts, once per version. Several instances may run it: the rotation lease
//! lets exactly one rotate a credential, and a repeated alert decides to nothing.

use aegis_runtime::command::CommandContext;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_vault::credentials::Command;
use aegis_vault::CredentialAggregate;
use aegis_vault_services::rotate;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// How many due credentials one tick handles; the rest wait for the next tick.
const BATCH: i64 = 100;

pub async fn run(state: Runtime, every: Duration, shutdown: watch::Receiver<bool>) {
    crate::ticker::every("vault scheduler", every, shutdown, || async {
        once(&state).await.map(|_| ())
    })
    .await
}

/// One pass: due rotations, then expiry alerts. Returns how many credentials it acted on.
pub async fn once(state: &Runtime) -> Result<usize, sqlx::Error> {
    if let Ok(mut at) = state.vault_checked.lock() {
        *at = Some(Utc::now());
    }
    let due: Vec<(Uuid, String, String)> = sqlx::query_as(
        "SELECT tenant_id, name, rotation_strategy FROM vault_credentials \
         WHERE lifecycle = 'active' AND next_rotation_at <= now() AND NOT rotating \
         ORDER BY next_rotation_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await?;
    let mut acted = 0;
    for (tenant, name, strategy) in due {
        let ctx = CommandContext::system("vault-rotation");
        match rotate(state, &ctx, tenant, &name, &strategy, "due").await {
            Ok(_) => acted += 1,
            // Another instance holds the lease, or the failure is recorded with an incident.
            Err(e) => {
                tracing::info!(credential = %name, %tenant, error = %e, "scheduled rotation did not complete")
            }
        }
    }
    let expiring: Vec<(Uuid, String, i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT tenant_id, name, version, expires_at FROM vault_credentials \
         WHERE lifecycle = 'active' AND expires_at IS NOT NULL \
           AND expires_at - make_interval(hours => alert_threshold_hours) <= now() \
           AND alerted_version IS DISTINCT FROM version \
         ORDER BY expires_at LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await?;
    for (tenant, name, version, expires_at) in expiring {
        let Ok(agg) = address::<CredentialAggregate>(tenant, name.as_str()) else {
            continue;
        };
        let alert = Command::AlertExpiry {
            version: version as u64,
            expires_at,
        };
        let ctx = CommandContext::system("vault-expiry");
        match state
            .executor
            .execute::<CredentialAggregate>(&agg, &alert, &ctx, false)
            .await
        {
            Ok(_) => acted += 1,
            Err(e) => {
                tracing::warn!(credential = %name, %tenant, error = %e, "could not record an expiry alert")
            }
        }
    }
    Ok(acted)
}
