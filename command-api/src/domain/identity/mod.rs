//! Identity: tenants, users, roles and permissions, API keys and agents. Pure deciders.

pub mod agents;
pub mod api_keys;
pub mod permissions;
pub mod roles;
pub mod tenants;
pub mod users;

pub use tenants::*;
