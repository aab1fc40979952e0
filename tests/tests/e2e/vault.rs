//! The credential vault (seed 001) end to end: sealed values, versions, rotation through
//! real Postgres roles and local HTTP receivers, crypto-shredding, health, and isolation.

use aegis_tests::world::eventually;
use aegis_tests::TestApp;
use axum::http::StatusCode as AxStatus;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

async fn vault_app() -> (TestApp, Uuid) {
    let app = TestApp::spawn_with_config(|c| c.egress_allow = vec!["127.0.0.1".into()]).await;
    let tenant = app.create_tenant("Vaulted").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    (app, tenant)
}

async fn call(
    app: &TestApp,
    tenant: Uuid,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    app.call(tenant, method, path, body).await
}

async fn create(app: &TestApp, tenant: Uuid, body: Value) -> Value {
    let (s, b) = call(app, tenant, Method::POST, "/credentials", Some(body)).await;
    assert_eq!(s, 201, "{b}");
    b
}

async fn value_of(app: &TestApp, tenant: Uuid, name: &str) -> (u16, Value) {
    call(
        app,
        tenant,
        Method::GET,
        &format!("/credentials/{name}/value"),
        None,
    )
    .await
}

/// A local endpoint: POST answers the next value (after `delay`), or fails with `fail`.
async fn rotation_endpoint(delay: Duration, fail: Option<u16>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let app = axum::Router::new()
        .route(
            "/next",
            axum::routing::post(move |body: axum::Json<Value>| {
                let seen = seen.clone();
                async move {
                    let n = seen.fetch_add(1, Ordering::SeqCst);
                    assert!(body.0["credential"].is_string(), "names the credential");
                    tokio::time::sleep(delay).await;
                    match fail {
                        Some(code) => (
                            AxStatus::from_u16(code).unwrap(),
                            axum::Json(json!({ "error": "nope" })),
                        ),
                        None => (
                            AxStatus::OK,
                            axum::Json(json!({ "value": format!("from-endpoint-{n}") })),
                        ),
                    }
                }
            }),
        )
        .route(
            "/health",
            axum::routing::get(|headers: axum::http::HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if auth.starts_with("Bearer from-endpoint-") || auth == "Bearer seed-value" {
                    (AxStatus::OK, [("x-ratelimit-remaining", "9500")])
                } else {
                    (AxStatus::UNAUTHORIZED, [("x-ratelimit-remaining", "0")])
                }
            }),
        );
    let url = aegis_tests::world::serve(app).await;
    (url, calls)
}

#[tokio::test]
async fn a_credential_is_created_read_versioned_rolled_back_and_retired() {
    let (app, tenant) = vault_app().await;
    let created = create(
        &app,
        tenant,
        json!({
            "name": "openai-api-key", "credential_type": "api_key", "provider": "api",
            "description": "LLM calls", "value": "sk-first", "rotation_enabled": true,
            "rotation_interval_hours": 720, "rotation_strategy": "scheduled",
            "tags": ["llm", "production"], "metadata": { "environment": "production" }
        }),
    )
    .await;
    assert_eq!(created["status"], "active");
    assert_eq!(created["encrypted"], true);
    assert!(created["id"].as_str().unwrap().starts_with("cred_"));

    // The name is the tenant's, once: seed 001's 400 names the credential.
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials",
        Some(json!({
            "name": "openai-api-key", "credential_type": "api_key", "provider": "api"
        })),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str(), b["credential"].as_str()),
        (400, Some("bad_request"), Some("openai-api-key"))
    );

    // Bad input names the field and changes nothing.
    let head = app.head().await;
    for (body, field) in [
        (
            json!({ "name": "a/b", "credential_type": "api_key", "provider": "api" }),
            "name",
        ),
        (
            json!({ "name": "x", "credential_type": "API KEY", "provider": "api" }),
            "credential_type",
        ),
        (
            json!({ "name": "x", "credential_type": "api_key", "provider": "api", "value": "" }),
            "value",
        ),
        (
            json!({ "name": "x", "credential_type": "api_key", "provider": "api", "rotation_interval_hours": 0 }),
            "rotation_interval_hours",
        ),
        (
            json!({ "name": "x", "credential_type": "api_key", "provider": "api", "rotator": { "kind": "postgres_role" } }),
            "rotator.host",
        ),
        (
            json!({ "name": "x", "credential_type": "api_key", "provider": "api", "rotator": { "kind": "http", "url": "file:///etc/passwd" } }),
            "rotator.url",
        ),
    ] {
        let (s, b) = call(&app, tenant, Method::POST, "/credentials", Some(body)).await;
        assert_eq!((s, b["field"].as_str()), (422, Some(field)), "{b}");
    }
    let (s, _) = call(&app, tenant, Method::POST, "/credentials", Some(json!({ "name": "x", "credential_type": "api_key", "provider": "api", "colour": "red" }))).await;
    assert_eq!(s, 422, "unknown fields are refused");
    assert_eq!(app.head().await, head, "refused input appends nothing");

    let (s, v) = value_of(&app, tenant, "openai-api-key").await;
    assert_eq!(
        (s, v["value"].as_str(), v["version"].as_u64()),
        (200, Some("sk-first"), Some(1))
    );

    // A PATCH with a value is a new version; a stale If-Match is refused.
    let r = app
        .admin(Method::GET, "/credentials/openai-api-key", Some(tenant))
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let (s, b) = call(
        &app,
        tenant,
        Method::PATCH,
        "/credentials/openai-api-key",
        Some(json!({
            "description": "rotated by hand", "value": "sk-second", "tags": ["llm"]
        })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["updated_fields"], json!(["description", "tags", "value"]));
    assert_eq!(b["version"], 2);
    let r = app
        .admin(Method::PATCH, "/credentials/openai-api-key", Some(tenant))
        .header("If-Match", etag)
        .json(&json!({ "description": "lost update" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        value_of(&app, tenant, "openai-api-key").await.1["value"],
        "sk-second"
    );

    // Rollback restores version 1's value as version 3; history is never rewritten.
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/openai-api-key/rollback",
        Some(json!({ "version": 1 })),
    )
    .await;
    assert_eq!(
        (
            s,
            b["from_version"].as_u64(),
            b["to_version"].as_u64(),
            b["new_version"].as_u64()
        ),
        (200, Some(2), Some(1), Some(3)),
        "{b}"
    );
    let (_, v) = value_of(&app, tenant, "openai-api-key").await;
    assert_eq!(
        (v["value"].as_str(), v["version"].as_u64()),
        (Some("sk-first"), Some(3))
    );
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/openai-api-key/rollback",
        Some(json!({ "version": 9 })),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("version")));

    // Detail: history newest first, and the three reads counted once the projection has them.
    let pos = app.head().await;
    let r = app
        .admin(Method::GET, "/credentials/openai-api-key", Some(tenant))
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();
    let d: Value = r.json().await.unwrap();
    let reasons: Vec<&str> = d["version_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["rollback", "update", "initial"]);
    assert_eq!(d["version_history"][0]["restored_from"], 1);
    assert_eq!(d["usage_stats"]["total_uses"], 3);
    assert_eq!(d["usage_stats"]["uses_last_24h"], 3);
    assert!(d["last_used_at"].is_string());
    assert!(d.get("value").is_none(), "the detail never holds the value");

    // Reads are in seed 001's audit log under the credential's name, with their actor.
    let (_, log) = app
        .caught_up(
            tenant,
            "/audit/log?credential_name=openai-api-key&action=credential.value_read",
        )
        .await;
    assert_eq!(log["total"], 3, "{log}");
    assert_eq!(log["log"][0]["credential_name"], "openai-api-key");
    assert_eq!(log["log"][0]["actor"], "bootstrap");

    // List, with filters and totals.
    create(&app, tenant, json!({ "name": "supabase-key", "credential_type": "api_key", "provider": "supabase",
        "value": "s", "expires_at": (chrono::Utc::now() + chrono::Duration::hours(5)).to_rfc3339() })).await;
    let pos = app.head().await;
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let r = app
                .admin(Method::GET, &format!("/credentials{q}"), Some(tenant))
                .header("Aegis-Min-Position", pos.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let all = list("").await;
    assert_eq!(
        (
            all["total"].as_i64(),
            all["expiring"].as_i64(),
            all["healthy"].as_i64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        list("?status=expiring").await["credentials"][0]["name"],
        "supabase-key"
    );
    assert_eq!(list("?provider=api").await["total"], 1);
    assert_eq!(
        list("?type=api_key&limit=1&offset=1").await["credentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (s, _) = call(
        &app,
        tenant,
        Method::GET,
        "/credentials?status=sleepy",
        None,
    )
    .await;
    assert_eq!(s, 422);

    // Retire: history stays, values stop, the name stays taken.
    let (s, b) = call(
        &app,
        tenant,
        Method::DELETE,
        "/credentials/openai-api-key",
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("retired")));
    let (s, _) = call(
        &app,
        tenant,
        Method::DELETE,
        "/credentials/openai-api-key",
        None,
    )
    .await;
    assert_eq!(s, 200, "retiring again answers the same");
    assert_eq!(value_of(&app, tenant, "openai-api-key").await.0, 409);
    let (s, b) = call(&app, tenant, Method::GET, "/credentials/nope", None).await;
    assert_eq!(
        (s, b["message"].as_str()),
        (404, Some("Credential not found: nope"))
    );
}

#[tokio::test]
async fn destroy_crypto_shreds_every_version_and_the_chain_still_verifies() {
    let (app, tenant) = vault_app().await;
    create(&app, tenant, json!({ "name": "db", "credential_type": "database", "provider": "env", "value": "v1-secret" })).await;
    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/db/rotate",
        Some(json!({ "trigger": "manual" })),
    )
    .await;
    assert_eq!(s, 200);
    let (_, detail) = call(&app, tenant, Method::GET, "/credentials/db", None).await;
    let id = detail["id"].as_str().unwrap().to_string();

    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/db/destroy",
        Some(json!({ "reason": "leaked" })),
    )
    .await;
    assert_eq!((s, b["versions_shredded"].as_u64()), (200, Some(2)), "{b}");
    let (s, b) = value_of(&app, tenant, "db").await;
    assert_eq!((s, b["error"].as_str()), (410, Some("gone")), "{b}");
    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/db/rollback",
        Some(json!({ "version": 1 })),
    )
    .await;
    assert_eq!(s, 410, "a destroyed credential's old values are gone too");
    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/db/destroy",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "destroying again answers the same");

    // The ciphertext is still in the log, and no key opens it: not even on a fresh key store
    // that has never cached the key.
    let keys = aegis_command_api::app::open_keys(&app.config, app.state().executor.store())
        .await
        .unwrap();
    let agg = aegis_streams::AggregateRef::new(tenant, "vault", "credential", "db").unwrap();
    let (c, _) = app
        .state()
        .executor
        .load::<aegis_vault::CredentialAggregate>(&agg)
        .await
        .unwrap();
    let c = c.unwrap();
    assert_eq!(c.versions.len(), 2);
    for v in &c.versions {
        assert!(!v.sealed.ciphertext.is_empty());
        assert!(v.own_key, "every version written now has a key of its own");
        let secret = aegis_vault_services::keys::version_secret(&id, v.version);
        let opened = keys.open(tenant, &secret, v.version, &v.sealed).await;
        assert!(
            matches!(opened, Err(aegis_runtime::keys::KeyError::Shredded)),
            "{opened:?}"
        );
    }

    // Reconstruct shows the values as shredded, before and after the destroy.
    let (s, r) = call(
        &app,
        tenant,
        Method::GET,
        "/audit/reconstruct?resource=credential/db",
        None,
    )
    .await;
    assert_eq!(
        (
            s,
            r["state"]["shredded"].as_bool(),
            r["state"]["lifecycle"].as_str()
        ),
        (200, Some(true), Some("destroyed")),
        "{r}"
    );
    assert_eq!(r["state"]["versions"][0]["value"], "shredded");

    // The chain covers the ciphertext, so it verifies after shredding.
    let (s, b) = call(
        &app,
        tenant,
        Method::GET,
        "/audit/verify?resource=credential/db",
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("intact")), "{b}");
}

#[tokio::test]
async fn concurrent_rotations_exactly_one_wins_and_the_others_get_409() {
    let (app, tenant) = vault_app().await;
    let (url, calls) = rotation_endpoint(Duration::from_millis(600), None).await;
    create(&app, tenant, json!({ "name": "svc", "credential_type": "api_key", "provider": "api", "value": "seed-value",
        "rotator": { "kind": "http", "url": format!("{url}/next"), "health_url": format!("{url}/health") } })).await;
    let rotate = || {
        call(
            &app,
            tenant,
            Method::POST,
            "/credentials/svc/rotate",
            Some(json!({ "trigger": "emergency", "reason": "drill" })),
        )
    };
    let results = futures::future::join_all((0..5).map(|_| rotate())).await;
    let won: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b)
        .collect();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 409)
        .map(|(_, b)| b)
        .collect();
    assert_eq!((won.len(), refused.len()), (1, 4), "{results:?}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "only the winner called the rotator"
    );
    assert_eq!(
        (
            won[0]["previous_version"].as_u64(),
            won[0]["new_version"].as_u64()
        ),
        (Some(1), Some(2))
    );
    assert!(won[0]["duration_ms"].as_u64().unwrap() >= 600);
    for r in refused {
        assert_eq!(r["message"], "Credential is currently being rotated");
        assert!(r["retry_after_ms"].as_u64().unwrap() > 0);
    }
    assert_eq!(
        value_of(&app, tenant, "svc").await.1["value"],
        "from-endpoint-0"
    );

    // /test calls the health URL with the value as a bearer token.
    let (s, b) = call(&app, tenant, Method::POST, "/credentials/svc/test", None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("healthy")), "{b}");
    assert_eq!(b["details"]["rate_limit_remaining"], 9500);
}

#[tokio::test]
async fn a_failed_rotation_keeps_the_old_version_records_it_and_opens_an_incident() {
    let (app, tenant) = vault_app().await;
    let (url, _) = rotation_endpoint(Duration::ZERO, Some(500)).await;
    create(&app, tenant, json!({ "name": "flaky", "credential_type": "api_key", "provider": "api", "value": "keep-me",
        "rotator": { "kind": "http", "url": format!("{url}/next") } })).await;
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/flaky/rotate",
        Some(json!({ "trigger": "manual" })),
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str(), b["active_version"].as_u64()),
        (502, Some("rotation_failed"), Some(1)),
        "{b}"
    );
    assert!(b["message"].as_str().unwrap().contains("500"));
    let incident = b["incident_id"].as_str().unwrap();
    assert_eq!(value_of(&app, tenant, "flaky").await.1["value"], "keep-me");
    let r = app
        .admin(Method::GET, &format!("/incidents/{incident}"), Some(tenant))
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .unwrap();
    let (s, i) = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_eq!(
        (s, i["data"]["title"].as_str()),
        (200, Some("Credential rotation failed: flaky")),
        "{i}"
    );

    // The lease is released: the next attempt runs (and fails again, into the same incident).
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/flaky/rotate",
        Some(json!({ "trigger": "manual" })),
    )
    .await;
    assert_eq!((s, b["incident_id"].as_str()), (502, Some(incident)));

    // Seed 001's audit log: two `rotated` entries that did not succeed, and nothing else
    // claimed as rotated.
    let (_, log) = call(
        &app,
        tenant,
        Method::GET,
        "/audit/log?credential_name=flaky&action=rotated",
        None,
    )
    .await;
    assert_eq!(log["total"], 2, "{log}");
    assert!(
        log["log"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["success"] == false),
        "{log}"
    );

    let pos = app.head().await;
    let r = app
        .admin(Method::GET, "/health/dashboard", Some(tenant))
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["alerts"][0]["alert_type"], "rotation_failed", "{d}");
    assert_eq!(d["alerts"][0]["credential"], "flaky");
}

#[tokio::test]
async fn outbound_targets_on_private_addresses_are_refused_without_dialling() {
    // No egress allowance at all: loopback is refused too.
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Guarded").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let (url, calls) = rotation_endpoint(Duration::ZERO, None).await;
    for (name, target) in [
        (
            "metadata",
            json!({ "kind": "http", "url": "http://169.254.169.254/latest" }),
        ),
        (
            "intranet",
            json!({ "kind": "http", "url": "http://10.0.0.1/next" }),
        ),
        (
            "loopback",
            json!({ "kind": "http", "url": format!("{url}/next") }),
        ),
        (
            "pg",
            json!({ "kind": "postgres_role", "host": "192.168.1.1", "database": "d", "role": "r" }),
        ),
    ] {
        create(&app, tenant, json!({ "name": name, "credential_type": "api_key", "provider": "api", "value": "v", "rotator": target })).await;
        let (s, b) = call(
            &app,
            tenant,
            Method::POST,
            &format!("/credentials/{name}/rotate"),
            Some(json!({ "trigger": "manual" })),
        )
        .await;
        assert_eq!(s, 502, "{b}");
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .contains("outbound calls to it are refused"),
            "{b}"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the loopback receiver was never called"
    );
}

/// Proves our SCRAM code against PostgreSQL's own: a verifier the server made must match.
async fn verifier_of(pool: &sqlx::PgPool, role: &str) -> String {
    let (v,): (String,) = sqlx::query_as("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
        .bind(role)
        .fetch_one(pool)
        .await
        .unwrap();
    v
}

#[tokio::test]
async fn a_postgres_role_is_rotated_logged_into_and_tested() {
    let (app, tenant) = vault_app().await;
    let pool = &app.state().pool;
    let role = format!("aegis_rot_{}", Uuid::now_v7().simple());
    sqlx::query(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'first-password'"
    ))
    .execute(pool)
    .await
    .unwrap();
    let server_made = verifier_of(pool, &role).await;
    assert!(
        aegis_vault_services::scram::matches(&server_made, "first-password"),
        "{server_made}"
    );
    assert!(!aegis_vault_services::scram::matches(&server_made, "other"));

    let db: (String,) = sqlx::query_as("SELECT current_database()")
        .fetch_one(pool)
        .await
        .unwrap();
    create(&app, tenant, json!({ "name": "pg-app", "credential_type": "database", "provider": "env", "value": "first-password",
        "rotator": { "kind": "postgres_role", "host": "127.0.0.1", "port": 5432, "database": db.0, "role": role } })).await;
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/pg-app/rotate",
        Some(json!({ "trigger": "manual", "reason": "quarterly" })),
    )
    .await;
    assert_eq!((s, b["new_version"].as_u64()), (200, Some(2)), "{b}");
    let (_, v) = value_of(&app, tenant, "pg-app").await;
    let new = v["value"].as_str().unwrap();
    assert_ne!(new, "first-password");
    let stored = verifier_of(pool, &role).await;
    assert!(
        aegis_vault_services::scram::matches(&stored, new),
        "the role's password is the new value"
    );
    assert!(!aegis_vault_services::scram::matches(
        &stored,
        "first-password"
    ));

    let (s, b) = call(&app, tenant, Method::POST, "/credentials/pg-app/test", None).await;
    assert_eq!(
        (
            s,
            b["status"].as_str(),
            b["details"]["authenticated"].as_bool()
        ),
        (200, Some("healthy"), Some(true)),
        "{b}"
    );

    // A rollback restores the value in the vault (the role keeps its password until rotated).
    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/pg-app/rollback",
        Some(json!({ "version": 1 })),
    )
    .await;
    assert_eq!(s, 200);
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_scheduler_rotates_what_is_due_and_alerts_expiry_once_per_version() {
    let (app, tenant) = vault_app().await;
    create(
        &app,
        tenant,
        json!({ "name": "due", "credential_type": "api_key", "provider": "api", "value": "old",
        "rotation_enabled": true, "rotation_strategy": "scheduled", "rotation_interval_hours": 1 }),
    )
    .await;
    create(&app, tenant, json!({ "name": "expiring", "credential_type": "api_key", "provider": "api", "value": "e",
        "expires_at": (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339(), "alert_threshold_hours": 24 })).await;
    let pos = app.head().await;
    let r = app
        .admin(Method::GET, "/rotation/schedule", Some(tenant))
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();
    let schedule: Value = r.json().await.unwrap();
    assert_eq!(
        schedule["upcoming_rotations"][0]["credential"], "due",
        "{schedule}"
    );
    assert_eq!(schedule["upcoming_rotations"][0]["strategy"], "scheduled");

    // An hour passes for "due" (the read model's clock is what the scheduler consults).
    sqlx::query("UPDATE vault_credentials SET next_rotation_at = now() - interval '1 second' WHERE name = 'due'")
        .execute(&app.state().pool).await.unwrap();
    let acted = aegis_reactors::vault_rotation::once(app.state())
        .await
        .unwrap();
    assert_eq!(acted, 2, "one rotation, one expiry alert");
    let (_, v) = value_of(&app, tenant, "due").await;
    assert_eq!(v["version"], 2);
    let (_, d) = call(&app, tenant, Method::GET, "/credentials/due", None).await;
    assert_eq!(d["version_history"][0]["trigger"], "scheduled");

    let (_, e) = app
        .caught_up(tenant, "/health/expiring?threshold_hours=24")
        .await;
    assert_eq!(
        (e["count"].as_u64(), e["credentials"][0]["name"].as_str()),
        (Some(1), Some("expiring")),
        "{e}"
    );
    let again = aegis_reactors::vault_rotation::once(app.state())
        .await
        .unwrap();
    assert_eq!(
        again, 0,
        "the alert fired once for this version and nothing else is due"
    );
    let r = app
        .admin(Method::GET, "/health/dashboard", Some(tenant))
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .unwrap();
    let d: Value = r.json().await.unwrap();
    let expiring: Vec<&Value> = d["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["alert_type"] == "expiring")
        .collect();
    assert_eq!(expiring.len(), 1, "{d}");
    assert_eq!(d["summary"]["expiring"], 1);

    // /health stays a public probe, and adds the tenant's counts for a caller who may read them.
    let (s, h) = call(&app, tenant, Method::GET, "/health", None).await;
    assert_eq!(
        (
            s,
            h["credentials_count"].as_i64(),
            h["expiring_count"].as_i64()
        ),
        (200, Some(2), Some(1)),
        "{h}"
    );
    assert!(h["last_rotation_check"].is_string());
    let anon: Value = reqwest::get(app.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anon["encryption"], "enabled");
    assert!(
        anon.get("credentials_count").is_none(),
        "an anonymous probe learns no tenant's counts"
    );

    let (s, b) = call(&app, tenant, Method::POST, "/health/check-all", None).await;
    assert_eq!(
        (s, b["checked"].as_u64(), b["healthy"].as_u64()),
        (200, Some(2), Some(2)),
        "{b}"
    );
}

#[tokio::test]
async fn tenants_never_see_each_others_credentials_and_reads_need_their_own_permission() {
    let (app, tenant) = vault_app().await;
    let other = app.create_tenant("Other").await;
    app.set_plan(other, json!({ "addons": ["vault"] })).await;
    create(
        &app,
        tenant,
        json!({ "name": "mine", "credential_type": "api_key", "provider": "api", "value": "v" }),
    )
    .await;
    for path in ["/credentials/mine", "/credentials/mine/value"] {
        let (s, _) = call(&app, other, Method::GET, path, None).await;
        assert_eq!(s, 404, "{path}");
    }
    let (s, _) = call(
        &app,
        other,
        Method::POST,
        "/credentials/mine/rotate",
        Some(json!({ "trigger": "manual" })),
    )
    .await;
    assert_eq!(s, 404);
    let (_, list) = call(&app, other, Method::GET, "/credentials", None).await;
    assert_eq!(list["total"], 0);
    // The same name is free in another tenant.
    create(&app, other, json!({ "name": "mine", "credential_type": "api_key", "provider": "api", "value": "theirs" })).await;
    assert_eq!(value_of(&app, tenant, "mine").await.1["value"], "v");

    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let r = app
        .bearer(Method::GET, "/credentials/mine", &auditor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .bearer(Method::GET, "/credentials/mine/value", &auditor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["required_permission"], "credential.value");
}

/// A marker stored, updated, rotated and rolled back, or handed over as a broker wrap, never
/// appears in clear in the log, the read models, the process's logs or its traces.
#[tokio::test]
async fn no_plaintext_in_events_read_models_logs_or_traces() {
    let marker = format!("MARKER-{}", Uuid::now_v7().simple());
    let world = TestApp::spawn_with(aegis_command_api::app::Roles {
        command_api: false,
        projectors: false,
        reactors: false,
    })
    .await;
    let port = aegis_tests::world::free_port();
    let (collector, traces) = aegis_tests::world::trace_collector().await;
    let log = tempfile_path("aegis-vault-log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-under-test"))
        .arg("serve")
        .env("NATS_URL", &world.config.nats_url)
        .env("DATABASE_URL", &world.config.database_url)
        .env("AEGIS_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("AEGIS_METRICS_ADDR", "127.0.0.1:0")
        .env(
            "AEGIS_MASTER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("AEGIS_BOOTSTRAP_TOKEN", aegis_tests::world::BOOTSTRAP)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .env("AEGIS_EGRESS_ALLOW", "127.0.0.1")
        .env("AEGIS_AR_TICK_SECS", "1")
        .env("RUST_LOG", "trace,h2=info,hyper=info,tower=info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = async {
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aegis did not become ready");
    };
    ready.await;
    let admin = |m: Method, p: &str, t: Option<Uuid>| {
        let mut r = http
            .request(m, format!("{base}{p}"))
            .bearer_auth(aegis_tests::world::BOOTSTRAP);
        if let Some(t) = t {
            r = r.header("X-Tenant-ID", t.to_string());
        }
        r
    };
    let t: Value = admin(Method::POST, "/admin/tenants", None)
        .json(&json!({ "name": "Scan" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant = Uuid::parse_str(t["data"]["id"].as_str().unwrap()).unwrap();
    let r = admin(Method::PUT, &format!("/admin/tenants/{tenant}/plan"), None)
        .json(&json!({ "addons": ["vault"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(Method::POST, "/credentials", Some(tenant))
        .json(&json!({ "name": "scan", "credential_type": "api_key", "provider": "api", "value": format!("{marker}-1") }))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let r = admin(Method::PATCH, "/credentials/scan", Some(tenant))
        .json(&json!({ "value": format!("{marker}-2") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(Method::POST, "/credentials/scan/rollback", Some(tenant))
        .json(&json!({ "version": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = admin(Method::GET, "/credentials/scan/value", Some(tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["value"],
        format!("{marker}-1"),
        "the value does come back to its reader"
    );
    let r = admin(Method::POST, "/credentials/scan/rotate", Some(tenant))
        .json(&json!({ "trigger": "manual" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Seed 003's versioned secrets: written, read, compared and rolled back.
    for i in 1..=2 {
        let r = admin(Method::POST, "/v1/versioned-secrets", Some(tenant))
            .json(&json!({ "secretId": "scan-v", "value": format!("{marker}-v{i}"), "metadata": { "reason": "scan" } }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let v: Value = admin(
        Method::GET,
        "/v1/versioned-secrets/scan-v/versions/1",
        Some(tenant),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(v["value"], format!("{marker}-v1"));
    let r = admin(
        Method::POST,
        "/vault/v1/versioned-secrets/scan-v/compare",
        Some(tenant),
    )
    .json(&json!({ "version1": 1, "version2": 2 }))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(
        Method::POST,
        "/v1/versioned-secrets/scan-v/rollback",
        Some(tenant),
    )
    .json(&json!({ "targetVersion": 1 }))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // Seed 003's leakage detection: a version's value committed to a git repository and
    // found by a scan (fingerprinted, matched, rotated) leaves no trace of itself either.
    let repo_dir = tempfile::tempdir().unwrap();
    let work = aegis_tests::git::init(repo_dir.path()).unwrap();
    std::fs::write(work.join("app.env"), format!("TOKEN = \"{marker}-v1\"\n")).unwrap();
    aegis_tests::git::git(&work, &["add", "."]).unwrap();
    aegis_tests::git::git(&work, &["commit", "-q", "-m", "leak"]).unwrap();
    aegis_tests::git::publish(repo_dir.path()).unwrap();
    let repo = aegis_tests::git::serve(repo_dir.path()).await;
    let p: Value = admin(Method::POST, "/v1/leakage-detection/policies", Some(tenant))
        .json(&json!({ "name": "tokens", "secretPatterns": [{ "type": "keyword", "pattern": "TOKEN", "severity": "high" }],
            "actions": { "onDetection": "rotate" } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scan: Value = admin(Method::POST, "/v1/leakage-detection/scan", Some(tenant))
        .json(&json!({ "targets": ["url"], "scope": { "repositories": [repo] }, "policyIds": [p["policyId"]] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scan_path = format!(
        "/v1/leakage-detection/scans/{}",
        scan["scanId"].as_str().unwrap()
    );
    let mut incidents = Value::Null;
    for _ in 0..200 {
        let s: Value = admin(Method::GET, &scan_path, Some(tenant))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["status"] == "completed" {
            incidents = admin(Method::GET, "/v1/leakage-detection/incidents", Some(tenant))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        incidents["incidents"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["secretId"] == "scan-v")),
        "the scan named the leaked secret: {incidents}"
    );
    // Seed 004's broker: a value sealed in an envelope under a data key (itself sealed to the
    // agent's wire key), handed over as a single-shot wrap and retrieved.
    let broker = super::broker_wraps::Client1 {
        http: &http,
        base: base.clone(),
        tenant,
    };
    let wrapped = format!("{marker}-wrap");
    assert_eq!(
        super::broker_wraps::envelope_round_trip(&broker, &wrapped).await,
        wrapped
    );
    // Let the projectors catch up, then stop the process as an operator would (SIGTERM), so
    // it flushes its traces.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("aegis stops on SIGTERM")
        .unwrap();

    let needle = marker.as_bytes();
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(&world.log_bytes().await),
        "the event log holds the marker in clear"
    );
    let logs = std::fs::read(&log).unwrap();
    assert!(
        logs.len() > 10_000,
        "trace-level logs were written ({} bytes)",
        logs.len()
    );
    assert!(!contains(&logs), "the process log holds the marker");
    let exported: Vec<u8> = traces
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, b)| b.to_vec())
        .collect();
    assert!(!exported.is_empty(), "traces were exported");
    assert!(!contains(&exported), "a trace holds the marker");
    // Every table of the database, every row, as text.
    let pool = sqlx::PgPool::connect(&world.config.database_url)
        .await
        .unwrap();
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(tables.iter().any(|(t,)| t == "vault_credentials"));
    let mut rows = 0;
    for (table,) in tables {
        let dump: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT row_to_json(t)::text FROM {table} t"))
                .fetch_all(&pool)
                .await
                .unwrap();
        rows += dump.len();
        for (row,) in dump {
            assert!(!row.contains(&marker), "{table} holds the marker: {row}");
        }
    }
    assert!(rows > 10);
    let _ = std::fs::remove_file(&log);
}

fn tempfile_path(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{prefix}-{}.log", Uuid::now_v7().simple()))
}

/// `aegis rewrap` moves every wrapped key to a new master key while a server runs; afterwards
/// the new key alone opens everything, and the old one alone opens nothing.
#[tokio::test]
async fn the_master_key_rotates_with_aegis_rewrap_while_the_server_runs() {
    use aegis_runtime::keys::{KeyStore, MasterKeys};
    use base64::Engine;
    let (app, tenant) = vault_app().await;
    create(&app, tenant, json!({ "name": "kept", "credential_type": "api_key", "provider": "api", "value": "still-here" })).await;
    let old = app.config.master_key_bytes().unwrap();
    let new = [42u8; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aegis-under-test"))
        .arg("rewrap")
        .env("NATS_URL", &app.config.nats_url)
        .env("DATABASE_URL", &app.config.database_url)
        .env("AEGIS_MASTER_KEY", b64.encode(new))
        .env("AEGIS_MASTER_KEY_PREVIOUS", b64.encode(&old))
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rewrapped 2 keys"),
        "the root secret and the tenant's key: {stdout}"
    );

    // The running server never noticed.
    assert_eq!(
        value_of(&app, tenant, "kept").await.1["value"],
        "still-here"
    );

    let kv = app
        .state()
        .executor
        .store()
        .jetstream()
        .get_key_value("AEGIS_KEYS")
        .await
        .unwrap();
    let only_new = KeyStore::new(kv.clone(), MasterKeys::new(&new, &[]).unwrap());
    assert_eq!(
        *only_new.root().await.unwrap(),
        *app.state().keys.root().await.unwrap()
    );
    let agg = aegis_streams::AggregateRef::new(tenant, "vault", "credential", "kept").unwrap();
    let (c, _) = app
        .state()
        .executor
        .load::<aegis_vault::CredentialAggregate>(&agg)
        .await
        .unwrap();
    let c = c.unwrap();
    let v = c.current().unwrap();
    let secret = aegis_vault_services::keys::version_secret(&c.id, v.version);
    assert_eq!(
        only_new
            .open(tenant, &secret, v.version, &v.sealed)
            .await
            .unwrap()
            .as_slice(),
        b"still-here"
    );
    let only_old = KeyStore::new(kv, MasterKeys::new(&old, &[]).unwrap());
    assert!(matches!(
        only_old.open(tenant, &secret, v.version, &v.sealed).await,
        Err(aegis_runtime::keys::KeyError::UnknownMaster { .. })
    ));
}

/// A local n8n: checks `X-N8N-API-KEY` and the documented request shapes, keeps what it is
/// sent, and pages its workflow listing.
#[derive(Default)]
struct N8n {
    credentials: std::sync::Mutex<Vec<Value>>,
    puts: std::sync::Mutex<Vec<Value>>,
}

async fn n8n_receiver() -> (String, Arc<N8n>) {
    use axum::extract::{Path, Query};
    use axum::routing::{get, post};
    let seen = Arc::new(N8n::default());
    let key_ok = |h: &axum::http::HeaderMap| {
        h.get("x-n8n-api-key").and_then(|v| v.to_str().ok()) == Some("n8n-key")
    };
    let workflow = |id: &str| {
        json!({
            "id": id, "name": format!("wf {id}"), "active": true, "createdAt": "2026-01-01T00:00:00.000Z",
            "nodes": [
                { "name": "HTTP Request", "type": "n8n-nodes-base.httpRequest", "parameters": {},
                  "credentials": if id == "wf-1" { json!({ "openAiApi": { "id": "c-1", "name": "OpenAI account" } }) } else { json!({ "slackApi": { "id": "c-2", "name": "Slack bot" } }) } }
            ],
            "connections": {}, "settings": { "executionOrder": "v1" }, "staticData": null
        })
    };
    let (s1, s2) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route("/api/v1/credentials", post(move |h: axum::http::HeaderMap, body: axum::Json<Value>| {
            let seen = s1.clone();
            async move {
                if !key_ok(&h) { return (AxStatus::UNAUTHORIZED, axum::Json(json!({ "message": "unauthorized" }))); }
                let b = body.0;
                assert!(b["name"].is_string() && b["type"].is_string() && b["data"].is_object(), "{b}");
                seen.credentials.lock().unwrap().push(b.clone());
                (AxStatus::OK, axum::Json(json!({ "id": "new-cred-9", "name": b["name"], "type": b["type"],
                    "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z" })))
            }
        }))
        .route("/api/v1/workflows", get(move |h: axum::http::HeaderMap, q: Query<std::collections::HashMap<String, String>>| async move {
            if !key_ok(&h) { return (AxStatus::UNAUTHORIZED, axum::Json(json!({}))); }
            match q.get("cursor").map(String::as_str) {
                None => (AxStatus::OK, axum::Json(json!({ "data": [workflow("wf-1")], "nextCursor": "page-2" }))),
                Some("page-2") => (AxStatus::OK, axum::Json(json!({ "data": [workflow("wf-2")], "nextCursor": null }))),
                Some(_) => (AxStatus::BAD_REQUEST, axum::Json(json!({}))),
            }
        }))
        .route("/api/v1/workflows/{id}", get(move |h: axum::http::HeaderMap, Path(id): Path<String>| async move {
            if !key_ok(&h) { return (AxStatus::UNAUTHORIZED, axum::Json(json!({}))); }
            (AxStatus::OK, axum::Json(workflow(&id)))
        }).put(move |h: axum::http::HeaderMap, Path(id): Path<String>, body: axum::Json<Value>| {
            let seen = s2.clone();
            async move {
                if !key_ok(&h) { return (AxStatus::UNAUTHORIZED, axum::Json(json!({}))); }
                let mut keys: Vec<&str> = body.0.as_object().unwrap().keys().map(String::as_str).collect();
                keys.sort_unstable();
                // n8n refuses read-only fields (id, active, createdAt...) in a PUT.
                assert_eq!(keys, ["connections", "name", "nodes", "settings"]);
                seen.puts.lock().unwrap().push(json!({ "id": id, "body": body.0 }));
                (AxStatus::OK, axum::Json(workflow(&id)))
            }
        }));
    let url = aegis_tests::world::serve(app).await;
    (url, seen)
}

#[tokio::test]
async fn credentials_are_applied_to_n8n_workflows_and_synced_from_them() {
    let (app, tenant) = vault_app().await;
    let (url, n8n) = n8n_receiver().await;
    // Without a connection the answer says what to register.
    for path in [
        "/sync/n8n",
        "/sync/n8n?connection=",
        "/sync/n8n?connection=a%2Fb",
    ] {
        let (s, b) = call(&app, tenant, Method::POST, path, None).await;
        assert_eq!(
            (s, b["field"].as_str()),
            (422, Some("connection")),
            "{path}: {b}"
        );
    }

    create(&app, tenant, json!({ "name": "n8n-api", "credential_type": "api_key", "provider": "n8n", "value": "n8n-key",
        "metadata": { "base_url": url } })).await;
    create(&app, tenant, json!({ "name": "openai-api-key", "credential_type": "api_key", "provider": "api", "value": "sk-apply",
        "metadata": { "n8n_credential_type": "openAiApi" } })).await;
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/openai-api-key/apply",
        Some(json!({
        "workflow_id": "wf-1", "node_name": "HTTP Request", "requested_by": "HEPHAESTUS" })),
    )
    .await;
    assert_eq!(
        (
            s,
            b["status"].as_str(),
            b["provider_credential_id"].as_str()
        ),
        (200, Some("applied"), Some("new-cred-9")),
        "{b}"
    );
    let sent = n8n.credentials.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0]["type"].as_str(), sent[0]["data"]["apiKey"].as_str()),
        (Some("openAiApi"), Some("sk-apply"))
    );
    let puts = n8n.puts.lock().unwrap().clone();
    assert_eq!(puts[0]["id"], "wf-1");
    assert_eq!(
        puts[0]["body"]["nodes"][0]["credentials"]["openAiApi"]["id"],
        "new-cred-9"
    );

    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/openai-api-key/apply",
        Some(json!({
        "workflow_id": "wf-1", "node_name": "Missing" })),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("node_name")), "{b}");

    // The audit log shows the apply under the credential's name, with its target.
    let (_, log) = app
        .caught_up(
            tenant,
            "/audit/log?credential_name=openai-api-key&action=credential.applied",
        )
        .await;
    assert_eq!(log["total"], 1, "{log}");
    // Seed 001's words: action `applied`, by whom the apply was requested, on which node.
    let (_, log) = call(&app, tenant, Method::GET, "/audit/log?action=applied", None).await;
    assert_eq!(log["total"], 1, "{log}");
    let entry = &log["log"][0];
    assert_eq!(
        (
            &entry["action"],
            &entry["actor"],
            &entry["target"],
            &entry["success"]
        ),
        (
            &json!("applied"),
            &json!("HEPHAESTUS"),
            &json!("wf-1/HTTP Request"),
            &json!(true)
        ),
        "{log}"
    );
    let (_, log) = call(
        &app,
        tenant,
        Method::GET,
        "/audit/log?actor=HEPHAESTUS",
        None,
    )
    .await;
    assert_eq!(log["total"], 1, "{log}");

    // Applying a retired credential is refused, and the refused read is in the audit log.
    let (s, b) = call(
        &app,
        tenant,
        Method::DELETE,
        "/credentials/openai-api-key",
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/openai-api-key/apply",
        Some(json!({ "workflow_id": "wf-1", "node_name": "HTTP Request" })),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let (_, log) = call(
        &app,
        tenant,
        Method::GET,
        "/audit/log?credential_name=openai-api-key&action=read",
        None,
    )
    .await;
    let refused = log["log"]
        .as_array()
        .map_or(0, |l| l.iter().filter(|e| e["success"] == false).count());
    assert_eq!(refused, 1, "the refused read is recorded: {log}");

    // Sync reads both workflow pages; a second sync finds nothing new.
    let (s, b) = call(&app, tenant, Method::POST, "/sync/n8n", None).await;
    assert_eq!((s, b["synced"].as_u64()), (200, Some(2)), "{b}");
    let mut names: Vec<&str> = b["new"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["n8n-openai-account", "n8n-slack-bot"]);
    let (s, b) = call(&app, tenant, Method::POST, "/sync/n8n", None).await;
    assert_eq!((s, b["new"].as_array().unwrap().len()), (200, 0), "{b}");
    let (_, d) = call(
        &app,
        tenant,
        Method::GET,
        "/credentials/n8n-slack-bot",
        None,
    )
    .await;
    assert_eq!(
        (d["provider"].as_str(), d["provider_credential_id"].as_str()),
        (Some("n8n"), Some("c-2"))
    );

    // A wrong key is n8n's 401, surfaced as an upstream failure.
    let (s, _) = call(
        &app,
        tenant,
        Method::PATCH,
        "/credentials/n8n-api",
        Some(json!({ "value": "wrong" })),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = call(&app, tenant, Method::POST, "/sync/n8n", None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (502, Some("upstream_error")),
        "{b}"
    );
}

/// Destroying a tenant's data key crypto-shreds every value it sealed: reads answer 410,
/// nothing new is sealed, the chain still verifies, reconstruct says so, and the log keeps
/// who did it. Another tenant is untouched.
#[tokio::test]
async fn destroying_a_tenants_key_shreds_all_its_values_and_only_its_own() {
    let (app, tenant) = vault_app().await;
    let other = app.create_tenant("Bystander").await;
    app.set_plan(other, json!({ "addons": ["vault"] })).await;
    for name in ["a", "b"] {
        create(&app, tenant, json!({ "name": name, "credential_type": "api_key", "provider": "api", "value": format!("{name}-value") })).await;
    }
    create(&app, other, json!({ "name": "a", "credential_type": "api_key", "provider": "api", "value": "survives" })).await;

    let path = format!("/admin/tenants/{tenant}/destroy-key");
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        &path,
        Some(json!({ "confirm": other, "reason": "offboarded" })),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("confirm")),
        "the wrong tenant is not confirmation"
    );
    assert_eq!(
        value_of(&app, tenant, "a").await.0,
        200,
        "a refused request destroyed nothing"
    );
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        &path,
        Some(json!({ "confirm": tenant, "reason": "offboarded" })),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("destroyed")), "{b}");
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let r = app
        .bearer(Method::POST, &path, &admin.token)
        .json(&json!({ "confirm": tenant, "reason": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a tenant admin cannot erase");

    for name in ["a", "b"] {
        let (s, b) = value_of(&app, tenant, name).await;
        assert_eq!((s, b["error"].as_str()), (410, Some("gone")), "{b}");
    }
    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials",
        Some(
            json!({ "name": "c", "credential_type": "api_key", "provider": "api", "value": "new" }),
        ),
    )
    .await;
    assert_eq!(s, 410, "nothing new is sealed for an erased tenant");
    assert_eq!(value_of(&app, other, "a").await.1["value"], "survives");

    // A fresh key store (no cache) cannot open them either.
    let keys = aegis_command_api::app::open_keys(&app.config, app.state().executor.store())
        .await
        .unwrap();
    let agg = aegis_streams::AggregateRef::new(tenant, "vault", "credential", "a").unwrap();
    let (c, _) = app
        .state()
        .executor
        .load::<aegis_vault::CredentialAggregate>(&agg)
        .await
        .unwrap();
    let c = c.unwrap();
    let v = c.current().unwrap();
    assert!(keys
        .open(tenant, &c.id, v.version, &v.sealed)
        .await
        .is_err());

    let (s, r) = call(
        &app,
        tenant,
        Method::GET,
        "/audit/reconstruct?resource=credential/a",
        None,
    )
    .await;
    assert_eq!(
        (s, r["state"]["shredded"].as_bool()),
        (200, Some(true)),
        "{r}"
    );
    let (s, b) = call(&app, tenant, Method::GET, "/audit/verify", None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("intact")), "{b}");
    let (_, log) = app
        .caught_up(tenant, "/api/v1/audit-events?action=tenant_key.destroyed")
        .await;
    assert_eq!(log["data"][0]["actor"], "bootstrap", "{log}");
    // Repeating answers the first record.
    let (s, b2) = call(
        &app,
        tenant,
        Method::POST,
        &path,
        Some(json!({ "confirm": tenant, "reason": "again" })),
    )
    .await;
    assert_eq!((s, b2["reason"].as_str()), (200, Some("offboarded")));
}

/// Value reads are served from a cache the log keeps honest: a credential destroyed, or a
/// tenant key destroyed, through another instance stops reads on this one at once.
#[tokio::test]
async fn a_destroy_on_one_instance_stops_value_reads_on_another() {
    let (app, tenant) = vault_app().await;
    let (_other, base) = app.second_instance().await;
    let read_there = |name: &'static str| {
        let (http, base) = (app.http.clone(), base.clone());
        async move {
            http.get(format!("{base}/credentials/{name}/value"))
                .bearer_auth(aegis_tests::world::BOOTSTRAP)
                .header("X-Tenant-ID", tenant.to_string())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for name in ["one", "two"] {
        create(
            &app,
            tenant,
            json!({ "name": name, "credential_type": "api_key", "provider": "api", "value": "v" }),
        )
        .await;
    }
    // Warm the other instance's caches.
    assert_eq!(read_there("one").await, 200);
    assert_eq!(read_there("two").await, 200);

    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/one/destroy",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        eventually(Duration::from_secs(2), || async {
            read_there("one").await == 410
        })
        .await,
        "the other instance stops serving a destroyed credential"
    );

    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        &format!("/admin/tenants/{tenant}/destroy-key"),
        Some(json!({ "confirm": tenant, "reason": "offboarded" })),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        eventually(Duration::from_secs(2), || async {
            read_there("two").await == 410
        })
        .await,
        "the other instance drops the erased tenant's cached keys"
    );
}

/// An instance whose caches missed a change (a lost invalidation, a reconnect) still reads
/// the credential as the log holds it: the cache is confirmed against the log's last commit.
#[tokio::test]
async fn a_value_read_on_an_instance_that_missed_a_change_serves_the_log_version() {
    use aegis_runtime::command::{CommandContext, Executor};
    use aegis_runtime::directory::Directory;
    let (app, tenant) = vault_app().await;
    create(&app, tenant, json!({ "name": "db", "credential_type": "database", "provider": "env", "value": "v1-secret" })).await;
    // Another instance: its own caches, and no follower telling it of changes.
    let mut elsewhere = app.state().runtime.clone();
    let executor = Executor::new(app.state().executor.store().clone());
    elsewhere.credentials = Directory::new(executor.clone());
    elsewhere.executor = executor;
    let ctx = || CommandContext {
        meta: aegis_streams::Metadata::system("test"),
        msg_id: None,
        if_match: None,
    };
    let read = aegis_vault_services::for_value_read(&elsewhere, &ctx(), tenant, "db")
        .await
        .unwrap();
    assert_eq!(read.version(), 1);
    let (s, _) = call(
        &app,
        tenant,
        Method::POST,
        "/credentials/db/rotate",
        Some(json!({ "trigger": "emergency", "reason": "leaked" })),
    )
    .await;
    assert_eq!(s, 200);
    let read = aegis_vault_services::for_value_read(&elsewhere, &ctx(), tenant, "db")
        .await
        .unwrap();
    assert_eq!(read.version(), 2, "the leaked version is not served");
}
