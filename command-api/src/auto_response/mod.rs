//! Auto-response beyond one decision: the reactor that matches events against rules and runs
//! them, the execution of actions through commands, approvals and their expiry, and the match
//! latency metric. HTTP handlers (approve) and the reactor share the same execution path.

pub mod actions;
pub mod approvals;
pub mod metrics;
pub mod reactor;
