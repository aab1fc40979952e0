//! The auto-response context's application services: running a rule's rendered actions, each
//! a command of its own context issued by the rule's system actor, and deciding approvals
//! (an approval runs the actions it held back). The reactor that matches events against
//! rules runs in `aegis-reactors`; the HTTP adapter calls these to approve and reject.

pub mod actions;
pub mod approvals;

pub use actions::{execute_all, RunContext, ACTOR_PREFIX};
pub use approvals::{approve, reject, ApprovalFailure};
