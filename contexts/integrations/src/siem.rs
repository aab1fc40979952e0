//! A SIEM connection (`integrations.siem.<id>`): where the tenant's events are forwarded,
//! Splunk HEC or Datadog Logs. Its URL and token are sealed before they reach the decider;
//! the forwarder keeps its own checkpoint outside the log (delivery progress is not history).

pub use crate::sealed::SealedSecrets;
use crate::sealed::{self, Refusal, SealedConfig};
use aegis_kernel::{Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::integrations::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use std::convert::Infallible;

word_enum!(SiemKind {
    Splunk = "splunk",
    Datadog = "datadog",
});

/// The key-store secret that seals a connection's URL and token.
pub fn secret_name(id: &str) -> String {
    format!("integrations/siem/{id}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    pub kind: SiemKind,
    pub host: String,
    pub index: String,
    pub sourcetype: String,
    pub site: String,
    pub contexts: Vec<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub start_position: u64,
}

impl Definition {
    fn to_pb(&self) -> pb::SiemDefinition {
        pb::SiemDefinition {
            name: self.name.clone(),
            kind: self.kind.as_str().into(),
            host: self.host.clone(),
            index: self.index.clone(),
            sourcetype: self.sourcetype.clone(),
            site: self.site.clone(),
            contexts: self.contexts.clone(),
            event_types: self.event_types.clone(),
            enabled: self.enabled,
            start_position: self.start_position,
        }
    }

    fn from_pb(d: pb::SiemDefinition, env: &Envelope) -> Result<Self, DecodeError> {
        Ok(Self {
            kind: SiemKind::parse(&d.kind)
                .ok_or_else(|| DecodeError::new(env, "unknown SIEM kind"))?,
            name: d.name,
            host: d.host,
            index: d.index,
            sourcetype: d.sourcetype,
            site: d.site,
            contexts: d.contexts,
            event_types: d.event_types,
            enabled: d.enabled,
            start_position: d.start_position,
        })
    }
}

/// A SIEM connection: its definition and sealed secrets (see `sealed`).
pub type Connection = SealedConfig<Definition>;

/// A connection's commands and events: the sealed configuration's, nothing of its own.
pub type Command = sealed::Command<Definition, Infallible>;
pub type Event = sealed::Event<Definition, Infallible>;

impl sealed::Definition for Definition {
    fn same_kind(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiemError {
    #[error("SIEM connection not found")]
    NotFound,
    #[error("the SIEM connection already exists")]
    AlreadyExists,
    #[error("a connection's kind cannot change; create another")]
    KindChanged,
    #[error("the connection's token changed meanwhile; read it again and retry")]
    SecretsRaced,
}

pub struct SiemAggregate;

impl Aggregate for SiemAggregate {
    const CONTEXT: &'static str = "integrations";
    const AGGREGATE: &'static str = "siem";
    type State = Option<Connection>;
    type Command = Command;
    type Event = Event;
    type Error = SiemError;

    fn decide(state: &Option<Connection>, cmd: &Command) -> Result<Vec<Event>, SiemError> {
        sealed::decide(state, cmd, |_, never| match *never {}).map_err(|r| match r {
            Refusal::NotFound => SiemError::NotFound,
            Refusal::AlreadyExists => SiemError::AlreadyExists,
            Refusal::KindChanged => SiemError::KindChanged,
            Refusal::SecretsRaced => SiemError::SecretsRaced,
        })
    }

    fn evolve(state: Option<Connection>, event: &Event, env: &Envelope) -> Option<Connection> {
        sealed::evolve(state, event, env)
    }

    fn encode(event: &Event) -> NewEvent {
        let (event_type, payload, credential) = match event {
            // Sealed secrets are credential material: the envelope keeps them.
            Event::Created {
                definition,
                secrets,
            } => (
                "siem.created.v1",
                pb::SiemCreated {
                    definition: Some(definition.to_pb()),
                    secrets: None,
                }
                .encode_to_vec(),
                secrets.to_pb().encode_to_vec(),
            ),
            Event::Updated {
                definition,
                secrets,
            } => (
                "siem.updated.v1",
                pb::SiemUpdated {
                    definition: Some(definition.to_pb()),
                    secrets: None,
                }
                .encode_to_vec(),
                secrets
                    .as_ref()
                    .map(|s| s.to_pb().encode_to_vec())
                    .unwrap_or_default(),
            ),
            Event::Deleted => (
                "siem.deleted.v1",
                pb::SiemDeleted {}.encode_to_vec(),
                Vec::new(),
            ),
            Event::Own(never) => match *never {},
        };
        NewEvent {
            credential,
            event_type,
            payload,
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        use aegis_kernel::payload as msg;
        Ok(match env.event_type.as_str() {
            "siem.created.v1" => {
                let m: pb::SiemCreated = msg(env)?;
                Event::Created {
                    definition: Definition::from_pb(m.definition.unwrap_or_default(), env)?,
                    secrets: SealedSecrets::from_pb(
                        aegis_kernel::credential_message(env, m.secrets)?.unwrap_or_default(),
                    ),
                }
            }
            "siem.updated.v1" => {
                let m: pb::SiemUpdated = msg(env)?;
                Event::Updated {
                    definition: Definition::from_pb(m.definition.unwrap_or_default(), env)?,
                    secrets: aegis_kernel::credential_message(env, m.secrets)?
                        .map(SealedSecrets::from_pb),
                }
            }
            "siem.deleted.v1" => Event::Deleted,
            other => return Err(DecodeError::new(env, format!("not a SIEM event: {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn definition(kind: SiemKind) -> Definition {
        Definition {
            name: "splunk-prod".into(),
            kind,
            host: "splunk.example".into(),
            index: "security".into(),
            sourcetype: "aegis:event".into(),
            site: String::new(),
            contexts: vec![],
            event_types: vec![],
            enabled: true,
            start_position: 1,
        }
    }

    fn sealed(version: u64) -> SealedSecrets {
        SealedSecrets {
            version,
            nonce: vec![0; 24],
            ciphertext: vec![version as u8],
        }
    }

    fn created() -> Event {
        Event::Created {
            definition: definition(SiemKind::Splunk),
            secrets: sealed(1),
        }
    }

    #[test]
    fn a_new_token_takes_the_next_version_and_a_stale_one_is_refused() {
        given::<SiemAggregate>(vec![created()])
            .when(Command::Update {
                definition: definition(SiemKind::Splunk),
                secrets: Some(sealed(2)),
            })
            .then(vec![Event::Updated {
                definition: definition(SiemKind::Splunk),
                secrets: Some(sealed(2)),
            }]);
        given::<SiemAggregate>(vec![created()])
            .when(Command::Update {
                definition: definition(SiemKind::Splunk),
                secrets: Some(sealed(1)),
            })
            .then_err(SiemError::SecretsRaced);
    }

    #[test]
    fn the_kind_is_fixed_and_no_change_appends_nothing() {
        given::<SiemAggregate>(vec![created()])
            .when(Command::Update {
                definition: definition(SiemKind::Datadog),
                secrets: None,
            })
            .then_err(SiemError::KindChanged);
        given::<SiemAggregate>(vec![created()])
            .when(Command::Update {
                definition: definition(SiemKind::Splunk),
                secrets: None,
            })
            .then(vec![]);
    }

    #[test]
    fn a_deleted_connection_takes_nothing_but_another_delete() {
        given::<SiemAggregate>(vec![created(), Event::Deleted])
            .when(Command::Delete)
            .then(vec![]);
        given::<SiemAggregate>(vec![])
            .when(Command::Delete)
            .then_err(SiemError::NotFound);
    }
}
