//! The secret broker (seed 004)'s working half: what agents running in customers' clusters do
//! with secrets: data keys handed to agents (`deks`), the jobs they claim (`jobs`), the values
//! they hand over once (`wraps`) and the secrets they find in their clusters (`discovered`);
//! and the people's half: access requests and their approvals (`requests`), bound to the
//! workflow a tenant's policies pick (`rules`), about the projects and environments the
//! tenant keeps (`tenancy`).

pub mod deks;
pub mod discovered;
pub mod gitops;
pub mod jobs;
pub mod requests;
pub mod rules;
pub mod tenancy;
pub mod wraps;
