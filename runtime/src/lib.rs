//! The runtime every context's services, the adapters and the reactors share: the command
//! executor over the event store, the identity and credential caches, the key store (envelope
//! encryption), the SSRF guard, configuration, credentials' formats and the JWT key ring,
//! throttles, leases across instances, role supervision and telemetry. It knows no HTTP.

pub mod command;
pub mod config;
pub mod directory;
pub mod egress;
pub mod group_commit;
pub mod keys;
pub mod leases;
pub mod metrics;
pub mod positions;
pub mod read_models;
pub mod retry;
pub mod runtime;
pub mod supervisor;
pub mod telemetry;
pub mod throttle;
pub mod tokens;

pub use runtime::Runtime;
