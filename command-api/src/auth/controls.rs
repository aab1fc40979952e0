//! Seed 003's controls, applied to a request after its permission: the tenant's entitlement
//! to the route's add-on, the tenant's request rate, and the quota of a metered operation; and
//! after a success, the metering record.
//!
//! Quotas are checked before the operation and usage recorded after it succeeds, so bad input
//! and refused commands cost nothing and append nothing. Concurrent requests of one tenant can
//! therefore overshoot a quota by at most the number in flight together.

use super::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use aegis_identity::controls::{period, Plan};
use aegis_identity::usage::{usage_id, Record, UsageAggregate};
use aegis_identity::{TenantAggregate, TenantId};
use aegis_runtime::command::CommandContext;
use aegis_runtime::runtime::address;
use aegis_streams::AggregateRef;
use axum::http::StatusCode;
use chrono::{Datelike, TimeZone, Utc};
use std::time::Instant;

use super::routes::Route;
use crate::error::IntoApi;

/// A billable operation admitted under its quota, to be recorded if it succeeds.
pub struct Meter {
    tenant: TenantId,
    operation: &'static str,
    period: String,
}

fn usage_ref(tenant: TenantId, operation: &str, period: &str) -> Result<AggregateRef, ApiError> {
    Ok(address::<UsageAggregate>(
        tenant.0,
        usage_id(operation, period),
    )?)
}

/// Seconds until the next calendar month (UTC), when a monthly quota resets.
fn until_next_period(now: chrono::DateTime<Utc>) -> u64 {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map_or(1, |next| (next - now).num_seconds().max(1) as u64)
}

pub async fn admit(
    state: &AppState,
    principal: &Principal,
    route: &Route,
) -> Result<Option<Meter>, ApiError> {
    let Some(tenant) = principal.tenant else {
        return Ok(None);
    };
    let agg = address::<TenantAggregate>(tenant.0, tenant.0.to_string())?;
    let found = state
        .directory
        .get::<TenantAggregate>(&agg)
        .await
        .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
    let plan = match (
        found,
        route.addons().next().is_some() || route.meter.is_some(),
    ) {
        (Some(t), _) => t.plan,
        (None, false) => Plan::default(),
        (None, true) => return Err(ApiError::not_found(format!("tenant not found: {tenant}"))),
    };
    if let Some(addon) = route.addons().find(|a| !plan.entitled(*a)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "entitlement_required",
            format!(
                "this needs the `{}` add-on, which the tenant does not have",
                addon.as_str()
            ),
        )
        .with("entitlement", addon.as_str()));
    }
    let rate = plan
        .requests_per_second
        .unwrap_or(state.config.tenant_rate_limit);
    if rate > 0 {
        if let Err(wait) = state.rate_limiter.take(tenant.0, rate, Instant::now()) {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("the tenant's rate of {rate} requests per second is exhausted"),
            )
            .with("retry_after_ms", wait.as_millis().max(1) as u64);
            e.retry_after = Some(wait.as_secs().max(1));
            return Err(e);
        }
    }
    let Some(operation) = route.meter else {
        return Ok(None);
    };
    let now = Utc::now();
    let period = period(now);
    let quota = route
        .controlled_by(super::route::controls::QUOTA)
        .then(|| plan.quotas.get(operation).copied())
        .flatten();
    if let Some(limit) = quota {
        let (used, _) = state
            .executor
            .load::<UsageAggregate>(&usage_ref(tenant, operation, &period)?)
            .await
            .map_err(|e| e.into_api(|e| ApiError::internal(&e)))?;
        if used >= limit {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                format!("the tenant's quota of {limit} `{operation}` per month is used up"),
            )
            .with("operation", operation)
            .with("limit", limit)
            .with("used", used)
            .with("period", period.clone());
            e.retry_after = Some(until_next_period(now));
            return Err(e);
        }
    }
    Ok(Some(Meter {
        tenant,
        operation,
        period,
    }))
}

/// Seed 003's `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until the tenant's
/// bucket is full) on every answer to a tenant's request on its surface.
pub fn announce(
    state: &AppState,
    principal: &Principal,
    path: &str,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if !super::platform_routes::on_surface(path) {
        return response;
    }
    let Some(tenant) = principal.tenant else {
        return response;
    };
    if let Some(a) = state.rate_limiter.allowance(tenant.0, Instant::now()) {
        let headers = response.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", a.limit),
            ("x-ratelimit-remaining", a.remaining),
            ("x-ratelimit-reset", a.reset),
        ] {
            headers.insert(name, axum::http::HeaderValue::from(value));
        }
    }
    response
}

/// Records one successful billable operation. A failure here is logged, not answered: the
/// operation itself has happened.
pub async fn record(state: &AppState, principal: &Principal, meter: Meter) {
    let agg = match usage_ref(meter.tenant, meter.operation, &meter.period) {
        Ok(agg) => agg,
        Err(e) => {
            tracing::error!(message = %e.message, "usage not recorded");
            return;
        }
    };
    let ctx: CommandContext = principal.command_context(None, None, None);
    let record = Record {
        operation: meter.operation.to_string(),
        period: meter.period,
    };
    if let Err(e) = state.usage.record(state, agg, record, &ctx).await {
        tracing::error!(error = %e, tenant = %meter.tenant, operation = meter.operation, "usage not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_reset_at_the_next_utc_month() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 0)
            .single()
            .expect("time");
        assert_eq!(until_next_period(at), 60);
        let at = Utc
            .with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
            .single()
            .expect("time");
        assert_eq!(until_next_period(at), 86_400);
    }
}
