//! Audit: operations on the read side, recorded as events like any other change. A projection
//! is an aggregate of the platform tenant (`audit.projection.<name>`).

use super::{Aggregate, DecodeError};
use aegis_schemas::audit::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use aegis_streams::NewEvent;

pub struct ProjectionAggregate;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Let a halted projection pass `position`; `error` is what halted it.
    Skip {
        position: u64,
        reason: String,
        error: String,
    },
    RequestRebuild,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Skipped {
        position: u64,
        reason: String,
        error: String,
    },
    RebuildRequested,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionOpError {
    #[error("position {0} was already skipped")]
    AlreadySkipped(u64),
}

impl Aggregate for ProjectionAggregate {
    const CONTEXT: &'static str = "audit";
    const AGGREGATE: &'static str = "projection";
    /// Positions skipped so far.
    type State = Vec<u64>;
    type Command = Command;
    type Event = Event;
    type Error = ProjectionOpError;

    fn decide(skipped: &Vec<u64>, cmd: &Command) -> Result<Vec<Event>, ProjectionOpError> {
        match cmd {
            Command::Skip { position, .. } if skipped.contains(position) => {
                Err(ProjectionOpError::AlreadySkipped(*position))
            }
            Command::Skip {
                position,
                reason,
                error,
            } => Ok(vec![Event::Skipped {
                position: *position,
                reason: reason.clone(),
                error: error.clone(),
            }]),
            Command::RequestRebuild => Ok(vec![Event::RebuildRequested]),
        }
    }

    fn evolve(mut skipped: Vec<u64>, event: &Event, _: &Envelope) -> Vec<u64> {
        if let Event::Skipped { position, .. } = event {
            skipped.push(*position);
        }
        skipped
    }

    fn encode(event: &Event) -> NewEvent {
        match event {
            Event::Skipped {
                position,
                reason,
                error,
            } => NewEvent {
                event_type: "projection.skipped.v1",
                payload: pb::ProjectionSkipped {
                    position: *position,
                    reason: reason.clone(),
                    error: error.clone(),
                }
                .encode_to_vec(),
            },
            Event::RebuildRequested => NewEvent {
                event_type: "projection.rebuild_requested.v1",
                payload: pb::ProjectionRebuildRequested {}.encode_to_vec(),
            },
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        match env.event_type.as_str() {
            "projection.skipped.v1" => {
                let m = pb::ProjectionSkipped::decode(env.payload.as_slice())
                    .map_err(|e| DecodeError::new(env, e))?;
                Ok(Event::Skipped {
                    position: m.position,
                    reason: m.reason,
                    error: m.error,
                })
            }
            "projection.rebuild_requested.v1" => Ok(Event::RebuildRequested),
            other => Err(DecodeError::new(
                env,
                format!("not a projection event: {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::spec::given;

    fn skip(position: u64) -> Command {
        Command::Skip {
            position,
            reason: "poison".into(),
            error: "gap".into(),
        }
    }

    #[test]
    fn a_position_is_skipped_once() {
        given::<ProjectionAggregate>(vec![])
            .when(skip(7))
            .then(vec![Event::Skipped {
                position: 7,
                reason: "poison".into(),
                error: "gap".into(),
            }]);
        given::<ProjectionAggregate>(vec![Event::Skipped {
            position: 7,
            reason: String::new(),
            error: String::new(),
        }])
        .when(skip(7))
        .then_err(ProjectionOpError::AlreadySkipped(7));
    }
}
