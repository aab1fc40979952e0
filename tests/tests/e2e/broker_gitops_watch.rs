//! GitOps observations (seed 004, BRD §26; issue 19): a patch request that executes begins a
//! watch on each Argo CD application mapped to what it changed (its agent, or a discovered
//! secret with its provider and reference), and the watch settles as Argo CD shows it: applied
//! once Synced and Healthy after the change, failed when degraded or gone, applied_unverified
//! when it never settles in time. A loopback stand-in answers Argo CD's application API to GET
//! alone; the observations are the requester's only.

use crate::broker_requests::{call, claim, complete};
use crate::broker_wraps::{Agent, Client1};
use aegis_tests::world::Login;
use aegis_tests::TestApp;
use axum::extract::Path;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "argocd-watch-token-0123456789abcdef";

/// What the stand-in saw: every request, as `METHOD path`, and GETs per application.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    gets: BTreeMap<String, u32>,
}

/// Argo CD's `GET /api/v1/applications/{name}`: `payments` progresses twice and then shows
/// Synced and Healthy, reconciled now; `ledger` is degraded; `stuck` never settles; anything
/// else is not there. Any other method is refused.
async fn argocd() -> (String, Arc<Mutex<Seen>>) {
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (s, refused) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/api/v1/applications/{name}",
            axum::routing::get(move |Path(name): Path<String>, h: HeaderMap| {
                let s = s.clone();
                async move {
                    let n = {
                        let mut s = s.lock().expect("lock");
                        s.requests.push(format!("GET /api/v1/applications/{name}"));
                        let n = s.gets.entry(name.clone()).or_default();
                        *n += 1;
                        *n
                    };
                    let bearer = h.get("authorization").and_then(|v| v.to_str().ok());
                    if bearer != Some(&format!("Bearer {TOKEN}")) {
                        return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "no session" })));
                    }
                    let now = chrono::Utc::now().to_rfc3339();
                    let status = match (name.as_str(), n) {
                        ("payments", 1..=2) | ("stuck", _) => {
                            json!({ "sync": { "status": "OutOfSync" }, "health": { "status": "Progressing" } })
                        }
                        ("payments", _) => json!({ "sync": { "status": "Synced" },
                            "health": { "status": "Healthy" }, "reconciledAt": now }),
                        ("ledger", _) => json!({ "sync": { "status": "Synced" },
                            "health": { "status": "Degraded" }, "reconciledAt": now }),
                        _ => {
                            return (StatusCode::NOT_FOUND,
                                axum::Json(json!({ "error": "application not found", "code": 5 })))
                        }
                    };
                    (StatusCode::OK, axum::Json(json!({
                        "metadata": { "name": name, "namespace": "argocd" },
                        "spec": { "project": "default" }, "status": status })))
                }
            }),
        )
        .fallback(move |method: HttpMethod, uri: axum::http::Uri| {
            let refused = refused.clone();
            async move {
                refused.lock().expect("lock").requests.push(format!("{method} {}", uri.path()));
                (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({ "error": "GET only" })))
            }
        });
    (aegis_tests::world::serve(app).await, seen)
}

async fn admin_call(app: &TestApp, admin: &Login, path: &str, body: Value) -> Value {
    let (s, b) = call(app, admin, Method::POST, path, Some(body)).await;
    assert_eq!(s, 201, "{path}: {b}");
    b
}

/// The requester's view of the request's observations once every watch has settled.
async fn settled(app: &TestApp, requester: &Login, id: &str) -> Vec<Value> {
    let path = format!("/api/v1/requests/{id}/gitops");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (s, list) = call(app, requester, Method::GET, &path, None).await;
        assert_eq!(s, 200, "{list}");
        let all = list.as_array().cloned().unwrap_or_default();
        let open = all
            .iter()
            .any(|o| matches!(o["polling_state"].as_str(), Some("queued" | "active")));
        if !all.is_empty() && !open {
            return all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watches did not settle: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Submits a patch of `prod/db`, has `approver` approve it and `agent` carry it out.
async fn executed_patch(
    app: &TestApp,
    c: &Client1<'_>,
    requester: &Login,
    approver: &Login,
    agent: &Agent,
) -> String {
    let r = admin_call(
        app,
        requester,
        "/api/v1/requests",
        json!({ "target_provider_type": "kubernetes", "target_secret_ref": "prod/db",
            "key_values": { "password": "rotated-db-password-7731" },
            "justification": "rotate after the leak" }),
    )
    .await;
    let id = r["id"].as_str().expect("id").to_string();
    let (s, a) = call(
        app,
        approver,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let job = claim(c, agent).await;
    assert_eq!(job["id"].as_str(), Some(id.as_str()), "{job}");
    complete(c, agent, &id).await;
    id
}

#[tokio::test]
async fn an_executed_patch_is_watched_until_argo_cd_shows_it_applied() {
    let (url, seen) = argocd().await;
    let app = TestApp::spawn_with_config(|c| {
        c.gitops_enabled = true;
        c.gitops_poll_ms = 150;
        c.gitops_timeout_secs = 3;
        c.egress_allow = vec!["127.0.0.1".into()];
    })
    .await;
    let tenant = app.create_tenant("gitops-watch").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let approver = app.user_with_role(tenant, Some("SECURITY")).await;
    let c = Client1::of(&app, tenant);
    let agent = c.mint("patcher").await;

    // The agent reports the secret the patch will change: its discovered id is a target.
    let (s, _, b) = c
        .agent(
            &agent,
            Method::POST,
            &format!("/api/v1/agents/{}/secrets/bulk", agent.id),
            Some(
                json!({ "cluster_name": "prod-eu", "provider_type": "kubernetes",
                "items": [{ "secret_ref": "prod/db", "version": "3" }] }),
            ),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // The admin wrote nothing, so its read does not wait for the agent's sync: look until the
    // read model shows it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let secret = loop {
        let (s, found) = call(
            &app,
            &admin,
            Method::GET,
            "/api/v1/secrets?ref_prefix=prod/db",
            None,
        )
        .await;
        assert_eq!(s, 200, "{found}");
        if let Some(id) = found["items"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never discovered: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let ep = admin_call(
        &app,
        &admin,
        "/api/v1/argocd-endpoints",
        json!({ "name": "hub", "base_url": url, "token": TOKEN }),
    )
    .await;
    let endpoint = ep["id"].as_str().expect("id").to_string();
    let mut mappings = BTreeMap::new();
    for (application, target) in [
        ("payments", json!({ "provider_connection_id": agent.id })),
        ("ledger", json!({ "secret_mapping_id": secret })),
        ("stuck", json!({ "provider_connection_id": agent.id })),
        ("gone", json!({ "secret_mapping_id": secret })),
        // Another agent's application: this patch does not touch it.
        (
            "elsewhere",
            json!({ "provider_connection_id": uuid::Uuid::now_v7() }),
        ),
    ] {
        let mut body = json!({ "argocd_endpoint_id": endpoint, "application_name": application,
            "application_namespace": "argocd" });
        body.as_object_mut()
            .expect("object")
            .extend(target.as_object().expect("object").clone());
        let m = admin_call(&app, &admin, "/api/v1/gitops-app-mappings", body).await;
        mappings.insert(m["id"].as_str().expect("id").to_string(), application);
    }

    let id = executed_patch(&app, &c, &requester, &approver, &agent).await;
    // The watches begin with the execution: the requester reads them at once.
    let (s, first) = call(
        &app,
        &requester,
        Method::GET,
        &format!("/api/v1/requests/{id}/gitops"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first.as_array().map(Vec::len), Some(4), "{first}");

    let all = settled(&app, &requester, &id).await;
    let by_app: BTreeMap<&str, &Value> = all
        .iter()
        .map(|o| (o["application_name"].as_str().expect("name"), o))
        .collect();
    assert_eq!(
        by_app.keys().copied().collect::<Vec<_>>(),
        ["gone", "ledger", "payments", "stuck"]
    );
    let payments = by_app["payments"];
    assert_eq!(payments["polling_state"], "applied", "{payments}");
    assert_eq!(payments["observed_state"], "Synced/Healthy");
    assert!(payments["polls_count"].as_u64() >= Some(3), "{payments}");
    assert!(payments["terminal_at"].is_string(), "{payments}");
    assert_eq!(by_app["ledger"]["polling_state"], "failed");
    assert_eq!(by_app["ledger"]["observed_state"], "Synced/Degraded");
    assert_eq!(by_app["gone"]["polling_state"], "failed");
    assert!(by_app["gone"]["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("no such application")));
    let stuck = by_app["stuck"];
    assert_eq!(stuck["polling_state"], "applied_unverified", "{stuck}");
    assert_eq!(stuck["observed_state"], "OutOfSync/Progressing");
    for o in &all {
        let m = o["mapping_id"].as_str().expect("mapping id");
        assert_eq!(
            mappings.get(m).copied(),
            o["application_name"].as_str(),
            "{o}"
        );
    }

    // Settled watches are polled no more, and Argo CD was only ever read.
    let polls = seen.lock().expect("lock").gets.clone();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = seen.lock().expect("lock").gets.clone();
    assert_eq!(polls, after, "settled watches stay settled");
    assert!(!after.contains_key("elsewhere"), "{after:?}");
    let requests = seen.lock().expect("lock").requests.clone();
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "{requests:?}"
    );

    // The observations are the requester's alone, and the tenant's.
    let (s, _) = call(
        &app,
        &approver,
        Method::GET,
        &format!("/api/v1/requests/{id}/gitops"),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let other = app.create_tenant("gitops-watch-other").await;
    let outsider = app.user_with_role(other, Some("ADMIN")).await;
    let (s, _) = call(
        &app,
        &outsider,
        Method::GET,
        &format!("/api/v1/requests/{id}/gitops"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let trail = app.log_bytes().await;
    assert!(
        !trail.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the token never reaches the log"
    );
}
