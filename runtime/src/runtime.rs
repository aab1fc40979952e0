//! What every application service and reactor needs to act, whatever adapter called it: the
//! configuration, the executor over the log, the read-model pool, the NATS client, the key
//! store, the identity and credential caches, the JWT key ring and the audit signing key.
//! Adapter state (HTTP limits, idempotency records, metrics) lives beside it, in the adapter.

use crate::command::Executor;
use crate::config::Config;
use crate::directory::Directory;
use crate::keys::KeyStore;
use crate::supervisor::Supervision;
use crate::tokens::Keyring;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

#[derive(Clone)]
pub struct Runtime {
    pub config: Arc<Config>,
    pub executor: Executor,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    /// Tenants proven to exist; a tenant is never deleted, so a hit needs no re-check.
    pub known_tenants: Arc<Mutex<HashSet<Uuid>>>,
    /// JWT keys and the credential pepper, derived from the root secret.
    pub keyring: Arc<Keyring>,
    /// Identity aggregates authentication reads, cached and invalidated by the log.
    pub directory: Directory,
    /// Credentials value reads check, cached and invalidated by the log the same way.
    pub credentials: Directory,
    /// The background roles' health, for `/readyz`.
    pub supervision: Arc<Supervision>,
    /// Signs audit checkpoints; its public half verifies exported bundles.
    pub audit_key: Arc<ed25519_dalek::SigningKey>,
    /// Envelope encryption: the master key, tenant keys and secret keys.
    pub keys: KeyStore,
    /// When this instance's vault reactor last looked for due rotations (`/health`).
    pub vault_checked: Arc<Mutex<Option<chrono::DateTime<chrono::Utc>>>>,
}
