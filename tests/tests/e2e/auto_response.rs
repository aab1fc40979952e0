//! Auto-response rules (seed 000): the rule language checked on write, versions, modes.

use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn call(
    app: &TestApp,
    tenant: Uuid,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    app.call(tenant, method, path, body).await
}

fn seed_rule() -> Value {
    json!({
        "name": "quarantine_on_prompt_injection",
        "match": { "finding": "prompt_injection_detected" },
        "actions": [{ "type": "quarantine_agent", "target": "{event.agent_id}" }],
        "mode": "active",
        "approval_required": false
    })
}

#[tokio::test]
async fn rules_are_checked_versioned_moded_and_deleted() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Responders").await;
    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/auto-response/rules",
        Some(seed_rule()),
    )
    .await;
    assert_eq!(
        (s, b["entitlement"].as_str()),
        (403, Some("auto_response")),
        "{b}"
    );
    app.set_plan(tenant, json!({ "addons": ["auto_response"] }))
        .await;

    let (s, b) = call(
        &app,
        tenant,
        Method::POST,
        "/auto-response/rules",
        Some(seed_rule()),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let rule = &b["data"];
    assert_eq!(
        (rule["version"].as_u64(), rule["mode"].as_str()),
        (Some(1), Some("active"))
    );
    assert_eq!(
        rule["match"],
        json!({ "finding": { "eq": "prompt_injection_detected" } })
    );
    let id = rule["id"].as_str().unwrap().to_string();

    // Bad definitions name the path of the error and append nothing.
    let head = app.head().await;
    for (patch, field) in [
        (
            json!({ "match": { "any": [{ "severity": { "gt": "high" } }] } }),
            "match.any[0].severity.gt",
        ),
        (json!({ "match": {} }), "match"),
        (
            json!({ "actions": [{ "type": "quarantine_agent" }] }),
            "actions[0].target",
        ),
        (
            json!({ "actions": [{ "type": "block_ip", "target": "{event.ip}" }] }),
            "actions[0].type",
        ),
        (
            json!({ "actions": [{ "type": "notify", "message": "{agent}" }] }),
            "actions[0].message",
        ),
        (json!({ "name": "" }), "name"),
        (
            json!({ "throttle": { "max_runs": 5, "window_secs": 0 } }),
            "throttle.window_secs",
        ),
    ] {
        let mut body = seed_rule();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (s, b) = call(
            &app,
            tenant,
            Method::POST,
            "/auto-response/rules",
            Some(body),
        )
        .await;
        assert_eq!((s, b["field"].as_str()), (422, Some(field)), "{b}");
    }
    let (s, b) = call(&app, tenant, Method::POST, "/auto-response/rules", Some(json!({
        "name": "x", "match": { "a": 1 }, "actions": [{ "type": "block_ip", "target": "{event.ip}" }] }))).await;
    assert!(
        s == 422 && b["message"].as_str().unwrap().contains("edge manager"),
        "{b}"
    );
    assert_eq!(app.head().await, head);

    // Without a mode a rule starts in simulate.
    let mut quiet = seed_rule();
    quiet.as_object_mut().unwrap().remove("mode");
    let (_, b) = call(
        &app,
        tenant,
        Method::POST,
        "/auto-response/rules",
        Some(quiet),
    )
    .await;
    assert_eq!(b["data"]["mode"], "simulate");

    // An update is a new version; the old one stays readable; a stale If-Match is refused.
    let r = app
        .admin(
            Method::GET,
            &format!("/auto-response/rules/{id}"),
            Some(tenant),
        )
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let mut v2 = seed_rule();
    v2.as_object_mut().unwrap().remove("mode");
    v2["match"] = json!({ "finding": { "in": ["prompt_injection_detected", "jailbreak"] }, "severity": { "gte": 7 } });
    v2["throttle"] = json!({ "max_runs": 10, "window_secs": 60 });
    let (s, b) = call(
        &app,
        tenant,
        Method::PUT,
        &format!("/auto-response/rules/{id}"),
        Some(v2.clone()),
    )
    .await;
    assert_eq!((s, b["data"]["version"].as_u64()), (200, Some(2)), "{b}");
    let r = app
        .admin(
            Method::PUT,
            &format!("/auto-response/rules/{id}"),
            Some(tenant),
        )
        .header("If-Match", etag)
        .json(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let (_, b) = call(
        &app,
        tenant,
        Method::GET,
        &format!("/auto-response/rules/{id}/versions"),
        None,
    )
    .await;
    let versions = b["data"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0]["match"],
        json!({ "finding": { "eq": "prompt_injection_detected" } })
    );
    assert_eq!(
        versions[1]["throttle"],
        json!({ "max_runs": 10, "window_secs": 60 })
    );
    assert_eq!(versions[1]["created_by"], "platform_admin:bootstrap");

    // Modes, and the listing's filter.
    let (s, b) = call(
        &app,
        tenant,
        Method::PUT,
        &format!("/auto-response/rules/{id}/mode"),
        Some(json!({ "mode": "disabled", "reason": "noisy" })),
    )
    .await;
    assert_eq!((s, b["data"]["mode"].as_str()), (200, Some("disabled")));
    let pos = app.head().await;
    let list = |q: &'static str| {
        let app = &app;
        async move {
            let r = app
                .admin(
                    Method::GET,
                    &format!("/auto-response/rules{q}"),
                    Some(tenant),
                )
                .header("Aegis-Min-Position", pos.to_string())
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(list("").await["total"], 2);
    assert_eq!(list("?mode=disabled").await["data"][0]["version"], 2);
    assert_eq!(list("?mode=active").await["total"], 0);

    // An auditor reads and cannot write; another tenant sees nothing.
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let r = app
        .bearer(
            Method::GET,
            &format!("/auto-response/rules/{id}"),
            &auditor.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .bearer(Method::POST, "/auto-response/rules", &auditor.token)
        .json(&seed_rule())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let other = app.create_tenant("Elsewhere").await;
    app.set_plan(other, json!({ "addons": ["auto_response"] }))
        .await;
    let (s, _) = call(
        &app,
        other,
        Method::GET,
        &format!("/auto-response/rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Delete: gone from reads, history kept; deleting again answers the same.
    let (s, _) = call(
        &app,
        tenant,
        Method::DELETE,
        &format!("/auto-response/rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        tenant,
        Method::DELETE,
        &format!("/auto-response/rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(
        &app,
        tenant,
        Method::GET,
        &format!("/auto-response/rules/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, b) = call(
        &app,
        tenant,
        Method::GET,
        &format!("/auto-response/rules/{id}/versions"),
        None,
    )
    .await;
    assert_eq!(
        b["data"].as_array().unwrap().len(),
        2,
        "the history outlives the rule"
    );
    let pos = app.head().await;
    let r = app
        .admin(Method::GET, "/auto-response/rules", Some(tenant))
        .header("Aegis-Min-Position", pos.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["total"], 1);
}
