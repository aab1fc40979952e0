//! Metering: one `usage.recorded.v1` per successful billable operation, on a subject per
//! tenant, operation and month (`identity.usage.<operation>@<period>`). The count of a subject
//! is the tenant's usage for that period, and what its quota is checked against.

use aegis_kernel::{Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::identity::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;

pub struct UsageAggregate;

/// The aggregate id of an operation's usage in a period.
pub fn usage_id(operation: &str, period: &str) -> String {
    format!("{operation}@{period}")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub operation: String,
    pub period: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UsageError {}

impl Aggregate for UsageAggregate {
    const CONTEXT: &'static str = "identity";
    const AGGREGATE: &'static str = "usage";
    /// Successful runs in the period.
    type State = u64;
    /// The records of concurrent successes, appended as one commit (group commit: they do
    /// not race one another for the subject's sequence).
    type Command = Vec<Record>;
    type Event = Record;
    type Error = UsageError;

    /// Recording never refuses: the quota is checked before the operation runs, and an
    /// operation that ran is billed.
    fn decide(_: &u64, cmd: &Vec<Record>) -> Result<Vec<Record>, UsageError> {
        Ok(cmd.clone())
    }

    fn evolve(state: u64, _: &Record, _: &Envelope) -> u64 {
        state + 1
    }

    fn encode(event: &Record) -> NewEvent {
        NewEvent::new(
            "usage.recorded.v1",
            pb::UsageRecorded {
                operation: event.operation.clone(),
                period: event.period.clone(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<Record, DecodeError> {
        let m = aegis_kernel::payload::<pb::UsageRecorded>(env)?;
        Ok(Record {
            operation: m.operation,
            period: m.period,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    #[test]
    fn every_success_is_counted() {
        let r = Record {
            operation: "agent.mint".into(),
            period: "2026-11".into(),
        };
        given::<UsageAggregate>(vec![r.clone(), r.clone()])
            .when(vec![r.clone(), r.clone()])
            .then(vec![r.clone(), r]);
        assert_eq!(usage_id("agent.mint", "2026-11"), "agent.mint@2026-11");
    }
}
