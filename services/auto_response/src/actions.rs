//! Executing a rendered action: each one is a command of its own context (agents, the kill
//! switch, incidents, the vault), issued by the system actor `auto-response:<rule id>`, and
//! each is safe to repeat, so a run retried after a crash never acts twice.

use aegis_auto_response::actions::ActionKind;
use aegis_auto_response::runs::RunResult;
use aegis_identity::agents::{self, AgentAggregate, AgentError, AgentStatus};
use aegis_identity::kill_switch::{self, KillSwitchAggregate};
use aegis_incidents::{IncidentId, NewIncident, Severity};
use aegis_runtime::command::{CommandContext, CommandError};
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use serde_json::{json, Value};
use uuid::Uuid;

/// Who a run acts as, and why, for every command it issues.
pub struct RunContext {
    pub tenant: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    pub run_id: Uuid,
    pub ctx: CommandContext,
}

impl RunContext {
    pub fn new(tenant: Uuid, rule_id: Uuid, rule_name: &str, run_id: Uuid, cause: &str) -> Self {
        let mut ctx = CommandContext::system(&actor(rule_id));
        ctx.meta.correlation_id = run_id.to_string();
        ctx.meta.causation_id = cause.to_string();
        Self {
            tenant,
            rule_id,
            rule_name: rule_name.to_string(),
            run_id,
            ctx,
        }
    }

    fn reason(&self) -> String {
        format!(
            "auto-response rule `{}` (run {})",
            self.rule_name, self.run_id
        )
    }
}

/// The actor subject of everything a rule does; the reactor never reacts to it, so rules
/// cannot trigger each other in a loop.
pub fn actor(rule_id: Uuid) -> String {
    format!("auto-response:{rule_id}")
}

pub const ACTOR_PREFIX: &str = "auto-response:";

enum Outcome {
    Done(String),
    Unchanged(String),
    Recorded(String),
    Failed(String),
}

/// Runs every rendered action in order and returns them with their outcomes, and the run's
/// result.
pub async fn execute_all(
    state: &Runtime,
    run: &RunContext,
    rendered: &Value,
) -> (RunResult, Value) {
    let list = rendered.as_array().cloned().unwrap_or_default();
    let (mut ok, mut failed) = (0, 0);
    let mut out = Vec::with_capacity(list.len());
    for (i, mut action) in list.into_iter().enumerate() {
        let outcome = if let Some(why) = action.get("skipped").and_then(Value::as_str) {
            Outcome::Failed(format!("skipped: {why}"))
        } else {
            execute(state, run, i, &action).await
        };
        let (word, detail) = match outcome {
            Outcome::Done(d) => ("done", d),
            Outcome::Unchanged(d) => ("unchanged", d),
            Outcome::Recorded(d) => ("recorded", d),
            Outcome::Failed(d) => ("failed", d),
        };
        if word == "failed" {
            failed += 1;
        } else {
            ok += 1;
        }
        action["outcome"] = json!(word);
        action["detail"] = json!(detail);
        out.push(action);
    }
    let result = match (ok, failed) {
        (_, 0) => RunResult::Succeeded,
        (0, _) => RunResult::Failed,
        _ => RunResult::Partial,
    };
    (result, Value::Array(out))
}

fn text<'a>(action: &'a Value, key: &str) -> Option<&'a str> {
    action
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn execute(state: &Runtime, run: &RunContext, index: usize, action: &Value) -> Outcome {
    let Some(kind) = text(action, "type").and_then(ActionKind::parse) else {
        return Outcome::Failed("unknown action type".into());
    };
    let target = text(action, "target").unwrap_or_default();
    let reason = text(action, "reason")
        .map(str::to_string)
        .unwrap_or_else(|| run.reason());
    match kind {
        ActionKind::QuarantineAgent => {
            set_agent(state, run, target, AgentStatus::Quarantined, reason).await
        }
        ActionKind::ReleaseAgent => {
            set_agent(state, run, target, AgentStatus::Active, reason).await
        }
        ActionKind::EngageKillSwitch => {
            kill_switch(state, run, kill_switch::Command::Engage { reason }).await
        }
        ActionKind::ReleaseKillSwitch => {
            kill_switch(state, run, kill_switch::Command::Release { reason }).await
        }
        ActionKind::OpenIncident => open_incident(state, run, index, action).await,
        ActionKind::Notify => notify(state, run, action).await,
        ActionKind::RotateCredential => {
            match aegis_vault_services::rotate(
                state,
                &run.ctx,
                run.tenant,
                target,
                "auto_response",
                &reason,
            )
            .await
            {
                Ok((rotated, _)) => Outcome::Done(format!(
                    "`{target}` rotated to version {}",
                    rotated.new_version
                )),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        ActionKind::BlockIp => Outcome::Failed(
            "block_ip needs the edge manager (seed 002), which this deployment does not have yet"
                .into(),
        ),
    }
}

async fn set_agent(
    state: &Runtime,
    run: &RunContext,
    target: &str,
    status: AgentStatus,
    reason: String,
) -> Outcome {
    let Ok(id) = Uuid::parse_str(target) else {
        return Outcome::Failed(format!("`{target}` is not an agent id"));
    };
    let Ok(agg) = address::<AgentAggregate>(run.tenant, id.to_string()) else {
        return Outcome::Failed(format!("`{target}` is not an agent id"));
    };
    let cmd = agents::Command::SetStatus { status, reason };
    match state
        .executor
        .execute::<AgentAggregate>(&agg, &cmd, &run.ctx, false)
        .await
    {
        Ok(o) if o.appended => Outcome::Done(format!("agent {id} is {status}")),
        Ok(_) => Outcome::Unchanged(format!("agent {id} was already {status}")),
        Err(CommandError::Domain(AgentError::NotFound)) => {
            Outcome::Failed(format!("no agent {id} in this tenant"))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

async fn kill_switch(state: &Runtime, run: &RunContext, cmd: kill_switch::Command) -> Outcome {
    let engage = matches!(cmd, kill_switch::Command::Engage { .. });
    let Ok(agg) = address::<KillSwitchAggregate>(run.tenant, kill_switch::ID) else {
        return Outcome::Failed("the kill switch cannot be addressed".into());
    };
    let word = if engage { "engaged" } else { "released" };
    match state
        .executor
        .execute::<KillSwitchAggregate>(&agg, &cmd, &run.ctx, false)
        .await
    {
        Ok(o) if o.appended => Outcome::Done(format!("kill switch {word}")),
        Ok(_) => Outcome::Unchanged(format!("kill switch was already {word}")),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

async fn open_incident(state: &Runtime, run: &RunContext, index: usize, action: &Value) -> Outcome {
    let id = IncidentId(aegis_kernel::derived_id(
        "aegis/auto-response/incident/v1",
        &[run.run_id.as_bytes(), &(index as u64).to_be_bytes()],
    ));
    // An incident's fields have the limits its API enforces; a filled template may not.
    let cut = |s: &str| s.chars().take(200).collect::<String>();
    let title = cut(&text(action, "title")
        .map(str::to_string)
        .unwrap_or_else(|| format!("Auto-response: {}", run.rule_name)));
    let severity = text(action, "severity")
        .and_then(Severity::parse)
        .unwrap_or(Severity::High);
    let incident = NewIncident {
        id,
        title,
        severity,
        source: "auto_response".into(),
        description: format!(
            "Opened by {} on event {}.",
            run.reason(),
            run.ctx.meta.causation_id
        ),
        agent_id: text(action, "target").map(cut),
        dedup_key: None,
    };
    match aegis_incidents_services::open_once(state, &run.ctx, run.tenant, incident).await {
        Some(id) => Outcome::Done(format!("incident {id}")),
        None => Outcome::Failed("the incident could not be opened".into()),
    }
}

/// Hands the message to the webhook fan-out, which delivers it from this run's completion;
/// with no webhook to take it, the message is kept in the run.
async fn notify(state: &Runtime, run: &RunContext, action: &Value) -> Outcome {
    let channel = text(action, "channel").unwrap_or_default();
    match aegis_integrations_services::notify::notify_targets(state, run.tenant, channel).await {
        Ok(0) => Outcome::Recorded(format!(
            "no enabled webhook takes auto_response.notify{}; the message is kept in this run: {}",
            if channel.is_empty() {
                String::new()
            } else {
                format!(" on channel `{channel}`")
            },
            text(action, "message").unwrap_or("(no message)")
        )),
        Ok(n) => Outcome::Done(format!("handed to {n} webhook(s)")),
        Err(e) => Outcome::Failed(format!("the webhooks could not be read: {e}")),
    }
}
