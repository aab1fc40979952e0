//! The fan-out's copy of each tenant's enabled webhooks.
//!
//! Reading them from the read model for every event cost two Postgres round trips per incident
//! event (waiting for the integrations projection, then the rows), each behind a pool ping:
//! the larger part of what the reactors spent on a command that concerned no webhook
//! (`scripts/bench`, the reactors' own process). A tenant's webhooks change only through its
//! webhook events, so the copy is kept until one arrives: through the fan-out's own consumer,
//! in log order with the events it notifies of (an instance that handles a webhook change
//! forgets the tenant's copy before it handles anything after it), and through a core NATS
//! subscription for changes another instance's consumer handled.

use crate::ReactorError;
use aegis_integrations::webhooks::Topic;
use aegis_projectors::integrations::IntegrationsProjection;
use aegis_projectors::Projection;
use aegis_runtime::Runtime;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Every webhook event of every tenant.
pub const WEBHOOK_EVENTS: &str = "aegis.evt.*.integrations.webhook.>";

/// A webhook row with its secrets still sealed.
#[derive(sqlx::FromRow)]
pub(super) struct Row {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub topics: Vec<String>,
    pub secret_version: i64,
    pub secret_nonce: Vec<u8>,
    pub secret_ciphertext: Vec<u8>,
}

pub(super) type TenantHooks = Arc<Vec<(Row, Vec<Topic>)>>;

#[derive(Default)]
pub(super) struct Hooks {
    by_tenant: Mutex<HashMap<Uuid, TenantHooks>>,
    /// Moves on every change heard of: a copy loaded while one was heard of is not kept,
    /// since the load may have read the read model before the change reached it.
    changes: AtomicU64,
}

impl Hooks {
    /// Forgets the tenant's copy: one of its webhooks changed.
    pub fn forget(&self, tenant: Uuid) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut t) = self.by_tenant.lock() {
            t.remove(&tenant);
        }
    }

    /// The tenant's enabled webhooks as of `position` (an event being fanned out): the copy,
    /// or the read model once it has applied that position.
    pub async fn of(
        &self,
        state: &Runtime,
        tenant: Uuid,
        position: u64,
    ) -> Result<TenantHooks, ReactorError> {
        if let Some(hit) = self
            .by_tenant
            .lock()
            .ok()
            .and_then(|t| t.get(&tenant).cloned())
        {
            return Ok(hit);
        }
        let seen = self.changes.load(Ordering::SeqCst);
        state
            .read_models_at(&[IntegrationsProjection::NAME], position)
            .await
            .map_err(super::fail)?;
        let loaded: TenantHooks = Arc::new(webhooks(state, tenant).await?);
        if self.changes.load(Ordering::SeqCst) == seen {
            if let Ok(mut t) = self.by_tenant.lock() {
                t.insert(tenant, loaded.clone());
            }
        }
        Ok(loaded)
    }
}

/// The tenant's enabled webhooks, with their topics, as the read model has them.
async fn webhooks(state: &Runtime, tenant: Uuid) -> Result<Vec<(Row, Vec<Topic>)>, ReactorError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, name, kind, topics, secret_version, secret_nonce, secret_ciphertext \
         FROM webhooks WHERE tenant_id = $1 AND NOT deleted AND enabled ORDER BY created_at",
    )
    .bind(tenant)
    .fetch_all(&state.pool)
    .await
    .map_err(super::fail)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let topics = r.topics.iter().filter_map(|t| Topic::parse(t)).collect();
            (r, topics)
        })
        .collect())
}
