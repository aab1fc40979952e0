//! Discovery: what an agent reports it found in its cluster, upserted one secret at a time
//! (each its own history, so a re-post of the same set appends nothing), and on a full sync
//! whatever the agent no longer lists marked gone. When each was last seen is presence, not
//! history: it goes straight to its table, as agents' heartbeats do.

use crate::jobs::PROJECTION;
use crate::BrokerError;
use aegis_broker::discovered::{Command, DiscoveredSecretAggregate, DiscoveryError, Observation};
use aegis_kernel::derived_id;
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use futures::StreamExt;
use uuid::Uuid;

/// What one sync reports: the secrets of one cluster's provider.
pub struct Sync {
    pub cluster_name: String,
    pub provider_type: String,
    pub provider_config: String,
    pub items: Vec<Item>,
    /// Everything the provider holds: what it does not list is gone.
    pub full: bool,
}

pub struct Item {
    pub secret_ref: String,
    pub labels: String,
    pub version: String,
    /// The agent's checksum of the value; kept only as a keyed MAC.
    pub checksum: Option<String>,
    pub created_at_source: i64,
    pub updated_at_source: i64,
}

/// What a sync did.
pub struct Synced {
    /// Every secret the sync listed, by id, changed or not.
    pub ids: Vec<Uuid>,
    /// How many were new or changed.
    pub changed: usize,
    /// How many a full sync marked gone.
    pub gone: usize,
}

/// A discovered secret's id: the same (tenant, cluster, provider, reference) is always the
/// same secret.
pub fn secret_id(tenant: Uuid, cluster: &str, provider: &str, secret_ref: &str) -> Uuid {
    derived_id(
        "broker.discovered_secret",
        &[
            tenant.as_bytes(),
            cluster.as_bytes(),
            provider.as_bytes(),
            secret_ref.as_bytes(),
        ],
    )
}

/// How many secrets of one sync are recorded at once.
const AT_ONCE: usize = 8;

pub async fn sync(
    rt: &Runtime,
    ctx: impl Fn() -> CommandContext,
    tenant: Uuid,
    agent: Uuid,
    sync: Sync,
) -> Result<Synced, BrokerError> {
    let key = rt.keys.mac_key(tenant, "broker.discovery").await?;
    let observations: Vec<(Uuid, Observation)> = sync
        .items
        .into_iter()
        .map(|item| {
            let checksum_mac = item
                .checksum
                .filter(|c| !c.is_empty())
                .map(|c| crate::keyed_digest(&key, c.as_bytes()))
                .unwrap_or_default();
            let id = secret_id(
                tenant,
                &sync.cluster_name,
                &sync.provider_type,
                &item.secret_ref,
            );
            let o = Observation {
                cluster_name: sync.cluster_name.clone(),
                provider_type: sync.provider_type.clone(),
                secret_ref: item.secret_ref,
                provider_config: sync.provider_config.clone(),
                labels: item.labels,
                version: item.version,
                created_at_source: item.created_at_source,
                updated_at_source: item.updated_at_source,
                checksum_mac,
                agent,
            };
            (id, o)
        })
        .collect();
    let ids: Vec<Uuid> = observations.iter().map(|(id, _)| *id).collect();
    let recorded: Vec<Result<bool, BrokerError>> = futures::stream::iter(observations)
        .map(|(id, o)| {
            let ctx = ctx();
            async move {
                let agg = address::<DiscoveredSecretAggregate>(tenant, id.to_string())
                    .map_err(|e| BrokerError::Discovery(e.into()))?;
                let done = rt
                    .executor
                    .execute::<DiscoveredSecretAggregate>(&agg, &Command::Observe(o), &ctx, false)
                    .await?;
                Ok(done.appended)
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut changed = 0;
    for r in recorded {
        changed += usize::from(r?);
    }
    sqlx::query(
        "INSERT INTO broker_secret_presence (tenant_id, id, last_seen_at) \
         SELECT $1, unnest($2::uuid[]), now() \
         ON CONFLICT (tenant_id, id) DO UPDATE SET last_seen_at = now()",
    )
    .bind(tenant)
    .bind(&ids)
    .execute(&rt.pool)
    .await?;
    let mut gone = 0;
    if sync.full {
        // Every sighting recorded before this sync is in the read model first.
        rt.read_models_caught_up(&[PROJECTION]).await?;
        let missing: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM broker_secrets WHERE tenant_id = $1 AND cluster_name = $2 \
             AND provider_type = $3 AND status <> 'gone' AND NOT (id = ANY($4))",
        )
        .bind(tenant)
        .bind(&sync.cluster_name)
        .bind(&sync.provider_type)
        .bind(&ids)
        .fetch_all(&rt.pool)
        .await?;
        for (id,) in missing {
            let agg = address::<DiscoveredSecretAggregate>(tenant, id.to_string())
                .map_err(|e| BrokerError::Discovery(e.into()))?;
            let done = rt
                .executor
                .execute::<DiscoveredSecretAggregate>(
                    &agg,
                    &Command::MarkGone { agent },
                    &ctx(),
                    false,
                )
                .await;
            match done {
                Ok(d) => gone += usize::from(d.appended),
                Err(CommandError::Domain(DiscoveryError::NotFound)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(Synced { ids, changed, gone })
}
