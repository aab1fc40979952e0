//! An auto-response rule (`auto_response.rule.<id>`): every change of its definition is a new
//! version, and every version stays readable, so a run or a simulation can always say exactly
//! which definition acted.

use super::actions::Action;
use super::matcher::Match;
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::auto_response::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

word_enum!(Mode {
    Active = "active",
    Simulate = "simulate",
    Disabled = "disabled",
});

/// At most `max_runs` runs per `window_secs`; zero runs means no throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttle {
    pub max_runs: u32,
    pub window_secs: u32,
}

/// The blast-radius brake: acting on more than `max_targets` distinct targets within
/// `window_secs` trips the rule to `simulate`; zero targets means no brake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brake {
    pub max_targets: u32,
    pub window_secs: u32,
}

impl Default for Brake {
    /// On unless a rule says otherwise: ten agents in five minutes is already an outage.
    fn default() -> Self {
        Self {
            max_targets: 10,
            window_secs: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub name: String,
    pub description: String,
    pub matcher: Match,
    pub actions: Vec<Action>,
    pub approval_required: bool,
    pub throttle: Throttle,
    pub brake: Brake,
}

impl Definition {
    fn to_pb(&self) -> pb::RuleDefinition {
        pb::RuleDefinition {
            name: self.name.clone(),
            description: self.description.clone(),
            match_json: self.matcher.to_json().to_string(),
            actions_json: Value::Array(self.actions.iter().map(Action::to_json).collect())
                .to_string(),
            approval_required: self.approval_required,
            throttle_max_runs: self.throttle.max_runs,
            throttle_window_secs: self.throttle.window_secs,
            brake_max_targets: self.brake.max_targets,
            brake_window_secs: self.brake.window_secs,
        }
    }

    fn from_pb(d: pb::RuleDefinition, env: &Envelope) -> Result<Self, DecodeError> {
        let json = |s: &str| serde_json::from_str::<Value>(s).map_err(|e| DecodeError::new(env, e));
        Ok(Self {
            matcher: Match::parse(&json(&d.match_json)?).map_err(|e| DecodeError::new(env, e))?,
            actions: Action::parse_all(&json(&d.actions_json)?)
                .map_err(|e| DecodeError::new(env, e))?,
            name: d.name,
            description: d.description,
            approval_required: d.approval_required,
            throttle: Throttle {
                max_runs: d.throttle_max_runs,
                window_secs: d.throttle_window_secs,
            },
            brake: Brake {
                max_targets: d.brake_max_targets,
                window_secs: d.brake_window_secs,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleVersion {
    pub version: u32,
    pub definition: Definition,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub versions: Vec<RuleVersion>,
    pub mode: Mode,
    pub mode_reason: String,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Rule {
    /// The version in force (a rule always has one).
    pub fn current(&self) -> Option<&RuleVersion> {
        self.versions.last()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create { definition: Definition, mode: Mode },
    Update(Definition),
    SetMode { mode: Mode, reason: String },
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created { definition: Definition, mode: Mode },
    Updated(Definition),
    ModeSet { mode: Mode, reason: String },
    Deleted,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("rule not found")]
    NotFound,
    #[error("the rule already exists")]
    AlreadyExists,
}

pub struct RuleAggregate;

impl Aggregate for RuleAggregate {
    const CONTEXT: &'static str = "auto_response";
    const AGGREGATE: &'static str = "rule";
    type State = Option<Rule>;
    type Command = Command;
    type Event = Event;
    type Error = RuleError;

    fn decide(state: &Option<Rule>, cmd: &Command) -> Result<Vec<Event>, RuleError> {
        let live = state.as_ref().filter(|r| !r.deleted);
        match (live, cmd) {
            (None, Command::Create { definition, mode }) if state.is_none() => {
                Ok(vec![Event::Created {
                    definition: definition.clone(),
                    mode: *mode,
                }])
            }
            (_, Command::Create { .. }) => Err(RuleError::AlreadyExists),
            // Deleting twice answers the same; a deleted rule takes nothing else.
            (None, Command::Delete) if state.is_some() => Ok(vec![]),
            (None, _) => Err(RuleError::NotFound),
            (Some(r), Command::Update(d)) => {
                if r.current().is_some_and(|v| v.definition == *d) {
                    return Ok(vec![]);
                }
                Ok(vec![Event::Updated(d.clone())])
            }
            (Some(r), Command::SetMode { mode, .. }) if r.mode == *mode => Ok(vec![]),
            (Some(_), Command::SetMode { mode, reason }) => Ok(vec![Event::ModeSet {
                mode: *mode,
                reason: reason.clone(),
            }]),
            (Some(_), Command::Delete) => Ok(vec![Event::Deleted]),
        }
    }

    fn evolve(state: Option<Rule>, event: &Event, env: &Envelope) -> Option<Rule> {
        let at = occurred_at(env);
        let by = env
            .actor
            .as_ref()
            .map(|a| format!("{}:{}", a.kind, a.subject))
            .unwrap_or_default();
        let Some(mut r) = state else {
            return match event {
                Event::Created { definition, mode } => Some(Rule {
                    id: env.aggregate_id.clone(),
                    versions: vec![RuleVersion {
                        version: 1,
                        definition: definition.clone(),
                        created_at: at,
                        created_by: by,
                    }],
                    mode: *mode,
                    mode_reason: String::new(),
                    deleted: false,
                    created_at: at,
                    updated_at: at,
                }),
                _ => None,
            };
        };
        match event {
            Event::Created { .. } => {}
            Event::Updated(d) => {
                let version = r.versions.len() as u32 + 1;
                r.versions.push(RuleVersion {
                    version,
                    definition: d.clone(),
                    created_at: at,
                    created_by: by,
                });
            }
            Event::ModeSet { mode, reason } => {
                r.mode = *mode;
                r.mode_reason = reason.clone();
            }
            Event::Deleted => r.deleted = true,
        }
        r.updated_at = at;
        Some(r)
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload) = match event {
            Event::Created { definition, mode } => (
                "rule.created.v1",
                pb::RuleCreated {
                    definition: Some(definition.to_pb()),
                    mode: mode.as_str().into(),
                }
                .encode_to_vec(),
            ),
            Event::Updated(d) => (
                "rule.updated.v1",
                pb::RuleUpdated {
                    definition: Some(d.to_pb()),
                }
                .encode_to_vec(),
            ),
            Event::ModeSet { mode, reason } => (
                "rule.mode_set.v1",
                pb::RuleModeSet {
                    mode: mode.as_str().into(),
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::Deleted => ("rule.deleted.v1", pb::RuleDeleted {}.encode_to_vec()),
        };
        NewEvent::new(event_type, payload)
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        use aegis_kernel::payload as msg;
        let mode = |m: &str| Mode::parse(m).ok_or_else(|| DecodeError::new(env, "unknown mode"));
        Ok(match env.event_type.as_str() {
            "rule.created.v1" => {
                let m: pb::RuleCreated = msg(env)?;
                Event::Created {
                    definition: Definition::from_pb(m.definition.unwrap_or_default(), env)?,
                    mode: mode(&m.mode)?,
                }
            }
            "rule.updated.v1" => {
                let m: pb::RuleUpdated = msg(env)?;
                Event::Updated(Definition::from_pb(m.definition.unwrap_or_default(), env)?)
            }
            "rule.mode_set.v1" => {
                let m: pb::RuleModeSet = msg(env)?;
                Event::ModeSet {
                    mode: mode(&m.mode)?,
                    reason: m.reason,
                }
            }
            "rule.deleted.v1" => Event::Deleted,
            other => return Err(DecodeError::new(env, format!("not a rule event: {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;
    use serde_json::json;

    fn definition(name: &str) -> Definition {
        Definition {
            name: name.into(),
            description: String::new(),
            matcher: Match::parse(&json!({ "finding": "prompt_injection_detected" }))
                .expect("match"),
            actions: Action::parse_all(
                &json!([{ "type": "quarantine_agent", "target": "{event.agent_id}" }]),
            )
            .expect("actions"),
            approval_required: false,
            throttle: Throttle::default(),
            brake: Brake::default(),
        }
    }

    fn created() -> Event {
        Event::Created {
            definition: definition("q"),
            mode: Mode::Simulate,
        }
    }

    #[test]
    fn each_change_is_a_new_version_and_no_change_is_none() {
        given::<RuleAggregate>(vec![created()])
            .when(Command::Update(definition("q2")))
            .then(vec![Event::Updated(definition("q2"))]);
        given::<RuleAggregate>(vec![created()])
            .when(Command::Update(definition("q")))
            .then(vec![]);
        let state = [created(), Event::Updated(definition("q2"))]
            .iter()
            .fold(None, |s, e| {
                RuleAggregate::evolve(s, e, &Envelope::default())
            });
        let versions: Vec<u32> = state
            .expect("rule")
            .versions
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions, [1, 2]);
    }

    #[test]
    fn a_deleted_rule_takes_nothing_but_another_delete() {
        given::<RuleAggregate>(vec![created(), Event::Deleted])
            .when(Command::Delete)
            .then(vec![]);
        given::<RuleAggregate>(vec![created(), Event::Deleted])
            .when(Command::SetMode {
                mode: Mode::Active,
                reason: String::new(),
            })
            .then_err(RuleError::NotFound);
        given::<RuleAggregate>(vec![])
            .when(Command::Delete)
            .then_err(RuleError::NotFound);
    }

    #[test]
    fn setting_the_mode_it_has_changes_nothing() {
        given::<RuleAggregate>(vec![created()])
            .when(Command::SetMode {
                mode: Mode::Simulate,
                reason: "again".into(),
            })
            .then(vec![]);
    }
}
