//! Seed 004's access requests (issue 19): a read request goes from submission through an
//! approval to the agent's job and the requester's single retrieval, with the whole trail
//! under the request's id and no value in it; a patch's values reach only the agent that sets
//! them; approvals at the same moment approve once; bad input changes nothing; nobody acts in
//! another's name, sees another's request or another tenant's.

use crate::broker_wraps::{Agent, Client1};
use aegis_tests::world::Login;
use aegis_tests::TestApp;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// A user's call: status and body.
pub async fn call(
    app: &TestApp,
    who: &Login,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = app.bearer(method, path, &who.token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("send");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn read_body() -> Value {
    json!({
        "project_id": "payments", "environment": "prod",
        "target_provider_type": "kubernetes",
        "target_provider_config": { "cluster": "eu-1", "namespace": "payments" },
        "target_secret_ref": "prod/db", "target_keys": ["password"],
        "justification": "incident 42: the replica lost its credentials",
    })
}

async fn submit_read(app: &TestApp, who: &Login) -> Value {
    let (s, r) = call(
        app,
        who,
        Method::POST,
        "/api/v1/requests/read",
        Some(read_body()),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    r
}

/// The agent claims the next job; its body.
pub async fn claim(c: &Client1<'_>, agent: &Agent) -> Value {
    let (s, _, job) = c
        .agent(
            agent,
            Method::POST,
            &format!("/api/v1/agents/{}/jobs/claim", agent.id),
            None,
        )
        .await;
    assert_eq!(s, 200, "{job}");
    job
}

pub async fn complete(c: &Client1<'_>, agent: &Agent, job: &str) {
    let (s, _, b) = c
        .agent(
            agent,
            Method::POST,
            &format!("/api/v1/agents/{}/jobs/{job}/complete", agent.id),
            Some(json!({ "status": "succeeded" })),
        )
        .await;
    assert!(s == 200 || s == 204, "{s} {b}");
}

#[tokio::test]
async fn a_read_request_lives_its_whole_life_and_its_trail_holds_no_value() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("requests-life").await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let approver = app.user_with_role(tenant, Some("SECURITY")).await;
    let c = Client1::of(&app, tenant);
    let agent = c.mint("reader").await;

    let r = submit_read(&app, &requester).await;
    let id = r["id"].as_str().expect("id").to_string();
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(r["type"], "read");
    assert_eq!(r["requester_id"], requester.user.to_string());
    assert_eq!(r["target_keys"], json!(["password"]));
    assert_eq!(
        r["target_scope"],
        json!({ "project_id": "payments", "environment": "prod" })
    );

    // Nobody approves their own request; nobody votes in another's name.
    let (s, e) = call(
        &app,
        &requester,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, e["message"].as_str()),
        (403, Some("requester cannot approve own request")),
        "{e}"
    );
    let (s, e) = call(
        &app,
        &approver,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({ "approver_id": requester.user })),
    )
    .await;
    assert_eq!(s, 403, "{e}");

    // No job before the approval.
    let (s, _, none) = c
        .agent(
            &agent,
            Method::POST,
            &format!("/api/v1/agents/{}/jobs/claim", agent.id),
            None,
        )
        .await;
    assert_eq!(s, 204, "{none}");

    let (s, a) = call(
        &app,
        &approver,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({ "approver_id": approver.user, "comment": "go" })),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["status"], "approved");
    assert_eq!(a["job_id"], id.as_str());
    let (s, e) = call(
        &app,
        &approver,
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

    // The agent does the work: the job names what to read, the value goes back as a wrap.
    let job = claim(&c, &agent).await;
    assert_eq!(job["id"], id.as_str(), "{job}");
    assert_eq!(job["job_type"], "read_secret");
    assert_eq!(job["request_id"], id.as_str());
    assert_eq!(job["payload"]["keys"], json!(["password"]), "{job}");
    assert_eq!(job["payload"]["secret_ref"], "prod/db");
    assert_eq!(job["payload"]["provider_config"]["namespace"], "payments");
    let value = "hunter2-the-replica-password";
    let (s, w) = c
        .post_wrap(
            &agent,
            json!({ "request_id": id, "key_name": "password", "value": STANDARD.encode(value) }),
        )
        .await;
    assert_eq!(s, 201, "{w}");
    let wrap = w["wrap_id"].as_str().expect("wrap_id").to_string();
    complete(&c, &agent, &id).await;

    let (s, got) = call(
        &app,
        &requester,
        Method::GET,
        &format!("/api/v1/requests/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["status"], "executed", "{got}");
    let approvals = got["approvals"].as_array().expect("approvals");
    assert_eq!(approvals.len(), 1, "{got}");
    assert_eq!(approvals[0]["approver_id"], approver.user.to_string());
    assert_eq!(approvals[0]["decision"], "approved");
    assert_eq!(approvals[0]["comment"], "go");

    // The requester sees which values wait, never a value; only the requester takes one.
    let wraps_path = format!("/api/v1/requests/{id}/wraps?user_id={}", requester.user);
    let (s, list) = call(&app, &requester, Method::GET, &wraps_path, None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["id"], wrap.as_str());
    assert_eq!(list[0]["consumed"], false);
    assert!(!list.to_string().contains(&STANDARD.encode(value)));
    let (s, e) = call(
        &app,
        &approver,
        Method::GET,
        &format!("/api/v1/requests/{id}/wraps/{wrap}"),
        None,
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = call(
        &app,
        &approver,
        Method::GET,
        &format!(
            "/api/v1/requests/{id}/wraps/{wrap}?user_id={}",
            requester.user
        ),
        None,
    )
    .await;
    assert_eq!(s, 403, "the user_id is checked against who asks: {e}");
    let one = format!(
        "/api/v1/requests/{id}/wraps/{wrap}?user_id={}",
        requester.user
    );
    let (s, got) = call(&app, &requester, Method::GET, &one, None).await;
    assert_eq!(s, 200, "the refusals consumed nothing: {got}");
    assert_eq!(
        STANDARD
            .decode(got["value"].as_str().expect("value"))
            .expect("b64"),
        value.as_bytes()
    );
    let (s, e) = call(&app, &requester, Method::GET, &one, None).await;
    assert_eq!(
        (s, e["message"].as_str()),
        (410, Some("wrap already consumed")),
        "{e}"
    );

    // The whole trail, in order, under the request's id; no value, secret or token in it.
    let (s, trail) = app
        .caught_up(
            tenant,
            &format!("/api/v1/audit-events?correlation_id={id}&limit=100"),
        )
        .await;
    assert_eq!(s, 200, "{trail}");
    let mut events: Vec<&Value> = trail["data"].as_array().expect("data").iter().collect();
    events.sort_by_key(|e| (e["position"].as_i64(), e["index"].as_i64()));
    let types: Vec<&str> = events
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    let at = |t: &str| {
        types
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} missing from {types:?}"))
    };
    assert!(
        at("request.submitted.v1") < at("request.vote_cast.v1"),
        "{types:?}"
    );
    assert!(
        at("request.vote_cast.v1") < at("request.approved.v1"),
        "{types:?}"
    );
    assert!(
        at("request.approved.v1") < at("job.enqueued.v1"),
        "{types:?}"
    );
    assert!(at("job.enqueued.v1") < at("job.claimed.v1"), "{types:?}");
    assert!(at("job.claimed.v1") < at("wrap.created.v1"), "{types:?}");
    assert!(at("wrap.created.v1") < at("job.completed.v1"), "{types:?}");
    assert!(
        at("job.completed.v1") < at("request.finished.v1"),
        "{types:?}"
    );
    assert!(
        at("request.finished.v1") < at("wrap.retrieved.v1"),
        "{types:?}"
    );
    assert!(at("wrap.retrieved.v1") < at("wrap.denied.v1"), "{types:?}");
    let text = trail.to_string();
    for secret in [
        value.to_string(),
        STANDARD.encode(value),
        agent.secret.clone(),
        requester.token.clone(),
    ] {
        assert!(!text.contains(&secret), "the trail holds a secret");
    }
    let log = app.log_bytes().await;
    assert!(
        !log.windows(value.len()).any(|w| w == value.as_bytes()),
        "the log holds the value"
    );
}

#[tokio::test]
async fn a_patch_reaches_only_the_agent_that_sets_it() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("requests-patch").await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let approver = app.user_with_role(tenant, Some("SECURITY")).await;
    let c = Client1::of(&app, tenant);
    let agent = c.mint("patcher").await;
    let value = "n3w-db-password-for-the-replica";
    let (s, r) = call(
        &app,
        &requester,
        Method::POST,
        "/api/v1/requests",
        Some(json!({
            "requester_id": requester.user,
            "target_provider_type": "kubernetes", "target_secret_ref": "prod/db",
            "key_values": { "password": value }, "justification": "rotate after the leak",
        })),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["type"], "patch");
    assert_eq!(r["target_keys"], json!(["password"]));
    assert!(!r.to_string().contains(value), "the answer names keys only");
    let id = r["id"].as_str().expect("id").to_string();
    let log = app.log_bytes().await;
    assert!(
        !log.windows(value.len()).any(|w| w == value.as_bytes()),
        "sealed at once"
    );

    let (s, a) = call(
        &app,
        &approver,
        Method::POST,
        &format!("/api/v1/requests/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{a}");
    let job = claim(&c, &agent).await;
    assert_eq!(job["job_type"], "patch_secret", "{job}");
    let wraps = job["payload"]["wraps"].as_array().expect("wraps");
    assert_eq!(wraps.len(), 1, "{job}");
    assert_eq!(wraps[0]["key"], "password");
    let wrap = wraps[0]["wrap_id"].as_str().expect("wrap_id").to_string();

    // The requester cannot take the value meant for the agent.
    let (s, e) = call(
        &app,
        &requester,
        Method::GET,
        &format!("/api/v1/requests/{id}/wraps/{wrap}"),
        None,
    )
    .await;
    assert_eq!(s, 404, "{e}");
    let (s, got) = c.get_wrap(&agent, &wrap).await;
    assert_eq!(s, 200, "{got}");
    assert_eq!(
        STANDARD
            .decode(got["value"].as_str().expect("value"))
            .expect("b64"),
        value.as_bytes()
    );
    complete(&c, &agent, &id).await;
    let (_, got) = call(
        &app,
        &requester,
        Method::GET,
        &format!("/api/v1/requests/{id}"),
        None,
    )
    .await;
    assert_eq!(got["status"], "executed", "{got}");
}

#[tokio::test]
async fn approvals_at_the_same_moment_approve_once_and_approve_races_reject() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("requests-race").await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let mut approvers = Vec::new();
    for _ in 0..3 {
        approvers.push(app.user_with_role(tenant, Some("SECURITY")).await);
    }
    let r = submit_read(&app, &requester).await;
    let id = r["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/requests/{id}/approve");
    let votes = futures::future::join_all(
        approvers
            .iter()
            .map(|a| call(&app, a, Method::POST, &path, Some(json!({})))),
    )
    .await;
    let ok = votes.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{votes:?}");
    assert!(
        votes.iter().all(|(s, _)| *s == 200 || *s == 409),
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
    assert_eq!(count("request.approved.v1"), 1, "{trail}");
    assert_eq!(count("job.enqueued.v1"), 1, "{trail}");

    // Approve and reject at once: exactly one decides.
    let r = submit_read(&app, &requester).await;
    let id = r["id"].as_str().expect("id").to_string();
    let (yes, no) = (
        format!("/api/v1/requests/{id}/approve"),
        format!("/api/v1/requests/{id}/reject"),
    );
    let (a, b) = tokio::join!(
        call(&app, &approvers[0], Method::POST, &yes, Some(json!({}))),
        call(
            &app,
            &approvers[1],
            Method::POST,
            &no,
            Some(json!({ "reason": "not now" }))
        ),
    );
    assert_eq!(
        [a.0, b.0].iter().filter(|s| **s == 200).count(),
        1,
        "{a:?} {b:?}"
    );
    assert!(
        [a.0, b.0].iter().all(|s| *s == 200 || *s == 409),
        "{a:?} {b:?}"
    );
    let (_, got) = call(
        &app,
        &requester,
        Method::GET,
        &format!("/api/v1/requests/{id}"),
        None,
    )
    .await;
    let winner = if a.0 == 200 { "approved" } else { "rejected" };
    assert_eq!(got["status"], winner, "{got}");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("requests-bad").await;
    let requester = app.user_with_role(tenant, Some("SECURITY")).await;
    let other = app.user_with_role(tenant, Some("SECURITY")).await;
    let head = app.head().await;
    let patch = |kv: Value| {
        json!({ "target_provider_type": "kubernetes", "target_secret_ref": "prod/db",
        "key_values": kv, "justification": "why" })
    };
    for (path, body, field) in [
        ("/api/v1/requests", patch(json!({})), "key_values"),
        ("/api/v1/requests", patch(json!({ " ": "v" })), "key_values"),
        (
            "/api/v1/requests",
            json!({ "target_provider_type": "kubernetes", "target_secret_ref": "prod/db",
            "key_values": { "password": "v" } }),
            "justification",
        ),
        (
            "/api/v1/requests/read",
            json!({ "target_provider_type": "kubernetes", "target_secret_ref": "prod/db",
            "target_keys": [], "justification": "why" }),
            "target_keys",
        ),
        (
            "/api/v1/requests/read",
            json!({ "target_provider_type": " ", "target_secret_ref": "prod/db",
            "target_keys": ["a"], "justification": "why" }),
            "target_provider_type",
        ),
    ] {
        let (s, e) = call(&app, &requester, Method::POST, path, Some(body)).await;
        assert_eq!((s, e["field"].as_str()), (400, Some(field)), "{e}");
    }
    let (s, e) = call(
        &app,
        &requester,
        Method::POST,
        "/api/v1/requests/read",
        Some(
            json!({ "requester_id": other.user, "target_provider_type": "kubernetes",
            "target_secret_ref": "prod/db", "target_keys": ["a"], "justification": "why" }),
        ),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, e) = call(
        &app,
        &requester,
        Method::GET,
        "/api/v1/requests?status=done",
        None,
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("status")), "{e}");
    assert_eq!(app.head().await, head, "a refusal appends nothing");

    let r = submit_read(&app, &requester).await;
    let id = r["id"].as_str().expect("id").to_string();
    let (s, e) = call(
        &app,
        &other,
        Method::POST,
        &format!("/api/v1/requests/{id}/reject"),
        Some(json!({ "reason": "  " })),
    )
    .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("reason")), "{e}");
    let (s, e) = call(
        &app,
        &other,
        Method::POST,
        &format!("/api/v1/requests/{id}/cancel"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, e["message"].as_str()),
        (403, Some("only the original requester can cancel")),
        "{e}"
    );
    let (s, c) = call(
        &app,
        &requester,
        Method::POST,
        &format!("/api/v1/requests/{id}/cancel"),
        None,
    )
    .await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    let (s, e) = call(
        &app,
        &other,
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
    let (s, e) = call(
        &app,
        &requester,
        Method::POST,
        &format!("/api/v1/requests/{id}/cancel"),
        None,
    )
    .await;
    assert_eq!(s, 409, "{e}");
    let (s, e) = call(
        &app,
        &requester,
        Method::GET,
        &format!("/api/v1/requests/{}", Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(s, 404, "{e}");
}

#[tokio::test]
async fn requests_are_seen_by_their_requester_and_approvers_and_never_across_tenants() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("requests-seen").await;
    let elsewhere = app.create_tenant("requests-elsewhere").await;
    let c = Client1::of(&app, tenant);
    let (s, role) = c
        .admin(
            Method::POST,
            "/api/v1/roles",
            Some(json!({ "name": "requester", "permissions": ["secret.request", "request.read"] })),
        )
        .await;
    assert_eq!(s, 201, "{role}");
    let role_id = role["data"]["id"].as_str().expect("role id").to_string();
    let alice = app.user_with_role(tenant, Some(&role_id)).await;
    let bob = app.user_with_role(tenant, Some(&role_id)).await;
    let approver = app.user_with_role(tenant, Some("SECURITY")).await;
    let outsider = app.user_with_role(elsewhere, Some("ADMIN")).await;
    let mine = submit_read(&app, &alice).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let theirs = submit_read(&app, &bob).await["id"]
        .as_str()
        .expect("id")
        .to_string();

    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect()
    };
    // Alice sees her own, whatever she filters on; the approver sees both.
    let (s, list) = call(&app, &alice, Method::GET, "/api/v1/requests", None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(ids(&list), vec![mine.clone()]);
    let (_, list) = call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/v1/requests?requester_id={}", bob.user),
        None,
    )
    .await;
    assert_eq!(ids(&list), vec![mine.clone()]);
    let (s, _) = call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/v1/requests/{theirs}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // The approver wrote nothing: read-your-writes does not make it wait for Bob's request,
    // so the read models are brought to the head first.
    app.caught_up(tenant, "/api/v1/requests").await;
    let (_, list) = call(
        &app,
        &approver,
        Method::GET,
        "/api/v1/requests?status=pending",
        None,
    )
    .await;
    assert_eq!(
        ids(&list),
        vec![theirs.clone(), mine.clone()],
        "newest first"
    );
    let (_, list) = call(
        &app,
        &approver,
        Method::GET,
        &format!("/api/v1/requests?requester_id={}", bob.user),
        None,
    )
    .await;
    assert_eq!(ids(&list), vec![theirs.clone()]);
    // Alice may not vote at all (no secret.approve).
    let (s, _) = call(
        &app,
        &alice,
        Method::POST,
        &format!("/api/v1/requests/{theirs}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 403);

    // Another tenant's administrator finds nothing.
    let (_, list) = call(&app, &outsider, Method::GET, "/api/v1/requests", None).await;
    assert_eq!(ids(&list), Vec::<String>::new());
    for (method, path) in [
        (Method::GET, format!("/api/v1/requests/{mine}")),
        (Method::POST, format!("/api/v1/requests/{mine}/approve")),
        (Method::POST, format!("/api/v1/requests/{mine}/cancel")),
        (Method::GET, format!("/api/v1/requests/{mine}/wraps")),
    ] {
        let (s, e) = call(&app, &outsider, method, &path, Some(json!({}))).await;
        assert_eq!(s, 404, "{path}: {e}");
    }
}
