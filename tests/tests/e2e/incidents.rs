use aegis_tests::world::{etag, incident, position};
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn get(app: &TestApp, tenant: Uuid, path: &str, min: u64) -> reqwest::Response {
    app.admin(Method::GET, path, Some(tenant))
        .header("Aegis-Min-Position", min.to_string())
        .send()
        .await
        .unwrap()
}

async fn patch(app: &TestApp, tenant: Uuid, id: Uuid, body: Value) -> reqwest::Response {
    app.admin(Method::PATCH, &format!("/incidents/{id}"), Some(tenant))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_opened_incident_is_readable_at_its_position() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (id, pos, body) = app
        .open_incident(tenant, incident("Chain violation", "high"))
        .await;
    assert!(pos > 0);
    assert_eq!(body["data"]["status"], "open");
    assert_eq!(body["data"]["severity"], "high");

    let r = get(&app, tenant, &format!("/incidents/{id}"), pos).await;
    assert_eq!(r.status(), 200);
    assert_eq!(etag(&r).as_deref(), Some("\"1\""));
    let detail: Value = r.json().await.unwrap();
    assert_eq!(detail["data"]["title"], "Chain violation");
    assert_eq!(detail["data"]["agent_id"], "agent-7");
    assert_eq!(detail["data"]["actions_taken"], json!([]));
}

#[tokio::test]
async fn opening_is_internal_only() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let r = app
        .admin(Method::POST, "/incidents", Some(tenant))
        .json(&incident("x", "low"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["required_permission"],
        "incident.open"
    );
    let r = app
        .http
        .post(app.url("/incidents"))
        .header("X-Internal-Secret", "wrong-secret-wrong-secret")
        .header("X-Tenant-ID", tenant.to_string())
        .json(&incident("x", "low"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn an_unknown_tenant_or_missing_tenant_header_is_refused() {
    let app = TestApp::spawn().await;
    let r = app
        .internal(Method::POST, "/incidents", Uuid::now_v7())
        .json(&incident("x", "low"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .http
        .post(app.url("/incidents"))
        .header("X-Internal-Secret", aegis_tests::world::INTERNAL)
        .json(&incident("x", "low"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(app.head().await, 0);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_appends_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let head = app.head().await;
    let send = |body: String| {
        app.internal(Method::POST, "/incidents", tenant)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(String, u16, &str)> = vec![
        ("{\"title\": ".into(), 400, "bad_request"),
        (
            json!({"title": "x", "severity": "high", "colour": "red"}).to_string(),
            422,
            "validation_failed",
        ),
        (
            json!({"title": "x", "severity": "apocalyptic"}).to_string(),
            422,
            "validation_failed",
        ),
        (
            json!({"title": "   ", "severity": "low"}).to_string(),
            422,
            "validation_failed",
        ),
        (
            json!({"title": "x".repeat(201), "severity": "low"}).to_string(),
            422,
            "validation_failed",
        ),
        (
            json!({"severity": "low"}).to_string(),
            422,
            "validation_failed",
        ),
        (
            json!({"title": "x", "severity": "low", "description": "y".repeat(2 * 1024 * 1024)})
                .to_string(),
            413,
            "payload_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let r = send(body.clone()).await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            status,
            "body {}",
            &body[..body.len().min(80)]
        );
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"], code, "{b}");
        assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let r = send(json!({"title": "x", "severity": "apocalyptic"}).to_string())
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["field"], "severity");
    assert_eq!(b["allowed"], json!(["low", "medium", "high", "critical"]));
    assert_eq!(app.head().await, head, "no bad request appended anything");
}

#[tokio::test]
async fn the_lifecycle_is_enforced_and_illegal_moves_name_the_allowed_ones() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (id, _, _) = app.open_incident(tenant, incident("x", "medium")).await;

    let r = patch(&app, tenant, id, json!({ "status": "closed" })).await;
    assert_eq!(r.status(), 409);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "conflict");
    assert_eq!(b["current_status"], "open");
    assert_eq!(
        b["allowed"],
        json!(["acknowledged", "investigating", "resolved"])
    );

    for status in [
        "acknowledged",
        "investigating",
        "resolved",
        "closed",
        "open",
    ] {
        let r = patch(&app, tenant, id, json!({ "status": status })).await;
        assert_eq!(r.status(), 200, "to {status}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["data"]["status"], status);
    }
    let r = patch(&app, tenant, id, json!({ "status": "acknowledged", "assigned_to": "ana", "actions_taken": ["isolated host"] })).await;
    let pos = position(&r).unwrap();
    let detail: Value = get(&app, tenant, &format!("/incidents/{id}"), pos)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["data"]["status"], "acknowledged");
    assert_eq!(detail["data"]["assigned_to"], "ana");
    assert_eq!(detail["data"]["actions_taken"], json!(["isolated host"]));
    assert_eq!(
        detail["data"]["resolved_at"],
        Value::Null,
        "reopening clears resolved_at"
    );
}

#[tokio::test]
async fn a_stale_if_match_gets_409_and_a_fresh_one_succeeds() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (id, pos, _) = app.open_incident(tenant, incident("x", "medium")).await;
    let read = get(&app, tenant, &format!("/incidents/{id}"), pos).await;
    let tag = etag(&read).unwrap();

    let ok = app
        .admin(Method::PATCH, &format!("/incidents/{id}"), Some(tenant))
        .header("If-Match", &tag)
        .json(&json!({ "assigned_to": "ana" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(etag(&ok).as_deref(), Some("\"2\""));
    let head = app.head().await;

    let stale = app
        .admin(Method::PATCH, &format!("/incidents/{id}"), Some(tenant))
        .header("If-Match", &tag)
        .json(&json!({ "assigned_to": "bob" }))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
    let b: Value = stale.json().await.unwrap();
    assert_eq!(b["error"], "conflict");
    assert_eq!(b["current_version"], 2);
    assert_eq!(app.head().await, head);
}

#[tokio::test]
async fn racing_writers_never_lose_an_update() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (id, _, _) = app.open_incident(tenant, incident("x", "medium")).await;
    let writers = (0..24).map(|i| {
        let req = app
            .admin(Method::PATCH, &format!("/incidents/{id}"), Some(tenant))
            .json(&json!({ "actions_taken": [format!("action {i}")] }));
        async move { req.send().await.unwrap() }
    });
    let responses = futures::future::join_all(writers).await;
    let mut max_pos = 0;
    for r in &responses {
        assert_eq!(r.status(), 200);
        max_pos = max_pos.max(position(r).unwrap());
    }
    let detail: Value = get(&app, tenant, &format!("/incidents/{id}"), max_pos)
        .await
        .json()
        .await
        .unwrap();
    let actions = detail["data"]["actions_taken"].as_array().unwrap();
    assert_eq!(actions.len(), 24, "every compatible update landed");
    assert_eq!(detail["data"]["version"], 25);
}

#[tokio::test]
async fn racing_writers_with_the_same_if_match_one_wins() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let (id, _, _) = app.open_incident(tenant, incident("x", "medium")).await;
    let writers = (0..8).map(|i| {
        let req = app
            .admin(Method::PATCH, &format!("/incidents/{id}"), Some(tenant))
            .header("If-Match", "\"1\"")
            .json(&json!({ "assigned_to": format!("analyst-{i}") }));
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures::future::join_all(writers).await;
    statuses.sort();
    assert_eq!(statuses, vec![200, 409, 409, 409, 409, 409, 409, 409]);
}

#[tokio::test]
async fn a_retried_command_returns_the_first_answer_and_appends_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let send = || {
        app.internal(Method::POST, "/incidents", tenant)
            .header("Idempotency-Key", "retry-1")
            .json(&incident("x", "low"))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first_pos = position(&first);
    let first: Value = first.json().await.unwrap();
    let head = app.head().await;
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(position(&second), first_pos);
    assert_eq!(second.json::<Value>().await.unwrap(), first);
    assert_eq!(app.head().await, head, "the retry appended nothing");

    let other = app
        .internal(Method::POST, "/incidents", tenant)
        .header("Idempotency-Key", "retry-1")
        .json(&incident("something else", "low"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    assert_eq!(
        other.json::<Value>().await.unwrap()["error"],
        "idempotency_key_reused"
    );
}

#[tokio::test]
async fn concurrent_retries_of_one_command_append_once() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let head = app.head().await;
    let tries = (0..6).map(|_| {
        let req = app
            .internal(Method::POST, "/incidents", tenant)
            .header("Idempotency-Key", "burst")
            .json(&incident("x", "low"));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    });
    let answers = futures::future::join_all(tries).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| a["data"]["id"].to_string())
        .collect();
    assert_eq!(app.head().await, head + 1, "one append for six tries");
    assert!(ids.len() <= 6);
}

#[tokio::test]
async fn a_dedup_key_returns_the_open_incident_until_it_is_resolved() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let mut body = incident("Brute force", "high");
    body["dedup_key"] = json!("bf:10.0.0.1");
    let (first, _, _) = app.open_incident(tenant, body.clone()).await;
    let r = app
        .internal(Method::POST, "/incidents", tenant)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["data"]["id"], first.to_string());
    assert_eq!(b["deduplicated"], true);

    assert_eq!(
        patch(&app, tenant, first, json!({ "status": "resolved" }))
            .await
            .status(),
        200
    );
    let (second, _, _) = app.open_incident(tenant, body.clone()).await;
    assert_ne!(second, first, "a resolved incident releases its dedup key");
}

#[tokio::test]
async fn tenants_never_see_each_others_incidents() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("Acme").await;
    let globex = app.create_tenant("Globex").await;
    let (id, pos, _) = app
        .open_incident(acme, incident("acme only", "critical"))
        .await;

    assert_eq!(
        get(&app, globex, &format!("/incidents/{id}"), pos)
            .await
            .status(),
        404
    );
    let list: Value = get(&app, globex, "/incidents", pos)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 0);
    let summary: Value = get(&app, globex, "/incidents/summary", pos)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["data"]["total"], 0);
    let r = patch(&app, globex, id, json!({ "status": "resolved" })).await;
    assert_eq!(r.status(), 404);
    let acme_view: Value = get(&app, acme, &format!("/incidents/{id}"), pos)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acme_view["data"]["status"], "open");
}

#[tokio::test]
async fn list_filters_paginates_newest_first_and_summarises() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let mut last = 0;
    let mut ids = Vec::new();
    for (i, sev) in ["low", "high", "high", "critical", "medium"]
        .iter()
        .enumerate()
    {
        let (id, pos, _) = app
            .open_incident(tenant, incident(&format!("n{i}"), sev))
            .await;
        ids.push(id);
        last = pos;
    }
    let r = patch(
        &app,
        tenant,
        ids[1],
        json!({ "status": "acknowledged", "assigned_to": "ana" }),
    )
    .await;
    last = last.max(position(&r).unwrap());

    let page: Value = get(&app, tenant, "/incidents?limit=2&offset=0", last)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 5);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["data"][0]["title"], "n4", "newest first");
    let page2: Value = get(&app, tenant, "/incidents?limit=2&offset=4", last)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["data"][0]["title"], "n0");

    let high: Value = get(&app, tenant, "/incidents?severity=high", last)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(high["total"], 2);
    let acked: Value = get(
        &app,
        tenant,
        "/incidents?status=acknowledged&assigned_to=ana",
        last,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(acked["total"], 1);
    assert_eq!(acked["data"][0]["id"], ids[1].to_string());

    assert_eq!(
        get(&app, tenant, "/incidents?status=bogus", last)
            .await
            .status(),
        422
    );
    assert_eq!(
        get(&app, tenant, "/incidents?limit=0", last).await.status(),
        422
    );
    assert_eq!(
        get(&app, tenant, "/incidents?colour=red", last)
            .await
            .status(),
        400
    );

    let summary: Value = get(&app, tenant, "/incidents/summary", last)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["data"]["total"], 5);
    assert_eq!(summary["data"]["open"], 5);
    assert_eq!(summary["data"]["by_status"]["open"], 4);
    assert_eq!(summary["data"]["by_status"]["acknowledged"], 1);
    assert_eq!(summary["data"]["by_severity"]["high"], 2);
    assert_eq!(summary["data"]["by_severity"]["critical"], 1);
}

#[tokio::test]
async fn a_traceparent_travels_from_http_into_the_commit_headers() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = app
        .internal(Method::POST, "/incidents", tenant)
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&incident("traced", "low"))
        .send()
        .await
        .unwrap();
    let pos = position(&r).unwrap();
    let stored = app.state().executor.store().get(pos).await.unwrap();
    let tp = stored.traceparent.expect("commit carries traceparent");
    assert!(tp.contains(trace_id), "{tp}");
}

#[tokio::test]
async fn a_min_position_beyond_the_log_is_refused_at_once() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let head = app.head().await;
    let started = std::time::Instant::now();
    let r = get(&app, tenant, "/incidents", head + 1000).await;
    assert_eq!(r.status(), 400);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "no waiting for a position that does not exist"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["head"], head);
}

#[tokio::test]
async fn a_bad_credential_beside_a_good_one_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let r = app
        .internal(Method::GET, "/incidents", tenant)
        .bearer_auth("forged-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .admin(Method::GET, "/incidents", Some(tenant))
        .header("X-Internal-Secret", "forged-secret-forged-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The first attempt landed but its answer never reached the client (a lost ack, an election):
/// the retry with the same key, which names a fresh incident id, is the same command carried
/// out once: it answers the first attempt's incident, not a 500, and opens nothing new.
#[tokio::test]
async fn a_retry_whose_first_attempt_landed_unanswered_answers_the_first_incident() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Acme").await;
    let send = || {
        app.internal(Method::POST, "/incidents", tenant)
            .header("Idempotency-Key", "lost-answer")
            .json(&incident("once", "low"))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // Forget the remembered answer, as if the first attempt had failed before storing it.
    let kv = app
        .state()
        .executor
        .store()
        .jetstream()
        .get_key_value(aegis_streams::provision::IDEMPOTENCY_BUCKET)
        .await
        .unwrap();
    let mut keys = kv.keys().await.unwrap();
    while let Some(Ok(k)) = futures::StreamExt::next(&mut keys).await {
        kv.purge(&k).await.unwrap();
    }
    let again = send().await.unwrap();
    let status = again.status().as_u16();
    let again: Value = again.json().await.unwrap_or(Value::Null);
    assert!(status == 200 || status == 201, "{status}: {again}");
    assert_eq!(again["data"]["id"], first["data"]["id"], "{again}");
    let head = app.head().await;
    let listed: Value = get(&app, tenant, "/incidents", head)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
}
