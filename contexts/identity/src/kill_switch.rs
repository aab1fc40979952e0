//! The tenant's kill switch (`identity.kill_switch.tenant`): while engaged, every agent of the
//! tenant is refused. Engaged by an operator or by an auto-response rule; released the same way.

use aegis_kernel::{occurred_at, Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;
use chrono::{DateTime, Utc};

/// The one kill switch of a tenant lives under this id.
pub const ID: &str = "tenant";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KillSwitch {
    pub engaged: bool,
    pub reason: String,
    /// `<kind>:<subject>` of whoever last engaged or released it.
    pub changed_by: String,
    pub changed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Engage { reason: String },
    Release { reason: String },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Engaged { reason: String },
    Released { reason: String },
}

/// Engaging an engaged switch, or releasing a released one, changes nothing: both are safe to
/// repeat (a rule may fire many times).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KillSwitchError {}

pub struct KillSwitchAggregate;

impl Aggregate for KillSwitchAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "kill_switch";
    type State = KillSwitch;
    type Command = Command;
    type Event = Event;
    type Error = KillSwitchError;

    fn decide(state: &KillSwitch, cmd: &Command) -> Result<Vec<Event>, KillSwitchError> {
        Ok(match cmd {
            Command::Engage { .. } if state.engaged => vec![],
            Command::Engage { reason } => vec![Event::Engaged {
                reason: reason.clone(),
            }],
            Command::Release { .. } if !state.engaged => vec![],
            Command::Release { reason } => vec![Event::Released {
                reason: reason.clone(),
            }],
        })
    }

    fn evolve(_: KillSwitch, event: &Event, env: &Envelope) -> KillSwitch {
        let (engaged, reason) = match event {
            Event::Engaged { reason } => (true, reason),
            Event::Released { reason } => (false, reason),
        };
        KillSwitch {
            engaged,
            reason: reason.clone(),
            changed_by: env
                .actor
                .as_ref()
                .map(|a| format!("{}:{}", a.kind, a.subject))
                .unwrap_or_default(),
            changed_at: Some(occurred_at(env)),
        }
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Engaged { reason } => NewEvent::new(
                "kill_switch.engaged.v1",
                pb::KillSwitchEngaged {
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
            Event::Released { reason } => NewEvent::new(
                "kill_switch.released.v1",
                pb::KillSwitchReleased {
                    reason: reason.clone(),
                }
                .encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        let bytes = env.payload.as_slice();
        match env.event_type.as_str() {
            "kill_switch.engaged.v1" => Ok(Event::Engaged {
                reason: pb::KillSwitchEngaged::decode(bytes)
                    .map_err(|e| DecodeError::new(env, e))?
                    .reason,
            }),
            "kill_switch.released.v1" => Ok(Event::Released {
                reason: pb::KillSwitchReleased::decode(bytes)
                    .map_err(|e| DecodeError::new(env, e))?
                    .reason,
            }),
            other => Err(DecodeError::new(
                env,
                format!("not a kill switch event: {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn engaged() -> Event {
        Event::Engaged {
            reason: "rule fired".into(),
        }
    }

    #[test]
    fn engaging_twice_or_releasing_a_released_switch_changes_nothing() {
        given::<KillSwitchAggregate>(vec![])
            .when(Command::Engage { reason: "x".into() })
            .then(vec![Event::Engaged { reason: "x".into() }]);
        given::<KillSwitchAggregate>(vec![engaged()])
            .when(Command::Engage { reason: "y".into() })
            .then(vec![]);
        given::<KillSwitchAggregate>(vec![])
            .when(Command::Release { reason: "z".into() })
            .then(vec![]);
        given::<KillSwitchAggregate>(vec![engaged()])
            .when(Command::Release {
                reason: "ok".into(),
            })
            .then(vec![Event::Released {
                reason: "ok".into(),
            }]);
    }
}
