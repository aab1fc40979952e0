//! Seed 000's two dashboard routes: read and save the caller's own dashboard state (saved
//! filters and layout). Every save is a version; `If-Match` guards against overwriting a save
//! made from another browser (409).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::extract::{CommandHeaders, Json};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::{Data, Reply};
use crate::http::{aggregate, current, ensure_tenant, execute};
use crate::state::AppState;
use aegis_identity::dashboard::{Dashboard, DashboardAggregate, Save};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, save))
}

/// How large and how deep a saved state may be.
const MAX_BYTES: usize = 16 * 1024;
const MAX_DEPTH: usize = 8;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DashboardBody {
    /// Saved filters, e.g. `{"incidents": {"severity": ["critical"]}}`: any JSON object up to
    /// 16 KiB and 8 levels deep.
    #[schema(value_type = Object)]
    pub filters: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardView {
    #[schema(value_type = Object)]
    pub filters: Value,
    pub saved_at: Option<DateTime<Utc>>,
}

fn view(d: Dashboard) -> DashboardView {
    DashboardView {
        filters: if d.state.is_object() {
            d.state
        } else {
            Value::Object(Default::default())
        },
        saved_at: d.saved_at,
    }
}

fn id(p: &Principal) -> String {
    format!("{}:{}", p.kind.as_str(), p.subject)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The caller's saved dashboard state (empty filters before the first save).
#[utoipa::path(get, path = "/dashboard/state", tag = "dashboard", security(("bearer" = [])),
    params(params::Tenant),
    responses((status = 200, description = "The saved state", body = Data<DashboardView>, headers(("ETag" = String))), AuthErrors))]
async fn show(State(state): State<AppState>, principal: Principal) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let (d, position, version) =
        current::<DashboardAggregate>(&state, tenant, id(&principal)).await?;
    Ok(Reply::data(StatusCode::OK, view(d)).at(position, version))
}

/// Save the caller's dashboard state, replacing the previous one.
#[utoipa::path(put, path = "/dashboard/state", tag = "dashboard", security(("bearer" = [])),
    params(params::Tenant, params::IfMatch), request_body = DashboardBody,
    responses((status = 200, description = "Saved", body = Data<DashboardView>, headers(("ETag" = String))),
        AuthErrors, BodyErrors,
        (status = 409, description = "Stale If-Match", body = ErrorBody)))]
async fn save(
    State(state): State<AppState>,
    principal: Principal,
    headers: CommandHeaders,
    Json(body): Json<DashboardBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    if !body.filters.is_object() {
        return Err(ApiError::validation(
            "filters",
            "filters must be a JSON object",
        ));
    }
    if body.filters.to_string().len() > MAX_BYTES || depth(&body.filters) > MAX_DEPTH {
        return Err(ApiError::validation(
            "filters",
            "filters may hold at most 16 KiB, 8 levels deep",
        ));
    }
    ensure_tenant(&state, tenant).await?;
    let agg = aggregate::<DashboardAggregate>(tenant.0, id(&principal))?;
    let outcome = execute::<DashboardAggregate>(
        &state,
        &principal,
        &headers,
        &agg,
        &Save(body.filters),
        false,
        |e| match e {},
    )
    .await?;
    Ok(Reply::data(StatusCode::OK, view(outcome.state)).at(outcome.position, outcome.version))
}
