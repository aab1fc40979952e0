//! Lease expiry: every tick, dynamic-secret leases past their end are ended (the role's
//! sessions ended and the role dropped, then the end recorded), without anyone asking. The
//! role's `VALID UNTIL` already refuses a password login once the time is up; this takes
//! the role away.

use aegis_runtime::Runtime;
use aegis_vault_services::dynamic::expire_due;
use std::time::Duration;
use tokio::sync::watch;

/// The most leases one pass ends; the rest wait for the next tick.
const BATCH: i64 = 100;

/// The expiry pass, every `every`, until shutdown.
pub async fn run(state: Runtime, every: Duration, shutdown: watch::Receiver<bool>) {
    crate::ticker::every("lease expiry", every, shutdown, || async {
        let n = expire_due(&state, BATCH).await?;
        if n > 0 {
            tracing::info!(expired = n, "dynamic secret leases expired");
        }
        Ok::<_, sqlx::Error>(())
    })
    .await
}
