//! The seeds' own example requests, sent exactly as the documents print them (only the host,
//! the token and the tenant id are the environment's), answered with the documented status
//! and fields (issue 17). A client written against a document works unchanged.

use aegis_tests::world::BOOTSTRAP;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

/// Sends a printed request: its method, path and raw body text, with the document's headers.
async fn printed(
    app: &TestApp,
    token: &str,
    tenant: Uuid,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut r = app
        .http
        .request(method, app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .header("X-Tenant-ID", tenant.to_string());
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn seed_000_examples_work_as_printed() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Seed 000").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;

    // "Create an API key": the document's own scopes.
    let (s, b) = printed(
        &app,
        &admin.token,
        tenant,
        Method::POST,
        "/api-keys",
        Some(r#"{"name":"ci-runner","scopes":["execute","read:audit"]}"#),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let key = b["data"]["key"].as_str().expect("the key, once");
    assert!(key.starts_with("acp_"), "{b}");
    assert!(b["data"]["id"].is_string(), "{b}");
    // What the scopes grant: the audit log, and acting on incidents; not administration.
    let (s, b) = printed(&app, key, tenant, Method::GET, "/api/v1/audit-events", None).await;
    assert_eq!(s, 200, "read:audit reads the audit log: {b}");
    let (s, b) = printed(&app, key, tenant, Method::GET, "/incidents", None).await;
    assert_eq!(s, 200, "execute reads incidents: {b}");
    let (s, _) = printed(&app, key, tenant, Method::GET, "/api-keys", None).await;
    assert_eq!(s, 403, "neither scope administers keys");

    // "Create an AR rule that quarantines on prompt-injection finding".
    app.set_plan(tenant, serde_json::json!({ "addons": ["auto_response"] }))
        .await;
    let (s, b) = printed(
        &app,
        &admin.token,
        tenant,
        Method::POST,
        "/auto-response/rules",
        Some(
            r#"{
    "name":"quarantine_on_prompt_injection",
    "match":{"finding":"prompt_injection_detected"},
    "actions":[{"type":"quarantine_agent","target":"{event.agent_id}"}],
    "mode":"active",
    "approval_required":false
  }"#,
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["data"]["name"], "quarantine_on_prompt_injection", "{b}");
    assert_eq!(b["data"]["mode"], "active", "{b}");

    // "Push a test event to Splunk": no body; without a Splunk connection the answer says so
    // (never a complaint about the missing body).
    let (s, b) = printed(
        &app,
        &admin.token,
        tenant,
        Method::POST,
        "/siem/test/splunk",
        None,
    )
    .await;
    assert!(s != 415 && s != 400, "{s} {b}");
}

#[tokio::test]
async fn seed_001_examples_work_as_printed() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Seed 001").await;
    app.set_plan(tenant, serde_json::json!({ "addons": ["vault"] }))
        .await;
    let t = BOOTSTRAP;

    // "Health Check".
    let (s, b) = printed(&app, t, tenant, Method::GET, "/health", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&b["status"], &b["agent"]),
        (&"healthy".into(), &"AEGIS".into()),
        "{b}"
    );
    for field in [
        "version",
        "credentials_count",
        "healthy_count",
        "expiring_count",
        "expired_count",
        "encryption",
    ] {
        assert!(b.get(field).is_some(), "/health has `{field}`: {b}");
    }

    // "Create Credential", exactly as printed.
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::POST,
        "/credentials",
        Some(
            r#"{
  "name": "anthropic-api-key",
  "credential_type": "api_key",
  "provider": "api",
  "description": "Anthropic API key for Claude",
  "value": "sk-ant-...",
  "expires_at": "2026-12-31T00:00:00Z",
  "rotation_enabled": true,
  "rotation_interval_hours": 720,
  "rotation_strategy": "scheduled",
  "alert_threshold_hours": 168,
  "tags": ["llm", "production"],
  "metadata": {
    "environment": "production"
  }
}"#,
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (&b["name"], &b["status"], &b["encrypted"]),
        (&"anthropic-api-key".into(), &"active".into(), &true.into()),
        "{b}"
    );
    assert!(b["id"].is_string() && b["created_at"].is_string(), "{b}");

    // "List Credentials" and "Get Credential Details": the write is there at once.
    let (s, b) = printed(&app, t, tenant, Method::GET, "/credentials", None).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["credentials"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["name"] == "anthropic-api-key")),
        "{b}"
    );
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::GET,
        "/credentials/anthropic-api-key",
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["name"], "anthropic-api-key", "{b}");

    // "Update Credential".
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::PATCH,
        "/credentials/anthropic-api-key",
        Some(
            r#"{
  "description": "Updated description",
  "expires_at": "2027-06-01T00:00:00Z",
  "rotation_enabled": true,
  "rotation_interval_hours": 360,
  "tags": ["llm", "production", "critical"]
}"#,
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "active", "{b}");
    assert!(
        b["updated_fields"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "tags")),
        "{b}"
    );

    // "Rotate Credential", then "Rollback Credential" to the version it replaced.
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::POST,
        "/credentials/anthropic-api-key/rotate",
        Some(
            r#"{
  "trigger": "manual",
  "reason": "Security audit requirement"
}"#,
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (&b["status"], &b["previous_version"], &b["new_version"]),
        (&"rotated".into(), &1.into(), &2.into()),
        "{b}"
    );
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::POST,
        "/credentials/anthropic-api-key/rollback",
        Some(
            r#"{
  "version": 1
}"#,
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (&b["status"], &b["from_version"], &b["to_version"]),
        (&"rolled_back".into(), &2.into(), &1.into()),
        "{b}"
    );

    // The read-only examples: each answers the documented status and top-level fields.
    for (method, path, fields) in [
        (
            Method::POST,
            "/credentials/anthropic-api-key/test",
            &[
                "status",
                "credential",
                "response_time_ms",
                "details",
                "tested_at",
            ][..],
        ),
        (
            Method::GET,
            "/health/dashboard",
            &["summary", "credentials", "alerts", "generated_at"][..],
        ),
        (
            Method::GET,
            "/health/expiring?threshold_hours=168",
            &["credentials"][..],
        ),
        (
            Method::POST,
            "/health/check-all",
            &[
                "checked",
                "healthy",
                "unhealthy",
                "details",
                "checked_at",
                "duration_ms",
            ][..],
        ),
        (Method::GET, "/audit/log", &["log", "total"][..]),
        (
            Method::GET,
            "/rotation/schedule",
            &["upcoming_rotations", "overdue_rotations", "generated_at"][..],
        ),
    ] {
        let (s, b) = printed(&app, t, tenant, method.clone(), path, None).await;
        assert_eq!(s, 200, "{method} {path}: {b}");
        for f in fields {
            assert!(b.get(*f).is_some(), "{method} {path} has `{f}`: {b}");
        }
    }
    // The dashboard counts the credential, and the audit log names what was done to it in the
    // seed's words.
    let (_, d) = printed(&app, t, tenant, Method::GET, "/health/dashboard", None).await;
    assert_eq!(d["summary"]["total"], 1, "{d}");
    let (_, log) = printed(
        &app,
        t,
        tenant,
        Method::GET,
        "/audit/log?credential_name=anthropic-api-key",
        None,
    )
    .await;
    let actions: Vec<&str> = log["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for seen in ["created", "updated", "rotated", "rolled_back", "tested"] {
        assert!(actions.contains(&seen), "`{seen}` in {actions:?}");
    }

    // `metadata` is a free-form object: any JSON values, bounded in size.
    let rich = serde_json::json!({ "owner": { "team": "platform" }, "cost": 12.5, "regions": ["eu", "us"], "pii": false });
    let body = serde_json::json!({ "name": "rich", "credential_type": "api_key", "provider": "api", "metadata": rich });
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::POST,
        "/credentials",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = printed(&app, t, tenant, Method::GET, "/credentials/rich", None).await;
    assert_eq!((s, &b["metadata"]), (200, &rich), "{b}");
    let huge = serde_json::json!({ "name": "huge", "credential_type": "api_key", "provider": "api",
        "metadata": { "blob": "x".repeat(9000) } });
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::POST,
        "/credentials",
        Some(&huge.to_string()),
    )
    .await;
    assert_eq!((s, &b["field"]), (422, &"metadata".into()), "{b}");
    let (s, _) = printed(&app, t, tenant, Method::GET, "/credentials/huge", None).await;
    assert_eq!(s, 404, "a refused credential is not created");

    // "Delete (Retire) Credential".
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::DELETE,
        "/credentials/anthropic-api-key",
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (&b["status"], &b["credential_name"]),
        (&"retired".into(), &"anthropic-api-key".into()),
        "{b}"
    );

    // A refused value read is in the audit log as a `read` that did not succeed.
    let (s, b) = printed(
        &app,
        t,
        tenant,
        Method::GET,
        "/credentials/anthropic-api-key/value",
        None,
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let (s, log) = printed(
        &app,
        t,
        tenant,
        Method::GET,
        "/audit/log?credential_name=anthropic-api-key&action=read",
        None,
    )
    .await;
    assert_eq!(s, 200, "{log}");
    assert_eq!(
        (&log["total"], &log["log"][0]["success"]),
        (&1.into(), &false.into()),
        "{log}"
    );
}

#[tokio::test]
async fn seed_004_identity_routes_answer_as_the_table_says() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Seed 004").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let viewer = app.user_with_role(tenant, None).await;

    // Probes: "/healthz Always 200", "/readyz 200 when all readiness checks pass",
    // "/metrics Prometheus exposition"; all public. Metrics name every tenant, so without a
    // credential they are served on the scrape listener (AEGIS_METRICS_ADDR), not the API's.
    for path in ["/healthz", "/readyz"] {
        let r = app.http.get(app.url(path)).send().await.expect("send");
        assert_eq!(r.status(), 200, "{path}");
    }
    let metrics = app
        .http
        .get(app.scrape_url())
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("# TYPE "), "Prometheus text: {metrics}");

    // "POST /api/v1/auth/login {email, password} → {token, expires_at, user}".
    let r = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"email":"{}","password":"{}"}}"#,
            admin.email,
            aegis_tests::world::PASSWORD
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let login: Value = r.json().await.expect("json");
    assert!(login["token"].is_string(), "{login}");
    assert!(login["expires_at"].is_string(), "{login}");
    assert!(login["user"].is_object(), "{login}");
    let token = login["token"].as_str().expect("token");

    // "POST /api/v1/agents bearer + agent.mint: Mint; returns agent_secret ONCE", and "GET
    // /api/v1/agents: List (no credentials in projection)".
    let (s, minted) = printed(
        &app,
        token,
        tenant,
        Method::POST,
        "/api/v1/agents",
        Some(r#"{"name":"edge-1"}"#),
    )
    .await;
    assert_eq!(s, 201, "{minted}");
    let secret = minted["data"]["agent_secret"].as_str().expect("the secret");
    let (s, list) = printed(&app, token, tenant, Method::GET, "/api/v1/agents", None).await;
    assert_eq!(s, 200, "{list}");
    assert!(list.to_string().contains("edge-1"), "{list}");
    assert!(!list.to_string().contains(secret), "no credentials: {list}");
    assert!(!list.to_string().contains("agent_secret"), "{list}");
    // Without agent.mint the same request is refused.
    let (s, b) = printed(
        &app,
        &viewer.token,
        tenant,
        Method::POST,
        "/api/v1/agents",
        Some(r#"{"name":"edge-2"}"#),
    )
    .await;
    assert_eq!(s, 403, "{b}");

    // Roles: "POST /api/v1/roles bearer + role.edit", "PUT /api/v1/roles/:id/permissions",
    // with the catalog's names ("GET /api/v1/permissions").
    let (s, catalog) = printed(
        &app,
        token,
        tenant,
        Method::GET,
        "/api/v1/permissions",
        None,
    )
    .await;
    assert_eq!(s, 200, "{catalog}");
    for name in [
        "agent.mint",
        "agent.revoke",
        "role.edit",
        "user_role.edit",
        "audit.read",
    ] {
        assert!(catalog.to_string().contains(name), "{name} in {catalog}");
    }
    let (s, role) = printed(
        &app,
        token,
        tenant,
        Method::POST,
        "/api/v1/roles",
        Some(r#"{"name":"agent-auditor","permissions":["audit.read"]}"#),
    )
    .await;
    assert_eq!(s, 201, "{role}");
    let role_id = role["data"]["id"].as_str().expect("role id");
    let (s, b) = printed(
        &app,
        token,
        tenant,
        Method::PUT,
        &format!("/api/v1/roles/{role_id}/permissions"),
        Some(r#"{"permissions":["audit.read","agent.revoke"]}"#),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = printed(
        &app,
        token,
        tenant,
        Method::POST,
        "/api/v1/user-roles",
        Some(&format!(
            r#"{{"user_id":"{}","role_id":"{role_id}"}}"#,
            viewer.user
        )),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // "GET /api/v1/audit-events bearer + audit.read, Filter: actor, action, ...": the mint is
    // there for the ADMIN who minted (no position header: its own write), and the viewer
    // holds audit.read through the new role.
    let (s, b) = printed(
        &app,
        token,
        tenant,
        Method::GET,
        &format!(
            "/api/v1/audit-events?action=agent.minted&actor={}&limit=10",
            admin.user
        ),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"].as_array().map(Vec::len), Some(1), "{b}");
    let (s, b) = printed(
        &app,
        &viewer.token,
        tenant,
        Method::GET,
        "/api/v1/audit-events?limit=10",
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
}
