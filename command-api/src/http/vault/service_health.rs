//! Seed 001's `GET /health`: the process answers, and for a caller who may read the
//! tenant's credentials, the vault's counts. Readiness lives on `/readyz`.

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The version of the vault API (seed 001) `/health` reports.
const VAULT_API_VERSION: &str = "2.0";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// `/health` as seed 001 shows it: liveness, plus the vault's counts for a caller who may
/// read the tenant's credentials (an anonymous probe learns nothing about any tenant).
/// Readiness (NATS, Postgres, projections, roles) is `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct VaultHealth {
    /// `healthy` whenever the process answers.
    pub status: String,
    /// `AEGIS`.
    pub agent: String,
    /// The vault API's version (seed 001): `2.0`.
    pub version: String,
    /// This build of Aegis.
    pub build: String,
    /// Values are always sealed: `enabled`.
    pub encryption: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiring_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired_count: Option<i64>,
    /// When this instance's rotation reactor last looked for due rotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rotation_check: Option<chrono::DateTime<chrono::Utc>>,
}

/// The process is up (seed 000's health check); with a credential that may read the
/// tenant's credentials, also seed 001's vault counts. A bad credential never fails the probe.
#[utoipa::path(get, path = "/health", tag = "probes", responses((status = 200, description = "Alive", body = VaultHealth)))]
async fn health(State(state): State<AppState>, req: axum::extract::Request) -> Json<VaultHealth> {
    let (parts, _) = req.into_parts();
    let counts = match crate::auth::authenticate(&parts, &state).await {
        Ok(p)
            if p.permissions
                .contains(crate::auth::routes::Permission::CredentialRead) =>
        {
            match p.tenant {
                Some(t) => super::health::counts(&state, t.0).await.ok(),
                None => None,
            }
        }
        _ => None,
    };
    let last_rotation_check = state.vault_checked.lock().ok().and_then(|t| *t);
    Json(VaultHealth {
        status: "healthy".into(),
        agent: "AEGIS".into(),
        version: VAULT_API_VERSION.into(),
        build: env!("CARGO_PKG_VERSION").into(),
        encryption: "enabled".into(),
        credentials_count: counts.as_ref().map(|c| c.total),
        healthy_count: counts.as_ref().map(|c| c.healthy),
        expiring_count: counts.as_ref().map(|c| c.expiring),
        expired_count: counts.as_ref().map(|c| c.expired),
        last_rotation_check,
    })
}
