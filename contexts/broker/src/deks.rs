//! Data keys handed to agents for wire envelopes. Each is issued once, to one agent, and the
//! record says how it travelled: sealed to the agent's registered wire key (HPKE) or in the
//! clear over TLS. The key itself never reaches the log.

use aegis_kernel::{payload, Aggregate, DecodeError};
use aegis_schemas::broker::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::{Message, NewEvent};
use uuid::Uuid;

/// How a data key reached its agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Sealed to the agent's wire key, named by its fingerprint.
    Hpke { wire_key_fingerprint: String },
    /// In the answer, protected by TLS alone (the agent registered no wire key).
    Clear,
}

impl Delivery {
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Hpke { .. } => "hpke",
            Delivery::Clear => "clear",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dek {
    pub agent_id: Uuid,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Issue(Dek),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Issued(Dek),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DekError {
    /// Key ids are minted fresh for each issue: a second one under the same id is a bug or a
    /// replay, never a new key.
    #[error("a data key with this id was already issued")]
    AlreadyIssued,
}

pub struct DekAggregate;

impl Aggregate for DekAggregate {
    const CONTEXT: &'static str = "broker";
    const AGGREGATE: &'static str = "dek";
    type State = Option<Dek>;
    type Command = Command;
    type Event = Event;
    type Error = DekError;

    fn decide(state: &Option<Dek>, cmd: &Command) -> Result<Vec<Event>, DekError> {
        match (state, cmd) {
            (None, Command::Issue(d)) => Ok(vec![Event::Issued(d.clone())]),
            (Some(_), Command::Issue(_)) => Err(DekError::AlreadyIssued),
        }
    }

    fn evolve(state: Option<Dek>, event: &Event, _env: &Envelope) -> Option<Dek> {
        match event {
            Event::Issued(d) => state.or_else(|| Some(d.clone())),
        }
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Issued(d) => NewEvent::new(
                "dek.issued.v1",
                pb::DekIssued {
                    agent_id: d.agent_id.to_string(),
                    delivery: d.delivery.as_str().into(),
                    wire_key_fingerprint: match &d.delivery {
                        Delivery::Hpke {
                            wire_key_fingerprint,
                        } => wire_key_fingerprint.clone(),
                        Delivery::Clear => String::new(),
                    },
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        match env.event_type.as_str() {
            "dek.issued.v1" => {
                let m: pb::DekIssued = payload(env)?;
                let agent_id = Uuid::parse_str(&m.agent_id)
                    .map_err(|e| DecodeError::new(env, format!("agent id: {e}")))?;
                let delivery = match m.delivery.as_str() {
                    "hpke" => Delivery::Hpke {
                        wire_key_fingerprint: m.wire_key_fingerprint,
                    },
                    "clear" => Delivery::Clear,
                    other => {
                        return Err(DecodeError::new(env, format!("unknown delivery `{other}`")))
                    }
                };
                Ok(Event::Issued(Dek { agent_id, delivery }))
            }
            other => Err(DecodeError::new(
                env,
                format!("not a data key event: {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn dek() -> Dek {
        Dek {
            agent_id: Uuid::nil(),
            delivery: Delivery::Hpke {
                wire_key_fingerprint: "ab".repeat(32),
            },
        }
    }

    #[test]
    fn a_data_key_is_issued_once() {
        given::<DekAggregate>(vec![])
            .when(Command::Issue(dek()))
            .then(vec![Event::Issued(dek())]);
        given::<DekAggregate>(vec![Event::Issued(dek())])
            .when(Command::Issue(dek()))
            .then_err(DekError::AlreadyIssued);
    }
}
