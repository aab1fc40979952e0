//! Auto-response (seed 000): rules that watch the event log and act through commands, the
//! runs they record (throttle and blast-radius brake), and the approvals that gate them.

#[macro_use]
extern crate aegis_kernel;

pub mod actions;
pub mod approvals;
pub mod document;
pub mod matcher;
pub mod rules;
pub mod runs;

pub use approvals::{ApprovalAggregate, ApprovalError};
pub use rules::{Rule, RuleAggregate, RuleError};
pub use runs::{RunError, RunsAggregate};
