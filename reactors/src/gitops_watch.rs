//! GitOps watches: every tick, the open watches of executed patch requests whose last poll is
//! older than `gitops_poll_ms` are polled (GET only) and each verdict recorded on its request.

use aegis_broker_services::requests::observe_due;
use aegis_runtime::Runtime;
use std::time::Duration;
use tokio::sync::watch;

/// The most requests one pass polls; the rest wait for the next tick.
const BATCH: i64 = 100;

/// The pass, every `every`, until shutdown.
pub async fn run(state: Runtime, every: Duration, shutdown: watch::Receiver<bool>) {
    crate::ticker::every("gitops watch", every, shutdown, || async {
        let n = observe_due(&state, BATCH).await?;
        if n > 0 {
            tracing::debug!(polls = n, "gitops applications polled");
        }
        Ok::<_, aegis_broker_services::BrokerError>(())
    })
    .await
}
