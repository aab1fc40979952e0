//! Seed 003's controls per tenant: entitlements, quotas with metering, request rate.

use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

async fn send(r: reqwest::RequestBuilder) -> (u16, Option<String>, Value) {
    let r = r.send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (
        r.status().as_u16(),
        retry,
        r.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn quotas_refuse_past_the_limit_and_only_successes_are_metered() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let other = app.create_tenant("Other").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let plan = app
        .set_plan(tenant, json!({ "quotas": { "api_key.create": 2 } }))
        .await;
    assert_eq!(plan["data"]["plan"]["quotas"]["api_key.create"], 2);

    app.api_key(&admin.token, &[]).await;
    let head = app.head().await;
    let (status, _, _) = send(
        app.bearer(Method::POST, "/api-keys", &admin.token)
            .json(&json!({ "name": "", "scopes": [] })),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        app.head().await,
        head,
        "a refused request is neither run nor billed"
    );
    app.api_key(&admin.token, &[]).await;
    let (status, retry, body) = send(
        app.bearer(Method::POST, "/api-keys", &admin.token)
            .json(&json!({ "name": "third", "scopes": [] })),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(
        (body["limit"].as_u64(), body["used"].as_u64()),
        (Some(2), Some(2))
    );
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!(
        (1..=31 * 86_400).contains(&retry),
        "until the month ends: {retry}"
    );

    let (status, _, usage) = send(app.bearer(Method::GET, "/api/v1/usage", &admin.token)).await;
    assert_eq!(status, 200);
    let of = |op: &str| {
        usage["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["operation"] == op)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        (
            of("api_key.create")["used"].as_u64(),
            of("api_key.create")["limit"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(
        of("user.create")["used"],
        1,
        "the admin user was created and metered"
    );
    assert!(of("agent.mint")["limit"].is_null());
    let (status, _, _) =
        send(app.bearer(Method::GET, "/api/v1/usage?period=2026-13", &admin.token)).await;
    assert_eq!(status, 422);

    // Each billable success is an event in the audit log, with its actor.
    let pos = app.head().await.to_string();
    let (_, _, audit) = send(
        app.bearer(
            Method::GET,
            "/api/v1/audit-events?action=usage.recorded",
            &admin.token,
        )
        .header("Aegis-Min-Position", &pos),
    )
    .await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 3, "{audit}");

    // Another tenant's quota is its own.
    let other_admin = app.user_with_role(other, Some("ADMIN")).await;
    for _ in 0..3 {
        app.api_key(&other_admin.token, &[]).await;
    }
}

#[tokio::test]
async fn entitlements_gate_routes_and_plans_are_validated() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let (status, _, body) = send(app.bearer(Method::GET, "/audit/log", &auditor.token)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("entitlement_required"))
    );
    assert_eq!(body["entitlement"], "vault");
    for bad in [
        json!({ "addons": ["gold"] }),
        json!({ "quotas": { "incident.read": 1 } }),
        json!({ "requests_per_second": 0 }),
        json!({ "addons": [], "owner": "me" }),
    ] {
        let (status, _, body) = send(
            app.admin(Method::PUT, &format!("/admin/tenants/{tenant}/plan"), None)
                .json(&bad),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, _, _) = send(
        app.admin(
            Method::PUT,
            &format!("/admin/tenants/{}/plan", uuid::Uuid::now_v7()),
            None,
        )
        .json(&json!({})),
    )
    .await;
    assert_eq!(status, 404);
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let (status, _, _) = send(app.bearer(Method::GET, "/audit/log", &auditor.token)).await;
    assert_eq!(status, 200, "entitled from the next request on");
    let (status, _, body) =
        send(app.admin(Method::GET, &format!("/admin/tenants/{tenant}"), None)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["plan"]["addons"], json!(["vault"]));
    // A tenant ADMIN cannot change its own plan.
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (status, _, body) = send(
        app.bearer(
            Method::PUT,
            &format!("/admin/tenants/{tenant}/plan"),
            &admin.token,
        )
        .json(&json!({ "addons": ["vault", "edge"] })),
    )
    .await;
    assert_eq!(
        (status, body["required_permission"].as_str()),
        (403, Some("tenant.update"))
    );
}

#[tokio::test]
async fn a_tenants_request_rate_is_limited_without_touching_other_tenants() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let other = app.create_tenant("Other").await;
    let reader = app.user_with_role(tenant, Some("AUDITOR")).await;
    let other_reader = app.user_with_role(other, Some("AUDITOR")).await;
    app.set_plan(tenant, json!({ "requests_per_second": 5 }))
        .await;
    let mut limited = None;
    let mut ok = 0;
    for _ in 0..40 {
        let (status, retry, body) =
            send(app.bearer(Method::GET, "/incidents", &reader.token)).await;
        match status {
            200 => ok += 1,
            429 => {
                assert_eq!(body["error"], "rate_limited");
                limited = retry;
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        limited.is_some(),
        "40 requests at once exceed 5/s with a 10 burst"
    );
    assert!(ok >= 10, "the burst is two seconds' worth: {ok}");
    assert_eq!(limited.unwrap(), "1");
    let (status, _, _) = send(app.bearer(Method::GET, "/incidents", &other_reader.token)).await;
    assert_eq!(status, 200, "another tenant is not slowed");
}

/// Sixteen metered successes of one principal at once are all billed, none lost to the
/// race for the usage subject, and they go through together (one commit, not sixteen
/// retries of one another).
#[tokio::test]
async fn concurrent_billable_successes_are_each_counted() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Busy").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let mints = (0..16).map(|i| {
        let (app, token) = (&app, admin.token.clone());
        async move {
            app.bearer(Method::POST, "/api/v1/agents", &token)
                .json(&serde_json::json!({ "name": format!("edge-{i}") }))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(mints).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let (status, _, usage) = send(app.bearer(Method::GET, "/api/v1/usage", &admin.token)).await;
    assert_eq!(status, 200);
    let minted = usage["data"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["operation"] == "agent.mint"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(minted["used"], 16, "{usage}");
}
