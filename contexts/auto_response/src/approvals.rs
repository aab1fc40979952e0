//! Approval gates (`auto_response.approval.<run id>`): a run of an `approval_required` rule
//! waits here for a person. It is approved (then its actions run and the outcome is recorded),
//! rejected, or expires after its TTL; an expiry is an event like the others, never a silent
//! drop.

use super::runs::RunResult;
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::auto_response::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

word_enum!(ApprovalStatus {
    Pending = "pending",
    Approved = "approved",
    Rejected = "rejected",
    Expired = "expired",
    Executed = "executed",
});

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub rule_id: Uuid,
    pub rule_version: u32,
    /// The run's actions, templates already filled.
    pub actions: Value,
    pub trigger_event_id: String,
    pub trigger_event_type: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub request: Request,
    pub status: ApprovalStatus,
    pub requested_at: DateTime<Utc>,
    /// `<kind>:<subject>` of whoever approved or rejected.
    pub decided_by: Option<String>,
    pub note: String,
    pub result: Option<RunResult>,
    /// The actions with their outcomes, once executed.
    pub outcome: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Request(Request),
    Approve { comment: String, now: DateTime<Utc> },
    Reject { reason: String, now: DateTime<Utc> },
    Expire { now: DateTime<Utc> },
    RecordExecution { result: RunResult, actions: Value },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Requested(Request),
    Approved { comment: String },
    Rejected { reason: String },
    Expired,
    Executed { result: RunResult, actions: Value },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no such pending approval")]
    NotFound,
    #[error("the approval expired at {0}; nothing ran")]
    Expired(DateTime<Utc>),
    #[error("the approval is already {0}")]
    Decided(ApprovalStatus),
}

pub struct ApprovalAggregate;

impl Aggregate for ApprovalAggregate {
    const CONTEXT: &'static str = "auto_response";
    const AGGREGATE: &'static str = "approval";
    type State = Option<Approval>;
    type Command = Command;
    type Event = Event;
    type Error = ApprovalError;

    fn decide(state: &Option<Approval>, cmd: &Command) -> Result<Vec<Event>, ApprovalError> {
        use ApprovalStatus::*;
        let Some(a) = state else {
            return match cmd {
                Command::Request(r) => Ok(vec![Event::Requested(r.clone())]),
                _ => Err(ApprovalError::NotFound),
            };
        };
        let expired = |now: &DateTime<Utc>| *now >= a.request.expires_at;
        match (a.status, cmd) {
            (_, Command::Request(_)) => Ok(vec![]),
            (Pending, Command::Approve { now, .. } | Command::Reject { now, .. })
                if expired(now) =>
            {
                Err(ApprovalError::Expired(a.request.expires_at))
            }
            (Pending, Command::Approve { comment, .. }) => Ok(vec![Event::Approved {
                comment: comment.clone(),
            }]),
            // Approving again finishes an approval whose execution was interrupted.
            (Approved | Executed, Command::Approve { .. }) => Ok(vec![]),
            (Pending, Command::Reject { reason, .. }) => Ok(vec![Event::Rejected {
                reason: reason.clone(),
            }]),
            (Rejected, Command::Reject { .. }) => Ok(vec![]),
            (Pending, Command::Expire { now }) if expired(now) => Ok(vec![Event::Expired]),
            (_, Command::Expire { .. }) => Ok(vec![]),
            (Approved, Command::RecordExecution { result, actions }) => Ok(vec![Event::Executed {
                result: *result,
                actions: actions.clone(),
            }]),
            (Executed, Command::RecordExecution { .. }) => Ok(vec![]),
            (Expired, _) => Err(ApprovalError::Expired(a.request.expires_at)),
            (status, _) => Err(ApprovalError::Decided(status)),
        }
    }

    fn evolve(state: Option<Approval>, event: &Event, env: &Envelope) -> Option<Approval> {
        let by = env
            .actor
            .as_ref()
            .map(|a| format!("{}:{}", a.kind, a.subject));
        let Some(mut a) = state else {
            return match event {
                Event::Requested(r) => Some(Approval {
                    request: r.clone(),
                    status: ApprovalStatus::Pending,
                    requested_at: occurred_at(env),
                    decided_by: None,
                    note: String::new(),
                    result: None,
                    outcome: None,
                }),
                _ => None,
            };
        };
        match event {
            Event::Requested(_) => {}
            Event::Approved { comment } => {
                a.status = ApprovalStatus::Approved;
                a.decided_by = by;
                a.note = comment.clone();
            }
            Event::Rejected { reason } => {
                a.status = ApprovalStatus::Rejected;
                a.decided_by = by;
                a.note = reason.clone();
                a.result = Some(RunResult::Rejected);
            }
            Event::Expired => {
                a.status = ApprovalStatus::Expired;
                a.result = Some(RunResult::Expired);
            }
            Event::Executed { result, actions } => {
                a.status = ApprovalStatus::Executed;
                a.result = Some(*result);
                a.outcome = Some(actions.clone());
            }
        }
        Some(a)
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload) = match event {
            Event::Requested(r) => (
                "approval.requested.v1",
                pb::ApprovalRequested {
                    rule_id: r.rule_id.to_string(),
                    rule_version: r.rule_version,
                    actions_json: r.actions.to_string(),
                    trigger_event_id: r.trigger_event_id.clone(),
                    trigger_event_type: r.trigger_event_type.clone(),
                    expires_at: r.expires_at.timestamp(),
                }
                .encode_to_vec(),
            ),
            Event::Approved { comment } => (
                "approval.approved.v1",
                pb::ApprovalApproved {
                    comment: comment.clone(),
                }
                .encode_to_vec(),
            ),
            Event::Rejected { reason } => (
                "approval.rejected.v1",
                pb::ApprovalRejected {
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::Expired => (
                "approval.expired.v1",
                pb::ApprovalExpired {}.encode_to_vec(),
            ),
            Event::Executed { result, actions } => (
                "approval.executed.v1",
                pb::ApprovalExecuted {
                    result: result.as_str().into(),
                    actions_json: actions.to_string(),
                }
                .encode_to_vec(),
            ),
        };
        NewEvent::new(event_type, payload)
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        use aegis_kernel::payload as msg;
        let json = |s: &str| serde_json::from_str::<Value>(s).map_err(|e| DecodeError::new(env, e));
        Ok(match env.event_type.as_str() {
            "approval.requested.v1" => {
                let m: pb::ApprovalRequested = msg(env)?;
                Event::Requested(Request {
                    rule_id: Uuid::parse_str(&m.rule_id).map_err(|e| DecodeError::new(env, e))?,
                    rule_version: m.rule_version,
                    actions: json(&m.actions_json)?,
                    trigger_event_id: m.trigger_event_id,
                    trigger_event_type: m.trigger_event_type,
                    expires_at: DateTime::from_timestamp(m.expires_at, 0)
                        .ok_or_else(|| DecodeError::new(env, "expires_at out of range"))?,
                })
            }
            "approval.approved.v1" => Event::Approved {
                comment: msg::<pb::ApprovalApproved>(env)?.comment,
            },
            "approval.rejected.v1" => Event::Rejected {
                reason: msg::<pb::ApprovalRejected>(env)?.reason,
            },
            "approval.expired.v1" => Event::Expired,
            "approval.executed.v1" => {
                let m: pb::ApprovalExecuted = msg(env)?;
                Event::Executed {
                    result: RunResult::parse(&m.result)
                        .ok_or_else(|| DecodeError::new(env, "unknown run result"))?,
                    actions: json(&m.actions_json)?,
                }
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not an approval event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;
    use serde_json::json;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("valid time")
    }

    fn requested() -> Event {
        Event::Requested(Request {
            rule_id: Uuid::from_u128(1),
            rule_version: 2,
            actions: json!([{ "type": "engage_kill_switch" }]),
            trigger_event_id: "e".into(),
            trigger_event_type: "incident.opened.v1".into(),
            expires_at: at(1_000),
        })
    }

    fn approve(now: i64) -> Command {
        Command::Approve {
            comment: "go".into(),
            now: at(now),
        }
    }

    #[test]
    fn a_pending_approval_is_approved_once_and_then_records_its_execution() {
        given::<ApprovalAggregate>(vec![requested()])
            .when(approve(10))
            .then(vec![Event::Approved {
                comment: "go".into(),
            }]);
        let approved = Event::Approved {
            comment: "go".into(),
        };
        given::<ApprovalAggregate>(vec![requested(), approved.clone()])
            .when(approve(11))
            .then(vec![]);
        given::<ApprovalAggregate>(vec![requested(), approved])
            .when(Command::RecordExecution {
                result: RunResult::Succeeded,
                actions: json!([]),
            })
            .then(vec![Event::Executed {
                result: RunResult::Succeeded,
                actions: json!([]),
            }]);
        given::<ApprovalAggregate>(vec![requested()])
            .when(Command::RecordExecution {
                result: RunResult::Succeeded,
                actions: json!([]),
            })
            .then_err(ApprovalError::Decided(ApprovalStatus::Pending));
    }

    #[test]
    fn past_its_ttl_an_approval_cannot_be_approved_and_expires_on_record() {
        given::<ApprovalAggregate>(vec![requested()])
            .when(approve(1_000))
            .then_err(ApprovalError::Expired(at(1_000)));
        given::<ApprovalAggregate>(vec![requested()])
            .when(Command::Expire { now: at(999) })
            .then(vec![]);
        given::<ApprovalAggregate>(vec![requested()])
            .when(Command::Expire { now: at(1_000) })
            .then(vec![Event::Expired]);
        given::<ApprovalAggregate>(vec![requested(), Event::Expired])
            .when(approve(5))
            .then_err(ApprovalError::Expired(at(1_000)));
    }

    #[test]
    fn a_rejected_approval_never_runs() {
        let rejected = Event::Rejected {
            reason: "false positive".into(),
        };
        given::<ApprovalAggregate>(vec![requested(), rejected.clone()])
            .when(approve(10))
            .then_err(ApprovalError::Decided(ApprovalStatus::Rejected));
        given::<ApprovalAggregate>(vec![requested(), rejected])
            .when(Command::Expire { now: at(2_000) })
            .then(vec![]);
        given::<ApprovalAggregate>(vec![])
            .when(approve(1))
            .then_err(ApprovalError::NotFound);
    }
}
