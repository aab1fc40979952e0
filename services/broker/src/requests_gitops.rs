//! GitOps observations of executed patch requests (seed 004, BRD §26). When a patch executes,
//! the tenant's app mappings that point at what it changed become watches, recorded with the
//! execution itself. A mapping points at a request when its target is
//! - a provider connection: the agent that executed the request's job (an agent is the
//!   connection to its cluster's secret provider), or
//! - a secret mapping: a discovered secret (`GET /api/v1/secrets`) with the request's provider
//!   type and secret reference.
//!
//! The watch pass then polls each open watch (GET only) every `gitops_poll_ms` until it settles.

use super::{execute, get};
use crate::{gitops, BrokerError};
use aegis_broker::gitops::MappingTarget;
use aegis_broker::jobs::JobAggregate;
use aegis_broker::requests::observations::{Observation, Watch};
use aegis_broker::requests::{Command, Kind, Request, RequestError};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use chrono::Utc;
use futures::StreamExt;
use uuid::Uuid;

/// How many watched requests are polled at once.
const CONCURRENCY: usize = 8;

/// The watches an executed patch begins (none while GitOps is off, or for a read).
pub(super) async fn watches(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
    r: &Request,
    now: i64,
) -> Result<Vec<Watch>, BrokerError> {
    if !rt.config.gitops_enabled || r.new.kind != Kind::Patch {
        return Ok(Vec::new());
    }
    let g = gitops::get(rt, tenant).await?;
    if g.mappings.is_empty() {
        return Ok(Vec::new());
    }
    // The job of a request carries the request's id.
    let job =
        address::<JobAggregate>(tenant, &id.to_string()).map_err(|e| BrokerError::Job(e.into()))?;
    let (job, _) = rt.executor.load::<JobAggregate>(&job).await?;
    let agent = job.and_then(|j| j.holder);
    let secrets: Vec<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM broker_secrets WHERE tenant_id = $1 AND provider_type = $2 \
         AND secret_ref = $3 LIMIT 100",
    )
    .bind(tenant)
    .bind(&r.new.provider_type)
    .bind(&r.new.secret_ref)
    .fetch_all(&rt.pool)
    .await?;
    let timeout_at = now.saturating_add(
        i64::try_from(rt.config.gitops_timeout_secs)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000),
    );
    Ok(g.mappings
        .iter()
        .filter(|(_, m)| match m.target {
            MappingTarget::ProviderConnection(c) => agent == Some(c),
            MappingTarget::SecretMapping(s) => secrets.iter().any(|(id,)| *id == s),
        })
        .map(|(mapping_id, m)| Watch {
            mapping_id: *mapping_id,
            endpoint_id: m.endpoint_id,
            application_name: m.application_name.clone(),
            application_namespace: m.application_namespace.clone(),
            timeout_at,
        })
        .collect())
}

/// A request's observations, for its requester only.
pub async fn observations(
    rt: &Runtime,
    tenant: Uuid,
    id: Uuid,
    caller: Uuid,
) -> Result<Vec<Observation>, BrokerError> {
    let r = get(rt, tenant, id).await?;
    if r.new.requester != caller {
        return Err(BrokerError::NotRequester);
    }
    Ok(r.gitops)
}

/// Polls the open watches of up to `batch` requests whose last poll is older than the poll
/// interval; answers how many polls were recorded.
pub async fn observe_due(rt: &Runtime, batch: i64) -> Result<usize, BrokerError> {
    let every = i64::try_from(rt.config.gitops_poll_ms).unwrap_or(i64::MAX);
    let due: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT tenant_id, id FROM broker_requests WHERE gitops_open > 0 \
         AND (gitops_polled_at IS NULL OR gitops_polled_at <= now() - make_interval(secs => $1 / 1000.0)) \
         ORDER BY gitops_polled_at NULLS FIRST LIMIT $2",
    )
    .bind(every as f64)
    .bind(batch)
    .fetch_all(&rt.pool)
    .await?;
    let polls = futures::stream::iter(due)
        .filter_map(|(tenant, id)| async move { Uuid::parse_str(&id).ok().map(|id| (tenant, id)) })
        .map(|(tenant, id)| poll(rt, tenant, id))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut recorded = 0;
    for p in polls {
        recorded += p?;
    }
    Ok(recorded)
}

/// One poll of each open watch of one request.
async fn poll(rt: &Runtime, tenant: Uuid, id: Uuid) -> Result<usize, BrokerError> {
    let r = match get(rt, tenant, id).await {
        Ok(r) => r,
        // A row the log does not back (a rebuilt read model catching up): nothing to poll.
        Err(BrokerError::Request(CommandError::Domain(RequestError::NotFound))) => return Ok(0),
        Err(e) => return Err(e),
    };
    let ctx = CommandContext::system("gitops-observer");
    let mut recorded = 0;
    for o in r.gitops.iter().filter(|o| !o.state.is_terminal()) {
        let seen = gitops::application(rt, tenant, &o.watch).await;
        let command = Command::ObserveGitops {
            mapping_id: o.watch.mapping_id,
            seen,
            now: Utc::now().timestamp_millis(),
        };
        if execute(rt, &ctx, tenant, id, &command, false)
            .await?
            .appended
        {
            recorded += 1;
        }
    }
    Ok(recorded)
}
