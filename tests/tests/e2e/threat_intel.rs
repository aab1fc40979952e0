//! Threat intel (seed 000) against local stand-ins for AbuseIPDB and Shodan that check the
//! vendors' documented wire format: paths, query parameters and the key header.

use aegis_runtime::config::Secret;
use aegis_tests::world::serve;
use aegis_tests::TestApp;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Json;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const MALICIOUS: &str = "93.184.216.34";
const QUIET: &str = "9.9.9.9";
const UNKNOWN_TO_SHODAN: &str = "1.1.1.1";

type Calls = Arc<Mutex<Vec<String>>>;

/// AbuseIPDB APIv2 `GET /api/v2/check`, refusing anything but the documented request.
async fn abuseipdb() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().route(
        "/api/v2/check",
        get(move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| {
            let seen = seen.clone();
            async move {
                let ok = headers.get("key").and_then(|v| v.to_str().ok()) == Some("abuse-key")
                    && headers.get("accept").and_then(|v| v.to_str().ok())
                        == Some("application/json")
                    && q.get("maxAgeInDays").map(String::as_str) == Some("90");
                if !ok {
                    return (StatusCode::UNAUTHORIZED, Json(json!({ "errors": [{ "detail": "Authentication failed.", "status": 401 }] })));
                }
                let ip = q.get("ipAddress").cloned().unwrap_or_default();
                seen.lock().unwrap().push(ip.clone());
                let score = if ip == MALICIOUS { 92 } else { 0 };
                (
                    StatusCode::OK,
                    Json(json!({ "data": {
                        "ipAddress": ip, "isPublic": true, "ipVersion": 4, "isWhitelisted": false,
                        "abuseConfidenceScore": score, "countryCode": "US", "usageType": "Data Center",
                        "isp": "Example Hosting", "totalReports": 1039, "lastReportedAt": "2026-11-22T10:00:00+00:00"
                    }})),
                )
            }
        }),
    );
    (format!("{}/api/v2", serve(app).await), calls)
}

/// Shodan `GET /shodan/host/{ip}?key=` and `GET /dns/domain/{domain}?key=`.
async fn shodan() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let (host_seen, dns_seen) = (calls.clone(), calls.clone());
    let keyed =
        |q: &HashMap<String, String>| q.get("key").map(String::as_str) == Some("shodan-key");
    let app = axum::Router::new()
        .route(
            "/shodan/host/{ip}",
            get(move |Path(ip): Path<String>, Query(q): Query<HashMap<String, String>>| {
                let seen = host_seen.clone();
                async move {
                    if !keyed(&q) {
                        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "Invalid API key" })));
                    }
                    seen.lock().unwrap().push(format!("host {ip}"));
                    if ip == UNKNOWN_TO_SHODAN {
                        return (StatusCode::NOT_FOUND, Json(json!({ "error": "No information available for that IP." })));
                    }
                    (StatusCode::OK, Json(json!({
                        "ip_str": ip, "ports": [22, 443], "hostnames": ["edge.example.com"],
                        "org": "Example Hosting", "os": null, "country_code": "US",
                        "vulns": { "CVE-2021-44228": { "cvss": 10.0 } },
                        "last_update": "2026-11-20T00:00:00.000000"
                    })))
                }
            }),
        )
        .route(
            "/dns/domain/{domain}",
            get(move |Path(domain): Path<String>, Query(q): Query<HashMap<String, String>>| {
                let seen = dns_seen.clone();
                async move {
                    if !keyed(&q) {
                        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "Invalid API key" })));
                    }
                    seen.lock().unwrap().push(format!("domain {domain}"));
                    (StatusCode::OK, Json(json!({
                        "domain": domain, "tags": ["ipv6"], "subdomains": ["www", "mail"],
                        "data": [{ "subdomain": "www", "type": "A", "value": "93.184.216.34" },
                                 { "subdomain": "mail", "type": "MX", "value": "mx.example.com" }]
                    })))
                }
            }),
        );
    (serve(app).await, calls)
}

#[tokio::test]
async fn lookups_speak_each_vendors_format_are_cached_and_summarized_per_tenant() {
    let (abuse_url, abuse_calls) = abuseipdb().await;
    let (shodan_url, shodan_calls) = shodan().await;
    let app = TestApp::spawn_with_config(|c| {
        c.egress_allow = vec!["127.0.0.1".into()];
        c.abuseipdb_api_key = Some(Secret::new("abuse-key"));
        c.abuseipdb_url = abuse_url;
        c.shodan_api_key = Some(Secret::new("shodan-key"));
        c.shodan_url = shodan_url;
    })
    .await;
    let tenant = app.create_tenant("Hunters").await;
    let other = app.create_tenant("Quiet").await;
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let post = |path: &'static str, body: Value| {
        app.bearer(Method::POST, path, &auditor.token)
            .json(&body)
            .send()
    };

    let r = post("/threat-intel/ip", json!({ "ip": MALICIOUS }))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    let d = &b["data"];
    assert_eq!(
        (d["verdict"].as_str(), d["score"].as_u64()),
        (Some("malicious"), Some(92)),
        "{b}"
    );
    assert_eq!(d["providers"]["abuseipdb"]["data"]["total_reports"], 1039);
    assert_eq!(d["providers"]["abuseipdb"]["cached"], false);
    assert_eq!(
        d["providers"]["shodan"]["data"]["vulns"],
        json!(["CVE-2021-44228"])
    );
    assert_eq!(d["providers"]["shodan"]["data"]["ports"], json!([22, 443]));
    assert!(!b.to_string().contains("abuse-key") && !b.to_string().contains("shodan-key"));

    // Again within the hour: both answers from the cache, no provider called.
    let b: Value = post("/threat-intel/ip", json!({ "ip": MALICIOUS }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["data"]["providers"]["abuseipdb"]["cached"], true);
    assert_eq!(b["data"]["providers"]["shodan"]["cached"], true);
    assert_eq!(abuse_calls.lock().unwrap().len(), 1);
    assert_eq!(shodan_calls.lock().unwrap().len(), 1);

    // Shodan's 404 is "nothing known", not an error.
    let b: Value = post("/threat-intel/ip", json!({ "ip": UNKNOWN_TO_SHODAN }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["data"]["providers"]["shodan"]["status"], "not_found");
    assert_eq!(b["data"]["verdict"], "clean");

    // Domains go to Shodan's DNS endpoint only.
    let b: Value = post("/threat-intel/domain", json!({ "domain": "Example.COM" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["data"]["indicator"], "example.com");
    assert_eq!(
        b["data"]["providers"]["abuseipdb"]["status"],
        "not_supported"
    );
    assert_eq!(b["data"]["providers"]["shodan"]["data"]["subdomains"], 2);
    assert!(shodan_calls
        .lock()
        .unwrap()
        .contains(&"domain example.com".to_string()));

    // Bad input is refused before any provider is asked.
    for (path, body, field) in [
        ("/threat-intel/ip", json!({ "ip": "10.0.0.1" }), "ip"),
        ("/threat-intel/ip", json!({ "ip": "not-an-ip" }), "ip"),
        (
            "/threat-intel/domain",
            json!({ "domain": "1.2.3.4" }),
            "domain",
        ),
        (
            "/threat-intel/domain",
            json!({ "domain": "no spaces.com" }),
            "domain",
        ),
    ] {
        let r = post(path, body).await.unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(r.json::<Value>().await.unwrap()["field"], field);
    }

    let (s, summary) = app
        .call(tenant, Method::GET, "/threat-intel/summary", None)
        .await;
    assert_eq!(s, 200, "{summary}");
    let sd = &summary["data"];
    assert_eq!(sd["lookups"], 4, "{summary}");
    assert_eq!(sd["by_verdict"]["malicious"], 2);
    assert_eq!(sd["flagged"][0]["indicator"], MALICIOUS);
    assert_eq!(sd["flagged"][0]["lookups"], 2);
    assert_eq!(sd["providers"]["shodan"]["configured"], true);
    let (_, theirs) = app
        .call(other, Method::GET, "/threat-intel/summary", None)
        .await;
    assert_eq!(
        theirs["data"]["lookups"], 0,
        "tenants see only their own lookups"
    );
    // The platform admin's summary, naming no tenant, covers every tenant (seed 000).
    let all: Value = app
        .admin(Method::GET, "/threat-intel/summary", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&all["data"]["lookups"], &all["data"]["tenant_id"]),
        (&Value::from(4), &Value::Null),
        "{all}"
    );

    let metrics = app.metrics().await;
    assert!(metrics.contains(&format!(
        "acp_threat_intel_lookup_total{{tenant_id=\"{tenant}\",provider=\"abuseipdb\",result=\"cached\"}} 1"
    )), "{metrics}");
}

#[tokio::test]
async fn without_provider_keys_the_answer_says_what_to_configure() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Unequipped").await;
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/threat-intel/ip",
            Some(json!({ "ip": MALICIOUS })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["verdict"], "unknown");
    assert_eq!(
        b["data"]["providers"]["abuseipdb"]["status"],
        "not_configured"
    );
    let message = b["data"]["message"].as_str().unwrap();
    assert!(
        message.contains("AEGIS_ABUSEIPDB_API_KEY") && message.contains("AEGIS_SHODAN_API_KEY"),
        "{message}"
    );
}

#[tokio::test]
async fn provider_calls_are_rate_limited_per_tenant_and_cached_answers_are_free() {
    let (abuse_url, abuse_calls) = abuseipdb().await;
    let app = TestApp::spawn_with_config(|c| {
        c.egress_allow = vec!["127.0.0.1".into()];
        c.abuseipdb_api_key = Some(Secret::new("abuse-key"));
        c.abuseipdb_url = abuse_url;
        c.threat_intel_per_minute = 2;
    })
    .await;
    let tenant = app.create_tenant("Busy").await;
    let other = app.create_tenant("Patient").await;
    for ip in [MALICIOUS, QUIET] {
        let (s, _) = app
            .call(
                tenant,
                Method::POST,
                "/threat-intel/ip",
                Some(json!({ "ip": ip })),
            )
            .await;
        assert_eq!(s, 200);
    }
    let r = app
        .admin(Method::POST, "/threat-intel/ip", Some(tenant))
        .json(&json!({ "ip": UNKNOWN_TO_SHODAN }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(abuse_calls.lock().unwrap().len(), 2);
    // A cached answer costs nothing, and another tenant has its own budget.
    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            "/threat-intel/ip",
            Some(json!({ "ip": QUIET })),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .call(
            other,
            Method::POST,
            "/threat-intel/ip",
            Some(json!({ "ip": UNKNOWN_TO_SHODAN })),
        )
        .await;
    assert_eq!(s, 200);
}
