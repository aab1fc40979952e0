//! Reactors that work in passes rather than per event (approval expiry, due rotations): one
//! pass every period until shutdown, a pass that falls behind delaying the next instead of
//! bunching them up.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// Runs `pass` every `period` until `shutdown` changes; a pass that fails is logged and tried
/// again at the next tick.
pub async fn every<F, Fut, E>(
    what: &'static str,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = pass().await {
            tracing::warn!(error = %e, "{what} pass failed; retrying next tick");
        }
    }
}
