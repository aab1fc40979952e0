//! Access requests (seed 004, issue 19): someone asks to read keys of a secret in a cluster, or
//! to set them; approvers vote; reaching the bound workflow's `min_approvers` approves the
//! request exactly once (the votes are decisions on the request's own history, so approvers
//! voting at the same moment cannot approve it twice); one rejection ends it. The approval rules
//! are a snapshot taken at submission (`Binding`): a workflow edited later does not change a
//! request in flight.

use aegis_kernel::{Aggregate, DecodeError, Sealed};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::NewEvent;
use uuid::Uuid;

#[path = "requests_codec.rs"]
mod codec;
#[path = "requests_gitops.rs"]
pub mod observations;
#[path = "requests_states.rs"]
mod states;
use observations::{Observation, Polled, Seen, Watch};
pub use states::{Kind, Status};

/// The approval rules a request is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub workflow_id: String,
    /// 0 approves on submission.
    pub min_approvers: u32,
    pub allow_self_approval: bool,
    pub require_justification: bool,
    /// How long a pending request waits for its approvals (ms).
    pub ttl_ms: i64,
    /// The role an approver must hold (checked by the service); empty: anyone allowed to approve.
    pub approver_role: String,
    /// How long the wraps made at approval (a patch's values) wait for the agent (ms).
    pub wrap_ttl_approved_ms: i64,
    /// Who may bypass the approvals, with a reason (break-glass).
    pub break_glass: Vec<Uuid>,
    /// The longest a value an agent hands over waits for the requester (ms; 0: no cap).
    pub wrap_ttl_claimed_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub kind: Kind,
    pub requester: Uuid,
    pub project_id: String,
    pub environment: String,
    pub provider_type: String,
    /// A JSON object.
    pub provider_config: String,
    pub secret_ref: String,
    /// The keys read or set: names only.
    pub keys: Vec<String>,
    pub justification: String,
    pub binding: Binding,
    /// A patch's values, sealed, by key (empty for a read).
    pub values: Vec<(String, Sealed)>,
}

/// One approver's decision, kept after the request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub approver: Uuid,
    pub approve: bool,
    /// The comment of an approval, the reason of a rejection.
    pub text: String,
    /// When it was cast (ms since the epoch): the decision's time, or its record's.
    pub at: i64,
    /// Its record's event id (empty until recorded).
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub new: NewRequest,
    pub status: Status,
    /// When it was submitted (ms since the epoch): with the binding's TTL, when it expires.
    pub submitted_at: i64,
    pub votes: Vec<Vote>,
    pub error: String,
    /// When it last changed (ms since the epoch), from its last record.
    pub updated_at: i64,
    /// Who bypassed the approvals, and why.
    pub broken_glass: Option<(Uuid, String)>,
    /// The GitOps observations begun when it executed, by mapping.
    pub gitops: Vec<Observation>,
}

impl Request {
    pub fn approvals(&self) -> usize {
        self.votes.iter().filter(|v| v.approve).count()
    }

    pub fn expires_at(&self) -> i64 {
        self.submitted_at.saturating_add(self.new.binding.ttl_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `now` is the submission time (ms since the epoch).
    Submit {
        request: Box<NewRequest>,
        now: i64,
    },
    Approve {
        approver: Uuid,
        comment: String,
        now: i64,
    },
    Reject {
        approver: Uuid,
        reason: String,
        now: i64,
    },
    Cancel {
        actor: Uuid,
    },
    /// Someone the binding names bypasses the approvals; `channels` are told.
    BreakGlass {
        actor: Uuid,
        reason: String,
        channels: Vec<String>,
        now: i64,
    },
    /// Ends a pending request whose time ran out; anything else is left as it is.
    Expire {
        now: i64,
    },
    /// The agent's job for an approved request ended; an executed patch begins `watches`.
    Finish {
        succeeded: bool,
        error: String,
        watches: Vec<Watch>,
        now: i64,
    },
    /// What a poll of one watched application saw.
    ObserveGitops {
        mapping_id: Uuid,
        seen: Seen,
        now: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Submitted {
        request: Box<NewRequest>,
        at: i64,
    },
    VoteCast(Vote),
    Approved,
    Rejected {
        approver: Uuid,
        reason: String,
    },
    BrokeGlass {
        actor: Uuid,
        reason: String,
        channels: Vec<String>,
    },
    Cancelled,
    Expired,
    Finished {
        succeeded: bool,
        error: String,
    },
    GitopsQueued {
        watches: Vec<Watch>,
        at: i64,
    },
    GitopsPolled(Polled),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request not found")]
    NotFound,
    #[error("a request with this id already exists")]
    AlreadyExists,
    #[error("request is not pending (it is {0})")]
    NotPending(&'static str),
    #[error("requester cannot approve own request")]
    SelfApproval,
    #[error("approver has already voted on this request")]
    DuplicateVote,
    #[error("only the original requester can cancel")]
    NotRequester,
    #[error("a rejection needs a reason")]
    ReasonRequired,
    #[error("this request's workflow does not let you bypass its approvals")]
    NotBreakGlass,
    #[error("bypassing the approvals needs a reason")]
    BreakGlassReasonRequired,
    #[error("this request's workflow requires a justification")]
    JustificationRequired,
    #[error("a request names at least one key, none blank")]
    NoKeys,
    #[error("the request is not approved (it is {0})")]
    NotApproved(&'static str),
    #[error("the request has no gitops observation for that mapping")]
    NoObservation,
}

pub struct RequestAggregate;

fn pending(r: &Request, now: i64) -> Result<(), RequestError> {
    if r.status != Status::Pending {
        return Err(RequestError::NotPending(r.status.as_str()));
    }
    // Past its time it is as good as expired, whether or not the expiry pass has been by.
    if now >= r.expires_at() {
        return Err(RequestError::NotPending(Status::Expired.as_str()));
    }
    Ok(())
}

fn vote(r: &Request, approver: Uuid, now: i64) -> Result<(), RequestError> {
    pending(r, now)?;
    if approver == r.new.requester && !r.new.binding.allow_self_approval {
        return Err(RequestError::SelfApproval);
    }
    if r.votes.iter().any(|v| v.approver == approver) {
        return Err(RequestError::DuplicateVote);
    }
    Ok(())
}

impl Aggregate for RequestAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "request";
    type State = Option<Request>;
    type Command = Command;
    type Event = Event;
    type Error = RequestError;

    fn decide(state: &Option<Request>, cmd: &Command) -> Result<Vec<Event>, RequestError> {
        let r = match (state, cmd) {
            (None, Command::Submit { request, now }) => {
                if request.keys.is_empty() || request.keys.iter().any(|k| k.trim().is_empty()) {
                    return Err(RequestError::NoKeys);
                }
                if request.binding.require_justification && request.justification.trim().is_empty()
                {
                    return Err(RequestError::JustificationRequired);
                }
                let mut events = vec![Event::Submitted {
                    request: request.clone(),
                    at: *now,
                }];
                if request.binding.min_approvers == 0 {
                    events.push(Event::Approved);
                }
                return Ok(events);
            }
            (Some(_), Command::Submit { .. }) => return Err(RequestError::AlreadyExists),
            (None, _) => return Err(RequestError::NotFound),
            (Some(r), _) => r,
        };
        match cmd {
            Command::Submit { .. } => Err(RequestError::AlreadyExists),
            Command::Approve {
                approver,
                comment,
                now,
            } => {
                vote(r, *approver, *now)?;
                let mut events = vec![Event::VoteCast(Vote {
                    approver: *approver,
                    approve: true,
                    text: comment.clone(),
                    at: *now,
                    id: String::new(),
                })];
                if r.approvals() + 1 >= r.new.binding.min_approvers as usize {
                    events.push(Event::Approved);
                }
                Ok(events)
            }
            Command::Reject {
                approver,
                reason,
                now,
            } => {
                if reason.trim().is_empty() {
                    return Err(RequestError::ReasonRequired);
                }
                vote(r, *approver, *now)?;
                Ok(vec![
                    Event::VoteCast(Vote {
                        approver: *approver,
                        approve: false,
                        text: reason.clone(),
                        at: *now,
                        id: String::new(),
                    }),
                    Event::Rejected {
                        approver: *approver,
                        reason: reason.clone(),
                    },
                ])
            }
            Command::Cancel { actor } => {
                if *actor != r.new.requester {
                    return Err(RequestError::NotRequester);
                }
                if r.status != Status::Pending {
                    return Err(RequestError::NotPending(r.status.as_str()));
                }
                Ok(vec![Event::Cancelled])
            }
            Command::BreakGlass {
                actor,
                reason,
                channels,
                now,
            } => {
                pending(r, *now)?;
                if !r.new.binding.break_glass.contains(actor) {
                    return Err(RequestError::NotBreakGlass);
                }
                if reason.trim().is_empty() {
                    return Err(RequestError::BreakGlassReasonRequired);
                }
                Ok(vec![
                    Event::BrokeGlass {
                        actor: *actor,
                        reason: reason.clone(),
                        channels: channels.clone(),
                    },
                    Event::Approved,
                ])
            }
            Command::Expire { now } => {
                Ok(if r.status == Status::Pending && *now >= r.expires_at() {
                    vec![Event::Expired]
                } else {
                    vec![]
                })
            }
            Command::Finish {
                succeeded,
                error,
                watches,
                now,
            } => match r.status {
                Status::Approved => {
                    let mut events = vec![Event::Finished {
                        succeeded: *succeeded,
                        error: error.clone(),
                    }];
                    if *succeeded && r.new.kind == Kind::Patch && !watches.is_empty() {
                        events.push(Event::GitopsQueued {
                            watches: watches.clone(),
                            at: *now,
                        });
                    }
                    Ok(events)
                }
                // A job reporting again changes nothing.
                Status::Executed | Status::Failed => Ok(vec![]),
                other => Err(RequestError::NotApproved(other.as_str())),
            },
            Command::ObserveGitops {
                mapping_id,
                seen,
                now,
            } => {
                let o = r
                    .gitops
                    .iter()
                    .find(|o| o.watch.mapping_id == *mapping_id)
                    .ok_or(RequestError::NoObservation)?;
                // A settled watch stays as it settled: a late poll changes nothing.
                if o.state.is_terminal() {
                    return Ok(vec![]);
                }
                Ok(vec![Event::GitopsPolled(observations::judge(
                    o, seen, *now,
                ))])
            }
        }
    }

    fn evolve(state: Option<Request>, event: &Event, env: &Envelope) -> Option<Request> {
        match (state, event) {
            (None, Event::Submitted { request, at }) => Some(Request {
                new: (**request).clone(),
                status: Status::Pending,
                submitted_at: *at,
                votes: Vec::new(),
                error: String::new(),
                updated_at: *at,
                broken_glass: None,
                gitops: Vec::new(),
            }),
            (Some(mut r), e) => {
                // Watching what a request changed does not change the request.
                if !matches!(e, Event::GitopsQueued { .. } | Event::GitopsPolled(_)) {
                    r.updated_at = aegis_kernel::occurred_at_ms(env).unwrap_or(r.updated_at);
                }
                match e {
                    Event::Submitted { .. } => {}
                    Event::VoteCast(v) => r.votes.push(Vote {
                        id: env.event_id.clone(),
                        ..v.clone()
                    }),
                    Event::Approved => r.status = Status::Approved,
                    Event::Rejected { .. } => r.status = Status::Rejected,
                    Event::BrokeGlass { actor, reason, .. } => {
                        r.broken_glass = Some((*actor, reason.clone()))
                    }
                    Event::Cancelled => r.status = Status::Cancelled,
                    Event::Expired => r.status = Status::Expired,
                    Event::Finished { succeeded, error } => {
                        r.status = if *succeeded {
                            Status::Executed
                        } else {
                            Status::Failed
                        };
                        r.error = error.clone();
                    }
                    Event::GitopsQueued { watches, at } => r
                        .gitops
                        .extend(watches.iter().map(|w| Observation::new(w.clone(), *at))),
                    Event::GitopsPolled(p) => {
                        if let Some(o) = r
                            .gitops
                            .iter_mut()
                            .find(|o| o.watch.mapping_id == p.mapping_id)
                        {
                            o.polled(p);
                        }
                    }
                }
                Some(r)
            }
            (None, _) => None,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        codec::encode(event)
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        codec::decode(env)
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
