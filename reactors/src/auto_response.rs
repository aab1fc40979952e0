//! The auto-response reactor: every committed event of a tenant is matched against the
//! tenant's rules; a match starts a run on the rule's run history (throttle and brake decided
//! there), and an admitted active run executes its actions through commands, or waits for an
//! approval. Events caused by a rule are never matched, so rules cannot loop.
//!
//! The rules live in memory per tenant. They are read from the log up to the position of the
//! event being matched, and read again whenever a rule changes: this instance sees the change
//! in its own stream, or hears of it on `aegis.evt.*.auto_response.rule.>` when another
//! instance consumed it.

use crate::{Reactor, ReactorError};
use aegis_auto_response::approvals::{self, ApprovalAggregate};
use aegis_auto_response::document::document;
use aegis_auto_response::rules::{Command as RuleCommand, Definition, Mode};
use aegis_auto_response::runs::{self, RunMode, RunResult, Started};
use aegis_auto_response::{RuleAggregate, RunsAggregate};
use aegis_auto_response_services::{execute_all, RunContext, ACTOR_PREFIX};
use aegis_incidents::{IncidentId, NewIncident, Severity};
use aegis_kernel::Aggregate;
use aegis_runtime::command::CommandError;
use aegis_runtime::runtime::address;
use aegis_runtime::Runtime;
use aegis_schemas::envelope::v1::Envelope;
use aegis_streams::subject::EVENT_PREFIX;
use aegis_streams::{EventStore, StoredCommit};
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;
use uuid::Uuid;

pub const RULE_EVENTS: &str = "aegis.evt.*.auto_response.rule.>";

/// One rule as the reactor holds it: its version in force and its mode.
#[derive(Debug, Clone)]
pub struct LiveRule {
    pub id: Uuid,
    pub version: u32,
    pub mode: Mode,
    pub definition: Definition,
}

/// A tenant's rules that are not disabled or deleted.
#[derive(Debug, Default)]
pub struct TenantRules {
    pub rules: Vec<LiveRule>,
}

impl TenantRules {
    /// Folds rule events (in log order) into the rules in force.
    pub fn fold<'a>(
        events: impl IntoIterator<Item = &'a Envelope>,
    ) -> Result<TenantRules, ReactorError> {
        let mut by_id: BTreeMap<String, Option<aegis_auto_response::Rule>> = BTreeMap::new();
        for env in events {
            let event = RuleAggregate::decode(env).map_err(|e| ReactorError(e.to_string()))?;
            let state = by_id.remove(&env.aggregate_id).flatten();
            by_id.insert(
                env.aggregate_id.clone(),
                RuleAggregate::evolve(state, &event, env),
            );
        }
        let rules = by_id
            .into_values()
            .flatten()
            .filter(|r| !r.deleted && r.mode != Mode::Disabled)
            .filter_map(|r| {
                let v = r.current()?;
                Some(LiveRule {
                    id: Uuid::parse_str(&r.id).ok()?,
                    version: v.version,
                    mode: r.mode,
                    definition: v.definition.clone(),
                })
            })
            .collect();
        Ok(TenantRules { rules })
    }

    /// The rules this event matches (the match is all a rule costs per event).
    pub fn matching<'a>(&'a self, doc: &'a Value) -> impl Iterator<Item = &'a LiveRule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.definition.matcher.matches(doc))
    }
}

pub struct AutoResponder {
    state: Runtime,
    tenants: Mutex<HashMap<Uuid, Arc<TenantRules>>>,
    dirty: Arc<Mutex<HashSet<Uuid>>>,
}

impl AutoResponder {
    pub fn new(state: Runtime) -> Self {
        Self {
            state,
            tenants: Mutex::default(),
            dirty: Arc::default(),
        }
    }

    /// Marks a tenant's rules stale whenever any instance changes one of them.
    pub async fn follow_rule_changes(
        self: Arc<Self>,
        client: async_nats::Client,
        shutdown: watch::Receiver<bool>,
    ) {
        crate::follow::follow_tenants(client, RULE_EVENTS, shutdown, |t| self.mark_dirty(t)).await
    }

    fn mark_dirty(&self, tenant: Uuid) {
        if let Ok(mut d) = self.dirty.lock() {
            d.insert(tenant);
        }
    }

    async fn rules(&self, tenant: Uuid, upto: u64) -> Result<Arc<TenantRules>, ReactorError> {
        let stale = self
            .dirty
            .lock()
            .map(|mut d| d.remove(&tenant))
            .unwrap_or(true);
        if !stale {
            if let Some(hit) = self
                .tenants
                .lock()
                .ok()
                .and_then(|t| t.get(&tenant).cloned())
            {
                return Ok(hit);
            }
        }
        let loaded = Arc::new(load_rules(self.state.executor.store(), tenant, upto).await?);
        if let Ok(mut t) = self.tenants.lock() {
            t.insert(tenant, loaded.clone());
        }
        Ok(loaded)
    }

    async fn run(
        &self,
        tenant: Uuid,
        rule: &LiveRule,
        env: &Envelope,
        position: u64,
        doc: &Value,
    ) -> Result<(), ReactorError> {
        let store_err = |e: CommandError<runs::RunError>| ReactorError(e.to_string());
        let mode = if rule.mode == Mode::Active {
            RunMode::Active
        } else {
            RunMode::Simulate
        };
        let run = Started::of(
            &rule.id.to_string(),
            rule.version,
            mode,
            &rule.definition,
            env,
            position,
            doc,
        );
        let run_id = run.run_id;
        let rc = RunContext::new(
            tenant,
            rule.id,
            &rule.definition.name,
            run_id,
            &env.event_id,
        );
        let agg = address::<RunsAggregate>(tenant, rule.id.to_string())
            .map_err(|e| ReactorError(e.to_string()))?;
        let start = runs::Command::start(run, &rule.definition);
        let runs = self
            .state
            .executor
            .execute::<RunsAggregate>(&agg, &start, &rc.ctx, false)
            .await
            .map_err(store_err)?
            .state;
        if let Some(trip) = runs.last_trip.as_ref().filter(|t| t.run_id == run_id) {
            self.trip(&rc, trip).await?;
        }
        let Some(open) = runs.open.get(&run_id) else {
            return Ok(());
        };
        let (result, actions) = if open.approval_required {
            let request = approvals::Command::Request(approvals::Request {
                rule_id: rule.id,
                rule_version: open.rule_version,
                actions: open.actions.clone(),
                trigger_event_id: open.trigger.event_id.clone(),
                trigger_event_type: open.trigger.event_type.clone(),
                expires_at: chrono::Utc::now()
                    + chrono::Duration::seconds(self.state.config.ar_approval_ttl_secs as i64),
            });
            let approval = address::<ApprovalAggregate>(tenant, run_id.to_string())
                .map_err(|e| ReactorError(e.to_string()))?;
            self.state
                .executor
                .execute::<ApprovalAggregate>(&approval, &request, &rc.ctx, false)
                .await
                .map_err(|e| ReactorError(e.to_string()))?;
            (RunResult::PendingApproval, open.actions.clone())
        } else {
            execute_all(&self.state, &rc, &open.actions).await
        };
        tracing::info!(rule = %rule.id, run = %run_id, %tenant, result = %result, "auto-response run");
        self.state
            .executor
            .execute::<RunsAggregate>(
                &agg,
                &runs::Command::Complete {
                    run_id,
                    result,
                    actions,
                },
                &rc.ctx,
                false,
            )
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// The brake tripped: the rule goes to `simulate` and an incident says why. Both are safe
    /// to repeat, so an interrupted trip is finished by the retry.
    async fn trip(&self, rc: &RunContext, trip: &runs::Trip) -> Result<(), ReactorError> {
        let why = format!(
            "blast-radius brake: run {} would have acted on {} distinct targets within {} s \
             (at most {}); switched to simulate",
            trip.run_id, trip.distinct_targets, trip.window_secs, trip.max_targets
        );
        tracing::warn!(rule = %rc.rule_id, tenant = %rc.tenant, "{why}");
        let agg = address::<RuleAggregate>(rc.tenant, rc.rule_id.to_string())
            .map_err(|e| ReactorError(e.to_string()))?;
        let set = RuleCommand::SetMode {
            mode: Mode::Simulate,
            reason: why.clone(),
        };
        match self
            .state
            .executor
            .execute::<RuleAggregate>(&agg, &set, &rc.ctx, false)
            .await
        {
            // A rule deleted meanwhile no longer acts anyway.
            Ok(_) | Err(CommandError::Domain(_)) => {}
            Err(e) => return Err(ReactorError(e.to_string())),
        }
        self.mark_dirty(rc.tenant);
        let incident = NewIncident {
            id: IncidentId(trip.incident_id),
            title: format!("Auto-response brake tripped: {}", rc.rule_name)
                .chars()
                .take(200)
                .collect(),
            severity: Severity::High,
            source: "auto_response".into(),
            description: format!("Rule {} ({}): {why}.", rc.rule_name, rc.rule_id),
            agent_id: None,
            dedup_key: None,
        };
        aegis_incidents_services::open_once(&self.state, &rc.ctx, rc.tenant, incident)
            .await
            .ok_or_else(|| ReactorError("could not open the brake incident".into()))?;
        Ok(())
    }
}

/// The tenant's rules as of `upto`, folded from the log.
pub async fn load_rules(
    store: &EventStore,
    tenant: Uuid,
    upto: u64,
) -> Result<TenantRules, ReactorError> {
    let err = |e: aegis_streams::StoreError| ReactorError(e.to_string());
    let filter = format!("{EVENT_PREFIX}.{tenant}.auto_response.rule.>");
    let commits = store
        .read_range(vec![filter], 1, Some(upto))
        .await
        .map_err(err)?;
    let commits: Vec<StoredCommit> = commits
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(err)?;
    TenantRules::fold(commits.iter().flat_map(|c| c.events.iter()))
}

impl Reactor for AutoResponder {
    fn name(&self) -> &'static str {
        "auto_response"
    }

    fn filters(&self) -> Vec<String> {
        vec![format!("{EVENT_PREFIX}.>")]
    }

    /// Tenants are matched and acted for side by side, so one tenant's heavy rules or slow
    /// actions hold back only the tenants hashed to its lane.
    fn lanes(&self) -> usize {
        8
    }

    async fn handle(&self, commit: &StoredCommit) -> Result<(), ReactorError> {
        let Some(first) = commit.events.first() else {
            return Ok(());
        };
        let Ok(tenant) = Uuid::parse_str(&first.tenant_id) else {
            return Ok(());
        };
        // Auto-response's own events (rules, runs, approvals) never trigger a rule.
        if first.context == RuleAggregate::CONTEXT {
            if first.aggregate_type == RuleAggregate::AGGREGATE {
                self.mark_dirty(tenant);
            }
            return Ok(());
        }
        let rules = self.rules(tenant, commit.position).await?;
        if rules.rules.is_empty() {
            return Ok(());
        }
        for env in &commit.events {
            let caused_by_a_rule = env
                .actor
                .as_ref()
                .is_some_and(|a| a.subject.starts_with(ACTOR_PREFIX));
            if caused_by_a_rule {
                continue;
            }
            let started = Instant::now();
            // Matching is CPU work bounded by the tenant's rules (at most MAX_RULES of at most
            // MAX_CONDITIONS each, with a linear glob): it runs on the blocking pool, never on
            // the async workers that serve requests.
            let (doc, hits) = {
                let (rules, env) = (rules.clone(), env.clone());
                tokio::task::spawn_blocking(move || {
                    let doc = document(&env);
                    let hits: Vec<usize> = rules
                        .rules
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.definition.matcher.matches(&doc))
                        .map(|(i, _)| i)
                        .collect();
                    (doc, hits)
                })
                .await
                .map_err(|e| ReactorError(format!("matching stopped: {e}")))?
            };
            self.state
                .metrics
                .ar_latency
                .observe(tenant, started.elapsed());
            for rule in hits.into_iter().filter_map(|i| rules.rules.get(i)) {
                self.run(tenant, rule, env, commit.position, &doc).await?;
            }
        }
        Ok(())
    }
}
