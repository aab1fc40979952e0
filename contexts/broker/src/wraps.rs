//! Single-shot wraps: a value an agent hands over for an access request, retrieved exactly
//! once. Retrieval is a decision on the wrap's own history (an expected-sequence append), so
//! of any number of concurrent retrievals, on any number of instances, one gets the value and
//! every other is refused and recorded. The value itself never reaches the log: events carry
//! it sealed under the wrap's own key, which is destroyed once it is retrieved, or once its
//! time runs out unretrieved (`Expire`, from the expiry pass).

use aegis_kernel::{credential_message, payload, Aggregate, DecodeError, Sealed};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use uuid::Uuid;

/// How the value reached Aegis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// In the request body, over TLS.
    Value,
    /// Encrypted under a data key issued to the agent.
    Envelope { dek_key_id: String },
    /// A patch request's value, made into a wrap by Aegis when the request was approved, for
    /// the agent that does the patch (`agent` is nil: no agent posted it).
    Request,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWrap {
    pub request_id: String,
    pub key_name: String,
    pub agent: Uuid,
    pub byte_length: u64,
    /// ms since the epoch.
    pub expires_at: i64,
    pub source: Source,
    pub sealed: Sealed,
    /// The tenant-keyed MAC of the value (hex): tells two values apart, reveals neither.
    pub content_mac: String,
}

/// The route a retrieval came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `GET /api/v1/agents/:id/wraps/:wrap_id` (the patch flow).
    Agent,
    /// `GET /api/v1/requests/:id/wraps/:wrap_id` (the read flow's requester).
    Requester,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Agent => "agent",
            Via::Requester => "requester",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Via::Agent),
            "requester" => Some(Via::Requester),
            _ => None,
        }
    }
}

/// Why a retrieval was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The caller holds no approved work on the wrap's request.
    NotApproved,
    Consumed,
    Expired,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotApproved => "not_approved",
            Refusal::Consumed => "consumed",
            Refusal::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "not_approved" => Some(Refusal::NotApproved),
            "consumed" => Some(Refusal::Consumed),
            "expired" => Some(Refusal::Expired),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrap {
    pub new: NewWrap,
    /// The retrieval that got the value, named by its attempt id.
    pub retrieved_by: Option<Uuid>,
    pub denials: u32,
    /// Its time ran out unretrieved and the expiry pass ended it.
    pub expired: bool,
    /// The key that sealed its value is destroyed: the value is gone for good.
    pub key_destroyed: bool,
}

impl Wrap {
    /// Whether its value must go: retrieved, or ended unretrieved.
    pub fn spent(&self) -> bool {
        self.retrieved_by.is_some() || self.expired
    }
}

impl Wrap {
    /// Why `retrieval` cannot have the value, if it cannot. The order matters: a caller with no
    /// approved work learns nothing about the wrap's state.
    pub fn refusal(&self, retrieval: &Retrieval) -> Option<Refusal> {
        if !retrieval.approved {
            Some(Refusal::NotApproved)
        } else if self.retrieved_by.is_some() {
            Some(Refusal::Consumed)
        } else if self.expired || retrieval.now >= self.new.expires_at {
            Some(Refusal::Expired)
        } else {
            None
        }
    }
}

/// One attempt to retrieve a wrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrieval {
    /// Fresh for each attempt: the winner finds its own id in the state.
    pub attempt: Uuid,
    pub via: Via,
    /// Whether the caller holds approved work on the wrap's request (the service checks).
    pub approved: bool,
    /// ms since the epoch.
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create(NewWrap),
    Retrieve(Retrieval),
    /// Ends a wrap whose time ran out unretrieved (ms since the epoch); anything else is left
    /// as it is.
    Expire {
        now: i64,
    },
    /// Records that the wrap's key was destroyed (after it was spent); once.
    RecordKeyDestroyed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Created(NewWrap),
    Retrieved { via: Via, attempt: Uuid },
    Denied { via: Via, reason: Refusal },
    Expired,
    KeyDestroyed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    #[error("wrap not found")]
    NotFound,
    #[error("a wrap with this id already exists")]
    AlreadyExists,
}

pub struct WrapAggregate;

impl Aggregate for WrapAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "wrap";
    type State = Option<Wrap>;
    type Command = Command;
    type Event = Event;
    type Error = WrapError;

    fn decide(state: &Option<Wrap>, cmd: &Command) -> Result<Vec<Event>, WrapError> {
        match (state, cmd) {
            (None, Command::Create(n)) => Ok(vec![Event::Created(n.clone())]),
            (Some(_), Command::Create(_)) => Err(WrapError::AlreadyExists),
            (None, _) => Err(WrapError::NotFound),
            (Some(w), Command::RecordKeyDestroyed) => Ok(if w.key_destroyed {
                vec![]
            } else {
                vec![Event::KeyDestroyed]
            }),
            (Some(w), Command::Expire { now }) => {
                let due = w.retrieved_by.is_none() && !w.expired && *now >= w.new.expires_at;
                Ok(if due { vec![Event::Expired] } else { vec![] })
            }
            // A refusal is recorded too: the audit shows every attempt, not only the winner.
            (Some(w), Command::Retrieve(r)) => Ok(vec![match w.refusal(r) {
                Some(reason) => Event::Denied { via: r.via, reason },
                None => Event::Retrieved {
                    via: r.via,
                    attempt: r.attempt,
                },
            }]),
        }
    }

    fn evolve(state: Option<Wrap>, event: &Event, _env: &Envelope) -> Option<Wrap> {
        match (state, event) {
            (None, Event::Created(n)) => Some(Wrap {
                new: n.clone(),
                retrieved_by: None,
                denials: 0,
                expired: false,
                key_destroyed: false,
            }),
            (Some(mut w), Event::Retrieved { attempt, .. }) => {
                w.retrieved_by.get_or_insert(*attempt);
                Some(w)
            }
            (Some(mut w), Event::Denied { .. }) => {
                w.denials += 1;
                Some(w)
            }
            (Some(mut w), Event::Expired) => {
                w.expired = true;
                Some(w)
            }
            (Some(mut w), Event::KeyDestroyed) => {
                w.key_destroyed = true;
                Some(w)
            }
            (state, _) => state,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Created(n) => {
                let (source, dek_key_id) = match &n.source {
                    Source::Value => ("value", String::new()),
                    Source::Envelope { dek_key_id } => ("envelope", dek_key_id.clone()),
                    Source::Request => ("request", String::new()),
                };
                NewEvent {
                    event_type: "wrap.created.v1",
                    payload: pb::WrapCreated {
                        request_id: n.request_id.clone(),
                        key_name: n.key_name.clone(),
                        agent_id: n.agent.to_string(),
                        byte_length: n.byte_length,
                        expires_at: n.expires_at,
                        source: source.into(),
                        dek_key_id,
                    }
                    .encode_to_vec(),
                    // The sealed value and its MAC are credential material: the envelope keeps
                    // them, out of every outward surface.
                    credential: pb::WrapSealed {
                        nonce: n.sealed.nonce.clone(),
                        ciphertext: n.sealed.ciphertext.clone(),
                        content_mac: n.content_mac.clone(),
                    }
                    .encode_to_vec(),
                }
            }
            Event::Retrieved { via, attempt } => NewEvent::new(
                "wrap.retrieved.v1",
                pb::WrapRetrieved {
                    via: via.as_str().into(),
                    attempt_id: attempt.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::Expired => NewEvent::new("wrap.expired.v1", pb::WrapExpired {}.encode_to_vec()),
            Event::KeyDestroyed => NewEvent::new(
                "wrap.key_destroyed.v1",
                pb::WrapKeyDestroyed {}.encode_to_vec(),
            ),
            Event::Denied { via, reason } => NewEvent::new(
                "wrap.denied.v1",
                pb::WrapDenied {
                    via: via.as_str().into(),
                    reason: reason.as_str().into(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let via = |s: &str| {
            Via::parse(s).ok_or_else(|| DecodeError::new(env, format!("unknown route `{s}`")))
        };
        Ok(match env.event_type.as_str() {
            "wrap.created.v1" => {
                let m: pb::WrapCreated = payload(env)?;
                let sealed = credential_message::<pb::WrapSealed>(env, None)?
                    .ok_or_else(|| DecodeError::new(env, "a wrap without its sealed value"))?;
                let agent = Uuid::parse_str(&m.agent_id)
                    .map_err(|e| DecodeError::new(env, format!("agent id: {e}")))?;
                let source = match m.source.as_str() {
                    "value" => Source::Value,
                    "envelope" => Source::Envelope {
                        dek_key_id: m.dek_key_id,
                    },
                    "request" => Source::Request,
                    other => {
                        return Err(DecodeError::new(env, format!("unknown source `{other}`")))
                    }
                };
                Event::Created(NewWrap {
                    request_id: m.request_id,
                    key_name: m.key_name,
                    agent,
                    byte_length: m.byte_length,
                    expires_at: m.expires_at,
                    source,
                    sealed: Sealed {
                        nonce: sealed.nonce,
                        ciphertext: sealed.ciphertext,
                    },
                    content_mac: sealed.content_mac,
                })
            }
            "wrap.retrieved.v1" => {
                let m: pb::WrapRetrieved = payload(env)?;
                Event::Retrieved {
                    via: via(&m.via)?,
                    attempt: Uuid::parse_str(&m.attempt_id)
                        .map_err(|e| DecodeError::new(env, format!("attempt id: {e}")))?,
                }
            }
            "wrap.denied.v1" => {
                let m: pb::WrapDenied = payload(env)?;
                Event::Denied {
                    via: via(&m.via)?,
                    reason: Refusal::parse(&m.reason).ok_or_else(|| {
                        DecodeError::new(env, format!("unknown reason `{}`", m.reason))
                    })?,
                }
            }
            "wrap.expired.v1" => Event::Expired,
            "wrap.key_destroyed.v1" => Event::KeyDestroyed,
            other => return Err(DecodeError::new(env, format!("not a wrap event: {other}"))),
        })
    }
}

#[cfg(test)]
#[path = "wraps_tests.rs"]
mod tests;
