//! The webhook fan-out reactor (durable consumer `webhook_fanout`): incident events, the
//! `notify` actions of auto-response runs, leaks found and access requests' break-glass become
//! notifications, and each goes to every enabled webhook of the tenant that takes it, with
//! retries; what still fails is dead-lettered, and one failing webhook never holds up the
//! others.
//!
//! Webhooks are read from the integrations read model once it has applied the event's own
//! position, so a webhook saved just before an incident receives it; the copy is kept until
//! the tenant's next webhook event (see `fanout_hooks.rs`).

use crate::{Reactor, ReactorError};
use aegis_auto_response::{ApprovalAggregate, RuleAggregate};
use aegis_incidents::IncidentAggregate;
use aegis_integrations::webhooks::{SealedSecrets, Topic, WebhookAggregate, WebhookKind};
use aegis_integrations_services::dead_letters::{self, DeadLetter};
use aegis_integrations_services::webhooks::{deliver, Notification, Secrets, Target};
use aegis_kernel::Aggregate as _;
use aegis_runtime::Runtime;
use aegis_schemas::auto_response::v1 as ar_pb;
use aegis_schemas::broker::v1 as broker_pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::incidents::v1 as incidents_pb;
use aegis_schemas::vault::v1 as vault_pb;
use aegis_schemas::Message;
use aegis_streams::StoredCommit;
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

#[path = "fanout_hooks.rs"]
mod hooks;
pub use hooks::WEBHOOK_EVENTS;
use hooks::{Hooks, Row};

pub struct WebhookFanout {
    state: Runtime,
    hooks: Arc<Hooks>,
}

impl WebhookFanout {
    pub fn new(state: Runtime) -> Self {
        Self {
            state,
            hooks: Arc::default(),
        }
    }

    /// Forgets a tenant's webhooks whenever another instance changes one of them (this
    /// instance's own consumer hears of its share in log order).
    pub async fn follow_webhook_changes(
        self: Arc<Self>,
        client: async_nats::Client,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        crate::follow::follow_tenants(client, WEBHOOK_EVENTS, shutdown, |t| self.hooks.forget(t))
            .await
    }
}

fn fail(e: impl std::fmt::Display) -> ReactorError {
    ReactorError(e.to_string())
}

fn at(env: &Envelope) -> chrono::DateTime<chrono::Utc> {
    aegis_kernel::occurred_at(env)
}

fn base(env: &Envelope, position: u64, topic: Topic) -> Notification {
    Notification {
        topic,
        key: env.event_id.clone(),
        event_id: env.event_id.clone(),
        event_type: env.event_type.clone(),
        position,
        occurred_at: at(env),
        title: String::new(),
        severity: String::new(),
        message: String::new(),
        dedup_key: env.aggregate_id.clone(),
        details: Value::Null,
    }
}

/// Whether a status ends an incident (PagerDuty's `resolve`).
fn ended(status: &str) -> bool {
    matches!(status, "resolved" | "closed")
}

/// The notifications one event makes.
pub async fn notifications(
    state: &Runtime,
    tenant: Uuid,
    env: &Envelope,
    position: u64,
) -> Result<Vec<Notification>, ReactorError> {
    match env.event_type.as_str() {
        "incident.opened.v1" => {
            let m = incidents_pb::IncidentOpened::decode(env.payload.as_slice())
                .map_err(|e| fail(format!("{}: {e}", env.event_type)))?;
            let mut n = base(env, position, Topic::IncidentOpened);
            n.title = m.title;
            n.severity = m.severity;
            n.message = m.description;
            n.details = json!({
                "incident_id": env.aggregate_id,
                "status": "open",
                "source": m.source,
                "agent_id": (!m.agent_id.is_empty()).then_some(m.agent_id),
            });
            Ok(vec![n])
        }
        "incident.status_changed.v1" => {
            let m = incidents_pb::IncidentStatusChanged::decode(env.payload.as_slice())
                .map_err(|e| fail(format!("{}: {e}", env.event_type)))?;
            let (incident, _, _) = state
                .current::<IncidentAggregate>(tenant, env.aggregate_id.clone())
                .await
                .map_err(fail)?;
            let (title, severity) = incident
                .map(|i| (i.title, i.severity.as_str().to_string()))
                .unwrap_or_default();
            let mut topics = vec![Topic::IncidentStatusChanged];
            if ended(&m.to) && !ended(&m.from) {
                topics.push(Topic::IncidentResolved);
            }
            Ok(topics
                .into_iter()
                .map(|topic| {
                    let mut n = base(env, position, topic);
                    n.title = title.clone();
                    n.severity = severity.clone();
                    n.message = format!("{} → {}", m.from, m.to);
                    n.details = json!({
                        "incident_id": env.aggregate_id,
                        "status": m.to,
                        "previous_status": m.from,
                    });
                    n
                })
                .collect())
        }
        "run.completed.v1" => {
            let m = ar_pb::RunCompleted::decode(env.payload.as_slice())
                .map_err(|e| fail(format!("{}: {e}", env.event_type)))?;
            let rule_id = env.aggregate_id.clone();
            notify_actions(
                state,
                tenant,
                env,
                position,
                &rule_id,
                &m.run_id,
                &m.actions_json,
            )
            .await
        }
        "leak_incident.reported.v1" => {
            let m = vault_pb::LeakIncidentReported::decode(env.payload.as_slice())
                .map_err(|e| fail(format!("{}: {e}", env.event_type)))?;
            Ok(leak_detected(env, position, m).into_iter().collect())
        }
        "approval.executed.v1" => {
            let m = ar_pb::ApprovalExecuted::decode(env.payload.as_slice())
                .map_err(|e| fail(format!("{}: {e}", env.event_type)))?;
            let (approval, _, _) = state
                .current::<ApprovalAggregate>(tenant, env.aggregate_id.clone())
                .await
                .map_err(fail)?;
            let Some(approval) = approval else {
                return Ok(vec![]);
            };
            let rule_id = approval.request.rule_id.to_string();
            notify_actions(
                state,
                tenant,
                env,
                position,
                &rule_id,
                &env.aggregate_id,
                &m.actions_json,
            )
            .await
        }
        "request.break_glass.v1" => {
            let m = broker_pb::RequestBrokeGlass::decode(env.payload.as_slice())
                .map_err(|e| fail(format!("{}: {e}", env.event_type)))?;
            let mut n = base(env, position, Topic::AccessBreakGlass);
            n.title = format!(
                "Break-glass: approvals bypassed on access request {}",
                env.aggregate_id
            );
            n.severity = "high".into();
            n.message = format!("By {}. Reason: {}", m.actor_id, m.reason);
            n.details = json!({
                "request_id": env.aggregate_id,
                "actor_id": m.actor_id,
                "reason": m.reason,
                "channels": m.notification_channels,
            });
            Ok(vec![n])
        }
        _ => Ok(vec![]),
    }
}

/// A leak a scan found, for the webhooks its policies name and those that take every leak.
/// Only what the incident says (where, which secret by name); the leaked value is not in the
/// event, and so cannot be here. A leak reported by hand is not a detection.
fn leak_detected(
    env: &Envelope,
    position: u64,
    m: vault_pb::LeakIncidentReported,
) -> Option<Notification> {
    if m.scan_id.is_empty() {
        return None;
    }
    let mut n = base(env, position, Topic::LeakDetected);
    let what = if m.credential_name.is_empty() {
        "A secret".to_string()
    } else {
        format!("Secret `{}`", m.credential_name)
    };
    n.title = format!("{what} leaked in {}", m.source);
    n.severity = m.severity;
    n.message = format!("Found at {}", m.location);
    n.details = json!({
        "incident_id": env.aggregate_id,
        "secret_id": (!m.credential_name.is_empty()).then_some(m.credential_name),
        "source": m.source,
        "location": m.location,
        "scan_id": m.scan_id,
        "policy_id": (!m.policy_id.is_empty()).then_some(m.policy_id),
        "channels": m.notification_channels,
    });
    Some(n)
}

/// A run's `notify` actions that were handed to the fan-out, with their indexes.
fn handed_over(actions: &Value) -> Vec<(usize, &Value)> {
    actions
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, a)| a["type"] == "notify" && a["outcome"] == "done")
        .collect()
}

/// Whether an event can make a notification, judged from the event alone: the reactor reads
/// the webhooks, and then the log, only for those that can.
fn may_notify(env: &Envelope) -> bool {
    let actions_json = match env.event_type.as_str() {
        "incident.opened.v1" | "incident.status_changed.v1" => return true,
        "leak_incident.reported.v1" | "request.break_glass.v1" => return true,
        "run.completed.v1" => ar_pb::RunCompleted::decode(env.payload.as_slice())
            .map(|m| m.actions_json)
            .ok(),
        "approval.executed.v1" => ar_pb::ApprovalExecuted::decode(env.payload.as_slice())
            .map(|m| m.actions_json)
            .ok(),
        _ => None,
    };
    actions_json
        .and_then(|a| serde_json::from_str::<Value>(&a).ok())
        .is_some_and(|a| !handed_over(&a).is_empty())
}

/// A run's `notify` actions that ran: each is one notification, keyed by its index.
async fn notify_actions(
    state: &Runtime,
    tenant: Uuid,
    env: &Envelope,
    position: u64,
    rule_id: &str,
    run_id: &str,
    actions_json: &str,
) -> Result<Vec<Notification>, ReactorError> {
    let actions: Value = serde_json::from_str(actions_json).map_err(fail)?;
    let notify = handed_over(&actions);
    if notify.is_empty() {
        return Ok(vec![]);
    }
    let (rule, _, _) = state
        .current::<RuleAggregate>(tenant, rule_id.to_string())
        .await
        .map_err(fail)?;
    let rule_name = rule
        .and_then(|r| r.current().map(|v| v.definition.name.clone()))
        .unwrap_or_else(|| rule_id.to_string());
    let text = |a: &Value, k: &str| {
        a.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(notify
        .into_iter()
        .map(|(i, a)| {
            let mut n = base(env, position, Topic::AutoResponseNotify);
            n.key = format!("{}/{i}", env.event_id);
            n.title = format!("Auto-response: {rule_name}");
            n.severity = Some(text(a, "severity"))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "high".into());
            n.message = text(a, "message");
            n.dedup_key = format!("{run_id}/{i}");
            n.details = json!({
                "rule_id": rule_id,
                "rule_name": rule_name,
                "run_id": run_id,
                "channel": (!text(a, "channel").is_empty()).then(|| text(a, "channel")),
            });
            n
        })
        .collect())
}

/// Whether a webhook takes a notification: one that names it (by name or id) among its
/// `channels` (a leak policy's, a workflow's), else by its topic, and for a `notify` that names a channel, only the webhook of
/// that name.
fn takes(row: (&Uuid, &str), topics: &[Topic], n: &Notification) -> bool {
    let (id, name) = row;
    let named = n
        .details
        .get("channels")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .any(|c| c == name || c == id.to_string())
        });
    named
        || topics.contains(&n.topic)
            && n.details
                .get("channel")
                .and_then(Value::as_str)
                .is_none_or(|c| c == name)
}

impl WebhookFanout {
    async fn target(&self, tenant: Uuid, row: &Row) -> Result<Target, String> {
        let sealed = SealedSecrets {
            version: row.secret_version as u64,
            nonce: row.secret_nonce.clone(),
            ciphertext: row.secret_ciphertext.clone(),
        };
        let secrets = Secrets::open(&self.state, tenant, &row.id.to_string(), &sealed)
            .await
            .map_err(|e| format!("the webhook's secrets cannot be opened: {e}"))?;
        let kind = WebhookKind::parse(&row.kind).ok_or("unknown webhook kind")?;
        Ok(Target {
            id: row.id,
            name: row.name.clone(),
            kind,
            secrets,
        })
    }

    async fn send_one(
        &self,
        tenant: Uuid,
        row: &Row,
        n: &Notification,
    ) -> Result<(), ReactorError> {
        let (attempts, error) = match self.target(tenant, row).await {
            Ok(target) => match deliver(&self.state, tenant, &target, n).await {
                Some(d) => match d.outcome.error() {
                    Some(e) => (d.attempts, e.to_string()),
                    None => return Ok(()),
                },
                // The vendor has nothing to say for this topic.
                None => return Ok(()),
            },
            Err(e) => (0, e),
        };
        tracing::warn!(webhook = %row.id, topic = %n.topic, attempts, error = %error, "webhook delivery dead-lettered");
        let letter = DeadLetter {
            webhook_id: row.id,
            webhook_name: row.name.clone(),
            kind: WebhookKind::parse(&row.kind).unwrap_or(WebhookKind::Generic),
            notification: n.clone(),
            attempts,
            error,
            failed_at: chrono::Utc::now(),
        };
        dead_letters::publish(self.state.executor.store().jetstream(), tenant, &letter)
            .await
            .map_err(fail)
    }
}

impl Reactor for WebhookFanout {
    fn name(&self) -> &'static str {
        "webhook_fanout"
    }

    fn filters(&self) -> Vec<String> {
        vec![
            "aegis.evt.*.incidents.incident.>".into(),
            "aegis.evt.*.auto_response.runs.>".into(),
            "aegis.evt.*.auto_response.approval.>".into(),
            "aegis.evt.*.vault.leak_incident.>".into(),
            // Access requests: only a break-glass notifies.
            "aegis.evt.*.broker.request.>".into(),
            // Not notified of: they only make this instance forget the tenant's webhooks.
            WEBHOOK_EVENTS.into(),
        ]
    }

    async fn handle(&self, commit: &StoredCommit) -> Result<(), ReactorError> {
        let Some(first) = commit.events.first() else {
            return Ok(());
        };
        let Ok(tenant) = Uuid::parse_str(&first.tenant_id) else {
            return Ok(());
        };
        if first.context == WebhookAggregate::CONTEXT
            && first.aggregate_type == WebhookAggregate::AGGREGATE
        {
            // A webhook changed: what follows it in the log must see the change.
            self.hooks.forget(tenant);
            return Ok(());
        }
        if !commit.events.iter().any(may_notify) {
            return Ok(());
        }
        let hooks = self.hooks.of(&self.state, tenant, commit.position).await?;
        // A tenant without webhooks costs no read of the log.
        if hooks.is_empty() {
            return Ok(());
        }
        let mut all = Vec::new();
        for env in commit.events.iter().filter(|e| may_notify(e)) {
            all.extend(notifications(&self.state, tenant, env, commit.position).await?);
        }
        let sends = all.iter().flat_map(|n| {
            hooks
                .iter()
                .filter(move |(row, topics)| takes((&row.id, &row.name), topics, n))
                .map(move |(row, _)| self.send_one(tenant, row, n))
        });
        for r in futures::future::join_all(sends).await {
            r?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_incidents_and_runs_that_handed_over_a_notify_may_notify() {
        let run = |actions: Value| Envelope {
            event_type: "run.completed.v1".into(),
            payload: ar_pb::RunCompleted {
                run_id: "r".into(),
                result: "succeeded".into(),
                actions_json: actions.to_string(),
            }
            .encode_to_vec(),
            ..Envelope::default()
        };
        assert!(may_notify(&run(
            json!([{"type": "notify", "outcome": "done"}])
        )));
        assert!(!may_notify(&run(
            json!([{"type": "notify", "outcome": "recorded"}])
        )));
        assert!(!may_notify(&run(
            json!([{"type": "quarantine_agent", "outcome": "done"}])
        )));
        let incident = Envelope {
            event_type: "incident.opened.v1".into(),
            ..Envelope::default()
        };
        assert!(may_notify(&incident));
        let started = Envelope {
            event_type: "run.started.v1".into(),
            ..Envelope::default()
        };
        assert!(!may_notify(&started));
    }

    #[test]
    fn a_channel_picks_its_webhook_and_no_channel_picks_every_subscriber() {
        let mut n = Notification {
            topic: Topic::AutoResponseNotify,
            key: "k".into(),
            event_id: "e".into(),
            event_type: "run.completed.v1".into(),
            position: 1,
            occurred_at: chrono::Utc::now(),
            title: "t".into(),
            severity: "high".into(),
            message: "m".into(),
            dedup_key: "d".into(),
            details: json!({"channel": "soc"}),
        };
        let all = Topic::defaults();
        assert!(takes((&Uuid::nil(), "soc"), &all, &n));
        assert!(!takes((&Uuid::nil(), "oncall"), &all, &n));
        assert!(!takes((&Uuid::nil(), "soc"), &[Topic::IncidentOpened], &n));
        n.details = json!({"channel": null});
        assert!(takes((&Uuid::nil(), "oncall"), &all, &n));
    }

    #[test]
    fn a_leak_goes_to_the_webhooks_its_policy_names_and_to_those_taking_every_leak() {
        let env = Envelope {
            event_id: "e".into(),
            event_type: "leak_incident.reported.v1".into(),
            aggregate_id: "leak_1".into(),
            ..Default::default()
        };
        let reported = vault_pb::LeakIncidentReported {
            credential_name: "deploy-token".into(),
            source: "github".into(),
            location: "https://git.test/r.git@abc:config.env".into(),
            severity: "critical".into(),
            scan_id: "scan_1".into(),
            notification_channels: vec!["sec-team".into()],
            ..Default::default()
        };
        let n = leak_detected(&env, 7, reported.clone()).expect("a detection notifies");
        assert_eq!(n.dedup_key, "leak_1");
        assert!(
            takes((&Uuid::nil(), "sec-team"), &[], &n),
            "named, whatever its topics"
        );
        assert!(!takes((&Uuid::nil(), "bystander"), &Topic::defaults(), &n));
        assert!(takes(
            (&Uuid::nil(), "bystander"),
            &[Topic::LeakDetected],
            &n
        ));
        let by_hand = vault_pb::LeakIncidentReported {
            scan_id: String::new(),
            ..reported
        };
        assert!(
            leak_detected(&env, 8, by_hand).is_none(),
            "a report is not a detection"
        );
    }
}
