//! What every handler shares.

use aegis_runtime::throttle::Throttle;
pub use aegis_runtime::Runtime;
use async_nats::jetstream::kv;
use std::sync::{Arc, Mutex};

/// The runtime every service needs, and what the HTTP and NATS adapters keep beside it, shared:
/// axum clones the state for every middleware and handler a request passes, so a clone is one
/// reference count (the fields themselves hold clients, pools and KV handles whose clones
/// allocate: `scripts/bench profile` showed those clones and drops at an eighth of a command's
/// CPU). Handlers read the fields through `Deref` (`state.idempotency`, `state.executor`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub runtime: Runtime,
    pub idempotency: kv::Store,
    pub login_throttle: Arc<LoginThrottle>,
    pub limits: Arc<crate::limits::Limits>,
    pub rate_limiter: Arc<crate::rate_limit::RateLimiter>,
    /// Threat-intel: the per-tenant budget of provider calls and the lookup counter.
    pub threat_intel: Arc<crate::threat_intel::ThreatIntel>,
    /// The signed audit checkpoints read so far, and where their history was read up to.
    pub checkpoints:
        Arc<tokio::sync::Mutex<(Vec<aegis_audit::Checkpoint>, aegis_streams::Expected)>>,
    /// Rebuilds started over the API, by projection: what `GET /admin/projections` reports.
    pub rebuilds: Arc<Mutex<std::collections::HashMap<String, RebuildState>>>,
    /// Usage records appended together (`crate::usage`).
    pub usage: Arc<crate::usage::UsageBatches>,
    /// The decision log's queue (`crate::access_log`).
    pub access_log: Arc<crate::access_log::AccessLog>,
    /// Turns true when the process is stopping: open streams end and tell their clients to
    /// reconnect elsewhere.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl std::ops::Deref for Shared {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}

/// Failed logins: per account and address together and per address (refusing), and per
/// account from every address (slowing down only, so nobody can lock a victim out).
pub struct LoginThrottle {
    pub pair: Throttle,
    pub source: Throttle,
    pub account: Throttle,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        let window = std::time::Duration::from_secs(15 * 60);
        Self {
            pair: Throttle::new(5, window),
            source: Throttle::new(20, window),
            // Counts failures for the slowdown; never refuses within any realistic burst.
            account: Throttle::new(10_000, window),
        }
    }
}

// A projection rebuild started over the API on this instance (`GET /admin/projections`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RebuildState {
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Commits replayed and the position the new tables stand at, when done.
    pub commits: Option<u64>,
    pub position: Option<u64>,
    pub error: Option<String>,
}
