//! Access requests (seed 004, issue 19): someone asks to read keys of a secret in a cluster, or
//! to set them; approvers vote; reaching the bound workflow's `min_approvers` approves the
//! request exactly once (the votes are decisions on the request's own history, so approvers
//! voting at the same moment cannot approve it twice); one rejection ends it. The approval rules
//! are a snapshot taken at submission (`Binding`): a workflow edited later does not change a
//! request in flight.

use aegis_kernel::{credential_message, payload, Aggregate, DecodeError, Sealed};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use uuid::Uuid;

#[path = "requests_states.rs"]
mod states;
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
    /// Ends a pending request whose time ran out; anything else is left as it is.
    Expire {
        now: i64,
    },
    /// The agent's job for an approved request ended.
    Finish {
        succeeded: bool,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Submitted { request: Box<NewRequest>, at: i64 },
    VoteCast(Vote),
    Approved,
    Rejected { approver: Uuid, reason: String },
    Cancelled,
    Expired,
    Finished { succeeded: bool, error: String },
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
    #[error("this request's workflow requires a justification")]
    JustificationRequired,
    #[error("a request names at least one key, none blank")]
    NoKeys,
    #[error("the request is not approved (it is {0})")]
    NotApproved(&'static str),
}

pub struct RequestAggregate;

/// When a record was made (ms since the epoch), when it says.
fn recorded_at(env: &Envelope) -> Option<i64> {
    env.occurred_at
        .as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

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
            Command::Expire { now } => {
                Ok(if r.status == Status::Pending && *now >= r.expires_at() {
                    vec![Event::Expired]
                } else {
                    vec![]
                })
            }
            Command::Finish { succeeded, error } => match r.status {
                Status::Approved => Ok(vec![Event::Finished {
                    succeeded: *succeeded,
                    error: error.clone(),
                }]),
                // A job reporting again changes nothing.
                Status::Executed | Status::Failed => Ok(vec![]),
                other => Err(RequestError::NotApproved(other.as_str())),
            },
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
            }),
            (Some(mut r), e) => {
                r.updated_at = recorded_at(env).unwrap_or(r.updated_at);
                match e {
                    Event::Submitted { .. } => {}
                    Event::VoteCast(v) => r.votes.push(Vote {
                        id: env.event_id.clone(),
                        ..v.clone()
                    }),
                    Event::Approved => r.status = Status::Approved,
                    Event::Rejected { .. } => r.status = Status::Rejected,
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
                }
                Some(r)
            }
            (None, _) => None,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Submitted { request: n, at } => NewEvent {
                event_type: "request.submitted.v1",
                payload: pb::RequestSubmitted {
                    kind: n.kind.as_str().into(),
                    requester_id: n.requester.to_string(),
                    project_id: n.project_id.clone(),
                    environment: n.environment.clone(),
                    provider_type: n.provider_type.clone(),
                    provider_config_json: n.provider_config.clone(),
                    target_ref: n.secret_ref.clone(),
                    keys: n.keys.clone(),
                    justification: n.justification.clone(),
                    binding: Some(pb::RequestBinding {
                        workflow_id: n.binding.workflow_id.clone(),
                        min_approvers: n.binding.min_approvers,
                        allow_self_approval: n.binding.allow_self_approval,
                        require_justification: n.binding.require_justification,
                        ttl_ms: n.binding.ttl_ms,
                        approver_role: n.binding.approver_role.clone(),
                        wrap_ttl_approved_ms: n.binding.wrap_ttl_approved_ms,
                    }),
                    submitted_at: *at,
                }
                .encode_to_vec(),
                // A patch's sealed values are credential material: the envelope keeps them.
                credential: if n.values.is_empty() {
                    Vec::new()
                } else {
                    pb::RequestValues {
                        values: n
                            .values
                            .iter()
                            .map(|(key, s)| pb::SealedKeyValue {
                                key: key.clone(),
                                nonce: s.nonce.clone(),
                                ciphertext: s.ciphertext.clone(),
                            })
                            .collect(),
                    }
                    .encode_to_vec()
                },
            },
            Event::VoteCast(v) => NewEvent::new(
                "request.vote_cast.v1",
                pb::RequestVoteCast {
                    approver_id: v.approver.to_string(),
                    approve: v.approve,
                    text: v.text.clone(),
                }
                .encode_to_vec(),
            ),
            Event::Approved => NewEvent::new(
                "request.approved.v1",
                pb::RequestApproved {}.encode_to_vec(),
            ),
            Event::Rejected { approver, reason } => NewEvent::new(
                "request.rejected.v1",
                pb::RequestRejected {
                    approver_id: approver.to_string(),
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::Cancelled => NewEvent::new(
                "request.cancelled.v1",
                pb::RequestCancelled {}.encode_to_vec(),
            ),
            Event::Expired => {
                NewEvent::new("request.expired.v1", pb::RequestExpired {}.encode_to_vec())
            }
            Event::Finished { succeeded, error } => NewEvent::new(
                "request.finished.v1",
                pb::RequestFinished {
                    succeeded: *succeeded,
                    error: error.clone(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let id = |s: &str, what: &str| {
            Uuid::parse_str(s).map_err(|e| DecodeError::new(env, format!("{what}: {e}")))
        };
        Ok(match env.event_type.as_str() {
            "request.submitted.v1" => {
                let m: pb::RequestSubmitted = payload(env)?;
                let kind = match m.kind.as_str() {
                    "read" => Kind::Read,
                    "patch" => Kind::Patch,
                    other => return Err(DecodeError::new(env, format!("unknown kind `{other}`"))),
                };
                let b = m.binding.unwrap_or_default();
                let values = credential_message::<pb::RequestValues>(env, None)?
                    .map(|v| v.values)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| {
                        (
                            v.key,
                            Sealed {
                                nonce: v.nonce,
                                ciphertext: v.ciphertext,
                            },
                        )
                    })
                    .collect();
                let at = m.submitted_at;
                Event::Submitted {
                    request: Box::new(NewRequest {
                        kind,
                        requester: id(&m.requester_id, "requester id")?,
                        project_id: m.project_id,
                        environment: m.environment,
                        provider_type: m.provider_type,
                        provider_config: m.provider_config_json,
                        secret_ref: m.target_ref,
                        keys: m.keys,
                        justification: m.justification,
                        binding: Binding {
                            workflow_id: b.workflow_id,
                            min_approvers: b.min_approvers,
                            allow_self_approval: b.allow_self_approval,
                            require_justification: b.require_justification,
                            ttl_ms: b.ttl_ms,
                            approver_role: b.approver_role,
                            wrap_ttl_approved_ms: b.wrap_ttl_approved_ms,
                        },
                        values,
                    }),
                    at,
                }
            }
            "request.vote_cast.v1" => {
                let m: pb::RequestVoteCast = payload(env)?;
                Event::VoteCast(Vote {
                    approver: id(&m.approver_id, "approver id")?,
                    approve: m.approve,
                    text: m.text,
                    at: recorded_at(env).unwrap_or_default(),
                    id: env.event_id.clone(),
                })
            }
            "request.approved.v1" => Event::Approved,
            "request.rejected.v1" => {
                let m: pb::RequestRejected = payload(env)?;
                Event::Rejected {
                    approver: id(&m.approver_id, "approver id")?,
                    reason: m.reason,
                }
            }
            "request.cancelled.v1" => Event::Cancelled,
            "request.expired.v1" => Event::Expired,
            "request.finished.v1" => {
                let m: pb::RequestFinished = payload(env)?;
                Event::Finished {
                    succeeded: m.succeeded,
                    error: m.error,
                }
            }
            other => {
                return Err(DecodeError::new(
                    env,
                    format!("not an access request event: {other}"),
                ))
            }
        })
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
