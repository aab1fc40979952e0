//! The decision log (issue 23, DESIGN.md's `AEGIS_ACCESS`): an audited seed 003 request leaves
//! who asked for what and what was decided, allowed or denied, readable by the tenant's
//! auditors at `/audit/decisions` and by no other tenant, and signed by access checkpoints.

use aegis_tests::world::eventually;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = app
        .bearer(Method::GET, path, token)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn policy() -> Value {
    json!({ "name": "tokens", "secretPatterns": [{ "type": "keyword", "pattern": "token", "severity": "low" }] })
}

#[tokio::test]
async fn audited_requests_are_logged_allowed_or_denied_per_tenant_and_checkpointed() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Decisions").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;

    // Allowed: an audited route (create policy), with a correlation id.
    let r = app
        .bearer(Method::POST, "/v1/leakage-detection/policies", &admin.token)
        .header("X-Correlation-ID", "corr-123")
        .json(&policy())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let request_id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // Not audited (a plain list): no record.
    let (s, _) = get(&app, &admin.token, "/v1/leakage-detection/policies").await;
    assert_eq!(s, 200);
    // Denied: the auditor may not create policies.
    let r = app
        .bearer(
            Method::POST,
            "/v1/leakage-detection/policies",
            &auditor.token,
        )
        .json(&policy())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);

    let logged = eventually(Duration::from_secs(10), || async {
        let (_, b) = get(&app, &auditor.token, "/audit/decisions").await;
        b["data"].as_array().is_some_and(|d| d.len() >= 2)
    })
    .await;
    assert!(logged, "both decisions reach the log");
    let (s, b) = get(&app, &auditor.token, "/audit/decisions").await;
    assert_eq!(s, 200, "{b}");
    let data = b["data"].as_array().expect("data");
    assert_eq!(data.len(), 2, "the list was not audited: {b}");
    let allowed = &data[0];
    assert_eq!(allowed["action"], "POST /v1/leakage-detection/policies");
    assert_eq!(allowed["resource"], "/v1/leakage-detection/policies");
    assert_eq!(
        (allowed["decision"].as_str(), allowed["status"].as_u64()),
        (Some("allowed"), Some(201))
    );
    assert_eq!(allowed["principal"], admin.user.to_string());
    assert_eq!(allowed["correlationId"], "corr-123");
    assert_eq!(allowed["requestId"].as_str(), request_id.as_deref());
    assert_eq!(allowed["tenant"], tenant.to_string());
    let denied = &data[1];
    assert_eq!(
        (denied["decision"].as_str(), denied["status"].as_u64()),
        (Some("denied"), Some(403))
    );
    assert_eq!(denied["principal"], auditor.user.to_string());

    // Filters and pages.
    let (_, b) = get(&app, &auditor.token, "/audit/decisions?decision=denied").await;
    assert_eq!(b["data"].as_array().map(Vec::len), Some(1), "{b}");
    let (_, first) = get(&app, &auditor.token, "/audit/decisions?limit=1").await;
    assert_eq!(first["data"][0]["decision"], "allowed");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, second) = get(
        &app,
        &auditor.token,
        &format!("/audit/decisions?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["data"][0]["decision"], "denied", "{second}");
    let (s, _) = get(&app, &auditor.token, "/audit/decisions?decision=maybe").await;
    assert_eq!(s, 422);

    // Another tenant's auditor sees nothing of it.
    let other = app.create_tenant("Elsewhere").await;
    let stranger = app.user_with_role(other, Some("AUDITOR")).await;
    let (s, b) = get(&app, &stranger.token, "/audit/decisions").await;
    assert_eq!((s, b["data"].clone()), (200, json!([])), "{b}");

    // Nothing was lost on the way, and the count says so.
    assert!(app
        .metrics()
        .await
        .contains("aegis_access_log_lost_total 0"));

    // An access checkpoint signs the batches, under its own label.
    let state = app.state();
    let c = aegis_reactors::audit_checkpoints::access_checkpoint_once(
        &state.executor,
        &state.audit_key,
    )
    .await
    .expect("checkpoint")
    .expect("something to sign");
    let last = data
        .iter()
        .filter_map(|d| d["sequence"].as_u64())
        .max()
        .expect("sequences");
    assert!(c.from == 1 && c.to >= last && c.count >= 1, "{c:?}");
    let root: [u8; 32] = c.root.clone().try_into().expect("32 bytes");
    let signed = aegis_streams::merkle::access_checkpoint_message(c.from, c.to, c.count, &root);
    let signature = ed25519_dalek::Signature::from_slice(&c.signature).expect("signature");
    use ed25519_dalek::Verifier;
    state
        .audit_key
        .verifying_key()
        .verify(&signed, &signature)
        .expect("the checkpoint verifies");
    let events = aegis_streams::merkle::checkpoint_message(c.from, c.to, c.count, &root);
    assert!(
        state
            .audit_key
            .verifying_key()
            .verify(&events, &signature)
            .is_err(),
        "it cannot pass for an event-log checkpoint"
    );
}
