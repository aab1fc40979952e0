//! aegis-streams: the event log. Stream and bucket definitions as code, provisioning, the
//! [`EventStore`] over JetStream (append with optimistic concurrency and idempotency, load an
//! aggregate, read a range, subscribe) and the per-aggregate audit hash chain.
//!
//! Invariant: this is the only crate that talks to JetStream's stream API for the event log;
//! everything else goes through [`EventStore`].

pub mod chain;
pub mod error;
pub mod merkle;
pub mod provision;
pub mod store;
pub mod subject;
pub mod trace;

pub use error::{lost_race, AppendError, StoreError};
pub use provision::{provision, StreamSettings, DLQ_STREAM, EVENTS_STREAM};
pub use store::{Appended, EventStore, Expected, History, Metadata, NewEvent, StoredCommit};
pub use subject::{AggregateRef, SubjectError};

/// Headers every commit carries.
pub mod headers {
    pub const EVENT_TYPE: &str = "Aegis-Event-Type";
    pub const TENANT: &str = "Aegis-Tenant";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
}
