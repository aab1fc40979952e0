//! `GET /api/v1/usage`: the tenant's metered usage per billable operation for a month, with
//! its quota, counted from the usage events themselves (always current).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::current;
use crate::http::extract::Query;
use crate::http::openapi::{params, AuthErrors, ErrorBody};
use crate::http::reply::{Data, Reply};
use crate::state::AppState;
use aegis_identity::controls::{period, BILLABLE};
use aegis_identity::usage::{usage_id, UsageAggregate};
use aegis_identity::TenantAggregate;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// `YYYY-MM` (UTC); default the current month.
    #[param(pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub period: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub operation: &'static str,
    pub period: String,
    pub used: u64,
    /// The plan's monthly quota; absent: no limit.
    pub limit: Option<u64>,
}

fn valid_period(p: &str) -> bool {
    chrono::NaiveDate::parse_from_str(&format!("{p}-01"), "%Y-%m-%d").is_ok()
        && p.len() == 7
        && p.as_bytes()[4] == b'-'
}

/// Metered usage of the tenant for one month.
#[utoipa::path(get, path = "/api/v1/usage", tag = "users", security(("bearer" = [])),
    params(UsageQuery, params::Tenant),
    responses(
        (status = 200, description = "Usage per billable operation", body = Data<Vec<Usage>>),
        AuthErrors,
        (status = 404, description = "Unknown tenant", body = ErrorBody),
        (status = 422, description = "Invalid period", body = ErrorBody),
    ))]
async fn usage(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<UsageQuery>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let period = match q.period {
        Some(p) if valid_period(&p) => p,
        Some(_) => return Err(ApiError::validation("period", "period must be YYYY-MM")),
        None => period(chrono::Utc::now()),
    };
    let (found, _, _) = current::<TenantAggregate>(&state, tenant, tenant.0.to_string()).await?;
    let plan = found
        .ok_or_else(|| ApiError::not_found(format!("tenant not found: {tenant}")))?
        .plan;
    let mut data = Vec::new();
    for operation in BILLABLE {
        let (used, _, _) =
            current::<UsageAggregate>(&state, tenant, usage_id(operation, &period)).await?;
        data.push(Usage {
            operation,
            period: period.clone(),
            used,
            limit: plan.quotas.get(*operation).copied(),
        });
    }
    Ok(Reply::data(StatusCode::OK, data))
}

#[cfg(test)]
mod tests {
    #[test]
    fn periods_are_months() {
        assert!(super::valid_period("2026-11"));
        for bad in ["2026-13", "2026-1", "26-11", "2026-11-01", "x"] {
            assert!(!super::valid_period(bad), "{bad}");
        }
    }
}
