//! A tenant's approval rules (seed 004's workflows and policies): a workflow says who must
//! approve a request and how many, and how long it and its wraps live; a policy's selector
//! picks the workflow for the requests it matches, the highest priority first. They are one
//! aggregate per tenant (a few dozen admin-edited rows), so its invariants are decisions on
//! one history: names are unique, one workflow at most is the default, a policy names a
//! workflow that exists, and a workflow that a policy uses, or the default, cannot be deleted.

use crate::requests::Binding;
use aegis_kernel::{payload, Aggregate, DecodeError};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use std::collections::BTreeMap;
use uuid::Uuid;

#[path = "rules_model.rs"]
mod model;
pub use model::{Policy, Selector, Target, Workflow, MAX_POLICIES, MAX_WORKFLOWS};

/// A workflow or a policy with when it was made and last changed (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped<T> {
    pub value: T,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub workflows: BTreeMap<Uuid, Stamped<Workflow>>,
    pub policies: BTreeMap<Uuid, Stamped<Policy>>,
}

impl Rules {
    /// The workflow a request for `target` is bound to: the highest-priority enabled policy
    /// that matches it and names an enabled workflow (the older policy first on a tie), else
    /// the enabled default workflow; `None` when neither exists.
    pub fn workflow_for(&self, target: &Target) -> Option<(Uuid, &Workflow)> {
        let enabled = |id: &Uuid| {
            self.workflows
                .get(id)
                .filter(|w| w.value.enabled)
                .map(|w| (*id, &w.value))
        };
        let mut matching: Vec<(&Uuid, &Stamped<Policy>)> = self
            .policies
            .iter()
            .filter(|(_, p)| p.value.enabled && p.value.selector.matches(target))
            .collect();
        matching.sort_by_key(|(id, p)| (std::cmp::Reverse(p.value.priority), p.created_at, **id));
        matching
            .into_iter()
            .find_map(|(_, p)| enabled(&p.value.workflow_id))
            .or_else(|| {
                self.workflows
                    .iter()
                    .find(|(_, w)| w.value.is_default && w.value.enabled)
                    .map(|(id, w)| (*id, &w.value))
            })
    }
}

impl Workflow {
    /// The rules a request keeps from this workflow, whatever becomes of it later.
    pub fn binding(&self, id: Uuid) -> Binding {
        Binding {
            workflow_id: id.to_string(),
            min_approvers: self.min_approvers,
            allow_self_approval: self.allow_self_approval,
            require_justification: self.require_justification,
            ttl_ms: self.request_ttl_seconds.saturating_mul(1000),
            approver_role: self.approver_role_id.clone(),
            wrap_ttl_approved_ms: self.wrap_ttl_approved_seconds.saturating_mul(1000),
            break_glass: self.break_glass_user_ids.clone(),
            wrap_ttl_claimed_ms: self.wrap_ttl_claimed_seconds.saturating_mul(1000),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    CreateWorkflow { id: Uuid, workflow: Workflow },
    UpdateWorkflow { id: Uuid, workflow: Workflow },
    DeleteWorkflow { id: Uuid },
    CreatePolicy { id: Uuid, policy: Policy },
    UpdatePolicy { id: Uuid, policy: Policy },
    DeletePolicy { id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    WorkflowCreated { id: Uuid, workflow: Workflow },
    WorkflowUpdated { id: Uuid, workflow: Workflow },
    WorkflowDeleted { id: Uuid },
    PolicyCreated { id: Uuid, policy: Policy },
    PolicyUpdated { id: Uuid, policy: Policy },
    PolicyDeleted { id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("workflow not found")]
    WorkflowNotFound,
    #[error("policy not found")]
    PolicyNotFound,
    #[error("a {0} with this id already exists")]
    AlreadyExists(&'static str),
    #[error("a {kind} named `{name}` already exists")]
    NameTaken { kind: &'static str, name: String },
    #[error("the workflow is in use by {0}: point it elsewhere first")]
    InUse(String),
    #[error("the policy names workflow {0}, which does not exist")]
    UnknownWorkflow(Uuid),
    #[error("a tenant has at most {0} of these")]
    TooMany(usize),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

pub struct RulesAggregate;

fn name_taken<T>(
    rows: &BTreeMap<Uuid, Stamped<T>>,
    name: impl Fn(&T) -> &str,
    id: Uuid,
    wanted: &str,
) -> bool {
    rows.iter()
        .any(|(other, r)| *other != id && name(&r.value).eq_ignore_ascii_case(wanted))
}

impl Aggregate for RulesAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "approval_rules";
    type State = Rules;
    type Command = Command;
    type Event = Event;
    type Error = RulesError;

    fn decide(rules: &Rules, cmd: &Command) -> Result<Vec<Event>, RulesError> {
        use RulesError as E;
        match cmd {
            Command::CreateWorkflow { id, workflow } | Command::UpdateWorkflow { id, workflow } => {
                workflow.validate()?;
                let creating = matches!(cmd, Command::CreateWorkflow { .. });
                match (creating, rules.workflows.contains_key(id)) {
                    (true, true) => return Err(E::AlreadyExists("workflow")),
                    (false, false) => return Err(E::WorkflowNotFound),
                    (true, false) if rules.workflows.len() >= MAX_WORKFLOWS => {
                        return Err(E::TooMany(MAX_WORKFLOWS))
                    }
                    _ => {}
                }
                if name_taken(&rules.workflows, |w| &w.name, *id, &workflow.name) {
                    return Err(E::NameTaken {
                        kind: "workflow",
                        name: workflow.name.clone(),
                    });
                }
                let (id, workflow) = (*id, workflow.clone());
                Ok(vec![if creating {
                    Event::WorkflowCreated { id, workflow }
                } else {
                    Event::WorkflowUpdated { id, workflow }
                }])
            }
            Command::DeleteWorkflow { id } => {
                let w = rules.workflows.get(id).ok_or(E::WorkflowNotFound)?;
                if let Some((pid, p)) = rules
                    .policies
                    .iter()
                    .find(|(_, p)| p.value.workflow_id == *id)
                {
                    return Err(E::InUse(format!("policy `{}` ({pid})", p.value.name)));
                }
                if w.value.is_default {
                    return Err(E::InUse(
                        "the default: make another workflow the default".into(),
                    ));
                }
                Ok(vec![Event::WorkflowDeleted { id: *id }])
            }
            Command::CreatePolicy { id, policy } | Command::UpdatePolicy { id, policy } => {
                policy.validate()?;
                let creating = matches!(cmd, Command::CreatePolicy { .. });
                match (creating, rules.policies.contains_key(id)) {
                    (true, true) => return Err(E::AlreadyExists("policy")),
                    (false, false) => return Err(E::PolicyNotFound),
                    (true, false) if rules.policies.len() >= MAX_POLICIES => {
                        return Err(E::TooMany(MAX_POLICIES))
                    }
                    _ => {}
                }
                if !rules.workflows.contains_key(&policy.workflow_id) {
                    return Err(E::UnknownWorkflow(policy.workflow_id));
                }
                if name_taken(&rules.policies, |p| &p.name, *id, &policy.name) {
                    return Err(E::NameTaken {
                        kind: "policy",
                        name: policy.name.clone(),
                    });
                }
                let (id, policy) = (*id, policy.clone());
                Ok(vec![if creating {
                    Event::PolicyCreated { id, policy }
                } else {
                    Event::PolicyUpdated { id, policy }
                }])
            }
            Command::DeletePolicy { id } => {
                rules.policies.get(id).ok_or(E::PolicyNotFound)?;
                Ok(vec![Event::PolicyDeleted { id: *id }])
            }
        }
    }

    fn evolve(mut rules: Rules, event: &Event, env: &Envelope) -> Rules {
        let at = aegis_kernel::occurred_at_ms(env).unwrap_or_default();
        match event {
            Event::WorkflowCreated { id, workflow } | Event::WorkflowUpdated { id, workflow } => {
                // One default: naming a new one takes it from the old.
                if workflow.is_default {
                    for w in rules.workflows.values_mut() {
                        w.value.is_default = false;
                    }
                }
                let created_at = rules.workflows.get(id).map_or(at, |w| w.created_at);
                rules.workflows.insert(
                    *id,
                    Stamped {
                        value: workflow.clone(),
                        created_at,
                        updated_at: at,
                    },
                );
            }
            Event::WorkflowDeleted { id } => {
                rules.workflows.remove(id);
            }
            Event::PolicyCreated { id, policy } | Event::PolicyUpdated { id, policy } => {
                let created_at = rules.policies.get(id).map_or(at, |p| p.created_at);
                rules.policies.insert(
                    *id,
                    Stamped {
                        value: policy.clone(),
                        created_at,
                        updated_at: at,
                    },
                );
            }
            Event::PolicyDeleted { id } => {
                rules.policies.remove(id);
            }
        }
        rules
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::WorkflowCreated { id, workflow } | Event::WorkflowUpdated { id, workflow } => {
                let t = if matches!(event, Event::WorkflowCreated { .. }) {
                    "workflow.created.v1"
                } else {
                    "workflow.updated.v1"
                };
                NewEvent::new(
                    t,
                    pb::WorkflowSaved {
                        workflow_id: id.to_string(),
                        workflow: Some(workflow.to_pb()),
                    }
                    .encode_to_vec(),
                )
            }
            Event::WorkflowDeleted { id } => NewEvent::new(
                "workflow.deleted.v1",
                pb::WorkflowDeleted {
                    workflow_id: id.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::PolicyCreated { id, policy } | Event::PolicyUpdated { id, policy } => {
                let t = if matches!(event, Event::PolicyCreated { .. }) {
                    "policy.created.v1"
                } else {
                    "policy.updated.v1"
                };
                NewEvent::new(
                    t,
                    pb::PolicySaved {
                        policy_id: id.to_string(),
                        policy: Some(policy.to_pb()),
                    }
                    .encode_to_vec(),
                )
            }
            Event::PolicyDeleted { id } => NewEvent::new(
                "policy.deleted.v1",
                pb::PolicyDeleted {
                    policy_id: id.to_string(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let id = |s: &str| Uuid::parse_str(s).map_err(|e| DecodeError::new(env, e));
        Ok(match env.event_type.as_str() {
            t @ ("workflow.created.v1" | "workflow.updated.v1") => {
                let m: pb::WorkflowSaved = payload(env)?;
                let id = id(&m.workflow_id)?;
                let workflow = Workflow::from_pb(m.workflow.unwrap_or_default());
                if t == "workflow.created.v1" {
                    Event::WorkflowCreated { id, workflow }
                } else {
                    Event::WorkflowUpdated { id, workflow }
                }
            }
            "workflow.deleted.v1" => {
                let m: pb::WorkflowDeleted = payload(env)?;
                Event::WorkflowDeleted {
                    id: id(&m.workflow_id)?,
                }
            }
            t @ ("policy.created.v1" | "policy.updated.v1") => {
                let m: pb::PolicySaved = payload(env)?;
                let pid = id(&m.policy_id)?;
                let policy = Policy::from_pb(m.policy.unwrap_or_default())
                    .map_err(|e| DecodeError::new(env, e))?;
                if t == "policy.created.v1" {
                    Event::PolicyCreated { id: pid, policy }
                } else {
                    Event::PolicyUpdated { id: pid, policy }
                }
            }
            "policy.deleted.v1" => {
                let m: pb::PolicyDeleted = payload(env)?;
                Event::PolicyDeleted {
                    id: id(&m.policy_id)?,
                }
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not an approval rules event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
