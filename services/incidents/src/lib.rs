//! The incidents context's application services: what HTTP, NATS requests and reactors all
//! call to act on incidents, over the runtime.

use aegis_incidents::{Command, IncidentAggregate, IncidentId, NewIncident};
use aegis_kernel::Aggregate;
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;

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
