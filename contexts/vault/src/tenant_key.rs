//! A tenant's data key (`vault.tenant_key.<tenant>`): its destruction, recorded once. The key
//! itself lives in the key bucket; this is the log's record that it was destroyed, by whom
//! and why, so an erasure is provable later.

use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct Destroyed {
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Destroy {
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Never {}

pub struct TenantKeyAggregate;

impl Aggregate for TenantKeyAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "tenant_key";
    type State = Option<Destroyed>;
    type Command = Destroy;
    type Event = Destroy;
    type Error = Never;

    fn decide(state: &Option<Destroyed>, cmd: &Destroy) -> Result<Vec<Destroy>, Never> {
        // Destroying again records nothing: the first record says when it happened.
        Ok(if state.is_some() {
            vec![]
        } else {
            vec![cmd.clone()]
        })
    }

    fn evolve(state: Option<Destroyed>, e: &Destroy, env: &Envelope) -> Option<Destroyed> {
        state.or_else(|| {
            Some(Destroyed {
                reason: e.reason.clone(),
                at: occurred_at(env),
            })
        })
    }

    fn encode(e: &Destroy) -> NewEvent {
        NewEvent::new(
            "tenant_key.destroyed.v1",
            pb::TenantKeyDestroyed {
                reason: e.reason.clone(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<Destroy, DecodeError> {
        if env.event_type != "tenant_key.destroyed.v1" {
            return Err(DecodeError::new(env, "not a tenant key event"));
        }
        let m = aegis_kernel::payload::<pb::TenantKeyDestroyed>(env)?;
        Ok(Destroy { reason: m.reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    #[test]
    fn a_tenant_key_is_destroyed_once() {
        let d = Destroy {
            reason: "offboarded".into(),
        };
        given::<TenantKeyAggregate>(vec![])
            .when(d.clone())
            .then(vec![d.clone()]);
        given::<TenantKeyAggregate>(vec![d.clone()])
            .when(d)
            .then(vec![]);
    }
}
