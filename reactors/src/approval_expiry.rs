//! Approval expiry: every tick, approvals past their TTL are expired, each expiry an event.

use aegis_auto_response_services::approvals::expire_due;
use aegis_runtime::Runtime;
use std::time::Duration;
use tokio::sync::watch;

/// The expiry pass, every `every`, until shutdown.
pub async fn run(state: Runtime, every: Duration, shutdown: watch::Receiver<bool>) {
    crate::ticker::every("approval expiry", every, shutdown, || async {
        let n = expire_due(&state).await?;
        if n > 0 {
            tracing::info!(expired = n, "auto-response approvals expired");
        }
        Ok::<_, sqlx::Error>(())
    })
    .await
}
