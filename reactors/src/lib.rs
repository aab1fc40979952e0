//! aegis-reactors: side effects off the event log, and the reactors that act on it (the audit
//! checkpoint signer so far; the others follow as their services leave `command-api`). The runner gives each reactor a durable
//! consumer, retries failures with exponential backoff and jitter, and moves work that
//! exhausted its attempts to the `AEGIS_DLQ` stream, where it can be listed and replayed.
//!
//! A reactor acts only on committed events, acknowledges only after it succeeded, and must be
//! idempotent (the event id is its dedupe key downstream): delivery is at least once.

pub mod audit_checkpoints;
pub mod runner;

pub use runner::{run, Reactor, ReactorError, RetryPolicy};
