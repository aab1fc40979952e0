//! Integrations (seed 000): webhook fan-out with retries and dead letters.

pub mod dead_letters;
pub mod fanout;
pub mod metrics;
pub mod webhooks;
