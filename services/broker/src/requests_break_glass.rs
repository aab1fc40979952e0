//! Break-glass: someone a request's workflow names approves it at once, with a reason, and
//! everyone hears of it.

use super::{correlated, decided, execute, get, on_approved, Command, Decided, Status};
use crate::BrokerError;
use aegis_incidents::{IncidentId, NewIncident, Severity};
use aegis_runtime::command::CommandContext;
use aegis_runtime::Runtime;
use chrono::Utc;
use uuid::Uuid;

/// Someone the request's workflow names bypasses its approvals, with a reason: the request
/// is approved at once (its job enqueued), the bypass is recorded as such, the workflow's
/// channels are told (the webhook fan-out reads the record) and an incident is opened.
pub async fn break_glass(
    rt: &Runtime,
    ctx: &CommandContext,
    tenant: Uuid,
    id: Uuid,
    actor: Uuid,
    reason: String,
) -> Result<Decided, BrokerError> {
    let request = get(rt, tenant, id).await?;
    // The channels are the workflow's as it is now: whoever is to be told today.
    let channels = match Uuid::parse_str(&request.new.binding.workflow_id) {
        Ok(w) => crate::rules::get(rt, tenant)
            .await?
            .workflows
            .get(&w)
            .map(|w| w.value.notification_channels.clone())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let command = Command::BreakGlass {
        actor,
        reason: reason.clone(),
        channels,
        now: Utc::now().timestamp_millis(),
    };
    let done = execute(rt, ctx, tenant, id, &command, false).await?;
    let appended = done.appended;
    let out = decided(id, done)?;
    if appended && out.request.status == Status::Approved {
        tracing::warn!(%tenant, request = %id, %actor, "break-glass: approvals bypassed");
        let ctx = correlated(ctx, &id.to_string());
        let incident = NewIncident {
            id: IncidentId(aegis_kernel::derived_id(
                "aegis/break-glass/v1",
                &[tenant.as_bytes(), id.as_bytes()],
            )),
            title: format!("Break-glass: approvals bypassed on access request {id}"),
            severity: Severity::High,
            source: "broker".into(),
            description: format!(
                "User {actor} bypassed the approvals of access request {id} ({} keys of `{}`). Reason: {reason}",
                out.request.new.keys.len(),
                out.request.new.secret_ref
            ),
            agent_id: None,
            dedup_key: None,
        };
        aegis_incidents_services::open_once(rt, &ctx, tenant, incident).await;
        on_approved(rt, &ctx, tenant, id, &out.request).await?;
    }
    Ok(out)
}
