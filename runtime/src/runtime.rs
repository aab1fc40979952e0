//! What every application service and reactor needs to act, whatever adapter called it: the
//! configuration, the executor over the log, the read-model pool, the NATS client, the key
//! store, the identity and credential caches, the JWT key ring and the audit signing key.
//! Adapter state (HTTP limits, idempotency records, metrics) lives beside it, in the adapter.

use crate::command::{CommandError, Executor};
use crate::config::Config;
use crate::directory::Directory;
use crate::group_commit::{GroupCommit, GroupError};
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::positions::Positions;
use crate::supervisor::Supervision;
use crate::tokens::Keyring;
use aegis_kernel::Aggregate;
use aegis_streams::{AggregateRef, Expected, Metadata, NewEvent, SubjectError};
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
    /// What the reactors count as they act, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Each principal's last answered write position, for read-your-writes.
    pub positions: Positions,
    /// The highest position each projection was seen at (positions only grow), so a read
    /// whose position a projection is known to have applied asks Postgres nothing.
    pub applied: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    /// Records that never refuse, group-committed (`crate::records`).
    pub records: Arc<Records>,
}

impl Runtime {
    /// The current state of an aggregate of `tenant`, from the log (through the executor's
    /// cache): the state, the position of its last commit and its version.
    pub async fn current<A: Aggregate>(
        &self,
        tenant: Uuid,
        id: impl Into<String>,
    ) -> Result<(A::State, u64, u64), CommandError<A::Error>> {
        let agg = address::<A>(tenant, id)?;
        let (state, expected) = self.executor.load::<A>(&agg).await?;
        Ok((state, expected.last_seq, expected.version))
    }
}

/// The address of an aggregate of `tenant`. Contexts and aggregate types are constants, so
/// only an empty or malformed id is refused.
pub fn address<A: Aggregate>(
    tenant: Uuid,
    id: impl Into<String>,
) -> Result<AggregateRef, SubjectError> {
    AggregateRef::new(tenant, A::CONTEXT, A::AGGREGATE, id)
}

// Records that never refuse (a value read's audit event) are written by group commit: the
// records of one tenant and aggregate type that arrive together share one commit on a fresh
// aggregate, each event with its own actor, correlation and time. Concurrent readers then cost
// one write per commit instead of one each, and each still returns only once its record is
// durable.

/// Most records in one commit: a read's event is a few hundred bytes, so a full commit stays
/// far below the server's payload limit.
pub const MOST_PER_COMMIT: usize = 256;

pub type Records = GroupCommit<(NewEvent, Metadata)>;

impl Runtime {
    /// Appends `event` (by whoever `meta` names) as a new aggregate of type `A`, sharing the
    /// commit with the other records of the tenant and type that arrive meanwhile; the commit's
    /// position once it is durable. `A`'s decider is not asked: a record of this kind is a new
    /// aggregate that cannot refuse.
    pub async fn record<A: Aggregate>(
        &self,
        tenant: Uuid,
        event: NewEvent,
        meta: Metadata,
    ) -> Result<u64, GroupError> {
        let key = format!("{tenant}.{}.{}", A::CONTEXT, A::AGGREGATE);
        let store = self.executor.store().clone();
        self.records
            .record(key, (event, meta), |records| {
                let store = store.clone();
                async move {
                    let agg = address::<A>(tenant, Uuid::now_v7().to_string())
                        .map_err(GroupError::new)?;
                    let (events, metas): (Vec<NewEvent>, Vec<Metadata>) =
                        records.into_iter().unzip();
                    let events = events.into_iter().zip(&metas).collect();
                    let appended = store
                        .append_each(&agg, &Expected::NEW, events, None)
                        .await
                        .map_err(GroupError::new)?;
                    Ok(appended.position)
                }
            })
            .await
    }
}
