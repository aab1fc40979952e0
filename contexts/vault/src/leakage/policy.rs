//! A leakage policy: its patterns (checked to compile when it is made, so a scan never meets
//! a bad one), where it may scan, and what a finding under it triggers. Deleted policies are
//! gone for good; a scan that named one is refused at request time.

use super::detector::{self, PatternError};
use super::{LeakSeverity, OnDetection, Pattern, PatternKind};
use aegis_kernel::{occurred_at, payload, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_schemas::{Message, NewEvent};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct NewPolicy {
    pub name: String,
    pub description: String,
    pub patterns: Vec<Pattern>,
    pub scan_targets: Vec<String>,
    pub on_detection: OnDetection,
    pub notification_channels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub new: NewPolicy,
    pub created_at: DateTime<Utc>,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCommand {
    Create(NewPolicy),
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyEvent {
    Created(NewPolicy),
    Deleted,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("leakage policy not found")]
    NotFound,
    #[error("a leakage policy with this id exists")]
    Exists,
    #[error("`name` must be 1 to 200 characters")]
    Name,
    #[error("a policy needs at most {MAX_PATTERNS} patterns")]
    TooManyPatterns,
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("scan target `{0}` is not one of github, gitlab, pastebin, s3, url")]
    Target(String),
}

/// Patterns one policy may hold; every one is compiled for every scan that uses it.
pub const MAX_PATTERNS: usize = 100;

/// The targets the document names, and `url` for any page reachable over HTTP.
pub const TARGETS: &[&str] = &["github", "gitlab", "pastebin", "s3", "url"];

fn check(p: &NewPolicy) -> Result<(), PolicyError> {
    if p.name.trim().is_empty() || p.name.chars().count() > 200 {
        return Err(PolicyError::Name);
    }
    if p.patterns.len() > MAX_PATTERNS {
        return Err(PolicyError::TooManyPatterns);
    }
    for (i, pattern) in p.patterns.iter().enumerate() {
        detector::Rule::compile(i, pattern)?;
    }
    if let Some(t) = p
        .scan_targets
        .iter()
        .find(|t| !TARGETS.contains(&t.as_str()))
    {
        return Err(PolicyError::Target(t.clone()));
    }
    Ok(())
}

pub struct LeakPolicyAggregate;

impl Aggregate for LeakPolicyAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "leak_policy";
    type State = Option<Policy>;
    type Command = PolicyCommand;
    type Event = PolicyEvent;
    type Error = PolicyError;

    fn decide(
        state: &Option<Policy>,
        cmd: &PolicyCommand,
    ) -> Result<Vec<PolicyEvent>, PolicyError> {
        match (state, cmd) {
            (None, PolicyCommand::Create(p)) => {
                check(p)?;
                Ok(vec![PolicyEvent::Created(p.clone())])
            }
            (Some(_), PolicyCommand::Create(_)) => Err(PolicyError::Exists),
            (Some(p), PolicyCommand::Delete) if !p.deleted => Ok(vec![PolicyEvent::Deleted]),
            (_, PolicyCommand::Delete) => Err(PolicyError::NotFound),
        }
    }

    fn evolve(state: Option<Policy>, event: &PolicyEvent, env: &Envelope) -> Option<Policy> {
        match (state, event) {
            (None, PolicyEvent::Created(new)) => Some(Policy {
                new: new.clone(),
                created_at: occurred_at(env),
                deleted: false,
            }),
            (Some(mut p), PolicyEvent::Deleted) => {
                p.deleted = true;
                Some(p)
            }
            (state, _) => state,
        }
    }

    fn encode(e: &PolicyEvent) -> NewEvent {
        match e {
            PolicyEvent::Created(p) => NewEvent::new(
                "leak_policy.created.v1",
                pb::LeakPolicyCreated {
                    name: p.name.clone(),
                    description: p.description.clone(),
                    patterns: p
                        .patterns
                        .iter()
                        .map(|x| pb::LeakPattern {
                            r#type: x.kind.as_str().into(),
                            pattern: x.pattern.clone(),
                            severity: x.severity.as_str().into(),
                        })
                        .collect(),
                    scan_targets: p.scan_targets.clone(),
                    on_detection: p.on_detection.as_str().into(),
                    notification_channels: p.notification_channels.clone(),
                }
                .encode_to_vec(),
            ),
            PolicyEvent::Deleted => NewEvent::new(
                "leak_policy.deleted.v1",
                pb::LeakPolicyDeleted {}.encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<PolicyEvent, DecodeError> {
        match env.event_type.as_str() {
            "leak_policy.created.v1" => {
                let m: pb::LeakPolicyCreated = payload(env)?;
                let word =
                    |what: &str, s: &str| DecodeError::new(env, format!("unknown {what} `{s}`"));
                let patterns = m
                    .patterns
                    .into_iter()
                    .map(|p| {
                        Ok(Pattern {
                            kind: PatternKind::parse(&p.r#type)
                                .ok_or_else(|| word("pattern type", &p.r#type))?,
                            severity: LeakSeverity::parse(&p.severity)
                                .ok_or_else(|| word("severity", &p.severity))?,
                            pattern: p.pattern,
                        })
                    })
                    .collect::<Result<_, DecodeError>>()?;
                Ok(PolicyEvent::Created(NewPolicy {
                    name: m.name,
                    description: m.description,
                    patterns,
                    scan_targets: m.scan_targets,
                    on_detection: OnDetection::parse(&m.on_detection)
                        .ok_or_else(|| word("action", &m.on_detection))?,
                    notification_channels: m.notification_channels,
                }))
            }
            "leak_policy.deleted.v1" => Ok(PolicyEvent::Deleted),
            other => Err(DecodeError::new(
                env,
                format!("unknown leak policy event {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn policy(patterns: Vec<Pattern>) -> NewPolicy {
        NewPolicy {
            name: "tokens".into(),
            description: String::new(),
            patterns,
            scan_targets: vec!["github".into()],
            on_detection: OnDetection::Rotate,
            notification_channels: vec![],
        }
    }

    fn regex(p: &str) -> Pattern {
        Pattern {
            kind: PatternKind::Regex,
            pattern: p.into(),
            severity: LeakSeverity::High,
        }
    }

    #[test]
    fn a_policy_is_made_once_and_deleted_once() {
        let made = PolicyEvent::Created(policy(vec![regex("tok_[a-z]{8}")]));
        given::<LeakPolicyAggregate>(vec![])
            .when(PolicyCommand::Create(policy(vec![regex("tok_[a-z]{8}")])))
            .then(vec![made.clone()]);
        given::<LeakPolicyAggregate>(vec![made.clone()])
            .when(PolicyCommand::Create(policy(vec![])))
            .then_err(PolicyError::Exists);
        given::<LeakPolicyAggregate>(vec![made.clone()])
            .when(PolicyCommand::Delete)
            .then(vec![PolicyEvent::Deleted]);
        given::<LeakPolicyAggregate>(vec![made, PolicyEvent::Deleted])
            .when(PolicyCommand::Delete)
            .then_err(PolicyError::NotFound);
    }

    #[test]
    fn a_pattern_that_does_not_compile_or_an_unknown_target_makes_nothing() {
        given::<LeakPolicyAggregate>(vec![])
            .when(PolicyCommand::Create(policy(vec![regex("tok_[a-z")])))
            .then_err(PolicyError::Pattern(PatternError::Regex {
                index: 0,
                reason: "unclosed character class".into(),
            }));
        let mut p = policy(vec![]);
        p.scan_targets = vec!["ftp".into()];
        given::<LeakPolicyAggregate>(vec![])
            .when(PolicyCommand::Create(p))
            .then_err(PolicyError::Target("ftp".into()));
    }
}
