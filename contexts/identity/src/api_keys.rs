//! API keys (seed 000): created with scopes, revoked for good. The log holds the keyed HMAC
//! of the key and its display prefix, never the key.

use super::permissions::{Permission, Permissions};
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    /// Hex HMAC-SHA256 of the key under the server pepper.
    pub digest: String,
    pub scopes: Permissions,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub digest: String,
    pub scopes: Permissions,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Create(NewApiKey),
    Revoke,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Created(NewApiKey),
    Revoked,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("API key not found")]
    NotFound,
    #[error("the API key already exists")]
    AlreadyExists,
}

pub struct ApiKeyAggregate;

impl Aggregate for ApiKeyAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "api_key";
    type State = Option<ApiKey>;
    type Command = Command;
    type Event = Event;
    type Error = ApiKeyError;

    fn decide(state: &Option<ApiKey>, cmd: &Command) -> Result<Vec<Event>, ApiKeyError> {
        match (state, cmd) {
            (None, Command::Create(new)) => Ok(vec![Event::Created(new.clone())]),
            (Some(_), Command::Create(_)) => Err(ApiKeyError::AlreadyExists),
            (None, Command::Revoke) => Err(ApiKeyError::NotFound),
            // Revoking twice is a no-op, so a retried DELETE answers the same.
            (Some(k), Command::Revoke) if k.revoked_at.is_some() => Ok(vec![]),
            (Some(_), Command::Revoke) => Ok(vec![Event::Revoked]),
        }
    }

    fn evolve(state: Option<ApiKey>, event: &Event, env: &Envelope) -> Option<ApiKey> {
        match (state, event) {
            (None, Event::Created(new)) => Some(ApiKey {
                id: Uuid::parse_str(&env.aggregate_id).unwrap_or_default(),
                name: new.name.clone(),
                prefix: new.prefix.clone(),
                digest: new.digest.clone(),
                scopes: new.scopes,
                created_by: new.created_by.clone(),
                created_at: occurred_at(env),
                revoked_at: None,
            }),
            (Some(mut k), Event::Revoked) => {
                k.revoked_at = Some(occurred_at(env));
                Some(k)
            }
            (state, _) => state,
        }
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            // The digest is credential material: the envelope keeps it, the payload not.
            Event::Created(k) => NewEvent {
                credential: k.digest.as_bytes().to_vec(),
                event_type: "api_key.created.v1",
                payload: pb::ApiKeyCreated {
                    name: k.name.clone(),
                    prefix: k.prefix.clone(),
                    digest: String::new(),
                    scopes: k.scopes.names(),
                    created_by: k.created_by.clone(),
                }
                .encode_to_vec(),
            },
            Event::Revoked => {
                NewEvent::new("api_key.revoked.v1", pb::ApiKeyRevoked {}.encode_to_vec())
            }
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        match env.event_type.as_str() {
            "api_key.created.v1" => {
                let m = aegis_kernel::payload::<pb::ApiKeyCreated>(env)?;
                Ok(Event::Created(NewApiKey {
                    scopes: Permissions::of(
                        &m.scopes
                            .iter()
                            .filter_map(|s| Permission::parse(s))
                            .collect::<Vec<_>>(),
                    ),
                    name: m.name,
                    prefix: m.prefix,
                    digest: aegis_kernel::credential_text(env, m.digest)?,
                    created_by: m.created_by,
                }))
            }
            "api_key.revoked.v1" => Ok(Event::Revoked),
            other => Err(DecodeError::new(
                env,
                format!("not an API key event: {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn new_key() -> NewApiKey {
        NewApiKey {
            name: "ci-runner".into(),
            prefix: "acp_abcdefgh".into(),
            digest: "00".repeat(32),
            scopes: Permissions::of(&[Permission::IncidentRead]),
            created_by: "user".into(),
        }
    }

    #[test]
    fn a_key_is_revoked_once_and_revoking_again_changes_nothing() {
        given::<ApiKeyAggregate>(vec![Event::Created(new_key())])
            .when(Command::Revoke)
            .then(vec![Event::Revoked]);
        given::<ApiKeyAggregate>(vec![Event::Created(new_key()), Event::Revoked])
            .when(Command::Revoke)
            .then(vec![]);
    }

    #[test]
    fn an_unknown_key_cannot_be_revoked() {
        given::<ApiKeyAggregate>(vec![])
            .when(Command::Revoke)
            .then_err(ApiKeyError::NotFound);
    }
}
