//! Tenants and the claims that keep their names unique.

use super::controls::{Addon, Plan};
use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
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

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub plan: Plan,
    pub version: u64,
}

pub struct TenantAggregate;

#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    Create {
        name: TenantName,
    },
    /// Replaces the tenant's plan; an unchanged plan appends nothing.
    SetPlan(Plan),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TenantEvent {
    Created { name: String },
    PlanSet(Plan),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant already exists")]
    AlreadyExists,
    #[error("a tenant named `{0}` already exists")]
    NameTaken(String),
    #[error("tenant not found")]
    NotFound,
}

impl Aggregate for TenantAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "tenant";
    type State = Option<Tenant>;
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;

    fn decide(state: &Self::State, cmd: &TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        match (state, cmd) {
            (Some(_), TenantCommand::Create { .. }) => Err(TenantError::AlreadyExists),
            (None, TenantCommand::Create { name }) => Ok(vec![TenantEvent::Created {
                name: name.as_str().to_string(),
            }]),
            (None, TenantCommand::SetPlan(_)) => Err(TenantError::NotFound),
            (Some(t), TenantCommand::SetPlan(plan)) if t.plan == *plan => Ok(vec![]),
            (Some(_), TenantCommand::SetPlan(plan)) => Ok(vec![TenantEvent::PlanSet(plan.clone())]),
        }
    }

    fn evolve(state: Self::State, event: &TenantEvent, env: &Envelope) -> Self::State {
        match (state, event) {
            (None, TenantEvent::Created { name }) => Some(Tenant {
                id: TenantId(Uuid::parse_str(&env.aggregate_id).unwrap_or_default()),
                name: name.clone(),
                created_at: occurred_at(env),
                plan: Plan::default(),
                version: env.aggregate_version,
            }),
            (Some(mut t), TenantEvent::PlanSet(plan)) => {
                t.plan = plan.clone();
                t.version = env.aggregate_version;
                Some(t)
            }
            (state, _) => state,
        }
    }

    fn encode(event: &TenantEvent) -> NewEvent {
        match event {
            TenantEvent::Created { name } => NewEvent::new(
                "tenant.created.v1",
                pb::TenantCreated { name: name.clone() }.encode_to_vec(),
            ),
            TenantEvent::PlanSet(plan) => NewEvent::new(
                "tenant.plan_set.v1",
                pb::TenantPlanSet {
                    addons: plan.addons.iter().map(|a| a.as_str().to_string()).collect(),
                    quotas: plan.quotas.clone().into_iter().collect(),
                    requests_per_second: plan.requests_per_second.unwrap_or(0),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<TenantEvent, DecodeError> {
        let bytes = env.payload.as_slice();
        match env.event_type.as_str() {
            "tenant.created.v1" => {
                let m = pb::TenantCreated::decode(bytes).map_err(|e| DecodeError::new(env, e))?;
                Ok(TenantEvent::Created { name: m.name })
            }
            "tenant.plan_set.v1" => {
                let m = pb::TenantPlanSet::decode(bytes).map_err(|e| DecodeError::new(env, e))?;
                Ok(TenantEvent::PlanSet(Plan {
                    // An add-on this build no longer knows entitles nothing.
                    addons: m.addons.iter().filter_map(|a| Addon::parse(a)).collect(),
                    quotas: m.quotas.into_iter().collect(),
                    requests_per_second: (m.requests_per_second > 0)
                        .then_some(m.requests_per_second),
                }))
            }
            other => Err(DecodeError::new(
                env,
                format!("not a tenant event: {other}"),
            )),
        }
    }
}

/// Claim of a tenant name (platform tenant, `identity.tenant_name.<name>`): the log keeps
/// names unique because a claim expects the subject to be empty.
pub struct TenantNameAggregate;

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimName {
    pub name: TenantName,
    pub tenant: TenantId,
    /// Whether the current holder exists (an orphaned claim is taken over; see
    /// [`super::orphaned`]).
    pub holder_alive: bool,
    pub now: DateTime<Utc>,
}

/// Which tenant holds a name, since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameClaim {
    pub tenant: TenantId,
    pub at: DateTime<Utc>,
}

impl Aggregate for TenantNameAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "tenant_name";
    type State = Option<NameClaim>;
    type Command = ClaimName;
    type Event = TenantId;
    type Error = TenantError;

    fn decide(state: &Self::State, cmd: &ClaimName) -> Result<Vec<TenantId>, TenantError> {
        match state {
            Some(claim) if claim.tenant == cmd.tenant => Ok(vec![]),
            Some(claim) if !super::orphaned(cmd.holder_alive, claim.at, cmd.now) => {
                Err(TenantError::NameTaken(cmd.name.as_str().to_string()))
            }
            _ => Ok(vec![cmd.tenant]),
        }
    }

    fn evolve(_state: Self::State, event: &TenantId, env: &Envelope) -> Self::State {
        Some(NameClaim {
            tenant: *event,
            at: occurred_at(env),
        })
    }

    fn encode(event: &TenantId) -> NewEvent {
        NewEvent::new(
            "tenant.name_claimed.v1",
            pb::TenantNameClaimed {
                tenant_id: event.to_string(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<TenantId, DecodeError> {
        let m = aegis_kernel::payload::<pb::TenantNameClaimed>(env)?;
        Uuid::parse_str(&m.tenant_id)
            .map(TenantId)
            .map_err(|e| DecodeError::new(env, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn name(s: &str) -> TenantName {
        TenantName::parse(s).expect("valid name")
    }

    #[test]
    fn a_new_tenant_is_created() {
        given::<TenantAggregate>(vec![])
            .when(TenantCommand::Create {
                name: name(" Acme "),
            })
            .then(vec![TenantEvent::Created {
                name: "Acme".into(),
            }]);
    }

    #[test]
    fn a_tenant_is_created_once() {
        given::<TenantAggregate>(vec![TenantEvent::Created {
            name: "Acme".into(),
        }])
        .when(TenantCommand::Create { name: name("Acme") })
        .then_err(TenantError::AlreadyExists);
    }

    #[test]
    fn a_plan_change_is_recorded_only_when_it_changes_something() {
        let created = TenantEvent::Created {
            name: "Acme".into(),
        };
        let plan = Plan {
            addons: vec![Addon::Vault],
            ..Plan::default()
        };
        given::<TenantAggregate>(vec![created.clone()])
            .when(TenantCommand::SetPlan(plan.clone()))
            .then(vec![TenantEvent::PlanSet(plan.clone())]);
        given::<TenantAggregate>(vec![created, TenantEvent::PlanSet(plan.clone())])
            .when(TenantCommand::SetPlan(plan.clone()))
            .then(vec![]);
        given::<TenantAggregate>(vec![])
            .when(TenantCommand::SetPlan(plan))
            .then_err(TenantError::NotFound);
    }

    #[test]
    fn a_claimed_name_cannot_be_claimed_again() {
        let first = TenantId(Uuid::now_v7());
        given::<TenantNameAggregate>(vec![first])
            .when(ClaimName {
                name: name("Acme"),
                tenant: TenantId(Uuid::from_u128(2)),
                holder_alive: true,
                now: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(1),
            })
            .then_err(TenantError::NameTaken("Acme".into()));
    }

    #[test]
    fn a_name_whose_tenant_was_never_created_is_taken_over() {
        let orphan = TenantId(Uuid::from_u128(1));
        let retry = TenantId(Uuid::from_u128(2));
        given::<TenantNameAggregate>(vec![orphan])
            .when(ClaimName {
                name: name("Acme"),
                tenant: retry,
                holder_alive: false,
                now: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::hours(1),
            })
            .then(vec![retry]);
    }

    #[test]
    fn names_are_validated() {
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"x".repeat(101)).is_err());
        assert!(TenantName::parse("a\u{0}b").is_err());
        assert_eq!(name("ACME").uniqueness_key(), name("acme").uniqueness_key());
    }
}
