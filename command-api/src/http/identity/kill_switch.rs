//! The tenant's kill switch: one request refuses every agent of the tenant (403
//! `kill_switch_engaged`) until it is released. Auto-response rules flip the same switch.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{max_chars, CommandHeaders, Json};
use crate::http::openapi::{params, AuthErrors, BodyErrors};
use crate::http::reply::{Data, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_identity::kill_switch::{self, Command, KillSwitch, KillSwitchAggregate};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show))
        .routes(routes!(engage))
        .routes(routes!(release))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KillSwitchView {
    pub engaged: bool,
    pub reason: String,
    /// `<kind>:<subject>`: a user, a key, or `system:auto-response:<rule id>`.
    pub changed_by: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
}

fn view(k: KillSwitch) -> KillSwitchView {
    KillSwitchView {
        engaged: k.engaged,
        reason: k.reason,
        changed_by: Some(k.changed_by).filter(|s| !s.is_empty()),
        changed_at: k.changed_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchBody {
    /// Why, for the audit log and the agents' refusal; 1 to 500 characters.
    pub reason: String,
}

/// Releasing needs no reason (the body may be left out); one given is kept for the audit log.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// Why, for the audit log; up to 500 characters.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Whether the kill switch is engaged, why, and who set it.
#[utoipa::path(get, path = "/kill-switch", tag = "agents", security(("bearer" = [])),
    params(params::Tenant),
    responses((status = 200, description = "The switch", body = Data<KillSwitchView>), AuthErrors))]
async fn show(State(state): State<AppState>, principal: Principal) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (k, position, version) =
        current::<KillSwitchAggregate>(&state, tenant, kill_switch::ID).await?;
    Ok(Reply::data(StatusCode::OK, view(k)).at(position, version))
}

async fn flip(
    state: AppState,
    principal: Principal,
    headers: CommandHeaders,
    reason: String,
    engage: bool,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let reason = reason.trim().to_string();
    if reason.is_empty() && engage {
        return Err(ApiError::validation(
            "reason",
            "say why (1 to 500 characters)",
        ));
    }
    max_chars("reason", Some(&reason), 500)?;
    ensure_tenant(&state, tenant).await?;
    let agg = aggregate::<KillSwitchAggregate>(tenant.0, kill_switch::ID)?;
    let cmd = if engage {
        Command::Engage { reason }
    } else {
        Command::Release { reason }
    };
    let outcome = execute::<KillSwitchAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &cmd,
        false,
        |e| match e {},
    )
    .await?;
    Ok(Reply::data(StatusCode::OK, view(outcome.state)).at(outcome.position, outcome.version))
}

/// Engage the kill switch: every agent of the tenant is refused from the next request on.
/// Engaging an engaged switch changes nothing.
#[utoipa::path(post, path = "/kill-switch/engage", tag = "agents", security(("bearer" = [])),
    params(params::Tenant), request_body = KillSwitchBody,
    responses((status = 200, description = "Engaged", body = Data<KillSwitchView>), AuthErrors, BodyErrors))]
async fn engage(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<KillSwitchBody>,
) -> Result<Reply, ApiError> {
    flip(state, principal, headers, body.reason, true).await
}

/// Release the kill switch: agents that are active work again.
#[utoipa::path(post, path = "/kill-switch/release", tag = "agents", security(("bearer" = [])),
    params(params::Tenant), request_body = ReleaseBody,
    responses((status = 200, description = "Released", body = Data<KillSwitchView>), AuthErrors, BodyErrors))]
async fn release(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<ReleaseBody>,
) -> Result<Reply, ApiError> {
    flip(
        state,
        principal,
        headers,
        body.reason.unwrap_or_default(),
        false,
    )
    .await
}
