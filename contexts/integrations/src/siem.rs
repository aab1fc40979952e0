//! A SIEM connection (`integrations.siem.<id>`): where the tenant's events are forwarded,
//! Splunk HEC or Datadog Logs. Its URL and token are sealed before they reach the decider;
//! the forwarder keeps its own checkpoint outside the log (delivery progress is not history).

use super::webhooks::SealedSecrets;
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::integrations::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};

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

#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: String,
    pub definition: Definition,
    pub secrets: SealedSecrets,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create {
        definition: Definition,
        secrets: SealedSecrets,
    },
    Update {
        definition: Definition,
        secrets: Option<SealedSecrets>,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created {
        definition: Definition,
        secrets: SealedSecrets,
    },
    Updated {
        definition: Definition,
        secrets: Option<SealedSecrets>,
    },
    Deleted,
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
        let live = state.as_ref().filter(|c| !c.deleted);
        match (live, cmd) {
            (
                None,
                Command::Create {
                    definition,
                    secrets,
                },
            ) if state.is_none() => Ok(vec![Event::Created {
                definition: definition.clone(),
                secrets: secrets.clone(),
            }]),
            (_, Command::Create { .. }) => Err(SiemError::AlreadyExists),
            (None, Command::Delete) if state.is_some() => Ok(vec![]),
            (None, _) => Err(SiemError::NotFound),
            (
                Some(c),
                Command::Update {
                    definition,
                    secrets,
                },
            ) => {
                if definition.kind != c.definition.kind {
                    return Err(SiemError::KindChanged);
                }
                match secrets {
                    Some(s) if s.version != c.secrets.version + 1 => {
                        return Err(SiemError::SecretsRaced)
                    }
                    None if *definition == c.definition => return Ok(vec![]),
                    _ => {}
                }
                Ok(vec![Event::Updated {
                    definition: definition.clone(),
                    secrets: secrets.clone(),
                }])
            }
            (Some(_), Command::Delete) => Ok(vec![Event::Deleted]),
        }
    }

    fn evolve(state: Option<Connection>, event: &Event, env: &Envelope) -> Option<Connection> {
        let at = occurred_at(env);
        let Some(mut c) = state else {
            return match event {
                Event::Created {
                    definition,
                    secrets,
                } => Some(Connection {
                    id: env.aggregate_id.clone(),
                    definition: definition.clone(),
                    secrets: secrets.clone(),
                    deleted: false,
                    created_at: at,
                    updated_at: at,
                }),
                _ => None,
            };
        };
        match event {
            Event::Created { .. } => return Some(c),
            Event::Updated {
                definition,
                secrets,
            } => {
                c.definition = definition.clone();
                if let Some(s) = secrets {
                    c.secrets = s.clone();
                }
            }
            Event::Deleted => c.deleted = true,
        }
        c.updated_at = at;
        Some(c)
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
        };
        NewEvent {
            credential,
            event_type,
            payload,
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        fn msg<M: Message + Default>(env: &Envelope) -> Result<M, DecodeError> {
            M::decode(env.payload.as_slice()).map_err(|e| DecodeError::new(env, e))
        }
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
