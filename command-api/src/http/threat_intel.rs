//! Threat-intel routes (seed 000): enrich an IP or a domain, and the tenant's summary of what
//! it looked up. AUDITOR and up.

use crate::auth::{Principal, PrincipalKind};
use crate::error::ApiError;
use crate::http::extract::{Json, Query};
use crate::http::openapi::{params, AuthErrors, BodyErrors, ErrorBody};
use crate::http::reply::{Data, Reply};
use crate::state::AppState;
use crate::threat_intel::providers::Provider;
use crate::threat_intel::{lookup, IndicatorKind, Report};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::IpAddr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enrich_ip))
        .routes(routes!(enrich_domain))
        .routes(routes!(summary))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IpBody {
    /// A public IPv4 or IPv6 address.
    pub ip: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainBody {
    /// A domain name, e.g. `example.com`.
    pub domain: String,
}

fn actor(p: &Principal) -> String {
    format!("{}:{}", p.kind.as_str(), p.subject)
}

/// A domain name as DNS has it: dot-separated labels of letters, digits and hyphens.
fn domain(raw: &str) -> Result<String, ApiError> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let labels: Vec<&str> = d.split('.').collect();
    if d.len() > 253 || labels.len() < 2 || !labels.iter().all(|l| label_ok(l)) {
        return Err(ApiError::validation(
            "domain",
            "expected a domain name such as example.com",
        ));
    }
    if d.parse::<IpAddr>().is_ok()
        || labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::validation(
            "domain",
            "an address is not a domain: use /threat-intel/ip",
        ));
    }
    Ok(d)
}

/// Enrich an IP at AbuseIPDB and Shodan (each answer cached for an hour).
#[utoipa::path(post, path = "/threat-intel/ip", tag = "threat-intel", security(("bearer" = [])),
    params(params::Tenant), request_body = IpBody,
    responses((status = 200, description = "The verdict and each provider's answer", body = Data<Report>),
        AuthErrors, BodyErrors,
        (status = 429, description = "The tenant's provider budget is spent", body = ErrorBody)))]
async fn enrich_ip(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<IpBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let ip: IpAddr = body
        .ip
        .trim()
        .parse()
        .map_err(|_| ApiError::validation("ip", "expected an IPv4 or IPv6 address"))?;
    if let Some(kind) = aegis_runtime::egress::non_public(ip) {
        return Err(ApiError::validation(
            "ip",
            format!("{ip} is a {kind} address: no provider knows anything about it"),
        ));
    }
    let report = lookup(
        &state,
        &state.threat_intel,
        tenant.0,
        &actor(&principal),
        IndicatorKind::Ip,
        &ip.to_string(),
    )
    .await?;
    Ok(Reply::data(StatusCode::OK, report))
}

/// Enrich a domain at Shodan (each answer cached for a day).
#[utoipa::path(post, path = "/threat-intel/domain", tag = "threat-intel", security(("bearer" = [])),
    params(params::Tenant), request_body = DomainBody,
    responses((status = 200, description = "The verdict and each provider's answer", body = Data<Report>),
        AuthErrors, BodyErrors,
        (status = 429, description = "The tenant's provider budget is spent", body = ErrorBody)))]
async fn enrich_domain(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<DomainBody>,
) -> Result<Reply, ApiError> {
    let tenant = principal.tenant()?;
    let d = domain(&body.domain)?;
    let report = lookup(
        &state,
        &state.threat_intel,
        tenant.0,
        &actor(&principal),
        IndicatorKind::Domain,
        &d,
    )
    .await?;
    Ok(Reply::data(StatusCode::OK, report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// The window, 1 to 720 hours back (default 24).
    #[param(minimum = 1, maximum = 720)]
    pub hours: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct FlaggedIndicator {
    pub indicator: String,
    pub kind: String,
    pub verdict: String,
    pub score: Option<i32>,
    pub lookups: i64,
    pub last_looked_up_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThreatSummary {
    pub hours: i64,
    pub lookups: i64,
    /// The tenant summarised; null when a platform admin asked for every tenant.
    pub tenant_id: Option<uuid::Uuid>,
    /// Lookups by verdict: malicious, suspicious, clean, unknown.
    #[schema(value_type = Object)]
    pub by_verdict: Map<String, Value>,
    /// The indicators judged malicious or suspicious, worst and most looked up first.
    pub flagged: Vec<FlaggedIndicator>,
    /// Which providers this deployment has keys for.
    #[schema(value_type = Object)]
    pub providers: Map<String, Value>,
}

/// What the tenant looked up in the window: counts by verdict and the flagged indicators.
#[utoipa::path(get, path = "/threat-intel/summary", tag = "threat-intel", security(("bearer" = [])),
    params(SummaryQuery, params::Tenant),
    responses((status = 200, description = "The summary", body = Data<ThreatSummary>), AuthErrors,
        (status = 422, description = "Invalid window", body = ErrorBody)))]
async fn summary(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<SummaryQuery>,
) -> Result<Reply, ApiError> {
    // The platform admin's summary is cross-tenant (seed 000), unless it names a tenant.
    let tenant = match principal.kind {
        PrincipalKind::PlatformAdmin if principal.tenant.is_none() => None,
        _ => Some(principal.tenant()?.0),
    };
    let hours = q.hours.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(ApiError::validation(
            "hours",
            "hours must be between 1 and 720",
        ));
    }
    let since = Utc::now() - chrono::Duration::hours(hours);
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT verdict, count(*) FROM threat_intel_lookups WHERE ($1::uuid IS NULL OR tenant_id = $1) AND looked_up_at > $2 GROUP BY 1",
    )
    .bind(tenant)
    .bind(since)
    .fetch_all(&state.pool)
    .await?;
    let flagged: Vec<FlaggedIndicator> = sqlx::query_as(
        "SELECT indicator, kind, (array_agg(verdict ORDER BY looked_up_at DESC))[1] AS verdict, \
         max(score) AS score, count(*) AS lookups, max(looked_up_at) AS last_looked_up_at \
         FROM threat_intel_lookups WHERE ($1::uuid IS NULL OR tenant_id = $1) AND looked_up_at > $2 \
         AND verdict IN ('malicious', 'suspicious') GROUP BY indicator, kind \
         ORDER BY max(score) DESC NULLS LAST, count(*) DESC LIMIT 20",
    )
    .bind(tenant)
    .bind(since)
    .fetch_all(&state.pool)
    .await?;
    let mut by_verdict = Map::new();
    for v in ["malicious", "suspicious", "clean", "unknown"] {
        by_verdict.insert(v.into(), Value::from(0));
    }
    for (v, n) in &counts {
        by_verdict.insert(v.clone(), Value::from(*n));
    }
    let providers = Provider::ALL
        .iter()
        .map(|p| {
            (
                p.as_str().to_string(),
                serde_json::json!({ "configured": p.key(&state.config).is_some() }),
            )
        })
        .collect();
    Ok(Reply::data(
        StatusCode::OK,
        ThreatSummary {
            tenant_id: tenant,
            hours,
            lookups: counts.iter().map(|(_, n)| n).sum(),
            by_verdict,
            flagged,
            providers,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_names_not_addresses_or_junk() {
        assert_eq!(domain("Example.COM.").ok().as_deref(), Some("example.com"));
        for bad in [
            "",
            "localhost",
            "-a.com",
            "a..com",
            "1.2.3.4",
            "ex ample.com",
            "a_b.com",
        ] {
            assert!(domain(bad).is_err(), "{bad}");
        }
    }
}
