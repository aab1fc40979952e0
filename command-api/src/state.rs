//! What every handler shares.

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
}
