//! Scheduled reports (seed 000): what each run contains, JSON and CSV, download, runs, the
//! cron schedule in its time zone, and delivery to a signed generic webhook.

use aegis_tests::world::{eventually, incident, serve};
use aegis_tests::TestApp;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

const SECRET: &str = "report-signing-secret-0123";

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A generic receiver that keeps only correctly signed requests.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/reports",
        axum::routing::post(move |h: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let ts = h
                    .get("x-aegis-timestamp")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let sig = h
                    .get("x-aegis-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(format!("{ts}.").as_bytes());
                mac.update(&body);
                let want = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
                if sig != want {
                    return StatusCode::UNAUTHORIZED;
                }
                g.lock().unwrap().push((h, body));
                StatusCode::OK
            }
        }),
    );
    (format!("{}/reports", serve(app).await), got)
}

async fn spawn() -> TestApp {
    TestApp::spawn_with_config(|c| {
        c.egress_allow = vec!["127.0.0.1".into()];
        c.reports_tick_ms = 200;
        c.webhook_backoff_ms = 20;
    })
    .await
}

async fn post(app: &TestApp, tenant: Uuid, path: &str, body: Value) -> (u16, Value) {
    app.call(tenant, Method::POST, path, Some(body)).await
}

#[tokio::test]
async fn a_run_summarises_the_window_as_json_or_csv_and_stays_in_its_tenant() {
    let app = spawn().await;
    let tenant = app.create_tenant("Reporting").await;
    let other = app.create_tenant("Elsewhere").await;
    app.open_incident(tenant, incident("token leak", "high"))
        .await;
    app.open_incident(tenant, incident("odd login, \"admin\"", "low"))
        .await;
    app.open_incident(other, incident("not theirs", "critical"))
        .await;

    let (s, slack) = post(
        &app,
        tenant,
        "/webhooks/config",
        json!({"name": "chat", "kind": "slack", "url": "http://127.0.0.1:9/x"}),
    )
    .await;
    assert_eq!(s, 201, "{slack}");
    for (body, field) in [
        (
            json!({"name": "r", "kind": "incident_summary", "cron": "0 9 * *"}),
            "cron",
        ),
        (
            json!({"name": "r", "kind": "incident_summary", "cron": "0 25 * * *"}),
            "cron",
        ),
        (
            json!({"name": "r", "kind": "incident_summary", "cron": "0 9 * * 1", "timezone": "Mars/Base"}),
            "timezone",
        ),
        (
            json!({"name": "r", "kind": "incident_summary", "cron": "0 9 * * 1", "window_hours": 0}),
            "window_hours",
        ),
        (
            json!({"name": "r", "kind": "incident_summary", "cron": "0 9 * * 1", "webhook_id": slack["data"]["id"]}),
            "webhook_id",
        ),
    ] {
        let (s, b) = post(&app, tenant, "/reports/scheduled", body.clone()).await;
        assert_eq!(s, 422, "{body}: {b}");
        assert_eq!(b["field"], field, "{body}: {b}");
    }

    let (s, report) = post(
        &app,
        tenant,
        "/reports/scheduled",
        json!({"name": "weekly incidents", "kind": "incident_summary", "cron": "0 9 * * 1",
               "timezone": "Europe/Berlin", "window_hours": 168}),
    )
    .await;
    assert_eq!(s, 201, "{report}");
    let report = &report["data"];
    let next: chrono::DateTime<chrono::Utc> =
        report["next_run_at"].as_str().unwrap().parse().unwrap();
    let berlin = next.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap());
    assert_eq!(
        berlin.format("%a %H:%M").to_string(),
        "Mon 09:00",
        "{report}"
    );
    let id = report["id"].as_str().unwrap();

    let (s, run) = post(
        &app,
        tenant,
        &format!("/reports/scheduled/{id}/run"),
        json!({}),
    )
    .await;
    assert_eq!(s, 201, "{run}");
    assert_eq!(run["data"]["trigger"], "manual");
    assert_eq!(run["data"]["status"], "succeeded");
    assert_eq!(run["data"]["rows"], 2);
    assert_eq!(run["data"]["delivery"], "download");
    let run_id = run["data"]["id"].as_str().unwrap().to_string();
    let download = format!("/reports/scheduled/{id}/runs/{run_id}/download");
    let r = app
        .admin(Method::GET, &download, Some(tenant))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(
        doc["summary"],
        json!({"rows": 2, "by_severity": {"high": 1, "low": 1}})
    );
    assert!(!doc.to_string().contains("not theirs"));

    let r = app
        .admin(
            Method::PUT,
            &format!("/reports/scheduled/{id}"),
            Some(tenant),
        )
        .json(&json!({"format": "csv"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, run) = post(
        &app,
        tenant,
        &format!("/reports/scheduled/{id}/run"),
        json!({}),
    )
    .await;
    let csv_path = format!(
        "/reports/scheduled/{id}/runs/{}/download",
        run["data"]["id"].as_str().unwrap()
    );
    let r = app
        .admin(Method::GET, &csv_path, Some(tenant))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].split(',').any(|c| c == "severity"), "{csv}");
    assert!(csv.contains("\"odd login, \"\"admin\"\"\""), "{csv}");

    let (_, runs) = app
        .caught_up(tenant, &format!("/reports/scheduled/{id}/runs"))
        .await;
    assert_eq!(runs["total"], 2);

    // Another tenant: no report, no runs, no output.
    for path in [
        format!("/reports/scheduled/{id}"),
        format!("/reports/scheduled/{id}/runs"),
        download.clone(),
    ] {
        let (s, _) = app.call(other, Method::GET, &path, None).await;
        assert_eq!(s, 404, "{path}");
    }
    let (_, theirs) = app.caught_up(other, "/reports/scheduled").await;
    assert_eq!(theirs["total"], 0);
}

/// A report due every minute runs on the minute, once, and its webhook receives it signed.
#[tokio::test]
async fn the_schedule_runs_each_slot_once_and_delivers_it_signed() {
    let (url, got) = receiver().await;
    let app = spawn().await;
    let tenant = app.create_tenant("Scheduled").await;
    app.open_incident(tenant, incident("in the window", "critical"))
        .await;
    let (s, hook) = post(
        &app,
        tenant,
        "/webhooks/config",
        json!({"name": "reports", "kind": "generic", "url": url, "signing_secret": SECRET,
               "topics": ["incident.resolved"]}),
    )
    .await;
    assert_eq!(s, 201, "{hook}");
    let (s, report) = post(
        &app,
        tenant,
        "/reports/scheduled",
        json!({"name": "minutely", "kind": "audit_digest", "cron": "* * * * *",
               "webhook_id": hook["data"]["id"]}),
    )
    .await;
    assert_eq!(s, 201, "{report}");
    let id = report["data"]["id"].as_str().unwrap();
    // A second instance on the same log and database: each slot still runs, and is
    // delivered, once.
    let second = aegis_command_api::app::Application::build(
        app.config.clone(),
        aegis_command_api::app::Roles::ALL,
    )
    .await
    .unwrap();

    let delivered = eventually(Duration::from_secs(75), || async {
        !got.lock().unwrap().is_empty()
    })
    .await;
    assert!(delivered, "the first slot ran and was delivered");
    // Both instances have ticked many times since the slot came due.
    tokio::time::sleep(Duration::from_secs(2)).await;
    second.stop().await;
    let (headers, body) = got.lock().unwrap()[0].clone();
    assert_eq!(headers["x-aegis-topic"], "report");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["report"]["kind"], "audit_digest");
    assert!(
        doc["summary"]["by_event_type"]["incident.opened.v1"].as_u64() >= Some(1),
        "{doc}"
    );

    let (_, runs) = app
        .caught_up(tenant, &format!("/reports/scheduled/{id}/runs"))
        .await;
    let scheduled: Vec<&Value> = runs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trigger"] == "schedule")
        .collect();
    assert!(!scheduled.is_empty(), "{runs}");
    let slot: chrono::DateTime<chrono::Utc> =
        scheduled[0]["slot"].as_str().unwrap().parse().unwrap();
    assert_eq!(slot.timestamp() % 60, 0, "a slot is on the minute");
    assert!(
        scheduled[0]["delivery"]
            .as_str()
            .unwrap()
            .contains("delivered"),
        "{runs}"
    );
    let slots: std::collections::HashSet<&str> = scheduled
        .iter()
        .map(|r| r["slot"].as_str().unwrap())
        .collect();
    assert_eq!(slots.len(), scheduled.len(), "each slot ran once: {runs}");
    assert_eq!(
        got.lock().unwrap().len(),
        scheduled.len(),
        "each slot was delivered once, by one of the two instances"
    );
    assert_eq!(
        headers["x-aegis-event-id"].to_str().unwrap(),
        scheduled.last().unwrap()["id"].as_str().unwrap(),
        "the delivery's id is the run's"
    );
}

#[tokio::test]
async fn manual_runs_are_rationed_per_tenant() {
    let app = spawn().await;
    let tenant = app.create_tenant("Eager").await;
    let (s, report) = post(
        &app,
        tenant,
        "/reports/scheduled",
        json!({"name": "on demand", "kind": "incident_summary", "cron": "0 9 * * 1", "window_hours": 2160}),
    )
    .await;
    assert_eq!(s, 201, "{report}");
    let path = format!(
        "/reports/scheduled/{}/run",
        report["data"]["id"].as_str().unwrap()
    );
    for _ in 0..10 {
        let (s, b) = post(&app, tenant, &path, json!({})).await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = post(&app, tenant, &path, json!({})).await;
    assert_eq!(s, 429, "{b}");
    assert_eq!(b["error"], "rate_limited");
}

/// Outputs are kept for download, the newest 50 of each report: a report that runs every
/// minute does not grow the database for ever.
#[tokio::test]
async fn a_report_keeps_its_newest_outputs_only() {
    use aegis_identity::TenantId;
    use aegis_integrations::reports::{ReportAggregate, Trigger};
    use aegis_integrations_services::reports::{produce, KEPT_OUTPUTS};
    let app = spawn().await;
    let tenant = app.create_tenant("Prolific").await;
    let (s, report) = post(
        &app,
        tenant,
        "/reports/scheduled",
        json!({"name": "often", "kind": "incident_summary", "cron": "* * * * *"}),
    )
    .await;
    assert_eq!(s, 201, "{report}");
    let id = report["data"]["id"].as_str().unwrap().to_string();
    let (r, _, _) = aegis_command_api::http::current::<ReportAggregate>(
        app.state(),
        TenantId(tenant),
        id.clone(),
    )
    .await
    .unwrap();
    let definition = r.unwrap().definition;
    for _ in 0..KEPT_OUTPUTS + 3 {
        let run = produce(app.state(), tenant, &id, &definition, Trigger::Manual, None).await;
        assert!(run.succeeded, "{}", run.detail);
    }
    let pool = sqlx::PgPool::connect(&app.db.url()).await.unwrap();
    let (kept,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM report_outputs WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kept, KEPT_OUTPUTS);
}
