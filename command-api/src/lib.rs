//! aegis-command-api: the HTTP and NATS command/query surfaces, authentication, the pure
//! deciders of every bounded context (`domain`), and the `aegis` binary's entry point.
//!
//! Invariants: deciders never do I/O; errors become HTTP only in `error`; commands reach the
//! log only through `command::Executor`.

pub mod app;
pub mod audit_bundle;
pub mod audit_checkpoints;
pub mod auth;
pub mod cli;
pub mod command;
pub mod config;
pub mod domain;
pub mod egress;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod keys;
pub mod nats_bridge;
pub mod state;
pub mod telemetry;
pub mod vault;
