//! The providers' wire formats. AbuseIPDB APIv2: `GET <base>/check?ipAddress=<ip>&
//! maxAgeInDays=90` with headers `Key: <key>` and `Accept: application/json`, answering
//! `{"data": {"abuseConfidenceScore", "totalReports", ...}}`. Shodan: `GET
//! <base>/shodan/host/<ip>?key=<key>` and `GET <base>/dns/domain/<domain>?key=<key>`, 404 when
//! it knows nothing. Answers are normalized to snake_case fields before they are cached.
//! Every call goes through the egress guard; no URL (Shodan's carries the key) is logged.

use super::IndicatorKind;
use aegis_runtime::config::Config;
use aegis_runtime::egress::{self, SystemResolver};
use aegis_runtime::Runtime;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    AbuseIpDb,
    Shodan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProviderAnswer {
    Found(Value),
    NotFound,
    Failed(String),
}

impl ProviderAnswer {
    pub fn result_label(&self) -> &'static str {
        match self {
            ProviderAnswer::Found(_) => "ok",
            ProviderAnswer::NotFound => "not_found",
            ProviderAnswer::Failed(_) => "error",
        }
    }

    pub fn to_json(&self, cached: bool, fetched_at: DateTime<Utc>) -> Value {
        match self {
            ProviderAnswer::Found(data) => {
                json!({ "status": "ok", "data": data, "cached": cached, "fetched_at": fetched_at })
            }
            ProviderAnswer::NotFound => {
                json!({ "status": "not_found", "cached": cached, "fetched_at": fetched_at })
            }
            ProviderAnswer::Failed(why) => json!({ "status": "error", "message": why }),
        }
    }
}

impl Provider {
    pub const ALL: &'static [Provider] = &[Provider::AbuseIpDb, Provider::Shodan];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::AbuseIpDb => "abuseipdb",
            Provider::Shodan => "shodan",
        }
    }

    pub fn key_variable(self) -> &'static str {
        match self {
            Provider::AbuseIpDb => "AEGIS_ABUSEIPDB_API_KEY",
            Provider::Shodan => "AEGIS_SHODAN_API_KEY",
        }
    }

    pub fn key(self, config: &Config) -> Option<&str> {
        match self {
            Provider::AbuseIpDb => config.abuseipdb_api_key.as_ref(),
            Provider::Shodan => config.shodan_api_key.as_ref(),
        }
        .map(|s| s.expose())
    }

    pub fn supports(self, kind: IndicatorKind) -> bool {
        !(self == Provider::AbuseIpDb && kind == IndicatorKind::Domain)
    }

    pub async fn ask(
        self,
        state: &Runtime,
        kind: IndicatorKind,
        indicator: &str,
    ) -> ProviderAnswer {
        let Some(key) = self.key(&state.config) else {
            return ProviderAnswer::Failed("not configured".into());
        };
        let base = match self {
            Provider::AbuseIpDb => &state.config.abuseipdb_url,
            Provider::Shodan => &state.config.shodan_url,
        }
        .trim_end_matches('/');
        let client = match egress::http_client(
            &SystemResolver,
            state.config.egress(),
            base,
            TIMEOUT,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return ProviderAnswer::Failed(e.to_string()),
        };
        let request = match (self, kind) {
            (Provider::AbuseIpDb, _) => client
                .get(format!("{base}/check"))
                .query(&[("ipAddress", indicator), ("maxAgeInDays", "90")])
                .header("Key", key)
                .header("Accept", "application/json"),
            (Provider::Shodan, IndicatorKind::Ip) => client
                .get(format!("{base}/shodan/host/{indicator}"))
                .query(&[("key", key)]),
            (Provider::Shodan, IndicatorKind::Domain) => client
                .get(format!("{base}/dns/domain/{indicator}"))
                .query(&[("key", key)]),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return ProviderAnswer::Failed(e.without_url().to_string()),
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return ProviderAnswer::NotFound;
        }
        if !status.is_success() {
            return ProviderAnswer::Failed(format!("{} answered {status}", self.as_str()));
        }
        let body: Value = match aegis_runtime::egress::read_json(response).await {
            Ok(b) => b,
            Err(e) => return ProviderAnswer::Failed(e.to_string()),
        };
        ProviderAnswer::Found(self.normalize(kind, &body))
    }

    /// The fields worth keeping, in snake_case.
    pub fn normalize(self, kind: IndicatorKind, body: &Value) -> Value {
        let pick = |from: &Value, fields: &[(&str, &str)]| {
            let mut out = serde_json::Map::new();
            for (theirs, ours) in fields {
                if let Some(v) = from.get(*theirs).filter(|v| !v.is_null()) {
                    out.insert(ours.to_string(), v.clone());
                }
            }
            Value::Object(out)
        };
        match (self, kind) {
            (Provider::AbuseIpDb, _) => pick(
                &body["data"],
                &[
                    ("abuseConfidenceScore", "abuse_confidence_score"),
                    ("totalReports", "total_reports"),
                    ("countryCode", "country_code"),
                    ("isp", "isp"),
                    ("usageType", "usage_type"),
                    ("isWhitelisted", "is_whitelisted"),
                    ("lastReportedAt", "last_reported_at"),
                ],
            ),
            (Provider::Shodan, IndicatorKind::Ip) => {
                let mut out = pick(
                    body,
                    &[
                        ("ports", "ports"),
                        ("hostnames", "hostnames"),
                        ("org", "org"),
                        ("os", "os"),
                        ("country_code", "country_code"),
                        ("last_update", "last_update"),
                    ],
                );
                // Shodan lists vulnerabilities as an array or as an object keyed by CVE.
                let vulns: Vec<Value> = match &body["vulns"] {
                    Value::Array(a) => a.clone(),
                    Value::Object(o) => o.keys().map(|k| Value::String(k.clone())).collect(),
                    _ => vec![],
                };
                out["vulns"] = Value::Array(vulns);
                out
            }
            (Provider::Shodan, IndicatorKind::Domain) => json!({
                "subdomains": body["subdomains"].as_array().map(Vec::len).unwrap_or(0),
                "records": body["data"].as_array().map(Vec::len).unwrap_or(0),
                "tags": body["tags"].clone(),
            }),
        }
    }
}
