//! Auto-response (seed 000): rules that watch the event log and act through commands.

pub mod actions;
pub mod matcher;
pub mod rules;

pub use rules::{Rule, RuleAggregate, RuleError};
