//! Seed 004's discovery (issue 18): agents report the secrets their clusters hold; operators
//! search them by cluster, provider, reference prefix, status and labels. Re-posting the same
//! set changes nothing, a change is a new observation, a full sync marks what is missing gone,
//! and nothing an agent sends about a value (a checksum, a value) is ever shown or kept.

use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn post_bulk(app: &TestApp, id: &str, secret: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(&format!("/api/v1/agents/{id}/secrets/bulk")))
        .header("X-Agent-Secret", secret)
        .json(&body)
        .send()
        .await
        .expect("bulk");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app
        .bearer(Method::GET, path, token)
        .header("Aegis-Min-Position", app.head().await.to_string())
        .send()
        .await
        .expect("get");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn sync(items: Value, full: bool) -> Value {
    json!({ "cluster_name": "prod-eu", "provider_type": "kubernetes", "items": items, "full_sync": full })
}

#[tokio::test]
async fn discovered_secrets_are_upserted_searched_and_marked_gone_without_values() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Discovery").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (agent, secret) = app.mint_agent(&admin.token, "prod-eu").await;
    let checksum = format!("sha256:{}", Uuid::now_v7().simple());
    let items = json!([
        { "secret_ref": "billing/db-password", "labels": { "team": "billing", "env": "prod" }, "version": "7", "checksum": checksum },
        { "secret_ref": "billing/stripe-key", "labels": { "team": "billing", "env": "staging" }, "version": "2" },
        { "secret_ref": "search/api-token", "labels": { "team": "search", "env": "prod" }, "version": "1" },
    ]);
    let (s, b) = post_bulk(&app, &agent, &secret, sync(items.clone(), false)).await;
    assert_eq!(
        (s, b["count"].as_u64(), b["changed"].as_u64()),
        (200, Some(3), Some(3)),
        "{b}"
    );
    let (s, again) = post_bulk(&app, &agent, &secret, sync(items.clone(), false)).await;
    assert_eq!(
        (s, again["changed"].as_u64()),
        (200, Some(0)),
        "the same set changes nothing: {again}"
    );
    assert_eq!(
        again["upserted_ids"], b["upserted_ids"],
        "the same secret keeps its id"
    );

    // A new version is a new observation.
    let mut changed = items.clone();
    changed[0]["version"] = json!("8");
    let (_, b) = post_bulk(&app, &agent, &secret, sync(changed.clone(), false)).await;
    assert_eq!(b["changed"].as_u64(), Some(1), "{b}");
    let db = b["upserted_ids"][0].as_str().expect("id").to_string();
    let (s, one) = get(&app, &admin.token, &format!("/api/v1/secrets/{db}")).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(
        (one["version"].as_str(), one["observations"].as_i64()),
        (Some("8"), Some(2))
    );
    assert_eq!(one["status"], "present");
    assert!(one["last_seen_at"].is_string(), "{one}");

    // Filters: labels are ANDed; a prefix is a prefix, not a pattern.
    let count = |b: &Value| b["total"].as_i64();
    let (_, b) = get(
        &app,
        &admin.token,
        "/api/v1/secrets?label=team:billing&label=env:prod",
    )
    .await;
    assert_eq!(count(&b), Some(1), "{b}");
    assert_eq!(b["items"][0]["secret_ref"], "billing/db-password");
    let (_, b) = get(&app, &admin.token, "/api/v1/secrets?ref_prefix=billing/").await;
    assert_eq!(count(&b), Some(2), "{b}");
    let (_, b) = get(&app, &admin.token, "/api/v1/secrets?ref_prefix=%25").await;
    assert_eq!(count(&b), Some(0), "{b}");
    let (_, b) = get(
        &app,
        &admin.token,
        "/api/v1/secrets?cluster_name=prod-eu&provider=kubernetes",
    )
    .await;
    assert_eq!(count(&b), Some(3), "{b}");
    let (_, b) = get(&app, &admin.token, "/api/v1/secrets?cluster_name=other").await;
    assert_eq!(count(&b), Some(0), "{b}");
    for bad in ["status=lost", "label=nocolon", "limit=0", "color=red"] {
        let (s, e) = get(&app, &admin.token, &format!("/api/v1/secrets?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }

    // A full sync without one marks it gone, once.
    let (_, b) = post_bulk(
        &app,
        &agent,
        &secret,
        sync(json!([changed[0], changed[1]]), true),
    )
    .await;
    assert_eq!(b["gone"].as_u64(), Some(1), "{b}");
    let (_, b) = post_bulk(
        &app,
        &agent,
        &secret,
        sync(json!([changed[0], changed[1]]), true),
    )
    .await;
    assert_eq!(b["gone"].as_u64(), Some(0), "{b}");
    let (_, b) = get(&app, &admin.token, "/api/v1/secrets?status=gone").await;
    assert_eq!(
        (count(&b), b["items"][0]["secret_ref"].as_str()),
        (Some(1), Some("search/api-token")),
        "{b}"
    );

    // Nothing about a value is kept or shown: a value is refused, a checksum never echoed.
    let (s, e) = post_bulk(
        &app,
        &agent,
        &secret,
        sync(json!([{ "secret_ref": "x/y", "value": "hunter2" }]), false),
    )
    .await;
    assert_eq!(s, 422, "an unknown field, `value`, is refused: {e}");
    let (_, all) = get(&app, &admin.token, "/api/v1/secrets").await;
    assert!(!all.to_string().contains(&checksum), "{all}");
    assert!(!all.to_string().contains("hunter2"));
    let audit = app
        .bearer(Method::GET, "/api/v1/audit-events?limit=200", &admin.token)
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("body");
    assert!(!audit.contains(&checksum));

    // Only the agent's own path; another tenant sees nothing.
    let (other, other_secret) = app.mint_agent(&admin.token, "other").await;
    let (s, _) = post_bulk(&app, &agent, &other_secret, sync(items.clone(), false)).await;
    assert_eq!(s, 401);
    let _ = other;
    let elsewhere = app.create_tenant("Elsewhere").await;
    let their_admin = app.user_with_role(elsewhere, Some("ADMIN")).await;
    let (_, b) = get(&app, &their_admin.token, "/api/v1/secrets").await;
    assert_eq!(count(&b), Some(0), "{b}");
    let (s, _) = get(&app, &their_admin.token, &format!("/api/v1/secrets/{db}")).await;
    assert_eq!(s, 404);
    // An auditor may look (metadata only).
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let (s, _) = get(&app, &auditor.token, "/api/v1/secrets").await;
    assert_eq!(s, 200);
}
