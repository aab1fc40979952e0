//! Access request expiry: every tick, pending requests whose time ran out are expired (and a
//! patch's sealed values with them), and approvals a crash left half done are carried
//! through (the job enqueued, or the request finished after its job ended).

use aegis_broker_services::requests::{expire_due, settle_approved};
use aegis_runtime::Runtime;
use std::time::Duration;
use tokio::sync::watch;

/// The most requests one pass touches; the rest wait for the next tick.
const BATCH: i64 = 200;

/// The pass, every `every`, until shutdown.
pub async fn run(state: Runtime, every: Duration, shutdown: watch::Receiver<bool>) {
    crate::ticker::every("request expiry", every, shutdown, || async {
        let n = expire_due(&state, BATCH).await?;
        if n > 0 {
            tracing::info!(expired = n, "access requests expired unapproved");
        }
        let n = settle_approved(&state, BATCH).await?;
        if n > 0 {
            tracing::info!(settled = n, "approved access requests carried through late");
        }
        Ok::<_, aegis_broker_services::BrokerError>(())
    })
    .await
}
