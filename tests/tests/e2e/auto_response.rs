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

async fn simulate(app: &TestApp, tenant: Uuid, body: Value) -> (u16, Vec<Value>) {
    let r = app
        .admin(Method::POST, "/auto-response/simulate", Some(tenant))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let lines = if status == 200 {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    (status, lines)
}

/// Replay real history through a draft and a saved version: matches with rendered actions,
/// the throttle applied as it would have been, a summary, and nothing appended.
#[tokio::test]
async fn simulation_replays_history_through_a_rule_without_side_effects() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Replay").await;
    app.set_plan(tenant, json!({ "addons": ["auto_response"] }))
        .await;
    for (i, severity) in ["critical", "low", "critical", "critical", "low"]
        .iter()
        .enumerate()
    {
        let mut body = aegis_tests::world::incident(&format!("i{i}"), severity);
        body["agent_id"] = json!(format!("agent-{i}"));
        app.open_incident(tenant, body).await;
    }
    let other = app.create_tenant("Quiet").await;
    app.set_plan(other, json!({ "addons": ["auto_response"] }))
        .await;
    app.open_incident(other, aegis_tests::world::incident("theirs", "critical"))
        .await;

    let draft = json!({
        "name": "contain critical",
        "match": { "event_type": "incident.opened.v1", "severity": "critical" },
        "actions": [{ "type": "quarantine_agent", "target": "{event.agent_id}" },
                    { "type": "notify", "message": "quarantined {event.agent_id}" }],
        "throttle": { "max_runs": 2, "window_secs": 3600 }
    });
    let head = app.head().await;
    let (s, lines) = simulate(&app, tenant, json!({ "rule": draft })).await;
    assert_eq!(s, 200, "{lines:?}");
    let matches: Vec<&Value> = lines.iter().filter(|l| l["type"] == "match").collect();
    assert_eq!(matches.len(), 3, "{lines:?}");
    let targets: Vec<&str> = matches
        .iter()
        .map(|m| m["actions"][0]["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        ["agent-0", "agent-2", "agent-3"],
        "only this tenant's events"
    );
    let throttled: Vec<bool> = matches
        .iter()
        .map(|m| m["throttled"].as_bool().unwrap())
        .collect();
    assert_eq!(
        throttled,
        [false, false, true],
        "two runs per hour, as the rule says"
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(
        (
            summary["matched"].as_u64(),
            summary["would_run"].as_u64(),
            summary["throttled"].as_u64(),
            summary["executed"].as_u64()
        ),
        (Some(3), Some(2), Some(1), Some(0))
    );
    assert!(summary["scanned"].as_u64().unwrap() >= 5);
    assert_eq!(app.head().await, head, "a simulation appends nothing");

    // A saved rule, by version: version 1 matched critical, version 2 matches low.
    let mut saved = draft.clone();
    saved["throttle"] = json!({ "max_runs": 0, "window_secs": 0 });
    let (_, b) = app
        .call(
            tenant,
            Method::POST,
            "/auto-response/rules",
            Some(saved.clone()),
        )
        .await;
    let id = b["data"]["id"].as_str().unwrap().to_string();
    saved["match"]["severity"] = json!("low");
    let (s, _) = app
        .call(
            tenant,
            Method::PUT,
            &format!("/auto-response/rules/{id}"),
            Some(saved),
        )
        .await;
    assert_eq!(s, 200);
    let count = |lines: &[Value]| lines.last().unwrap()["matched"].as_u64().unwrap();
    let (_, now) = simulate(&app, tenant, json!({ "rule_id": id })).await;
    let (_, then) = simulate(&app, tenant, json!({ "rule_id": id, "version": 1 })).await;
    assert_eq!((count(&now), count(&then)), (2, 3));
    // A position range narrows the replay.
    let (_, first) = simulate(
        &app,
        tenant,
        json!({ "rule_id": id, "version": 1, "to": "1" }),
    )
    .await;
    assert_eq!(count(&first), 0);

    for (body, status) in [
        (json!({}), 422),
        (json!({ "rule_id": id, "rule": draft }), 422),
        (json!({ "rule_id": id, "version": 9 }), 404),
        (json!({ "rule_id": Uuid::now_v7() }), 404),
        (json!({ "rule": draft, "from": "yesterday" }), 422),
        (
            json!({ "rule": { "name": "x", "match": { "a": { "gt": "b" } }, "actions": [{ "type": "notify" }] } }),
            422,
        ),
    ] {
        let (s, lines) = simulate(&app, tenant, body.clone()).await;
        assert_eq!(s, status, "{body}: {lines:?}");
    }
    // A security analyst may simulate; an auditor may not.
    let analyst = app.user_with_role(tenant, Some("SECURITY")).await;
    let r = app
        .bearer(Method::POST, "/auto-response/simulate", &analyst.token)
        .json(&json!({ "rule": draft }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let r = app
        .bearer(Method::POST, "/auto-response/simulate", &auditor.token)
        .json(&json!({ "rule": draft }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
