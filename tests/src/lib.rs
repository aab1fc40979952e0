//! aegis-tests: end-to-end test support. Every test owns its world: its own nats-server
//! (from the project's nats.conf, on a free port, in a temporary store directory) and its own
//! PostgreSQL database, both removed when the test ends.

pub mod bench;
pub mod git;
pub mod instance;
pub mod world;

pub use world::{NatsServer, TestApp, TestDb};
