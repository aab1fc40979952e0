//! Approval expiry: every tick, approvals past their TTL are expired, each expiry an event.

use aegis_auto_response_services::approvals::expire_due;
use aegis_runtime::Runtime;
use std::time::Duration;
use tokio::sync::watch;

/// The expiry pass, every `every`, until shutdown.
pub async fn run(state: Runtime, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match expire_due(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "auto-response approvals expired"),
            Err(e) => tracing::warn!(error = %e, "approval expiry pass failed; retrying next tick"),
        }
    }
}
