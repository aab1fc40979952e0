//! Seed 003's leakage detection (issue 23) on real bytes: a git repository served on
//! loopback (dumb HTTP, as any static server can), cloned whole, every blob of every commit
//! read. A secret of the tenant's committed and deleted in a later commit is still found,
//! named by its keyed fingerprint, rotated by the policy, and triaged; a repeat scan joins
//! the incident instead of opening another; an unreachable target fails the scan.

use aegis_tests::git;
use aegis_tests::world::{eventually, free_port, serve};
use aegis_tests::TestApp;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// A repository whose first commit holds `leaked` in `config.env` and whose second commit
/// deletes the file, published under `root`.
fn repository(root: &Path, leaked: &str) {
    let work = git::init(root).expect("init");
    std::fs::write(work.join("README.md"), "# service\n").expect("write");
    std::fs::write(
        work.join("config.env"),
        format!("API_URL=https://api.example.test\nDEPLOY_TOKEN={leaked}\n"),
    )
    .expect("write");
    git::git(&work, &["add", "."]).expect("add");
    git::git(&work, &["commit", "-q", "-m", "config"]).expect("commit");
    git::git(&work, &["rm", "-q", "config.env"]).expect("rm");
    git::git(&work, &["commit", "-q", "-m", "oops, no secrets in git"]).expect("commit");
    git::publish(root).expect("publish");
}

async fn finished_scan(app: &TestApp, tenant: Uuid, id: &str) -> Value {
    let path = format!("/v1/leakage-detection/scans/{id}");
    let done = eventually(Duration::from_secs(60), || async {
        let (_, b) = app.call(tenant, Method::GET, &path, None).await;
        matches!(b["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    assert!(done, "the scan ended");
    app.call(tenant, Method::GET, &path, None).await.1
}

async fn spawn() -> (TestApp, Uuid) {
    let app = TestApp::spawn_with_config(|c| {
        c.ar_tick_secs = 1;
        c.egress_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let tenant = app.create_tenant("Leaks").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    (app, tenant)
}

#[tokio::test]
async fn a_secret_deleted_from_git_is_found_named_rotated_and_triaged() {
    let (app, tenant) = spawn().await;
    let leaked = format!("ghp_{}Zq9X", Uuid::now_v7().simple());
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/versioned-secrets",
            Some(json!({ "secretId": "deploy-token", "value": leaked })),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    let dir = tempfile::tempdir().expect("tempdir");
    repository(dir.path(), &leaked);
    let repo = git::serve(dir.path()).await;

    // The policy tells the security team's webhook, which takes no topic of its own; a
    // bystander webhook hears nothing of the leak.
    let team = receiver().await;
    let bystander = receiver().await;
    for (name, url) in [("sec-team", &team.0), ("bystander", &bystander.0)] {
        let (s, b) = app
            .call(
                tenant,
                Method::POST,
                "/webhooks/config",
                Some(json!({
                    "name": name, "kind": "generic", "url": url, "topics": ["incident.resolved"]
                })),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = app.call(tenant, Method::POST, "/v1/leakage-detection/policies", Some(json!({
        "name": "deploy tokens",
        "description": "tokens in configuration",
        "secretPatterns": [{ "type": "keyword", "pattern": "DEPLOY_TOKEN", "severity": "high" }],
        "scanTargets": ["github"],
        "actions": { "onDetection": "rotate", "notificationChannels": ["sec-team"] }
    }))).await;
    assert_eq!(s, 201, "{b}");
    let policy = b["policyId"].as_str().expect("policyId").to_string();

    let scan = |policy: String, repo: String| {
        json!({
        "targets": ["github"], "scope": { "repositories": [repo] }, "policyIds": [policy] })
    };
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/scan",
            Some(scan(policy.clone(), repo.clone())),
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (202, Some("queued")), "{b}");
    let first = b["scanId"].as_str().expect("scanId").to_string();
    let done = finished_scan(&app, tenant, &first).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"], 100);
    assert!(done["findings"].as_i64() >= Some(1), "{done}");
    assert!(done["bytesScanned"].as_i64() > Some(0), "{done}");

    // One incident, naming the secret (found in a commit the repository's head no longer has).
    let (s, b) = app
        .call(tenant, Method::GET, "/v1/leakage-detection/incidents", None)
        .await;
    assert_eq!(s, 200, "{b}");
    let named: Vec<&Value> = b["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter(|i| i["secretId"] == "deploy-token")
        .collect();
    assert_eq!(named.len(), 1, "{b}");
    assert_eq!(named[0]["severity"], "critical");
    assert_eq!(named[0]["source"], "github");
    let incident = named[0]["incidentId"].as_str().expect("id").to_string();
    let path = format!("/v1/leakage-detection/incidents/{incident}");
    let (_, view) = app.call(tenant, Method::GET, &path, None).await;
    assert_eq!(view["details"]["path"], "config.env", "{view}");
    let events: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["detected", "rotated"], "{view}");
    assert!(
        !view.to_string().contains(&leaked),
        "the incident never holds the value"
    );

    // The team heard of it: where, which secret, never the value.
    let told = eventually(Duration::from_secs(15), || async {
        team.1.lock().expect("seen").len() == 1
    })
    .await;
    let heard = team.1.lock().expect("seen").clone();
    assert!(told, "one notification: {heard:?}");
    assert_eq!(heard[0]["topic"], "leak.detected", "{heard:?}");
    assert_eq!(heard[0]["details"]["incident_id"], incident.as_str());
    assert_eq!(heard[0]["details"]["secret_id"], "deploy-token");
    assert_eq!(heard[0]["severity"], "critical");
    assert!(!heard[0].to_string().contains(&leaked));

    // Rotated through the vault: the secret has a new value.
    let (s, b) = app
        .call(tenant, Method::GET, "/credentials/deploy-token/value", None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_ne!(b["value"].as_str(), Some(leaked.as_str()));
    let (_, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/secrets/deploy-token/check",
            None,
        )
        .await;
    assert_eq!(b["hasActiveIncidents"], true, "{b}");
    assert_eq!(b["incidents"][0]["incidentId"], incident.as_str());

    // A second scan finds the same leak: it joins the incident and rotates nothing again.
    let (_, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/scan",
            Some(scan(policy.clone(), repo.clone())),
        )
        .await;
    let second = b["scanId"].as_str().expect("scanId").to_string();
    assert_eq!(
        finished_scan(&app, tenant, &second).await["status"],
        "completed"
    );
    let (_, b) = app
        .call(
            tenant,
            Method::GET,
            "/v1/leakage-detection/incidents?status=open",
            None,
        )
        .await;
    let open: Vec<&Value> = b["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter(|i| i["secretId"] == "deploy-token")
        .collect();
    assert_eq!(open.len(), 1, "{b}");
    let (_, view) = app.call(tenant, Method::GET, &path, None).await;
    let events: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["detected", "rotated", "seen_again"], "{view}");
    let (_, b) = app
        .call(
            tenant,
            Method::GET,
            "/v1/versioned-secrets/deploy-token/history",
            None,
        )
        .await;
    assert_eq!(
        b["versions"].as_array().map(Vec::len),
        Some(2),
        "rotated once: {b}"
    );

    // Triaged as a false positive: no longer active.
    let (s, b) = app
        .call(
            tenant,
            Method::PATCH,
            &path,
            Some(json!({ "status": "false_positive", "notes": "test fixture" })),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (200, Some("false_positive")),
        "{b}"
    );
    let (_, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/secrets/deploy-token/check",
            None,
        )
        .await;
    assert_eq!(b["hasActiveIncidents"], false, "{b}");
    let (_, b) = app
        .call(tenant, Method::GET, "/v1/leakage-detection/stats", None)
        .await;
    assert_eq!(b["resolvedIncidents"].as_i64(), Some(1), "{b}");
    assert_eq!(
        b["bySource"]["github"].as_i64(),
        b["totalIncidents"].as_i64(),
        "{b}"
    );
    let (s, _) = app
        .call(
            tenant,
            Method::PATCH,
            &path,
            Some(json!({ "status": "open" })),
        )
        .await;
    assert_eq!(s, 422, "an incident is never set back to open");

    // Another tenant sees none of it.
    let other = app.create_tenant("Elsewhere").await;
    app.set_plan(other, json!({ "addons": ["vault"] })).await;
    let (s, _) = app.call(other, Method::GET, &path, None).await;
    assert_eq!(s, 404);
    let (_, b) = app
        .call(other, Method::GET, "/v1/leakage-detection/incidents", None)
        .await;
    assert_eq!(b["incidents"], json!([]));
    let (s, _) = app
        .call(
            other,
            Method::GET,
            &format!("/v1/leakage-detection/scans/{first}"),
            None,
        )
        .await;
    assert_eq!(s, 404);

    // Seen again is not news; the bystander was never told.
    assert_eq!(team.1.lock().expect("seen").len(), 1);
    assert!(bystander.1.lock().expect("seen").is_empty());

    // The value never reached the logs.
    let logs = app.log_bytes().await;
    assert!(!String::from_utf8_lossy(&logs).contains(&leaked));
}

/// A webhook receiver on loopback: its URL and the JSON bodies it took.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let s = s.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    s.lock().expect("seen").push(v);
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    (format!("{}/hook", serve(app).await), seen)
}

#[tokio::test]
async fn a_repository_past_the_size_limit_fails_the_scan() {
    let app = TestApp::spawn_with_config(|c| {
        c.ar_tick_secs = 1;
        c.egress_allow = vec!["127.0.0.1".into()];
        c.leak_max_repository_mb = 1;
    })
    .await;
    let tenant = app.create_tenant("Big repos").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    // 9 MiB that do not compress, in one blob too large to be read: only the watch on the
    // transfer itself can see it.
    let dir = tempfile::tempdir().expect("tempdir");
    let work = git::init(dir.path()).expect("init");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..9 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(work.join("build.bin"), noise).expect("write");
    git::git(&work, &["add", "."]).expect("add");
    git::git(&work, &["commit", "-q", "-m", "artifacts"]).expect("commit");
    git::publish(dir.path()).expect("publish");
    let repo = git::serve(dir.path()).await;

    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/scan",
            Some(json!({ "targets": ["github"], "scope": { "repositories": [repo] } })),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let done = finished_scan(&app, tenant, b["scanId"].as_str().expect("scanId")).await;
    assert_eq!(done["status"], "failed", "never clean: {done}");
    assert!(
        done["reason"]
            .as_str()
            .is_some_and(|r| r.contains("larger than 1 MiB")),
        "{done}"
    );
}

#[tokio::test]
async fn an_unreachable_target_fails_the_scan_and_bad_requests_change_nothing() {
    let (app, tenant) = spawn().await;
    let nowhere = format!("http://127.0.0.1:{}/gone.git", free_port());
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/scan",
            Some(json!({ "targets": ["gitlab"], "scope": { "repositories": [nowhere] } })),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let done = finished_scan(&app, tenant, b["scanId"].as_str().expect("scanId")).await;
    assert_eq!(
        done["status"], "failed",
        "never completed with nothing found: {done}"
    );
    assert!(
        done["reason"]
            .as_str()
            .is_some_and(|r| r.contains("target 1")),
        "{done}"
    );
    assert_eq!(done["findings"], 0);

    // A pattern that does not compile, an unknown severity: 422, and no policy is made.
    for bad in [
        json!({ "name": "p", "secretPatterns": [{ "type": "regex", "pattern": "tok_[a-z", "severity": "high" }] }),
        json!({ "name": "p", "secretPatterns": [{ "type": "regex", "pattern": "x", "severity": "dire" }] }),
        json!({ "name": "p", "secretPatterns": [{ "type": "entropy", "pattern": "99", "severity": "low" }] }),
        json!({ "name": "p", "secretPatterns": [{ "type": "keyword", "pattern": "K", "severity": "low" }],
                "actions": { "onDetection": "alert", "notificationChannels": ["no-such-webhook"] } }),
    ] {
        let (s, b) = app
            .call(
                tenant,
                Method::POST,
                "/v1/leakage-detection/policies",
                Some(bad),
            )
            .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(
            b["details"]["code"], "validation_failed",
            "seed 003's error body: {b}"
        );
    }
    let (_, b) = app
        .call(tenant, Method::GET, "/v1/leakage-detection/policies", None)
        .await;
    assert_eq!(b["policies"], json!([]));

    // A scan naming a policy that does not exist, or nothing to read, is refused.
    let (s, _) = app.call(tenant, Method::POST, "/v1/leakage-detection/scan",
        Some(json!({ "targets": ["url"], "scope": { "urls": ["http://127.0.0.1:1/x"] }, "policyIds": ["nope"] }))).await;
    assert_eq!(s, 422);
    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/scan",
            Some(json!({ "targets": ["github"], "scope": {} })),
        )
        .await;
    assert_eq!(s, 422);
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/leakage-detection/scan",
            Some(json!({ "targets": ["url"], "scope": { "organizations": ["acme"] } })),
        )
        .await;
    assert_eq!(
        (s, b["details"]["field"].as_str()),
        (422, Some("scope.organizations")),
        "organizations need a git host: {b}"
    );

    // A report about a secret the tenant does not have is 404; one about a real one opens.
    let (s, _) = app.call(tenant, Method::POST, "/v1/leakage-detection/incidents", Some(json!({
        "secretId": "no-such-secret", "source": "pastebin", "location": "https://paste.example.test/x",
        "severity": "high", "details": {} }))).await;
    assert_eq!(s, 404);
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/v1/versioned-secrets",
            Some(json!({ "secretId": "api-key", "value": "v1-value" })),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app.call(tenant, Method::POST, "/v1/leakage-detection/incidents", Some(json!({
        "secretId": "api-key", "source": "pastebin", "location": "https://paste.example.test/x",
        "detectedAt": "2026-11-01T10:00:00Z", "severity": "high", "details": { "reporter": "bug bounty" } }))).await;
    assert_eq!((s, b["status"].as_str()), (201, Some("open")), "{b}");
    let (_, b) = app
        .call(
            tenant,
            Method::GET,
            "/v1/leakage-detection/incidents?severity=high&since=2026-10-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(b["incidents"].as_array().map(Vec::len), Some(1), "{b}");
    let (s, _) = app
        .call(
            tenant,
            Method::GET,
            "/v1/leakage-detection/incidents?severity=dire",
            None,
        )
        .await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn a_leaked_dynamic_password_names_its_lease_and_revoke_ends_it() {
    let (app, tenant) = spawn().await;
    let (s, b) = app.call(tenant, Method::POST, "/v1/dynamic-secrets/configs", Some(json!({
        "name": "leaky", "type": "database",
        "backend": { "type": "postgres", "connectionString": app.config.database_url, "credentials": {} },
        "ttl": { "default": "PT1H", "max": "PT2H" }
    }))).await;
    assert_eq!(s, 201, "{b}");
    let config = b["configId"].as_str().expect("configId").to_string();
    let (s, issued) = app
        .call(
            tenant,
            Method::POST,
            &format!("/v1/dynamic-secrets/configs/{config}/credentials"),
            Some(json!({ "ttl": "PT30M" })),
        )
        .await;
    assert_eq!(s, 200, "{issued}");
    let lease = issued["leaseId"].as_str().expect("lease").to_string();
    let user = issued["credentials"]["username"]
        .as_str()
        .expect("user")
        .to_string();
    let password = issued["credentials"]["password"]
        .as_str()
        .expect("password")
        .to_string();

    let dir = tempfile::tempdir().expect("tempdir");
    let work = git::init(dir.path()).expect("init");
    std::fs::write(
        work.join("ci.env"),
        format!("DB_USER={user}\nDB_PASSWORD={password}\n"),
    )
    .expect("write");
    git::git(&work, &["add", "."]).expect("add");
    git::git(&work, &["commit", "-q", "-m", "ci"]).expect("commit");
    git::publish(dir.path()).expect("publish");
    let repo = git::serve(dir.path()).await;
    let (s, b) = app.call(tenant, Method::POST, "/v1/leakage-detection/policies", Some(json!({
        "name": "db passwords",
        "secretPatterns": [{ "type": "regex", "pattern": "DB_PASSWORD=([A-Za-z0-9_-]{32})", "severity": "high" }],
        "actions": { "onDetection": "revoke" }
    }))).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app.call(tenant, Method::POST, "/v1/leakage-detection/scan", Some(json!({
        "targets": ["gitlab"], "scope": { "repositories": [repo] }, "policyIds": [b["policyId"]] }))).await;
    assert_eq!(s, 202, "{b}");
    let done = finished_scan(&app, tenant, b["scanId"].as_str().expect("scanId")).await;
    assert_eq!(done["status"], "completed", "{done}");

    let (_, b) = app
        .call(tenant, Method::GET, "/v1/leakage-detection/incidents", None)
        .await;
    let found: Vec<&Value> = b["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .filter(|i| i["secretId"] == lease.as_str())
        .collect();
    assert_eq!(found.len(), 1, "the incident names the lease: {b}");
    let (_, view) = app
        .call(
            tenant,
            Method::GET,
            &format!(
                "/v1/leakage-detection/incidents/{}",
                found[0]["incidentId"].as_str().expect("id")
            ),
            None,
        )
        .await;
    let events: Vec<&str> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events, ["detected", "revoked"], "{view}");
    let (_, leases) = app
        .call(
            tenant,
            Method::GET,
            &format!("/v1/dynamic-secrets/configs/{config}/leases"),
            None,
        )
        .await;
    let status = leases["leases"]
        .as_array()
        .expect("leases")
        .iter()
        .find(|l| l["leaseId"] == lease.as_str())
        .map(|l| l["status"].clone());
    assert_eq!(status, Some(json!("revoked")), "{leases}");
    let mut pg = sqlx::PgConnection::connect(&app.config.database_url)
        .await
        .expect("pg");
    let role: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(&user)
        .fetch_optional(&mut pg)
        .await
        .expect("query");
    assert!(role.is_none(), "the leaked role is gone");
}
