//! Seed 004's secret broker, agents' working half: the routes an agent calls with its own
//! `X-Agent-Secret` on its own path (`/api/v1/agents/{id}/...`).

mod keys;

use crate::auth::{Principal, PrincipalKind};
use crate::error::ApiError;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    keys::router()
}

/// The agent of an agent's own path: the id must be a UUID (400), and the caller that agent
/// (401: another agent's secret, or no agent's, proves nothing about this one).
pub(crate) fn own_agent(principal: &Principal, raw: &str) -> Result<Uuid, ApiError> {
    let id = Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("`{raw}` is not an agent id (a UUID)")))?;
    if principal.kind != PrincipalKind::Agent || principal.subject != id.to_string() {
        return Err(ApiError::unauthorized(
            "this route takes the X-Agent-Secret of the agent it names",
        ));
    }
    Ok(id)
}
