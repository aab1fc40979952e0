//! The report scheduler: every tick, each enabled report's due slot runs once (see
//! `aegis_integrations_services::reports` for what a run produces). A slot's run id is derived
//! from (report, slot), and the report's decider records a slot only once.

use aegis_integrations::reports::{Cadence, Command, ReportAggregate, Trigger};
use aegis_integrations_services::reports::produce;
use aegis_runtime::command::CommandContext;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use chrono::{DateTime, Utc};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Due {
    tenant_id: Uuid,
    id: Uuid,
    cron: String,
    timezone: String,
    created_at: DateTime<Utc>,
    last_slot: Option<DateTime<Utc>>,
}

/// Runs every due slot, each tick, until `shutdown`.
pub async fn run(state: Runtime, tick: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = pass(&state).await {
            tracing::warn!(error = %e, "scheduled reports pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn pass(state: &Runtime) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let now = Utc::now();
    let reports: Vec<Due> = sqlx::query_as(
        "SELECT tenant_id, id, cron, timezone, created_at, last_slot FROM scheduled_reports \
         WHERE enabled AND NOT deleted",
    )
    .fetch_all(&state.pool)
    .await?;
    for r in reports {
        let Ok(cadence) = Cadence::parse(&r.cron, &r.timezone) else {
            continue;
        };
        let since = r.last_slot.unwrap_or(r.created_at).max(r.created_at);
        let Some(slot) = cadence.due(since, now) else {
            continue;
        };
        // One report's failure is logged and retried next tick; the others still run.
        if let Err(e) = run_slot(state, &r, slot).await {
            tracing::warn!(report = %r.id, tenant = %r.tenant_id, error = %e, "scheduled report failed");
        }
    }
    Ok(())
}

/// Runs one due slot of one report, on one instance: the report's lease is held while its
/// slot is produced, delivered and recorded, and the log, read under the lease, says whether
/// another instance ran the slot already.
async fn run_slot(
    state: &Runtime,
    r: &Due,
    slot: DateTime<Utc>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let key = aegis_runtime::leases::key("report", r.id.as_bytes());
    let Some(_lease) = aegis_runtime::leases::try_take(&state.config.database_url, key).await?
    else {
        return Ok(());
    };
    let (report, _, _) = state
        .current::<ReportAggregate>(r.tenant_id, r.id.to_string())
        .await?;
    let Some(report) = report.filter(|x| !x.deleted && x.definition.enabled) else {
        return Ok(());
    };
    if report.last_slot >= slot.timestamp() {
        return Ok(());
    }
    let id = r.id.to_string();
    let run = produce(
        state,
        r.tenant_id,
        &id,
        &report.definition,
        Trigger::Schedule,
        Some(slot),
    )
    .await;
    let agg = address::<ReportAggregate>(r.tenant_id, id)?;
    let ctx = CommandContext::system("reports");
    state
        .executor
        .execute::<ReportAggregate>(&agg, &Command::Record(run), &ctx, false)
        .await?;
    Ok(())
}
