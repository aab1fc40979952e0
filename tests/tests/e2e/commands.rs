use aegis_tests::world::{incident, INTERNAL};
use aegis_tests::TestApp;
use async_nats::HeaderMap;
use serde_json::{json, Value};

#[tokio::test]
async fn a_nats_request_runs_the_same_command_path_as_http() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let client = async_nats::connect(app.nats.url()).await.unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("X-Internal-Secret", INTERNAL);
    headers.insert("X-Tenant-ID", tenant.to_string().as_str());
    let reply = client
        .request_with_headers(
            "aegis.cmd.incidents.open",
            headers.clone(),
            incident("via nats", "high").to_string().into(),
        )
        .await
        .unwrap();
    let h = reply.headers.clone().unwrap();
    assert_eq!(h.get("Aegis-Status").unwrap().as_str(), "201");
    let pos: u64 = h.get("aegis-position").unwrap().as_str().parse().unwrap();
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    let id = body["data"]["id"].as_str().unwrap().to_string();

    let r = app
        .admin(
            reqwest::Method::GET,
            &format!("/incidents/{id}"),
            Some(tenant),
        )
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["data"]["title"],
        "via nats"
    );

    // Same validation as HTTP: bad input is refused with the same body.
    let bad = client
        .request_with_headers(
            "aegis.cmd.incidents.open",
            headers.clone(),
            json!({"title": "x", "severity": "nope"}).to_string().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        bad.headers.unwrap().get("Aegis-Status").unwrap().as_str(),
        "422"
    );
    // Same authentication: no secret, no command.
    let mut anonymous = HeaderMap::new();
    anonymous.insert("X-Tenant-ID", tenant.to_string().as_str());
    let denied = client
        .request_with_headers(
            "aegis.cmd.incidents.update.".to_string() + &id,
            anonymous,
            json!({"status": "resolved"}).to_string().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        denied
            .headers
            .unwrap()
            .get("Aegis-Status")
            .unwrap()
            .as_str(),
        "401"
    );
    let updated = client
        .request_with_headers(
            format!("aegis.cmd.incidents.update.{id}"),
            headers,
            json!({"status": "resolved"}).to_string().into(),
        )
        .await
        .unwrap();
    assert_eq!(
        updated
            .headers
            .unwrap()
            .get("Aegis-Status")
            .unwrap()
            .as_str(),
        "200"
    );
}

#[tokio::test]
async fn an_internal_caller_quarantines_an_agent_over_nats() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/agents", Some(tenant))
        .json(&json!({ "name": "edge-1" }))
        .send()
        .await
        .unwrap();
    let minted: Value = r.json().await.unwrap();
    let id = minted["data"]["id"].as_str().unwrap().to_string();
    let secret = minted["data"]["agent_secret"].as_str().unwrap().to_string();
    let client = async_nats::connect(app.nats.url()).await.unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("X-Internal-Secret", INTERNAL);
    headers.insert("X-Tenant-ID", tenant.to_string().as_str());
    let reply = client
        .request_with_headers(
            format!("aegis.cmd.agents.quarantine.{id}"),
            headers,
            json!({ "reason": "auto-response: prompt injection" })
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    assert_eq!(
        reply.headers.unwrap().get("Aegis-Status").unwrap().as_str(),
        "200"
    );
    let body: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["data"]["status"], "quarantined");
    let r = app
        .http
        .post(app.url(&format!("/api/v1/agents/{id}/heartbeat")))
        .header("X-Agent-Secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the quarantined agent is refused at once");
}
