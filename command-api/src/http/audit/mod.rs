//! The audit context's read side: the audit log (seeds 001 and 004), reconstruction of any
//! resource as of a moment, verification of the hash chain, and operating the projections.

mod decisions;
pub mod export;
pub mod log;
pub mod projections;
pub mod reconstruct;
pub mod verify;

use crate::state::AppState;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    log::router()
        .routes(routes!(decisions::decisions))
        .routes(routes!(reconstruct::reconstruct))
        .routes(routes!(verify::verify))
        .routes(routes!(export::export))
        .routes(routes!(export::public_key))
        .routes(routes!(projections::list))
        .routes(routes!(projections::rebuild))
        .routes(routes!(projections::skip))
}
