//! The incidents context's application services: what HTTP, NATS requests and reactors all
//! call to act on incidents, over the runtime.

use aegis_incidents::{
    ClaimDedup, Command, DedupAggregate, DedupError, Incident, IncidentAggregate, IncidentError,
    IncidentId, NewIncident,
};
use aegis_kernel::Aggregate;
use aegis_runtime::command::{CommandContext, CommandError, Outcome};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;

/// How many times a dedup claim is tried again when another open claimed or released the key
/// in between, before the caller is told to retry.
const CLAIM_ATTEMPTS: usize = 8;

/// What opening an incident did.
#[derive(Debug)]
pub enum Opened {
    /// A new incident, as appended.
    New(Outcome<Option<Incident>>),
    /// The active incident that already holds the dedup key; nothing was appended.
    Deduplicated(Incident),
}

/// Why an incident was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenFailure {
    #[error(transparent)]
    Incident(#[from] CommandError<IncidentError>),
    /// The dedup key changed while it was being claimed, or the log could not be reached.
    #[error(transparent)]
    Dedup(#[from] CommandError<DedupError>),
    #[error("too many concurrent opens with this dedup key")]
    Contended,
}

/// Opens `new`; when it carries a dedup key an active incident already holds, answers that
/// incident instead. `ctx` gives the command context for each append (`"dedup"`, then
/// `"incident"`), so a retried request reuses its retry ids.
pub async fn open(
    rt: &Runtime,
    ctx: impl Fn(&str) -> CommandContext,
    tenant: uuid::Uuid,
    new: NewIncident,
) -> Result<Opened, OpenFailure> {
    if let Some(dedup_key) = &new.dedup_key {
        if let Some(existing) = claim_dedup(rt, &ctx("dedup"), tenant, dedup_key, new.id).await? {
            return Ok(Opened::Deduplicated(existing));
        }
    }
    let agg = address::<IncidentAggregate>(tenant, new.id.to_string())
        .map_err(|e| OpenFailure::Incident(e.into()))?;
    let outcome = rt
        .executor
        .execute::<IncidentAggregate>(&agg, &Command::Open(new), &ctx("incident"), true)
        .await?;
    Ok(Opened::New(outcome))
}

/// Claims `dedup_key` for `incident`, or returns the active incident that already holds it.
async fn claim_dedup(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: uuid::Uuid,
    dedup_key: &str,
    incident: IncidentId,
) -> Result<Option<Incident>, OpenFailure> {
    let dedup =
        address::<DedupAggregate>(tenant, dedup_key).map_err(|e| OpenFailure::Dedup(e.into()))?;
    for _ in 0..CLAIM_ATTEMPTS {
        let (holder, _) = rt.executor.load::<DedupAggregate>(&dedup).await?;
        let mut active = None;
        if let Some(h) = holder {
            let (current, _, _) = rt
                .current::<IncidentAggregate>(tenant, h.to_string())
                .await?;
            active = current.filter(|i| i.status.is_active());
        }
        let claim = ClaimDedup {
            incident,
            seen_holder: holder,
            active_holder: active.as_ref().map(|i| i.id),
        };
        match rt
            .executor
            .execute::<DedupAggregate>(&dedup, &claim, ctx, false)
            .await
        {
            Ok(_) => return Ok(None),
            Err(CommandError::Domain(DedupError::Held(_))) => return Ok(active),
            // Someone claimed or released it since we looked: look again.
            Err(CommandError::Domain(DedupError::Changed)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpenFailure::Contended)
}

/// Opens an incident whose id the caller derived from what caused it, so a retried reaction
/// finds it open instead of opening another. `None` when the log could not be reached (the
/// error is logged; the reaction that wanted it records the failure itself).
pub async fn open_once(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: uuid::Uuid,
    incident: NewIncident,
) -> Option<IncidentId> {
    let id = incident.id;
    let agg = AggregateRef::new(
        tenant,
        IncidentAggregate::CONTEXT,
        IncidentAggregate::AGGREGATE,
        id.0.to_string(),
    )
    .ok()?;
    let opened = rt
        .executor
        .execute::<IncidentAggregate>(&agg, &Command::Open(incident), ctx, true)
        .await;
    match opened {
        Ok(_) | Err(CommandError::Domain(_)) => Some(id),
        Err(e) => {
            tracing::error!(incident = %id, error = %e, "could not open an incident");
            None
        }
    }
}
