//! aegis-tests: end-to-end test support. Every test owns its world: its own nats-server
//! (from the project's nats.conf, on a free port, in a temporary store directory) and its own
//! PostgreSQL database, both removed when the test ends.

/// The allocator `aegis` ships with (see command-api/src/main.rs), for every binary and test
/// that links this crate: the benchmarks that run Aegis in-process measured glibc's malloc
/// before, which `aegis` does not use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod bench;
pub mod git;
pub mod instance;
pub mod world;

pub use world::{NatsServer, TestApp, TestDb};
