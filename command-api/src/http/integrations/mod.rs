//! Integration routes (seed 000): webhook configs, the Slack test, dead letters, SIEM
//! connections and scheduled reports.

pub mod dead_letters;
pub mod fields;
pub mod reports;
pub mod siem;
pub mod webhooks;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(webhooks::router())
        .merge(dead_letters::router())
        .merge(siem::router())
        .merge(reports::router())
}
