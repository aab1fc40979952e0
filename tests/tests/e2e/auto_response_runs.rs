//! The auto-response reactor end to end: rules act through commands on real events and record
//! each run; simulate-mode rules only record; approvals wait, run on approve, never on reject,
//! and expire; the blast-radius brake trips a rule to simulate; the kill switch refuses agents.

use aegis_tests::world::{eventually, incident};
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

const WITHIN: Duration = Duration::from_secs(15);

async fn responder_tenant(app: &TestApp, name: &str) -> Uuid {
    let tenant = app.create_tenant(name).await;
    app.set_plan(tenant, json!({ "addons": ["auto_response"] }))
        .await;
    tenant
}

/// Mints an agent; its id and secret.
async fn agent(app: &TestApp, tenant: Uuid, name: &str) -> (String, String) {
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/api/v1/agents",
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    (
        b["data"]["id"].as_str().unwrap().to_string(),
        b["data"]["agent_secret"].as_str().unwrap().to_string(),
    )
}

/// The agent's heartbeat: status and error code.
async fn beat(app: &TestApp, id: &str, secret: &str) -> (u16, Option<String>) {
    let r = app
        .http
        .post(app.url(&format!("/api/v1/agents/{id}/heartbeat")))
        .header("X-Agent-Secret", secret)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body["error"].as_str().map(str::to_string))
}

async fn create_rule(app: &TestApp, tenant: Uuid, rule: Value) -> String {
    let (s, b) = app
        .call(tenant, Method::POST, "/auto-response/rules", Some(rule))
        .await;
    assert_eq!(s, 201, "{b}");
    b["data"]["id"].as_str().unwrap().to_string()
}

/// The rule's runs once `count` of them have completed (not `running`).
async fn runs_of(app: &TestApp, tenant: Uuid, rule: &str, count: usize) -> Vec<Value> {
    let path = format!("/auto-response/runs?rule_id={rule}");
    let done = |b: &Value| {
        b["data"]
            .as_array()
            .map(|runs| runs.iter().filter(|r| r["result"] != "running").count() >= count)
            .unwrap_or(false)
    };
    let ok = eventually(WITHIN, || async {
        let (_, b) = app.call(tenant, Method::GET, &path, None).await;
        done(&b)
    })
    .await;
    let (_, b) = app.caught_up(tenant, &path).await;
    assert!(ok, "{count} completed runs of {rule} expected: {b}");
    b["data"].as_array().unwrap().clone()
}

fn critical_on(agent: &str) -> Value {
    let mut body = incident("prompt injection", "critical");
    body["agent_id"] = json!(agent);
    body
}

/// An active rule quarantines the agent named by the event, through the agents' own command;
/// the same rule in simulate mode records what it would have done and does nothing; a rule
/// that opens incidents on incidents runs once per incident, never on its own.
#[tokio::test]
async fn an_active_rule_acts_through_commands_and_records_every_run() {
    let app = TestApp::spawn().await;
    let tenant = responder_tenant(&app, "Responders").await;
    let other = responder_tenant(&app, "Bystanders").await;
    let (a1, s1) = agent(&app, tenant, "edge-1").await;
    let (a2, s2) = agent(&app, tenant, "edge-2").await;
    let quarantine = create_rule(
        &app,
        tenant,
        json!({
            "name": "quarantine on critical",
            "match": { "event_type": "incident.opened.v1", "severity": "critical" },
            "actions": [{ "type": "quarantine_agent", "target": "{event.agent_id}" }],
            "mode": "active"
        }),
    )
    .await;
    let shadow = create_rule(
        &app,
        tenant,
        json!({
            "name": "shadow",
            "match": { "event_type": "incident.opened.v1", "agent_id": a2 },
            "actions": [{ "type": "quarantine_agent", "target": "{event.agent_id}" }],
            "mode": "simulate"
        }),
    )
    .await;
    let follow_up = create_rule(
        &app,
        tenant,
        json!({
            "name": "follow up",
            "match": { "event_type": "incident.opened.v1" },
            "actions": [{ "type": "open_incident", "title": "Follow up: {event.title}", "severity": "low" }],
            "mode": "active"
        }),
    )
    .await;

    let (incident_id, _, _) = app.open_incident(tenant, critical_on(&a1)).await;
    let runs = runs_of(&app, tenant, &quarantine, 1).await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (
            run["result"].as_str(),
            run["mode"].as_str(),
            run["rule_version"].as_i64()
        ),
        (Some("succeeded"), Some("active"), Some(1)),
        "{run}"
    );
    assert_eq!(run["trigger_event_type"], "incident.opened.v1");
    assert_eq!(run["trigger_aggregate"], format!("incident/{incident_id}"));
    assert_eq!(run["actions"][0]["target"], json!(a1));
    assert_eq!(run["actions"][0]["outcome"], "done");
    assert_eq!(
        beat(&app, &a1, &s1).await,
        (403, Some("agent_quarantined".into()))
    );
    let (s, one) = app
        .call(
            tenant,
            Method::GET,
            &format!("/auto-response/runs/{}", run["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((s, &one["data"]["id"]), (200, &run["id"]));

    // Simulate mode: recorded with the action it would have run; the agent keeps working.
    app.open_incident(tenant, critical_on(&a2)).await;
    let shadow_runs = runs_of(&app, tenant, &shadow, 1).await;
    assert_eq!(shadow_runs[0]["result"], "simulated");
    assert_eq!(shadow_runs[0]["actions"][0]["target"], json!(a2));
    // The active rule did quarantine a2 (it matches every critical incident)...
    runs_of(&app, tenant, &quarantine, 2).await;
    assert_eq!(beat(&app, &a2, &s2).await.0, 403);

    // ...and the follow-up rule ran once per incident opened by a person, never on the
    // incidents it opened itself.
    let follow = runs_of(&app, tenant, &follow_up, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, again) = app
        .caught_up(tenant, &format!("/auto-response/runs?rule_id={follow_up}"))
        .await;
    assert_eq!(again["total"], 2, "{again}");
    assert!(follow.iter().all(|r| r["actions"][0]["outcome"] == "done"));
    let (_, incidents) = app.caught_up(tenant, "/incidents?limit=50").await;
    let titles: Vec<&str> = incidents["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert_eq!(
        titles
            .iter()
            .filter(|t| t.starts_with("Follow up: prompt injection"))
            .count(),
        2,
        "{titles:?}"
    );

    // Runs and rules are the tenant's own.
    let (_, theirs) = app.caught_up(other, "/auto-response/runs").await;
    assert_eq!(theirs["total"], 0, "{theirs}");
    let (s, _) = app
        .call(
            other,
            Method::GET,
            &format!("/auto-response/runs/{}", run["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, 404);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!(
            "acp_ar_rule_runs_total{{tenant_id=\"{tenant}\",rule_id=\"{quarantine}\",result=\"succeeded\"}} 2"
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "acp_ar_rule_match_latency_seconds_count{{tenant_id=\"{tenant}\"}}"
    )));
}

/// `approval_required`: nothing runs until a person approves; approval runs the actions and
/// answers their outcome; a rejected run never acts.
#[tokio::test]
async fn approvals_gate_actions_until_a_person_decides() {
    let app = TestApp::spawn().await;
    let tenant = responder_tenant(&app, "Gated").await;
    let (a1, s1) = agent(&app, tenant, "edge-1").await;
    let rule = create_rule(
        &app,
        tenant,
        json!({
            "name": "stop everything",
            "match": { "event_type": "incident.opened.v1", "severity": "critical" },
            "actions": [{ "type": "engage_kill_switch", "reason": "critical on {event.agent_id}" }],
            "mode": "active",
            "approval_required": true
        }),
    )
    .await;
    app.open_incident(tenant, critical_on(&a1)).await;
    let runs = runs_of(&app, tenant, &rule, 1).await;
    assert_eq!(runs[0]["result"], "pending_approval");
    assert_eq!(beat(&app, &a1, &s1).await.0, 204, "nothing ran yet");
    let (_, pending) = app.caught_up(tenant, "/auto-response/pending").await;
    assert_eq!(pending["total"], 1, "{pending}");
    let key = pending["data"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(key, runs[0]["id"].as_str().unwrap(), "the key is the run");
    assert_eq!(
        pending["data"][0]["actions"][0]["reason"],
        json!(format!("critical on {a1}"))
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains(&format!(
        "acp_ar_pending_approvals_size{{tenant_id=\"{tenant}\"}} 1"
    )));

    // SECURITY may read but not approve.
    let security = app.user_with_role(tenant, Some("SECURITY")).await;
    let r = app
        .bearer(
            Method::POST,
            &format!("/auto-response/pending/{key}/approve"),
            &security.token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let r = app
        .bearer(
            Method::POST,
            &format!("/auto-response/pending/{key}/approve"),
            &admin.token,
        )
        .json(&json!({ "reason": "confirmed with the owner" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let approved: Value = r.json().await.unwrap();
    assert_eq!(approved["data"]["status"], "executed", "{approved}");
    assert_eq!(approved["data"]["result"], "succeeded");
    assert_eq!(approved["data"]["outcome"][0]["outcome"], "done");
    assert_eq!(
        approved["data"]["decided_by"],
        json!(format!("user:{}", admin.user))
    );
    assert_eq!(
        beat(&app, &a1, &s1).await,
        (403, Some("kill_switch_engaged".into()))
    );
    let (_, switch) = app.call(tenant, Method::GET, "/kill-switch", None).await;
    assert_eq!(switch["data"]["engaged"], true);
    assert_eq!(
        switch["data"]["changed_by"],
        json!(format!("system:auto-response:{rule}"))
    );
    // Approving again answers the recorded outcome and runs nothing twice.
    let head = app.head().await;
    let (s, again) = app
        .call(
            tenant,
            Method::POST,
            &format!("/auto-response/pending/{key}/approve"),
            None,
        )
        .await;
    assert_eq!((s, &again["data"]["status"]), (200, &json!("executed")));
    assert_eq!(app.head().await, head);
    let (_, run) = app
        .caught_up(tenant, &format!("/auto-response/runs/{key}"))
        .await;
    assert_eq!(run["data"]["result"], "succeeded");
    // The counter counted the run when it began to wait, and again when it ran.
    let metrics = app.metrics().await;
    for result in ["pending_approval", "succeeded"] {
        let sample = format!(
            "acp_ar_rule_runs_total{{tenant_id=\"{tenant}\",rule_id=\"{rule}\",result=\"{result}\"}} 1"
        );
        assert!(metrics.contains(&sample), "{sample} in {metrics}");
    }

    // A second run is rejected: it never acts, and cannot be approved afterwards.
    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            "/kill-switch/release",
            Some(json!({ "reason": "all clear" })),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(beat(&app, &a1, &s1).await.0, 204);
    app.open_incident(tenant, critical_on(&a1)).await;
    let runs = runs_of(&app, tenant, &rule, 2).await;
    let second = runs.iter().find(|r| r["id"] != json!(key)).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, rejected) = app
        .call(
            tenant,
            Method::POST,
            &format!("/auto-response/pending/{second}/reject"),
            Some(json!({ "reason": "false positive" })),
        )
        .await;
    assert_eq!((s, &rejected["data"]["status"]), (200, &json!("rejected")));
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            &format!("/auto-response/pending/{second}/approve"),
            None,
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(beat(&app, &a1, &s1).await.0, 204);
    let (_, run) = app
        .caught_up(tenant, &format!("/auto-response/runs/{second}"))
        .await;
    assert_eq!(run["data"]["result"], "rejected");
    let (_, pending) = app.caught_up(tenant, "/auto-response/pending").await;
    assert_eq!(pending["total"], 0);
    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            &format!("/auto-response/pending/{}/approve", Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

/// An approval nobody decides expires after its TTL: recorded as expired, never run, and
/// approving it afterwards answers 410.
#[tokio::test]
async fn an_undecided_approval_expires_and_is_recorded() {
    let app = TestApp::spawn_with_config(|c| {
        c.ar_approval_ttl_secs = 1;
        c.ar_tick_secs = 1;
    })
    .await;
    let tenant = responder_tenant(&app, "Slow").await;
    let (a1, s1) = agent(&app, tenant, "edge-1").await;
    let rule = create_rule(
        &app,
        tenant,
        json!({
            "name": "gated quarantine",
            "match": { "event_type": "incident.opened.v1" },
            "actions": [{ "type": "quarantine_agent", "target": "{event.agent_id}" }],
            "mode": "active",
            "approval_required": true
        }),
    )
    .await;
    app.open_incident(tenant, critical_on(&a1)).await;
    let key = runs_of(&app, tenant, &rule, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let expired = eventually(WITHIN, || async {
        let (_, b) = app
            .call(
                tenant,
                Method::GET,
                &format!("/auto-response/pending/{key}"),
                None,
            )
            .await;
        b["data"]["status"] == "expired"
    })
    .await;
    assert!(expired, "the approval should expire");
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            &format!("/auto-response/pending/{key}/approve"),
            None,
        )
        .await;
    assert_eq!((s, b["error"].as_str()), (410, Some("gone")), "{b}");
    assert_eq!(beat(&app, &a1, &s1).await.0, 204, "nothing ran");
    let (_, run) = app
        .caught_up(tenant, &format!("/auto-response/runs/{key}"))
        .await;
    assert_eq!(run["data"]["result"], "expired");
    let (_, list) = app
        .caught_up(tenant, "/auto-response/pending?status=expired")
        .await;
    assert_eq!(list["total"], 1);
}

/// A rule that acts on more distinct targets within its window than its brake allows is
/// tripped to simulate, says why, and opens an incident; the target past the limit is spared.
#[tokio::test]
async fn the_blast_radius_brake_trips_a_runaway_rule_to_simulate() {
    let app = TestApp::spawn().await;
    let tenant = responder_tenant(&app, "Runaway").await;
    let mut agents = Vec::new();
    for i in 0..3 {
        agents.push(agent(&app, tenant, &format!("edge-{i}")).await);
    }
    let rule = create_rule(
        &app,
        tenant,
        json!({
            "name": "quarantine anything",
            "match": { "event_type": "incident.opened.v1" },
            "actions": [{ "type": "quarantine_agent", "target": "{event.agent_id}" }],
            "mode": "active",
            "blast_radius": { "max_targets": 2, "window_secs": 300 }
        }),
    )
    .await;
    for (i, (id, _)) in agents.iter().enumerate() {
        app.open_incident(tenant, critical_on(id)).await;
        runs_of(&app, tenant, &rule, i + 1).await;
    }
    let runs = runs_of(&app, tenant, &rule, 3).await;
    let braked: Vec<&Value> = runs.iter().filter(|r| r["result"] == "braked").collect();
    assert_eq!(braked.len(), 1, "{runs:?}");
    assert_eq!(braked[0]["brake_tripped"], true);
    assert_eq!(braked[0]["targets"], json!([agents[2].0]));
    assert_eq!(beat(&app, &agents[0].0, &agents[0].1).await.0, 403);
    assert_eq!(beat(&app, &agents[1].0, &agents[1].1).await.0, 403);
    assert_eq!(
        beat(&app, &agents[2].0, &agents[2].1).await.0,
        204,
        "spared"
    );

    let (_, r) = app
        .call(
            tenant,
            Method::GET,
            &format!("/auto-response/rules/{rule}"),
            None,
        )
        .await;
    assert_eq!(r["data"]["mode"], "simulate", "{r}");
    assert!(
        r["data"]["mode_reason"]
            .as_str()
            .unwrap()
            .contains("blast-radius brake: run"),
        "{r}"
    );
    let (_, incidents) = app.caught_up(tenant, "/incidents?limit=100").await;
    assert!(
        incidents["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["title"] == "Auto-response brake tripped: quarantine anything"),
        "{incidents}"
    );
    // Tripped, the rule only simulates from now on.
    let (late, late_secret) = agent(&app, tenant, "edge-late").await;
    app.open_incident(tenant, critical_on(&late)).await;
    let runs = runs_of(&app, tenant, &rule, 4).await;
    assert!(runs.iter().any(|r| r["mode"] == "simulate"), "{runs:?}");
    assert_eq!(beat(&app, &late, &late_secret).await.0, 204);
}

/// Operators hold the kill switch too: SECURITY engages it, every agent of the tenant (and
/// no other tenant's) is refused, and release restores them; a quarantined agent is released.
#[tokio::test]
async fn the_kill_switch_refuses_every_agent_of_its_tenant_only() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Switched").await;
    let other = app.create_tenant("Unaffected").await;
    let (a, sa) = agent(&app, tenant, "edge-a").await;
    let (b, sb) = agent(&app, other, "edge-b").await;
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let r = app
        .bearer(Method::POST, "/kill-switch/engage", &auditor.token)
        .json(&json!({ "reason": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let security = app.user_with_role(tenant, Some("SECURITY")).await;
    let head = app.head().await;
    let r = app
        .bearer(Method::POST, "/kill-switch/engage", &security.token)
        .json(&json!({ "reason": "  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(app.head().await, head, "a refused command appends nothing");
    let r = app
        .bearer(Method::POST, "/kill-switch/engage", &security.token)
        .json(&json!({ "reason": "ransomware on the fleet" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        beat(&app, &a, &sa).await,
        (403, Some("kill_switch_engaged".into()))
    );
    assert_eq!(beat(&app, &b, &sb).await.0, 204, "another tenant's agent");
    let r = app
        .bearer(Method::POST, "/kill-switch/release", &security.token)
        .json(&json!({ "reason": "contained" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(beat(&app, &a, &sa).await.0, 204);

    let (s, _) = app
        .call(
            tenant,
            Method::POST,
            &format!("/api/v1/agents/{a}/quarantine"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(beat(&app, &a, &sa).await.0, 403);
    let (s, body) = app
        .call(
            tenant,
            Method::POST,
            &format!("/api/v1/agents/{a}/release"),
            Some(json!({ "reason": "reimaged" })),
        )
        .await;
    assert_eq!((s, &body["data"]["status"]), (200, &json!("active")));
    assert_eq!(beat(&app, &a, &sa).await.0, 204);
}

/// `rotate_credential` rotates through the vault's own rotation path (lease, new sealed
/// version), so the value a client reads afterwards is new.
#[tokio::test]
async fn a_rule_rotates_a_credential_through_the_vault() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Leaky").await;
    app.set_plan(tenant, json!({ "addons": ["vault", "auto_response"] }))
        .await;
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/credentials",
            Some(json!({
                "name": "db-password", "credential_type": "password", "provider": "postgres",
                "value": "first-secret-value"
            })),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let rule = create_rule(
        &app,
        tenant,
        json!({
            "name": "rotate on leak",
            "match": { "event_type": "incident.opened.v1", "title": { "glob": "*leak*" } },
            "actions": [{ "type": "rotate_credential", "target": "db-password" }],
            "mode": "active"
        }),
    )
    .await;
    app.open_incident(tenant, incident("password leak on pastebin", "high"))
        .await;
    let run = &runs_of(&app, tenant, &rule, 1).await[0];
    assert_eq!(run["result"], "succeeded", "{run}");
    assert_eq!(run["actions"][0]["outcome"], "done");
    let (s, value) = app
        .call(tenant, Method::GET, "/credentials/db-password/value", None)
        .await;
    assert_eq!(s, 200, "{value}");
    assert_eq!(value["version"], 2, "{value}");
    assert_ne!(value["value"], "first-secret-value");
    assert!(!run.to_string().contains(value["value"].as_str().unwrap()));
}

/// Simulation applies the blast-radius brake as the reactor would have: the run past the
/// limit is braked, and afterwards the rule would only have simulated.
#[tokio::test]
async fn simulation_applies_the_brake_as_it_would_have_been() {
    let app = TestApp::spawn().await;
    let tenant = responder_tenant(&app, "Hindsight").await;
    for agent in ["a", "b", "c", "a"] {
        app.open_incident(tenant, critical_on(agent)).await;
    }
    let r = app
        .admin(Method::POST, "/auto-response/simulate", Some(tenant))
        .json(&json!({ "rule": {
            "name": "draft",
            "match": { "event_type": "incident.opened.v1" },
            "actions": [{ "type": "quarantine_agent", "target": "{event.agent_id}" }],
            "blast_radius": { "max_targets": 2, "window_secs": 600 }
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines: Vec<Value> = r
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let matches: Vec<&Value> = lines.iter().filter(|l| l["type"] == "match").collect();
    let seen: Vec<(&str, bool, bool)> = matches
        .iter()
        .map(|m| {
            (
                m["admission"].as_str().unwrap(),
                m["brake_tripped"].as_bool().unwrap(),
                m["would_run"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("admitted", false, true),
            ("admitted", false, true),
            ("braked", true, false),
            ("admitted", false, false),
        ],
        "{lines:?}"
    );
    let summary = lines.last().unwrap();
    assert_eq!(
        (
            &summary["would_run"],
            &summary["braked"],
            &summary["executed"]
        ),
        (&json!(2), &json!(1), &json!(0))
    );
    assert_eq!(summary["brake_tripped_at"], matches[2]["position"]);
}

/// One tenant's costly rules do not make another tenant's response late: 20 rules of 64 long
/// globs each over 16 KiB dashboard saves took 11.8 s of everyone's reactor before globs
/// became linear and tenants got lanes of their own.
#[tokio::test]
async fn a_tenants_heavy_rules_do_not_delay_another_tenants_response() {
    let app = TestApp::spawn().await;
    let noisy = responder_tenant(&app, "Noisy").await;
    let quiet = responder_tenant(&app, "Quiet").await;
    let pattern = format!("*{}b", "a".repeat(254));
    let conditions: Vec<Value> = (0..64)
        .map(|_| json!({ "state_json": { "glob": pattern } }))
        .collect();
    for i in 0..20 {
        create_rule(
            &app,
            noisy,
            json!({
                "name": format!("heavy-{i}"),
                "match": { "any": conditions },
                "actions": [{ "type": "open_incident", "title": "never", "severity": "low" }],
                "mode": "active",
            }),
        )
        .await;
    }
    let follow_up = create_rule(
        &app,
        quiet,
        json!({
            "name": "follow-up",
            "match": { "event_type": "incident.opened.v1", "severity": "critical" },
            "actions": [{ "type": "open_incident", "title": "Follow up: {event.title}", "severity": "low" }],
            "mode": "active",
        }),
    )
    .await;
    let saver = app.user_with_role(noisy, Some("AUDITOR")).await;
    for _ in 0..5 {
        let r = app
            .bearer(Method::PUT, "/dashboard/state", &saver.token)
            .json(&json!({ "filters": { "a": "a".repeat(16_000) } }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let started = std::time::Instant::now();
    let (_, _, _) = app
        .open_incident(quiet, incident("exfiltration", "critical"))
        .await;
    runs_of(&app, quiet, &follow_up, 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the quiet tenant's run took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_tenant_holds_a_bounded_number_of_rules() {
    let app = TestApp::spawn().await;
    let tenant = responder_tenant(&app, "Prolific").await;
    for i in 0..100 {
        create_rule(
            &app,
            tenant,
            json!({
                "name": format!("rule-{i}"),
                "match": { "severity": "critical" },
                "actions": [{ "type": "open_incident", "title": "x", "severity": "low" }],
            }),
        )
        .await;
    }
    let (s, b) = app
        .call(
            tenant,
            Method::POST,
            "/auto-response/rules",
            Some(json!({
                "name": "one-too-many",
                "match": { "severity": "critical" },
                "actions": [{ "type": "open_incident", "title": "x", "severity": "low" }],
            })),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["error"], "limit_reached");
}
