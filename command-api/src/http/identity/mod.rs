//! Identity routes: tenants and their plans, login, users, roles and assignments, API keys,
//! agents, usage.

pub mod agents;
pub mod api_keys;
pub mod dashboard;
pub mod kill_switch;
pub mod login;
pub mod roles;
pub mod tenants;
pub mod usage;
pub mod users;

pub use tenants::Page;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tenants::router())
        .merge(login::router())
        .merge(users::router())
        .merge(roles::router())
        .merge(api_keys::router())
        .merge(agents::router())
        .merge(kill_switch::router())
        .merge(dashboard::router())
        .merge(usage::router())
}
