//! Tenants and the claims that keep their names unique.

use crate::domain::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_streams::NewEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant name: 1 to 100 characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty");
        }
        if name.chars().count() > 100 {
            return Err("must be at most 100 characters");
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Names are unique regardless of case: "Acme" and "acme" are the same tenant.
    pub fn uniqueness_key(&self) -> String {
        self.0.to_lowercase()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub struct TenantAggregate;

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTenant {
    pub name: TenantName,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TenantCreated {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant already exists")]
    AlreadyExists,
    #[error("a tenant named `{0}` already exists")]
    NameTaken(String),
}

impl Aggregate for TenantAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "tenant";
    type State = Option<Tenant>;
    type Command = CreateTenant;
    type Event = TenantCreated;
    type Error = TenantError;

    fn decide(state: &Self::State, cmd: &CreateTenant) -> Result<Vec<TenantCreated>, TenantError> {
        match state {
            Some(_) => Err(TenantError::AlreadyExists),
            None => Ok(vec![TenantCreated {
                name: cmd.name.as_str().to_string(),
            }]),
        }
    }

    fn evolve(_state: Self::State, event: &TenantCreated, env: &Envelope) -> Self::State {
        let id = Uuid::parse_str(&env.aggregate_id).unwrap_or_default();
        Some(Tenant {
            id: TenantId(id),
            name: event.name.clone(),
            created_at: occurred_at(env),
        })
    }

    fn encode(event: &TenantCreated) -> NewEvent {
        NewEvent {
            event_type: "tenant.created.v1",
            payload: pb::TenantCreated {
                name: event.name.clone(),
            }
            .encode_to_vec(),
        }
    }

    fn decode(env: &Envelope) -> Result<TenantCreated, DecodeError> {
        let m = pb::TenantCreated::decode(env.payload.as_slice())
            .map_err(|e| DecodeError::new(env, e))?;
        Ok(TenantCreated { name: m.name })
    }
}

/// Claim of a tenant name (platform tenant, `identity.tenant_name.<name>`): the log keeps
/// names unique because a claim expects the subject to be empty.
pub struct TenantNameAggregate;

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimName {
    pub name: TenantName,
    pub tenant: TenantId,
}

impl Aggregate for TenantNameAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "tenant_name";
    type State = Option<TenantId>;
    type Command = ClaimName;
    type Event = TenantId;
    type Error = TenantError;

    fn decide(state: &Self::State, cmd: &ClaimName) -> Result<Vec<TenantId>, TenantError> {
        match state {
            Some(_) => Err(TenantError::NameTaken(cmd.name.as_str().to_string())),
            None => Ok(vec![cmd.tenant]),
        }
    }

    fn evolve(_state: Self::State, event: &TenantId, _env: &Envelope) -> Self::State {
        Some(*event)
    }

    fn encode(event: &TenantId) -> NewEvent {
        NewEvent {
            event_type: "tenant.name_claimed.v1",
            payload: pb::TenantNameClaimed {
                tenant_id: event.to_string(),
            }
            .encode_to_vec(),
        }
    }

    fn decode(env: &Envelope) -> Result<TenantId, DecodeError> {
        let m = pb::TenantNameClaimed::decode(env.payload.as_slice())
            .map_err(|e| DecodeError::new(env, e))?;
        Uuid::parse_str(&m.tenant_id)
            .map(TenantId)
            .map_err(|e| DecodeError::new(env, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::spec::given;

    fn name(s: &str) -> TenantName {
        TenantName::parse(s).expect("valid name")
    }

    #[test]
    fn a_new_tenant_is_created() {
        given::<TenantAggregate>(vec![])
            .when(CreateTenant {
                name: name(" Acme "),
            })
            .then(vec![TenantCreated {
                name: "Acme".into(),
            }]);
    }

    #[test]
    fn a_tenant_is_created_once() {
        given::<TenantAggregate>(vec![TenantCreated {
            name: "Acme".into(),
        }])
        .when(CreateTenant { name: name("Acme") })
        .then_err(TenantError::AlreadyExists);
    }

    #[test]
    fn a_claimed_name_cannot_be_claimed_again() {
        let first = TenantId(Uuid::now_v7());
        given::<TenantNameAggregate>(vec![first])
            .when(ClaimName {
                name: name("Acme"),
                tenant: TenantId(Uuid::now_v7()),
            })
            .then_err(TenantError::NameTaken("Acme".into()));
    }

    #[test]
    fn names_are_validated() {
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"x".repeat(101)).is_err());
        assert!(TenantName::parse("a\u{0}b").is_err());
        assert_eq!(name("ACME").uniqueness_key(), name("acme").uniqueness_key());
    }
}
