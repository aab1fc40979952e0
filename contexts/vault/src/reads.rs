//! Reads of credentials' values, recorded before each value leaves. Reads that arrive together
//! share one commit on a fresh aggregate (`vault.credential_read.<uuid>`, one event per read,
//! each with its own actor: `aegis_runtime::records`), so concurrent readers never contend for
//! a sequence and cost one fsync between them. Reads recorded before group commit are an
//! aggregate each (`<name>/<uuid>`); the audit log files both under the credential's name.

use aegis_kernel::{Aggregate, DecodeError};
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::vault::v1 as pb;
use aegis_schemas::Message;
use aegis_schemas::NewEvent;

#[derive(Debug, Clone, PartialEq)]
pub struct ValueRead {
    pub name: String,
    pub version: u64,
    /// Why the value was not served; `None` when it was.
    pub refused: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("this read is already recorded")]
pub struct AlreadyRecorded;

pub struct CredentialReadAggregate;

impl Aggregate for CredentialReadAggregate {
    const CONTEXT: &'static str = "vault";
    const AGGREGATE: &'static str = "credential_read";
    type State = bool;
    type Command = ValueRead;
    type Event = ValueRead;
    type Error = AlreadyRecorded;

    fn decide(recorded: &bool, cmd: &ValueRead) -> Result<Vec<ValueRead>, AlreadyRecorded> {
        if *recorded {
            return Err(AlreadyRecorded);
        }
        Ok(vec![cmd.clone()])
    }

    fn evolve(_: bool, _: &ValueRead, _: &Envelope) -> bool {
        true
    }

    fn encode(e: &ValueRead) -> NewEvent {
        NewEvent::new(
            "credential.value_read.v1",
            pb::ValueRead {
                name: e.name.clone(),
                version: e.version,
                refused: e.refused.clone().unwrap_or_default(),
            }
            .encode_to_vec(),
        )
    }

    fn decode(env: &Envelope) -> Result<ValueRead, DecodeError> {
        if env.event_type != "credential.value_read.v1" {
            return Err(DecodeError::new(env, "not a credential read"));
        }
        let m = aegis_kernel::payload::<pb::ValueRead>(env)?;
        Ok(ValueRead {
            name: m.name,
            version: m.version,
            refused: (!m.refused.is_empty()).then_some(m.refused),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_kernel::spec::given;

    #[test]
    fn a_read_is_recorded_once() {
        let read = ValueRead {
            name: "db".into(),
            version: 2,
            refused: None,
        };
        given::<CredentialReadAggregate>(vec![])
            .when(read.clone())
            .then(vec![read.clone()]);
        given::<CredentialReadAggregate>(vec![read.clone()])
            .when(read)
            .then_err(AlreadyRecorded);
    }
}
