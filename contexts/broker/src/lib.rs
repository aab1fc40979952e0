//! The secret broker (seed 004)'s working half: what agents running in customers' clusters do
//! with secrets. Data keys handed to agents (`deks`); jobs, single-shot wraps and discovered
//! secrets follow.

pub mod deks;
pub mod discovered;
pub mod jobs;
