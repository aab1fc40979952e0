//! Seed 000's dashboard state: each user's own saved filters, versioned, guarded by If-Match.

use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

/// The caller's dashboard state and its ETag.
async fn state_of(app: &TestApp, token: &str) -> (String, Value) {
    let r = app
        .bearer(Method::GET, "/dashboard/state", token)
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    (etag, r.json::<Value>().await.unwrap())
}

#[tokio::test]
async fn each_user_keeps_their_own_dashboard_and_stale_saves_are_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Watchers").await;
    let ana = app.user_with_role(tenant, Some("AUDITOR")).await;
    let bo = app.user_with_role(tenant, Some("SECURITY")).await;
    let (etag, empty) = state_of(&app, &ana.token).await;
    assert_eq!(empty["data"]["filters"], json!({}));
    let filters = json!({ "incidents": { "severity": ["critical", "high"] }, "range": "24h" });
    let r = app
        .bearer(Method::PUT, "/dashboard/state", &ana.token)
        .header("If-Match", &etag)
        .json(&json!({ "filters": filters }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, saved) = state_of(&app, &ana.token).await;
    assert_eq!(saved["data"]["filters"], filters);
    assert!(saved["data"]["saved_at"].is_string());
    let (_, theirs) = state_of(&app, &bo.token).await;
    assert_eq!(
        theirs["data"]["filters"],
        json!({}),
        "another user's dashboard is their own"
    );

    // A save from a stale page is refused and changes nothing.
    let r = app
        .bearer(Method::PUT, "/dashboard/state", &ana.token)
        .header("If-Match", &etag)
        .json(&json!({ "filters": { "range": "7d" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let head = app.head().await;
    for bad in [
        json!({ "filters": [1, 2] }),
        json!({ "filters": { "a": "x".repeat(20_000) } }),
    ] {
        let r = app
            .bearer(Method::PUT, "/dashboard/state", &ana.token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
    }
    assert_eq!(app.head().await, head);
    let (_, still) = state_of(&app, &ana.token).await;
    assert_eq!(still["data"]["filters"], filters);
}
