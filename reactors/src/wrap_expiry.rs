//! Wrap expiry: every tick, single-shot wraps whose time ran out before anyone retrieved them
//! are ended (recorded, and their keys destroyed), so an unclaimed value does not wait sealed
//! for ever under a key that still opens it; and spent wraps whose key destruction a crash
//! interrupted are finished.

use aegis_broker_services::wraps::{destroy_spent_keys, expire_due};
use aegis_runtime::Runtime;
use std::time::Duration;
use tokio::sync::watch;

/// The most wraps one pass ends; the rest wait for the next tick.
const BATCH: i64 = 200;

/// The expiry pass, every `every`, until shutdown.
pub async fn run(state: Runtime, every: Duration, shutdown: watch::Receiver<bool>) {
    crate::ticker::every("wrap expiry", every, shutdown, || async {
        let n = expire_due(&state, BATCH).await?;
        if n > 0 {
            tracing::info!(expired = n, "single-shot wraps expired unretrieved");
        }
        let n = destroy_spent_keys(&state, BATCH).await?;
        if n > 0 {
            tracing::info!(keys = n, "spent wraps' keys destroyed late");
        }
        Ok::<_, aegis_broker_services::BrokerError>(())
    })
    .await
}
