//! Per-tenant and process-wide bounds on what a caller can make Aegis hold open or repeat:
//! live event streams, NATS command requests in flight, manual report runs. Each answers 503
//! (or 429 for a rate) with `Retry-After` when full, never grows without end.

use crate::error::ApiError;
use aegis_runtime::throttle::Throttle;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Live `/events/stream` connections one tenant may hold (each is a JetStream consumer).
pub const STREAMS_PER_TENANT: usize = 32;
/// Live streams across all tenants.
pub const STREAMS_TOTAL: usize = 1024;
/// NATS command requests handled at once; more wait in the subscription's buffer.
pub const BRIDGE_IN_FLIGHT: usize = 256;
/// Manual report runs per tenant in ten minutes.
pub const MANUAL_REPORT_RUNS: usize = 10;
/// HTTP commands handled at once by default (`AEGIS_MAX_COMMANDS_IN_FLIGHT`).
pub const COMMANDS_IN_FLIGHT: usize = 512;

pub struct Limits {
    streams: Arc<Mutex<HashMap<uuid::Uuid, usize>>>,
    pub bridge: Arc<tokio::sync::Semaphore>,
    pub report_runs: Throttle,
    /// HTTP commands (every method but GET, HEAD and OPTIONS) being handled; one more past
    /// the bound is answered 503 at once instead of queueing without end.
    pub commands: Arc<tokio::sync::Semaphore>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(COMMANDS_IN_FLIGHT)
    }
}

impl Limits {
    pub fn new(commands_in_flight: usize) -> Self {
        Self {
            streams: Arc::default(),
            bridge: Arc::new(tokio::sync::Semaphore::new(BRIDGE_IN_FLIGHT)),
            report_runs: Throttle::new(MANUAL_REPORT_RUNS, Duration::from_secs(600)),
            commands: Arc::new(tokio::sync::Semaphore::new(commands_in_flight.max(1))),
        }
    }
}

/// A live stream's place; dropping it frees the place.
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<uuid::Uuid, usize>>>,
    tenant: uuid::Uuid,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = streams.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                streams.remove(&self.tenant);
            }
        }
    }
}

impl Limits {
    /// A place for one more live stream of `tenant`, or 503 when the tenant or the server
    /// holds as many as it may.
    pub fn stream(&self, tenant: uuid::Uuid) -> Result<StreamSlot, ApiError> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = streams.values().sum();
        let mine = streams.get(&tenant).copied().unwrap_or(0);
        if mine >= STREAMS_PER_TENANT {
            return Err(ApiError::unavailable(
                format!("this tenant holds {STREAMS_PER_TENANT} live streams, the most it may; close one"),
                5,
            ));
        }
        if total >= STREAMS_TOTAL {
            return Err(ApiError::unavailable(
                "too many live streams on this server",
                5,
            ));
        }
        *streams.entry(tenant).or_default() += 1;
        Ok(StreamSlot {
            streams: self.streams.clone(),
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_past_the_bound_find_no_place_until_one_ends() {
        let limits = Limits::new(2);
        let a = limits.commands.clone().try_acquire_owned().expect("first");
        let _b = limits.commands.clone().try_acquire_owned().expect("second");
        assert!(limits.commands.clone().try_acquire_owned().is_err());
        drop(a);
        assert!(limits.commands.clone().try_acquire_owned().is_ok());
    }

    #[test]
    fn a_tenant_holds_at_most_its_streams_and_gets_them_back() {
        let limits = Limits::default();
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let held: Vec<_> = (0..STREAMS_PER_TENANT)
            .map(|_| limits.stream(a).expect("a place"))
            .collect();
        let refused = limits.stream(a).err().expect("full");
        assert_eq!(refused.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(limits.stream(b).is_ok(), "another tenant is not affected");
        drop(held);
        assert!(limits.stream(a).is_ok());
    }
}
