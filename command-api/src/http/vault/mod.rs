//! The credential vault (seed 001): credentials, values, versions, rotation and health.

pub mod body;
pub mod credentials;
pub mod dynamic;
pub mod errors;
pub mod health;
pub mod leakage;
pub mod n8n;
pub mod service_health;
pub mod tenant_key;
pub mod values;
pub mod versioned;

use crate::error::ApiError;
use crate::state::AppState;
use errors::missing;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(credentials::router())
        .merge(values::router())
        .merge(health::router())
        .merge(service_health::router())
        .merge(n8n::router())
        .merge(tenant_key::router())
        .merge(versioned::router())
        .merge(dynamic::router())
        .merge(leakage::router())
}

/// The status a caller sees: the lifecycle, or for an active credential whether it expired
/// or expires within its alert threshold. One SQL expression, so filters and counts agree.
pub const STATUS_SQL: &str = "CASE WHEN lifecycle <> 'active' THEN lifecycle \
    WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired' \
    WHEN expires_at IS NOT NULL AND expires_at - make_interval(hours => alert_threshold_hours) <= now() THEN 'expiring' \
    ELSE 'active' END";

/// A path name that cannot be a credential's is simply not found.
pub fn path_name(name: &str) -> Result<(), ApiError> {
    body::name(name).map_err(|_| missing(name))
}
