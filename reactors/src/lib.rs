//! aegis-reactors: everything that acts on the event log. The reactors: auto-response (rules
//! matched against every event) and approval expiry, webhook fan-out, SIEM forwarders, the
//! report scheduler, credential rotation and expiry alerts, and the audit checkpoint signer.
//! They call the contexts' services (`services/`), as HTTP does. The runner gives each reactor a durable
//! consumer, retries failures with exponential backoff and jitter, and moves work that
//! exhausted its attempts to the `AEGIS_DLQ` stream, where it can be listed and replayed.
//!
//! A reactor acts only on committed events, acknowledges only after it succeeded, and must be
//! idempotent (the event id is its dedupe key downstream): delivery is at least once.

pub mod approval_expiry;
pub mod audit_checkpoints;
pub mod auto_response;
pub mod fanout;
pub mod follow;
pub mod gitops_watch;
pub mod leak_scans;
pub mod lease_expiry;
pub mod reports;
pub mod request_expiry;
pub mod role;
pub mod runner;
pub mod siem;
pub mod ticker;
pub mod vault_rotation;
pub mod wrap_expiry;

pub use aegis_runtime::retry::RetryPolicy;
pub use runner::{run, Reactor, ReactorError};
