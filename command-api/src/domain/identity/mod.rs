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
