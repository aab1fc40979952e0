//! The leak-scan worker: every tick, takes the scans waiting for a worker (queued, or left
//! running by a worker that fell silent) and runs them one after another, so one instance
//! never reads more than one target at a time. Several instances may run it: the scan's
//! decider lets exactly one take each scan.

use aegis_runtime::Runtime;
use aegis_vault_services::leakage::run::{due, run_scan};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Scans looked at per tick; the rest wait for the next.
const BATCH: i64 = 10;

/// The worker, every `every`, until shutdown.
pub async fn run(state: Runtime, every: Duration, shutdown: watch::Receiver<bool>) {
    let worker = format!("leak-scan-{}", Uuid::now_v7().simple());
    crate::ticker::every("leak scans", every, shutdown, || async {
        for (tenant, id) in due(&state, BATCH).await? {
            match run_scan(&state, tenant, &id, &worker).await {
                Ok(Some(status)) => tracing::info!(%tenant, scan = %id, %status, "leak scan ended"),
                Ok(None) => {}
                // The scan stays where it was; the next tick (or another worker) tries again.
                Err(e) => tracing::warn!(%tenant, scan = %id, error = %e, "leak scan stopped"),
            }
        }
        Ok::<_, sqlx::Error>(())
    })
    .await
}
