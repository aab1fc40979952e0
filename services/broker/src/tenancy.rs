//! A tenant's projects and environments: edited by administrators, read whole from their one
//! history (cached by the executor).

use crate::BrokerError;
use aegis_broker::tenancy::{Command, Tenancy, TenancyAggregate};
use aegis_runtime::command::CommandContext;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;
use uuid::Uuid;

fn tenancy_ref(tenant: Uuid) -> Result<AggregateRef, BrokerError> {
    address::<TenancyAggregate>(tenant, tenant.to_string())
        .map_err(|e| BrokerError::Tenancy(e.into()))
}

/// The tenant's projects and environments as their history has them.
pub async fn get(rt: &Runtime, tenant: Uuid) -> Result<Tenancy, BrokerError> {
    let (t, _) = rt
        .executor
        .load::<TenancyAggregate>(&tenancy_ref(tenant)?)
        .await?;
    Ok(t)
}

/// Applies an edit; answers the projects and environments after it and the commit's position.
pub async fn edit(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    command: Command,
) -> Result<(Tenancy, u64), BrokerError> {
    let done = rt
        .executor
        .execute::<TenancyAggregate>(&tenancy_ref(tenant)?, &command, ctx, false)
        .await?;
    Ok((done.state, done.position))
}
