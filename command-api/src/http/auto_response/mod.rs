//! Auto-response (seed 000): rules, their runs, approvals, and simulation of a rule over the
//! tenant's history.

pub mod approvals;
pub mod rules;
pub mod runs;
pub mod simulate;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(rules::router())
        .merge(runs::router())
        .merge(approvals::router())
        .merge(simulate::router())
}
