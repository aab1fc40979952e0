//! Identity: tenants and their plans, users, roles and permissions, API keys, agents and
//! metered usage. Pure deciders.

pub mod agents;
pub mod api_keys;
pub mod controls;
pub mod dashboard;
pub mod kill_switch;
pub mod permissions;
pub mod roles;
pub mod tenants;
pub mod usage;
pub mod users;

pub use tenants::*;

/// A unique name is claimed first and its holder created second, in two appends. A claim
/// whose holder was never created (the process died in between) must not hold the name for
/// ever: the next claimant takes it over once it is this old and its holder does not exist
/// (the handler looks that up). A younger one may be a creation still under way.
pub const ORPHAN_AFTER_SECS: i64 = 60;

/// Whether a claim made `at` whose holder is (or is not) alive may be taken over `now`.
pub fn orphaned(
    holder_alive: bool,
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    !holder_alive && (now - at).num_seconds() >= ORPHAN_AFTER_SECS
}
