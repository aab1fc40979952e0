//! What every handler shares.

use crate::auth::directory::Directory;
use crate::auth::throttle::Throttle;
use crate::auth::tokens::Keyring;
use crate::command::Executor;
use crate::config::Config;
use async_nats::jetstream::kv;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub executor: Executor,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub idempotency: kv::Store,
    /// Tenants proven to exist; a tenant is never deleted, so a hit needs no re-check.
    pub known_tenants: Arc<Mutex<HashSet<Uuid>>>,
    /// JWT keys and the credential pepper, derived from the root secret.
    pub keyring: Arc<Keyring>,
    /// Identity aggregates authentication reads, cached and invalidated by the log.
    pub directory: Directory,
    /// Credentials value reads check, cached and invalidated by the log the same way.
    pub credentials: Directory,
    pub login_throttle: Arc<LoginThrottle>,
    pub limits: Arc<crate::limits::Limits>,
    /// The background roles' health, for `/readyz`.
    pub supervision: Arc<crate::supervisor::Supervision>,
    pub rate_limiter: Arc<crate::auth::rate::RateLimiter>,
    /// Signs audit checkpoints; its public half verifies exported bundles.
    pub audit_key: Arc<ed25519_dalek::SigningKey>,
    /// Envelope encryption: the master key, tenant keys and secret keys.
    pub keys: crate::keys::KeyStore,
    /// When this instance's vault reactor last looked for due rotations (`/health`).
    pub vault_checked: Arc<Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
    /// `acp_ar_rule_match_latency_seconds`, observed by the auto-response reactor.
    pub ar_latency: Arc<crate::auto_response::metrics::MatchLatency>,
    /// `acp_webhook_delivery_total`, counted as deliveries end.
    pub deliveries: Arc<crate::integrations::metrics::Outcomes>,
    /// `acp_siem_push_total`, counted by event as pushes end.
    pub siem_pushes: Arc<crate::integrations::metrics::Outcomes>,
    /// Threat-intel: the per-tenant budget of provider calls and the lookup counter.
    pub threat_intel: Arc<crate::threat_intel::ThreatIntel>,
    /// The signed audit checkpoints read so far, and where their history was read up to.
    pub checkpoints: Arc<
        tokio::sync::Mutex<(
            Vec<crate::domain::audit::Checkpoint>,
            aegis_streams::Expected,
        )>,
    >,
    /// Rebuilds started over the API, by projection: what `GET /admin/projections` reports.
    pub rebuilds: Arc<
        Mutex<std::collections::HashMap<String, crate::http::audit::projections::RebuildState>>,
    >,
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
