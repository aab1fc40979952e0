//! Seed 003's leakage detection (`/v1/leakage-detection`, also at `/vault/v1`): HTTP over
//! `aegis_vault_services::leakage`. Policies and incidents are commands and read-model
//! queries; a scan is queued here (202) and run by the leak-scan reactor, its progress read
//! at `/scans/{scanId}`.

use crate::error::{ApiError, IntoApi};
use crate::state::AppState;
use aegis_vault::leakage::incident::IncidentError;
use aegis_vault::leakage::policy::PolicyError;
use aegis_vault::leakage::scan::ScanError;
use aegis_vault_services::leakage::LeakError;
use axum::routing::{get, post};
use incidents::*;
use policies::*;
use scans::*;
use utoipa_axum::{router::OpenApiRouter, routes};

mod incidents;
mod policies;
mod scans;
pub mod shapes;

pub fn router() -> OpenApiRouter<AppState> {
    let aliases: axum::Router<AppState> = axum::Router::new()
        .route(
            "/vault/v1/leakage-detection/policies",
            post(create_policy).get(list_policies),
        )
        .route(
            "/vault/v1/leakage-detection/policies/{policyId}",
            get(get_policy).delete(delete_policy),
        )
        .route(
            "/vault/v1/leakage-detection/incidents",
            post(report_incident).get(list_incidents),
        )
        .route(
            "/vault/v1/leakage-detection/incidents/{incidentId}",
            get(get_incident).patch(update_incident),
        )
        .route("/vault/v1/leakage-detection/scan", post(scan))
        .route("/vault/v1/leakage-detection/scans/{scanId}", get(get_scan))
        .route("/vault/v1/leakage-detection/stats", get(stats))
        .route(
            "/vault/v1/leakage-detection/secrets/{secretId}/check",
            post(check),
        );
    OpenApiRouter::new()
        .routes(routes!(create_policy, list_policies))
        .routes(routes!(get_policy, delete_policy))
        .routes(routes!(report_incident, list_incidents))
        .routes(routes!(get_incident, update_incident))
        .routes(routes!(scan))
        .routes(routes!(get_scan))
        .routes(routes!(stats))
        .routes(routes!(check))
        .merge(OpenApiRouter::from(aliases))
}

/// The one mapping of what leakage detection refuses.
fn refused(e: LeakError) -> ApiError {
    match e {
        LeakError::Policy(e) => e.into_api(|e| match e {
            PolicyError::NotFound => ApiError::not_found(e.to_string()),
            PolicyError::Exists => ApiError::conflict(e.to_string()),
            PolicyError::Name => ApiError::validation("name", e.to_string()),
            PolicyError::TooManyPatterns | PolicyError::Pattern(_) => {
                ApiError::validation("secretPatterns", e.to_string())
            }
            PolicyError::Target(_) => ApiError::validation("scanTargets", e.to_string()),
        }),
        LeakError::Incident(e) => e.into_api(|e| match e {
            IncidentError::NotFound => ApiError::not_found(e.to_string()),
            IncidentError::Reopen => ApiError::validation("status", e.to_string()),
        }),
        LeakError::Scan(e) => e.into_api(|e| match e {
            ScanError::NotFound => ApiError::not_found(e.to_string()),
            other => ApiError::conflict(other.to_string()),
        }),
        e @ LeakError::NoPolicy(_) => ApiError::validation("policyIds", e.to_string()),
        LeakError::Invalid { field, reason } => ApiError::validation(field, reason),
        LeakError::Key(e) => super::errors::key_error("leak fingerprints", e),
        LeakError::Db(e) => e.into(),
    }
}

fn word<T>(
    field: &str,
    text: &str,
    parse: fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<T, ApiError> {
    parse(text)
        .ok_or_else(|| ApiError::validation(field, format!("{field} must be one of {allowed}")))
}

const SEVERITIES: &str = "low, medium, high, critical";
