//! Auto-response (seed 000): rules, and simulation of a rule over the tenant's history.

pub mod rules;
pub mod simulate;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(rules::router())
        .merge(simulate::router())
}
