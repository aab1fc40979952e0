use aegis_tests::{world::incident, TestApp};
use serde_json::Value;

#[tokio::test]
async fn health_and_readiness_report_each_check() {
    let app = TestApp::spawn().await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    // Seed 001's shape and values.
    let r = app.http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    assert_eq!(
        (&h["status"], &h["agent"], &h["version"], &h["encryption"]),
        (
            &"healthy".into(),
            &"AEGIS".into(),
            &"2.0".into(),
            &"enabled".into()
        ),
        "{h}"
    );
    // The projectors register their checkpoints as they start.
    let mut body = Value::Null;
    for _ in 0..100 {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        body = r.json().await.unwrap();
        if body["checks"]["projector:incidents"]["status"] == "ok" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["nats"]["status"], "ok");
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
    assert_eq!(body["checks"]["projector:incidents"]["status"], "ok");
    // Every supervised background role reports, running.
    for role in [
        "projectors",
        "auto_response",
        "webhook_fanout",
        "identity_cache",
    ] {
        assert_eq!(
            body["checks"][format!("role:{role}")]["status"],
            "ok",
            "{body}"
        );
    }
}

#[tokio::test]
async fn readiness_turns_red_when_nats_is_gone() {
    let mut app = TestApp::spawn().await;
    // Swap in an unrelated server and drop ours: Aegis has lost its NATS for good.
    drop(std::mem::replace(
        &mut app.nats,
        aegis_tests::NatsServer::start(),
    ));
    let mut body = Value::Null;
    for _ in 0..50 {
        let r = app.http.get(app.url("/readyz")).send().await.unwrap();
        let status = r.status();
        body = r.json().await.unwrap();
        if status == 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["nats"]["status"], "fail");
    assert_eq!(body["checks"]["postgres"]["status"], "ok");
}

#[tokio::test]
async fn metrics_expose_open_incidents_lag_and_dead_letters() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (_, pos, _) = app.open_incident(tenant, incident("a", "critical")).await;
    app.admin(reqwest::Method::GET, "/incidents", Some(tenant))
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();
    let text = app.metrics().await;
    assert!(
        text.contains(&format!(
            "acp_incidents_open_total{{tenant_id=\"{tenant}\",severity=\"critical\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains("aegis_projector_lag_events{projection=\"incidents\"}"),
        "{text}"
    );
    assert!(text.contains("aegis_dlq_messages 0"), "{text}");
}

#[tokio::test]
async fn metrics_name_tenants_only_to_the_local_scraper_and_credential_holders() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    app.open_incident(tenant, incident("Exfiltration", "high"))
        .await;
    let anonymous = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let text = anonymous.text().await.unwrap();
    assert!(!text.contains(&tenant.to_string()), "{text}");

    // A tenant's own ADMIN does not see other tenants either.
    let admin = app.user_with_role(tenant, Some("ADMIN")).await.token;
    let r = app
        .bearer(reqwest::Method::GET, "/metrics", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The loopback listener serves the scraper without credentials.
    let scraped = app
        .http
        .get(app.scrape_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scraped.contains("aegis_stream_head_position"), "{scraped}");
    assert!(app.metrics().await.contains("aegis_stream_head_position"));
}
