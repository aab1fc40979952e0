//! Threat-intel enrichment (seed 000): an IP or a domain is looked up at AbuseIPDB and Shodan
//! (base URLs configurable), answers are cached (IPs an hour, domains a day, shared by all
//! tenants), provider calls are rate limited per tenant, and each tenant's lookups feed its
//! summary. With no provider key configured the answer says so instead of failing.

pub mod providers;

use crate::error::ApiError;
use aegis_runtime::throttle::Throttle;
use aegis_runtime::Runtime;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use providers::{Provider, ProviderAnswer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use uuid::Uuid;

/// What is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    Ip,
    Domain,
}

impl IndicatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorKind::Ip => "ip",
            IndicatorKind::Domain => "domain",
        }
    }

    /// How long a provider's answer is reused.
    pub fn ttl(self) -> chrono::Duration {
        match self {
            IndicatorKind::Ip => chrono::Duration::hours(1),
            IndicatorKind::Domain => chrono::Duration::hours(24),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Malicious,
    Suspicious,
    Clean,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Malicious => "malicious",
            Verdict::Suspicious => "suspicious",
            Verdict::Clean => "clean",
            Verdict::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    pub indicator: String,
    pub kind: IndicatorKind,
    pub verdict: Verdict,
    /// 0 to 100, from AbuseIPDB's confidence of abuse when it answered.
    pub score: Option<u8>,
    /// Per provider: `status` (`ok`, `not_found`, `not_configured`, `not_supported`, `error`),
    /// its normalized `data`, whether it came from the cache, and when it was fetched.
    #[schema(value_type = Object)]
    pub providers: Map<String, Value>,
    /// Present when no provider could be asked: what to configure.
    pub message: Option<String>,
    pub looked_up_at: DateTime<Utc>,
}

/// In-process state: the per-tenant budget of provider calls and the lookup counter.
pub struct ThreatIntel {
    budget: Throttle,
    counts: Mutex<HashMap<(Uuid, &'static str, &'static str), u64>>,
}

impl ThreatIntel {
    pub fn new(per_minute: usize) -> Self {
        Self {
            budget: Throttle::new(per_minute, Duration::from_secs(60)),
            counts: Mutex::default(),
        }
    }

    fn count(&self, tenant: Uuid, provider: &'static str, result: &'static str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((tenant, provider, result)).or_default() += 1;
        }
    }

    /// `acp_threat_intel_lookup_total` samples: (tenant, provider, result, count).
    pub fn counts(&self) -> Vec<(Uuid, &'static str, &'static str, u64)> {
        self.counts
            .lock()
            .map(|c| c.iter().map(|((t, p, r), n)| (*t, *p, *r, *n)).collect())
            .unwrap_or_default()
    }
}

/// The verdict the providers' answers add up to.
pub fn verdict(answers: &[(Provider, ProviderAnswer)]) -> (Verdict, Option<u8>) {
    let mut score = None;
    let mut verdict = Verdict::Unknown;
    for (_, a) in answers {
        let ProviderAnswer::Found(data) = a else {
            if matches!(a, ProviderAnswer::NotFound) && verdict == Verdict::Unknown {
                verdict = Verdict::Clean;
            }
            continue;
        };
        if let Some(s) = data.get("abuse_confidence_score").and_then(Value::as_u64) {
            let s = s.min(100) as u8;
            score = Some(s);
            let v = match s {
                75.. => Verdict::Malicious,
                25.. => Verdict::Suspicious,
                _ => Verdict::Clean,
            };
            verdict = worse(verdict, v);
        }
        let vulns = data
            .get("vulns")
            .and_then(Value::as_array)
            .is_some_and(|v| !v.is_empty());
        verdict = worse(
            verdict,
            if vulns {
                Verdict::Suspicious
            } else {
                Verdict::Clean
            },
        );
    }
    (verdict, score)
}

fn worse(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v: Verdict| match v {
        Verdict::Unknown => 0,
        Verdict::Clean => 1,
        Verdict::Suspicious => 2,
        Verdict::Malicious => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

async fn cached(
    state: &Runtime,
    provider: Provider,
    kind: IndicatorKind,
    indicator: &str,
) -> Result<Option<(ProviderAnswer, DateTime<Utc>)>, ApiError> {
    let row: Option<(Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT result, fetched_at FROM threat_intel_cache \
         WHERE provider = $1 AND kind = $2 AND indicator = $3 AND fetched_at > $4",
    )
    .bind(provider.as_str())
    .bind(kind.as_str())
    .bind(indicator)
    .bind(Utc::now() - kind.ttl())
    .fetch_optional(&state.pool)
    .await?;
    Ok(row.map(|(v, at)| {
        let answer = if v.is_null() {
            ProviderAnswer::NotFound
        } else {
            ProviderAnswer::Found(v)
        };
        (answer, at)
    }))
}

async fn remember(
    state: &Runtime,
    provider: Provider,
    kind: IndicatorKind,
    indicator: &str,
    answer: &ProviderAnswer,
) -> Result<(), ApiError> {
    let value = match answer {
        ProviderAnswer::Found(v) => v.clone(),
        ProviderAnswer::NotFound => Value::Null,
        _ => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO threat_intel_cache (provider, kind, indicator, result, fetched_at) \
         VALUES ($1, $2, $3, $4, now()) ON CONFLICT (provider, kind, indicator) \
         DO UPDATE SET result = excluded.result, fetched_at = excluded.fetched_at",
    )
    .bind(provider.as_str())
    .bind(kind.as_str())
    .bind(indicator)
    .bind(value)
    .execute(&state.pool)
    .await?;
    Ok(())
}

/// Looks `indicator` up at every provider that knows its kind, from the cache when fresh.
pub async fn lookup(
    state: &Runtime,
    intel: &ThreatIntel,
    tenant: Uuid,
    actor: &str,
    kind: IndicatorKind,
    indicator: &str,
) -> Result<Report, ApiError> {
    let mut providers = Map::new();
    let mut answers = Vec::new();
    let mut asked_any = false;
    for provider in Provider::ALL {
        let configured = provider.key(&state.config).is_some();
        let entry = if !provider.supports(kind) {
            json!({ "status": "not_supported" })
        } else if !configured {
            intel.count(tenant, provider.as_str(), "not_configured");
            json!({ "status": "not_configured", "message": format!("set {} to use {}", provider.key_variable(), provider.as_str()) })
        } else if let Some((answer, at)) = cached(state, *provider, kind, indicator).await? {
            asked_any = true;
            intel.count(tenant, provider.as_str(), "cached");
            let entry = answer.to_json(true, at);
            answers.push((*provider, answer));
            entry
        } else {
            asked_any = true;
            let key = format!("{tenant}");
            if let Err(wait) = intel.budget.reserve(&key, Instant::now()) {
                intel.count(tenant, provider.as_str(), "rate_limited");
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "this tenant may cause {} provider calls a minute; cached answers are free",
                        state.config.threat_intel_per_minute
                    ),
                )
                .with_retry_after(wait.as_secs().max(1)));
            }
            let answer = provider.ask(state, kind, indicator).await;
            intel.count(tenant, provider.as_str(), answer.result_label());
            remember(state, *provider, kind, indicator, &answer).await?;
            let entry = answer.to_json(false, Utc::now());
            answers.push((*provider, answer));
            entry
        };
        providers.insert(provider.as_str().to_string(), entry);
    }
    let (verdict, score) = verdict(&answers);
    let message = (!asked_any).then(|| {
        format!(
            "no threat-intel provider is configured for {} lookups: set {}",
            kind.as_str(),
            Provider::ALL
                .iter()
                .filter(|p| p.supports(kind))
                .map(|p| p.key_variable())
                .collect::<Vec<_>>()
                .join(" or ")
        )
    });
    let looked_up_at = Utc::now();
    sqlx::query(
        "INSERT INTO threat_intel_lookups (tenant_id, id, kind, indicator, verdict, score, looked_up_by, looked_up_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(Uuid::now_v7())
    .bind(kind.as_str())
    .bind(indicator)
    .bind(verdict.as_str())
    .bind(score.map(i32::from))
    .bind(actor)
    .bind(looked_up_at)
    .execute(&state.pool)
    .await?;
    Ok(Report {
        indicator: indicator.to_string(),
        kind,
        verdict,
        score,
        providers,
        message,
        looked_up_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_answer_decides_the_verdict() {
        let abuse = |s: u64| {
            (
                Provider::AbuseIpDb,
                ProviderAnswer::Found(json!({ "abuse_confidence_score": s })),
            )
        };
        assert_eq!(verdict(&[abuse(90)]), (Verdict::Malicious, Some(90)));
        assert_eq!(verdict(&[abuse(30)]), (Verdict::Suspicious, Some(30)));
        assert_eq!(verdict(&[abuse(0)]), (Verdict::Clean, Some(0)));
        let vulnerable = (
            Provider::Shodan,
            ProviderAnswer::Found(json!({ "vulns": ["CVE-2021-44228"] })),
        );
        assert_eq!(verdict(&[abuse(0), vulnerable]).0, Verdict::Suspicious);
        assert_eq!(
            verdict(&[(Provider::Shodan, ProviderAnswer::NotFound)]).0,
            Verdict::Clean
        );
        assert_eq!(verdict(&[]).0, Verdict::Unknown);
        assert_eq!(
            verdict(&[(Provider::Shodan, ProviderAnswer::Failed("down".into()))]).0,
            Verdict::Unknown
        );
    }
}
