//! Audit: operations on the read side, recorded as events like any other change. A projection
//! is an aggregate of the platform tenant (`audit.projection.<name>`).

use aegis_kernel::{Aggregate, DecodeError};
use aegis_schemas::audit::v1 as pb;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;

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
            } => NewEvent::new(
                "projection.skipped.v1",
                pb::ProjectionSkipped {
                    position: *position,
                    reason: reason.clone(),
                    error: error.clone(),
                }
                .encode_to_vec(),
            ),
            Event::RebuildRequested => NewEvent::new(
                "projection.rebuild_requested.v1",
                pb::ProjectionRebuildRequested {}.encode_to_vec(),
            ),
        }
    }

    fn decode(env: &Envelope) -> Result<Event, DecodeError> {
        match env.event_type.as_str() {
            "projection.skipped.v1" => {
                let m = aegis_kernel::payload::<pb::ProjectionSkipped>(env)?;
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

/// The chain of signed checkpoints (platform tenant, `audit.checkpoint.log`): each covers the
/// positions right after the previous one, so together they cover the log without gap.
pub struct CheckpointAggregate;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub from: u64,
    pub to: u64,
    pub count: u64,
    pub root: Vec<u8>,
    pub signature: Vec<u8>,
    pub key_id: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint must start at position {expected}, not {found}")]
    NotContiguous { expected: u64, found: u64 },
    #[error("a checkpoint cannot end before it starts")]
    Empty,
}

impl Aggregate for CheckpointAggregate {
    const CONTEXT: &'static str = "audit";
    const AGGREGATE: &'static str = "checkpoint";
    /// The last position covered.
    type State = u64;
    type Command = Checkpoint;
    type Event = Checkpoint;
    type Error = CheckpointError;

    fn decide(covered: &u64, cmd: &Checkpoint) -> Result<Vec<Checkpoint>, CheckpointError> {
        if cmd.from != covered + 1 {
            return Err(CheckpointError::NotContiguous {
                expected: covered + 1,
                found: cmd.from,
            });
        }
        if cmd.to < cmd.from {
            return Err(CheckpointError::Empty);
        }
        Ok(vec![cmd.clone()])
    }

    fn evolve(_: u64, event: &Checkpoint, _: &Envelope) -> u64 {
        event.to
    }

    fn encode(c: &Checkpoint) -> NewEvent {
        NewEvent::new(
            "checkpoint.signed.v1",
            pb::CheckpointSigned {
                from: c.from,
                to: c.to,
                count: c.count,
                root: c.root.clone(),
                signature: c.signature.clone(),
                key_id: c.key_id.clone(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<Checkpoint, DecodeError> {
        let m = aegis_kernel::payload::<pb::CheckpointSigned>(env)?;
        Ok(Checkpoint {
            from: m.from,
            to: m.to,
            count: m.count,
            root: m.root,
            signature: m.signature,
            key_id: m.key_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    fn skip(position: u64) -> Command {
        Command::Skip {
            position,
            reason: "poison".into(),
            error: "gap".into(),
        }
    }

    fn checkpoint(from: u64, to: u64) -> Checkpoint {
        Checkpoint {
            from,
            to,
            count: to - from + 1,
            root: vec![0; 32],
            signature: vec![0; 64],
            key_id: "k".into(),
        }
    }

    #[test]
    fn checkpoints_cover_the_log_without_gaps() {
        given::<CheckpointAggregate>(vec![checkpoint(1, 10)])
            .when(checkpoint(11, 20))
            .then(vec![checkpoint(11, 20)]);
        given::<CheckpointAggregate>(vec![checkpoint(1, 10)])
            .when(checkpoint(12, 20))
            .then_err(CheckpointError::NotContiguous {
                expected: 11,
                found: 12,
            });
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
