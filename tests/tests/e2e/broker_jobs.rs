//! Seed 004's jobs (issue 18): operators enqueue, agents claim and complete. However many
//! claim at once each job goes to one agent; a lease that runs out hands the job to another
//! and the first holder's late report changes nothing; scopes, tenants and revocation hold.

use aegis_tests::world::eventually;
use aegis_tests::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

struct Agent {
    id: String,
    secret: String,
}

async fn mint(app: &TestApp, token: &str, name: &str) -> Agent {
    let (id, secret) = app.mint_agent(token, name).await;
    Agent { id, secret }
}

async fn enqueue(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let r = app
        .bearer(Method::POST, "/api/v1/jobs", token)
        .json(&body)
        .send()
        .await
        .expect("enqueue");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn claim(app: &TestApp, agent: &Agent) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(&format!("/api/v1/agents/{}/jobs/claim", agent.id)))
        .header("X-Agent-Secret", &agent.secret)
        .send()
        .await
        .expect("claim");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn complete(app: &TestApp, agent: &Agent, job: &str, body: Value) -> u16 {
    app.http
        .post(app.url(&format!("/api/v1/agents/{}/jobs/{job}/complete", agent.id)))
        .header("X-Agent-Secret", &agent.secret)
        .json(&body)
        .send()
        .await
        .expect("complete")
        .status()
        .as_u16()
}

#[tokio::test]
async fn thirty_claims_from_six_agents_share_five_jobs_once_each() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Queue").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let mut enqueued = HashSet::new();
    for n in 0..5 {
        let (s, b) = enqueue(
            &app,
            &admin.token,
            json!({ "job_type": "sync", "payload": { "secret": format!("db-{n}") } }),
        )
        .await;
        assert_eq!((s, b["status"].as_str()), (201, Some("queued")), "{b}");
        enqueued.insert(b["id"].as_str().expect("id").to_string());
    }
    let mut agents = Vec::new();
    for n in 0..6 {
        agents.push(mint(&app, &admin.token, &format!("cluster-{n}")).await);
    }
    let claims = (0..30).map(|i| claim(&app, &agents[i % 6]));
    let answers = futures::future::join_all(claims).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 204),
        "{statuses:?}"
    );
    let got: Vec<String> = answers
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, b)| b["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(got.len(), 5, "{answers:?}");
    assert_eq!(got.iter().cloned().collect::<HashSet<_>>(), enqueued);

    // The holder completes once; a second report, another agent's, a wrong status, an
    // unknown job and an id that is not one are refused and change nothing.
    let (_, held) = answers
        .iter()
        .enumerate()
        .find(|(_, (s, _))| *s == 200)
        .map(|(i, (_, b))| (i, b.clone()))
        .expect("a claim");
    let holder = answers
        .iter()
        .position(|(s, b)| *s == 200 && b["id"] == held["id"])
        .map(|i| &agents[i % 6])
        .expect("holder");
    let other = agents.iter().find(|a| a.id != holder.id).expect("other");
    let job = held["id"].as_str().expect("id");
    assert_eq!(
        held["payload"]["secret"]
            .as_str()
            .map(|s| s.starts_with("db-")),
        Some(true)
    );
    assert_eq!(held["attempt"], 1);
    assert_eq!(
        complete(&app, other, job, json!({ "status": "succeeded" })).await,
        409
    );
    assert_eq!(
        complete(&app, holder, job, json!({ "status": "done" })).await,
        400
    );
    assert_eq!(
        complete(&app, holder, job, json!({ "status": "succeeded" })).await,
        204
    );
    assert_eq!(
        complete(
            &app,
            holder,
            job,
            json!({ "status": "failed", "error": "again" })
        )
        .await,
        409
    );
    assert_eq!(
        complete(
            &app,
            holder,
            &Uuid::now_v7().to_string(),
            json!({ "status": "succeeded" })
        )
        .await,
        404
    );
    assert_eq!(
        complete(&app, holder, "not-a-job", json!({ "status": "succeeded" })).await,
        400
    );

    // The queue is empty now, and the metrics say so.
    assert_eq!(claim(&app, &agents[0]).await.0, 204);
    let t = tenant.to_string();
    let want = [
        format!("broker_jobs{{tenant_id=\"{t}\",status=\"claimed\"}} 4"),
        format!("broker_jobs{{tenant_id=\"{t}\",status=\"succeeded\"}} 1"),
        format!("broker_job_claims_total{{tenant_id=\"{t}\"}} 5"),
    ];
    let shown = eventually(Duration::from_secs(10), || async {
        let m = app.metrics().await;
        want.iter().all(|w| m.contains(w.as_str()))
    })
    .await;
    assert!(shown, "{want:?} in {}", app.metrics().await);
}

#[tokio::test]
async fn a_lost_lease_goes_to_another_agent_and_scopes_tenants_and_revocation_hold() {
    let app = TestApp::spawn_with_config(|c| c.broker_job_lease_secs = 1).await;
    let tenant = app.create_tenant("Leases").await;
    let admin = app.user_with_role(tenant, Some("ADMIN")).await;
    let (a, b) = (
        mint(&app, &admin.token, "slow").await,
        mint(&app, &admin.token, "fast").await,
    );
    let (s, _) = enqueue(&app, &admin.token, json!({ "job_type": "read_secret" })).await;
    assert_eq!(s, 201);
    let (s, first) = claim(&app, &a).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(claim(&app, &b).await.0, 204, "held, so nothing for another");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s, second) = claim(&app, &b).await;
    assert_eq!(
        (s, second["id"].clone()),
        (200, first["id"].clone()),
        "{second}"
    );
    assert_eq!(second["attempt"], 2);
    let job = first["id"].as_str().expect("id");
    assert_eq!(
        complete(&app, &a, job, json!({ "status": "succeeded" })).await,
        409,
        "late"
    );
    assert_eq!(
        complete(
            &app,
            &b,
            job,
            json!({ "status": "failed", "error": "no such secret" })
        )
        .await,
        204
    );

    // A job scoped to one agent goes to that one only.
    let (s, _) = enqueue(
        &app,
        &admin.token,
        json!({ "job_type": "patch_secret", "agent_scope": { "agent_id": a.id } }),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(claim(&app, &b).await.0, 204);

    // Another tenant's agent sees none of this tenant's jobs.
    let elsewhere = app.create_tenant("Elsewhere").await;
    let their_admin = app.user_with_role(elsewhere, Some("ADMIN")).await;
    let theirs = mint(&app, &their_admin.token, "theirs").await;
    assert_eq!(claim(&app, &theirs).await.0, 204);

    // A revoked agent is refused from its next call.
    let s = app
        .bearer(
            Method::POST,
            &format!("/api/v1/agents/{}/revoke", a.id),
            &admin.token,
        )
        .send()
        .await
        .expect("revoke")
        .status();
    assert_eq!(s, 200);
    assert_eq!(claim(&app, &a).await.0, 401);

    // Bad jobs are refused and queue nothing; enqueueing needs job.enqueue.
    for bad in [
        json!({ "job_type": "" }),
        json!({ "job_type": "Sync Now" }),
        json!({ "job_type": "sync", "payload": [1, 2] }),
        json!({ "job_type": "sync", "agent_scope": { "agent_id": "nobody" } }),
    ] {
        let (s, e) = enqueue(&app, &admin.token, bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    let auditor = app.user_with_role(tenant, Some("AUDITOR")).await;
    let (s, e) = enqueue(&app, &auditor.token, json!({ "job_type": "sync" })).await;
    assert_eq!(
        (s, e["required_permission"].as_str()),
        (403, Some("job.enqueue")),
        "{e}"
    );
    assert_eq!(
        claim(&app, &b).await.0,
        204,
        "nothing was queued by the refusals"
    );
}
