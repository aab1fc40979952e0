//! What every projection does with an envelope: its time, its payload, its ids, and the check
//! that a versioned update found the row it expected.

use crate::runner::ProjectionError;
use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::Message;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The time the envelope records.
pub(crate) fn occurred_at(env: &Envelope) -> DateTime<Utc> {
    env.occurred_at
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default()
}

/// The payload as its message; an undecodable one halts the projection.
pub(crate) fn decode<M: Message + Default>(env: &Envelope) -> Result<M, ProjectionError> {
    M::decode(env.payload.as_slice())
        .map_err(|e| ProjectionError::Decode(format!("{}: {e}", env.event_type)))
}

pub(crate) fn uuid(s: &str) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(s).map_err(|e| ProjectionError::Decode(format!("bad id {s}: {e}")))
}

/// One row changed, or the read model and the log disagree.
pub(crate) fn one(
    result: sqlx::postgres::PgQueryResult,
    env: &Envelope,
) -> Result<(), ProjectionError> {
    if result.rows_affected() == 1 {
        Ok(())
    } else {
        Err(ProjectionError::Invariant(format!(
            "{} at version {} of {} {} found no row at the previous version",
            env.event_type, env.aggregate_version, env.aggregate_type, env.aggregate_id
        )))
    }
}
