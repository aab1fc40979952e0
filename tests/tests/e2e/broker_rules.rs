//! Seed 004's workflows and policies (issue 19): edited with their permissions, names unique,
//! a workflow in use kept; the highest-priority matching policy binds a request to its
//! workflow, which the request keeps whatever is edited later; N-of-M approvals at the same
//! moment approve once; `min_approvers: 0` approves on submission; an approver role and a
//! request's TTL are enforced; break-glass bypasses approvals with a reason, tells the
//! workflow's channels and opens an incident; another tenant sees none of it.

use crate::broker_requests::call;
use aegis_tests::world::{eventually, Login};
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Creates a workflow; its id.
async fn workflow(app: &TestApp, admin: &Login, body: Value) -> String {
    let (s, w) = call(app, admin, Method::POST, "/api/v1/workflows", Some(body)).await;
    assert_eq!(s, 201, "{w}");
    w["id"].as_str().expect("id").to_string()
}

async fn policy(app: &TestApp, admin: &Login, body: Value) -> String {
    let (s, p) = call(app, admin, Method::POST, "/api/v1/policies", Some(body)).await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_str().expect("id").to_string()
}

async fn submit(app: &TestApp, who: &Login, environment: &str, secret_ref: &str) -> Value {
    let (s, r) = call(
        app,
        who,
        Method::POST,
        "/api/v1/requests/read",
        Some(
            json!({ "project_id": "payments", "environment": environment,
            "target_provider_type": "kubernetes", "target_secret_ref": secret_ref,
            "target_keys": ["password"], "justification": "on call" }),
        ),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    r
}

#[tokio::test]
async fn workflows_and_policies_are_edited_with_their_rules_and_kept_per_tenant() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("rules-crud").await;
    let other = app.create_tenant("rules-other").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let security = app.user_with_role(tenant, Some("SECURITY")).await;
    let outsider = app.user_with_role(other, Some("ADMIN")).await;

    let (s, w) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/workflows",
        Some(json!({ "name": "Two eyes", "min_approvers": 2 })),
    )
    .await;
    assert_eq!(s, 201, "{w}");
    let id = w["id"].as_str().expect("id").to_string();
    assert_eq!(w["wrap_ttl_created_seconds"], 7 * 86_400, "{w}");
    assert_eq!(w["wrap_ttl_approved_seconds"], 3600);
    assert_eq!(w["wrap_ttl_claimed_seconds"], 300);
    assert_eq!(
        (w["enabled"].as_bool(), w["is_default"].as_bool()),
        (Some(true), Some(false))
    );
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/workflows",
        Some(json!({ "name": "two EYES" })),
    )
    .await;
    assert_eq!(s, 409, "names are unique whatever their case: {e}");
    for (body, field) in [
        (
            json!({ "name": "x", "request_ttl_seconds": 0 }),
            "request_ttl_seconds",
        ),
        (json!({ "name": "x", "min_approvers": 99 }), "min_approvers"),
        (json!({ "name": " " }), "name"),
        (
            json!({ "name": "x", "notification_channels": [uuid::Uuid::now_v7()] }),
            "notification_channels",
        ),
    ] {
        let (s, e) = call(&app, &admin, Method::POST, "/api/v1/workflows", Some(body)).await;
        assert_eq!((s, e["field"].as_str()), (400, Some(field)), "{e}");
    }
    // Only workflow.edit edits; anyone with workflow.read reads.
    let (s, _) = call(
        &app,
        &security,
        Method::POST,
        "/api/v1/workflows",
        Some(json!({ "name": "mine" })),
    )
    .await;
    assert_eq!(s, 403);
    let (s, list) = call(&app, &security, Method::GET, "/api/v1/workflows", None).await;
    assert_eq!((s, list.as_array().map(Vec::len)), (200, Some(1)), "{list}");

    let (s, e) = call(&app, &admin, Method::POST, "/api/v1/policies",
        Some(json!({ "name": "prod", "workflow_id": uuid::Uuid::now_v7(), "selector": { "environment": "prod" } }))).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("workflow_id")), "{e}");
    let (s, e) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/policies",
        Some(json!({ "name": "prod", "workflow_id": id, "selector": { "cluster": "eu" } })),
    )
    .await;
    assert_eq!(s, 422, "an unknown selector key is refused: {e}");
    let pid = policy(
        &app,
        &admin,
        json!({ "name": "prod", "workflow_id": id, "priority": 5,
        "selector": { "environment": "prod" } }),
    )
    .await;
    let (s, e) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workflows/{id}"),
        None,
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (409, Some("in_use")), "{e}");

    let (s, _) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workflows/{id}"),
        Some(json!({ "name": "Two eyes", "min_approvers": 3, "description": "prod" })),
    )
    .await;
    assert_eq!(s, 204);
    let (_, w) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/workflows/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (w["min_approvers"].as_u64(), w["description"].as_str()),
        (Some(3), Some("prod")),
        "{w}"
    );
    let (_, p) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/policies/{pid}"),
        None,
    )
    .await;
    assert_eq!(p["selector"], json!({ "environment": "prod" }), "{p}");

    // Another tenant sees none of it.
    for path in [
        format!("/api/v1/workflows/{id}"),
        format!("/api/v1/policies/{pid}"),
    ] {
        let (s, _) = call(&app, &outsider, Method::GET, &path, None).await;
        assert_eq!(s, 404, "{path}");
        let (s, _) = call(&app, &outsider, Method::DELETE, &path, None).await;
        assert_eq!(s, 404, "{path}");
    }
    let (_, list) = call(&app, &outsider, Method::GET, "/api/v1/policies", None).await;
    assert_eq!(list, json!([]));

    let (s, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/policies/{pid}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/workflows/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/workflows/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_highest_priority_match_binds_a_request_and_the_binding_is_frozen() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("rules-binding").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let mut approvers = Vec::new();
    for _ in 0..3 {
        approvers.push(app.user_with_role(tenant, Some("SECURITY")).await);
    }
    let two = workflow(&app, &admin, json!({ "name": "two", "min_approvers": 2 })).await;
    let zero = workflow(
        &app,
        &admin,
        json!({ "name": "zero", "min_approvers": 0, "require_justification": false }),
    )
    .await;
    let default = workflow(
        &app,
        &admin,
        json!({ "name": "fallback", "min_approvers": 1, "is_default": true }),
    )
    .await;
    policy(&app, &admin, json!({ "name": "prod", "workflow_id": zero, "priority": 10, "selector": { "environment": "prod" } })).await;
    policy(
        &app,
        &admin,
        json!({ "name": "prod db", "workflow_id": two, "priority": 20,
        "selector": { "environment": "prod", "secret_ref_prefix": "prod/db" } }),
    )
    .await;

    let strict = submit(&app, &requester, "prod", "prod/db/main").await;
    assert_eq!(strict["workflow_id"], two.as_str(), "{strict}");
    assert_eq!(strict["min_approvers"], 2);
    let loose = submit(&app, &requester, "prod", "prod/cache").await;
    assert_eq!(
        (loose["workflow_id"].as_str(), loose["status"].as_str()),
        (Some(zero.as_str()), Some("approved")),
        "min_approvers 0 approves on submission: {loose}"
    );
    assert_eq!(loose["job_id"], loose["id"]);
    let other = submit(&app, &requester, "staging", "prod/db/main").await;
    let fresh = submit(&app, &requester, "prod", "prod/db/replica").await;
    assert_eq!(other["workflow_id"], default.as_str(), "{other}");

    // The workflow changes; the request in flight keeps what it was bound to.
    let (s, _) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/v1/workflows/{two}"),
        Some(json!({ "name": "two", "min_approvers": 1 })),
    )
    .await;
    assert_eq!(s, 204);
    let id = strict["id"].as_str().expect("id");
    let path = format!("/api/v1/requests/{id}/approve");
    let (s, first) = call(&app, &approvers[0], Method::POST, &path, Some(json!({}))).await;
    assert_eq!(
        (s, first["status"].as_str()),
        (200, Some("pending")),
        "{first}"
    );
    let (s, again) = call(&app, &approvers[0], Method::POST, &path, Some(json!({}))).await;
    assert_eq!(
        (s, again["message"].as_str()),
        (409, Some("approver has already voted on this request")),
        "{again}"
    );

    // Three approvers at the same moment on two needed (bound before the edit): one
    // approval, one job.
    let id = fresh["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/requests/{id}/approve");
    let votes = futures::future::join_all(
        approvers
            .iter()
            .map(|a| call(&app, a, Method::POST, &path, Some(json!({})))),
    )
    .await;
    assert!(
        votes.iter().all(|(s, _)| *s == 200 || *s == 409),
        "{votes:?}"
    );
    assert_eq!(
        votes.iter().filter(|(s, _)| *s == 200).count(),
        2,
        "{votes:?}"
    );
    let (_, trail) = app
        .caught_up(
            tenant,
            &format!("/api/v1/audit-events?correlation_id={id}&limit=100"),
        )
        .await;
    let count = |t: &str| {
        trail["data"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|e| e["event_type"] == t).count())
    };
    assert_eq!(
        (count("request.approved.v1"), count("job.enqueued.v1")),
        (1, 1),
        "{trail}"
    );
    let (_, got) = call(
        &app,
        &requester,
        Method::GET,
        &format!("/api/v1/requests/{id}"),
        None,
    )
    .await;
    assert_eq!(got["status"], "approved");
    assert_eq!(got["approvals"].as_array().map(Vec::len), Some(2), "{got}");
}

#[tokio::test]
async fn an_approver_role_self_approval_and_a_requests_ttl_are_enforced() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("rules-enforced").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let bystander = app.user_with_role(tenant, Some("SECURITY")).await;
    let (s, role) = call(
        &app,
        &admin,
        Method::POST,
        "/api/v1/roles",
        Some(json!({ "name": "db approvers", "permissions": ["secret.approve"] })),
    )
    .await;
    assert_eq!(s, 201, "{role}");
    let role_id = role["data"]["id"].as_str().expect("role").to_string();
    let dba = app.user_with_role(tenant, Some("SECURITY")).await;
    app.assign_role(tenant, dba.user, &role_id).await;
    let guarded = workflow(
        &app,
        &admin,
        json!({ "name": "dba", "approver_role_id": role_id }),
    )
    .await;
    let selfish = workflow(
        &app,
        &admin,
        json!({ "name": "self", "allow_self_approval": true }),
    )
    .await;
    let brief = workflow(
        &app,
        &admin,
        json!({ "name": "brief", "request_ttl_seconds": 1 }),
    )
    .await;
    for (name, env, wf) in [
        ("db", "db", &guarded),
        ("self", "dev", &selfish),
        ("brief", "brief", &brief),
    ] {
        policy(
            &app,
            &admin,
            json!({ "name": name, "workflow_id": wf, "selector": { "environment": env } }),
        )
        .await;
    }

    let r = submit(&app, &requester, "db", "db/main").await;
    let id = r["id"].as_str().expect("id").to_string();
    let (s, e) = call(
        &app,
        &bystander,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (403, Some("not_an_approver")),
        "{e}"
    );
    let (s, a) = call(
        &app,
        &dba,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!((s, a["status"].as_str()), (200, Some("approved")), "{a}");

    let r = submit(&app, &requester, "dev", "dev/db").await;
    let id = r["id"].as_str().expect("id").to_string();
    let (s, a) = call(
        &app,
        &requester,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, a["status"].as_str()),
        (200, Some("approved")),
        "this workflow allows it: {a}"
    );

    let r = submit(&app, &requester, "brief", "brief/db").await;
    let id = r["id"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s, e) = call(
        &app,
        &bystander,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, e["message"].as_str()),
        (409, Some("request is not pending")),
        "{e}"
    );
    let expired = eventually(Duration::from_secs(15), || async {
        call(
            &app,
            &requester,
            Method::GET,
            &format!("/api/v1/requests/{id}"),
            None,
        )
        .await
        .1["status"]
            == "expired"
    })
    .await;
    assert!(expired, "the expiry pass ends it");
}

#[tokio::test]
async fn break_glass_bypasses_approvals_once_with_a_reason_tells_the_channels_and_opens_an_incident(
) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let s = seen.clone();
    let receiver = axum::Router::new().route(
        "/approvers",
        axum::routing::post(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    s.lock().expect("lock").push(v);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let url = format!("{}/approvers", aegis_tests::world::serve(receiver).await);
    let app = TestApp::spawn_with_config(|c| c.egress_allow = vec!["127.0.0.1".into()]).await;
    let tenant = app.create_tenant("break-glass").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let oncall = app.user_with_role(tenant, Some("SECURITY")).await;
    let bystander = app.user_with_role(tenant, Some("SECURITY")).await;
    // The approvers' webhook takes no topic of its own: only what a workflow sends it.
    let (s, hook) = app
        .call(tenant, Method::POST, "/webhooks/config",
            Some(json!({ "name": "approvers", "kind": "generic", "url": url, "topics": ["incident.resolved"] })))
        .await;
    assert_eq!(s, 201, "{hook}");
    let hook_id = hook["data"]["id"].as_str().expect("hook id").to_string();
    workflow(
        &app,
        &admin,
        json!({ "name": "guarded", "min_approvers": 2, "is_default": true,
        "notification_channels": [hook_id], "break_glass_user_ids": [oncall.user] }),
    )
    .await;

    let r = submit(&app, &requester, "prod", "prod/db").await;
    let id = r["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/requests/{id}/break-glass");
    let (s, e) = call(
        &app,
        &bystander,
        Method::POST,
        &path,
        Some(json!({ "reason": "me too" })),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (403, Some("not_break_glass")),
        "{e}"
    );
    let (s, e) = call(&app, &oncall, Method::POST, &path, Some(json!({}))).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("reason")), "{e}");
    let reason = "payments are down and the DBA is unreachable";
    let (s, b) = call(
        &app,
        &oncall,
        Method::POST,
        &path,
        Some(json!({ "reason": reason })),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("approved")), "{b}");
    assert_eq!(
        b["break_glass"],
        json!({ "actor_id": oncall.user, "reason": reason })
    );
    let (s, _) = call(
        &app,
        &oncall,
        Method::POST,
        &path,
        Some(json!({ "reason": reason })),
    )
    .await;
    assert_eq!(s, 409, "once");

    // Told through the workflow's channel, and an incident is open.
    let told = eventually(Duration::from_secs(15), || async {
        !seen.lock().expect("lock").is_empty()
    })
    .await;
    let got = seen.lock().expect("lock").clone();
    assert!(told, "the approvers' webhook was not told");
    assert_eq!(got[0]["topic"], "access.break_glass", "{got:?}");
    assert_eq!(got[0]["details"]["request_id"], id.as_str());
    assert_eq!(got[0]["details"]["reason"], reason);
    let (_, incidents) = app.caught_up(tenant, "/incidents").await;
    let text = incidents.to_string();
    assert!(
        text.contains(&format!(
            "Break-glass: approvals bypassed on access request {id}"
        )),
        "{incidents}"
    );
    let (_, trail) = app
        .caught_up(
            tenant,
            &format!("/api/v1/audit-events?correlation_id={id}&limit=100"),
        )
        .await;
    let types: Vec<&str> = trail["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    for t in [
        "request.break_glass.v1",
        "request.approved.v1",
        "job.enqueued.v1",
        "incident.opened.v1",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
}

#[tokio::test]
async fn a_value_handed_over_waits_no_longer_than_its_workflow_lets_it() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("rules-claimed").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    workflow(
        &app,
        &admin,
        json!({ "name": "quick", "min_approvers": 0, "is_default": true,
        "wrap_ttl_claimed_seconds": 60 }),
    )
    .await;
    let c = crate::broker_wraps::Client1::of(&app, tenant);
    let agent = c.mint("reader").await;
    let r = submit(&app, &requester, "prod", "prod/db").await;
    assert_eq!(r["status"], "approved", "{r}");
    let id = r["id"].as_str().expect("id");
    let (s, _, job) = c
        .agent(
            &agent,
            Method::POST,
            &format!("/api/v1/agents/{}/jobs/claim", agent.id),
            None,
        )
        .await;
    assert_eq!((s, job["request_id"].as_str()), (200, Some(id)), "{job}");
    let before = chrono::Utc::now();
    let (s, w) = c
        .post_wrap(&agent, json!({ "request_id": id, "key_name": "password", "value": "aHVudGVyMg==", "ttl_seconds": 3600 }))
        .await;
    assert_eq!(s, 201, "{w}");
    let expires: chrono::DateTime<chrono::Utc> = w["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("a time");
    let waits = (expires - before).num_seconds();
    assert!(
        (55..=61).contains(&waits),
        "the workflow caps the wait at 60 s, not the agent's hour: {waits} s"
    );
}
