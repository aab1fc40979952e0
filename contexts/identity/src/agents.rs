//! Agents (seed 004): minted with a secret shown once, then active, quarantined or revoked.
//! Revocation is final; a quarantined agent can be released.

use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Quarantined,
    Revoked,
}

impl AgentStatus {
    pub const ALL: &'static [AgentStatus] = &[
        AgentStatus::Active,
        AgentStatus::Quarantined,
        AgentStatus::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Active => "active",
            AgentStatus::Quarantined => "quarantined",
            AgentStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub digest: String,
    pub status: AgentStatus,
    pub created_at: DateTime<Utc>,
    /// The X25519 public key it registered for what is sealed to it, if any.
    pub wire_key: Option<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Mint {
        name: String,
        prefix: String,
        digest: String,
    },
    SetStatus {
        status: AgentStatus,
        reason: String,
    },
    /// Register (or replace) the wire key; `fingerprint` names it in the record.
    RegisterWireKey {
        key: [u8; 32],
        fingerprint: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Minted {
        name: String,
        prefix: String,
        digest: String,
    },
    StatusChanged {
        status: AgentStatus,
        reason: String,
    },
    WireKeyRegistered {
        key: [u8; 32],
        fingerprint: String,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentError {
    #[error("agent not found")]
    NotFound,
    #[error("the agent already exists")]
    AlreadyExists,
    #[error("the agent is revoked; a revoked agent cannot change status")]
    Revoked,
}

pub struct AgentAggregate;

impl Aggregate for AgentAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "agent";
    type State = Option<Agent>;
    type Command = Command;
    type Event = Event;
    type Error = AgentError;

    fn decide(state: &Option<Agent>, cmd: &Command) -> Result<Vec<Event>, AgentError> {
        match (state, cmd) {
            (
                None,
                Command::Mint {
                    name,
                    prefix,
                    digest,
                },
            ) => Ok(vec![Event::Minted {
                name: name.clone(),
                prefix: prefix.clone(),
                digest: digest.clone(),
            }]),
            (Some(_), Command::Mint { .. }) => Err(AgentError::AlreadyExists),
            (None, Command::SetStatus { .. }) => Err(AgentError::NotFound),
            (Some(a), Command::SetStatus { status, .. }) if a.status == *status => Ok(vec![]),
            (Some(a), Command::SetStatus { .. }) if a.status == AgentStatus::Revoked => {
                Err(AgentError::Revoked)
            }
            (Some(_), Command::SetStatus { status, reason }) => Ok(vec![Event::StatusChanged {
                status: *status,
                reason: reason.clone(),
            }]),
            (None, Command::RegisterWireKey { .. }) => Err(AgentError::NotFound),
            (Some(a), Command::RegisterWireKey { .. }) if a.status == AgentStatus::Revoked => {
                Err(AgentError::Revoked)
            }
            (Some(a), Command::RegisterWireKey { key, .. }) if a.wire_key == Some(*key) => {
                Ok(vec![])
            }
            (Some(_), Command::RegisterWireKey { key, fingerprint }) => {
                Ok(vec![Event::WireKeyRegistered {
                    key: *key,
                    fingerprint: fingerprint.clone(),
                }])
            }
        }
    }

    fn evolve(state: Option<Agent>, event: &Event, env: &Envelope) -> Option<Agent> {
        match (state, event) {
            (
                None,
                Event::Minted {
                    name,
                    prefix,
                    digest,
                },
            ) => Some(Agent {
                id: Uuid::parse_str(&env.aggregate_id).unwrap_or_default(),
                name: name.clone(),
                prefix: prefix.clone(),
                digest: digest.clone(),
                status: AgentStatus::Active,
                created_at: occurred_at(env),
                wire_key: None,
            }),
            (Some(mut a), Event::StatusChanged { status, .. }) => {
                a.status = *status;
                Some(a)
            }
            (Some(mut a), Event::WireKeyRegistered { key, .. }) => {
                a.wire_key = Some(*key);
                Some(a)
            }
            (state, _) => state,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Minted {
                name,
                prefix,
                digest,
            } => NewEvent {
                // The digest is credential material: the envelope keeps it, the payload not.
                credential: digest.as_bytes().to_vec(),
                event_type: "agent.minted.v1",
                payload: pb::AgentMinted {
                    name: name.clone(),
                    prefix: prefix.clone(),
                    digest: String::new(),
                }
                .encode_to_vec(),
            },
            Event::StatusChanged { status, reason } => NewEvent::new(
                "agent.status_changed.v1",
                pb::AgentStatusChanged {
                    status: status.as_str().into(),
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::WireKeyRegistered { key, fingerprint } => NewEvent::new(
                "agent.wire_key_registered.v1",
                pb::AgentWireKeyRegistered {
                    public_key: key.to_vec(),
                    algorithm: "x25519".into(),
                    fingerprint: fingerprint.clone(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let bytes = env.payload.as_slice();
        match env.event_type.as_str() {
            "agent.minted.v1" => {
                let m = pb::AgentMinted::decode(bytes).map_err(|e| DecodeError::new(env, e))?;
                Ok(Event::Minted {
                    name: m.name,
                    prefix: m.prefix,
                    digest: aegis_kernel::credential_text(env, m.digest)?,
                })
            }
            "agent.status_changed.v1" => {
                let m =
                    pb::AgentStatusChanged::decode(bytes).map_err(|e| DecodeError::new(env, e))?;
                Ok(Event::StatusChanged {
                    status: AgentStatus::parse(&m.status)
                        .ok_or_else(|| DecodeError::new(env, "unknown agent status"))?,
                    reason: m.reason,
                })
            }
            "agent.wire_key_registered.v1" => {
                let m = pb::AgentWireKeyRegistered::decode(bytes)
                    .map_err(|e| DecodeError::new(env, e))?;
                let key: [u8; 32] = m
                    .public_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| DecodeError::new(env, "a wire key is 32 bytes"))?;
                Ok(Event::WireKeyRegistered {
                    key,
                    fingerprint: m.fingerprint,
                })
            }
            other => Err(DecodeError::new(
                env,
                format!("not an agent event: {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn minted() -> Event {
        Event::Minted {
            name: "edge-1".into(),
            prefix: "aga_abcdefgh".into(),
            digest: "00".repeat(32),
        }
    }

    fn status(s: AgentStatus) -> Command {
        Command::SetStatus {
            status: s,
            reason: String::new(),
        }
    }

    #[test]
    fn a_quarantined_agent_can_be_released_but_a_revoked_one_cannot() {
        let quarantined = Event::StatusChanged {
            status: AgentStatus::Quarantined,
            reason: String::new(),
        };
        given::<AgentAggregate>(vec![minted(), quarantined])
            .when(status(AgentStatus::Active))
            .then(vec![Event::StatusChanged {
                status: AgentStatus::Active,
                reason: String::new(),
            }]);
        let revoked = Event::StatusChanged {
            status: AgentStatus::Revoked,
            reason: String::new(),
        };
        given::<AgentAggregate>(vec![minted(), revoked.clone()])
            .when(status(AgentStatus::Active))
            .then_err(AgentError::Revoked);
        given::<AgentAggregate>(vec![minted(), revoked])
            .when(status(AgentStatus::Revoked))
            .then(vec![]);
    }

    #[test]
    fn a_wire_key_is_registered_replaced_and_never_for_a_revoked_agent() {
        let register = |b: u8| Command::RegisterWireKey {
            key: [b; 32],
            fingerprint: format!("fp{b}"),
        };
        let registered = |b: u8| Event::WireKeyRegistered {
            key: [b; 32],
            fingerprint: format!("fp{b}"),
        };
        given::<AgentAggregate>(vec![minted()])
            .when(register(1))
            .then(vec![registered(1)]);
        given::<AgentAggregate>(vec![minted(), registered(1)])
            .when(register(1))
            .then(vec![]);
        given::<AgentAggregate>(vec![minted(), registered(1)])
            .when(register(2))
            .then(vec![registered(2)]);
        let revoked = Event::StatusChanged {
            status: AgentStatus::Revoked,
            reason: String::new(),
        };
        given::<AgentAggregate>(vec![minted(), revoked])
            .when(register(2))
            .then_err(AgentError::Revoked);
        given::<AgentAggregate>(vec![])
            .when(register(2))
            .then_err(AgentError::NotFound);
    }

    #[test]
    fn an_unknown_agent_cannot_change() {
        given::<AgentAggregate>(vec![])
            .when(status(AgentStatus::Revoked))
            .then_err(AgentError::NotFound);
    }
}
