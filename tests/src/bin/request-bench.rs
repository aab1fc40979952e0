//! The access request benchmark (issue 19): requests submitted and approved (two approvals
//! each, a workflow of `min_approvers: 2`) per second at concurrency 16, against raw
//! JetStream publish at the same concurrency on the same nats-server. A request's approval
//! path appends four commits (the submission, two votes, the agent's job), so it is compared
//! per commit: requests/s × 4 / raw publish/s (goal >= 0.2).
//! `scripts/bench requests`; bounded by `AEGIS_REQUEST_BENCH_REQUESTS` (default 3,200).

use aegis_tests::bench::{phase, CONCURRENCY};
use aegis_tests::TestApp;
use anyhow::ensure;
use async_nats::jetstream;
use serde_json::json;
use std::sync::Arc;

/// Commits one approved request appends: submitted, vote, vote + approved, job enqueued.
const COMMITS_PER_REQUEST: f64 = 4.0;

fn main() -> anyhow::Result<()> {
    let requests: usize = std::env::var("AEGIS_REQUEST_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_200);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let app = TestApp::spawn_with_config(|c| c.tenant_rate_limit = 0).await;
            let tenant = app.create_tenant("bench").await;
            let (base, http) = (app.url(""), app.http.clone());

            let js = jetstream::new(async_nats::connect(app.config.nats_url.clone()).await?);
            let mut cfg = aegis_streams::provision::events_config(&Default::default());
            cfg.name = "BENCH_RAW".into();
            cfg.subjects = vec!["bench.raw.>".into()];
            js.create_stream(cfg).await?;
            let payload = bytes::Bytes::from(vec![7u8; 300]);
            let raw = phase((requests / CONCURRENCY).max(1), move |w, i| {
                let (js, payload) = (js.clone(), payload.clone());
                async move {
                    js.publish(format!("bench.raw.{w}.{i}"), payload).await?.await?;
                    Ok(())
                }
            })
            .await?;

            let r = http
                .post(format!("{base}/api/v1/workflows"))
                .bearer_auth(aegis_tests::world::BOOTSTRAP)
                .header("X-Tenant-ID", tenant.to_string())
                .json(&json!({ "name": "two", "min_approvers": 2, "is_default": true }))
                .send()
                .await?;
            ensure!(r.status() == 201, "workflow: {}", r.text().await?);
            // Per worker: a requester and two approvers of its own.
            let mut people = Vec::new();
            for _ in 0..CONCURRENCY {
                let requester = app.user_with_role(tenant, Some("SECURITY")).await.token;
                let a = app.user_with_role(tenant, Some("SECURITY")).await.token;
                let b = app.user_with_role(tenant, Some("SECURITY")).await.token;
                people.push((requester, a, b));
            }
            let people = Arc::new(people);

            let request = phase((requests / CONCURRENCY).max(1), move |w, i| {
                let (http, base, people) = (http.clone(), base.clone(), people.clone());
                async move {
                    let (requester, a, b) = &people[w];
                    let r = http
                        .post(format!("{base}/api/v1/requests/read"))
                        .bearer_auth(requester)
                        .json(&json!({ "project_id": "payments", "environment": "prod",
                            "target_provider_type": "kubernetes", "target_secret_ref": format!("prod/db-{w}-{i}"),
                            "target_keys": ["password"], "justification": "benchmark" }))
                        .send()
                        .await?;
                    ensure!(r.status() == 201, "submit: {} {}", r.status(), r.text().await?);
                    let v: serde_json::Value = r.json().await?;
                    let id = v["id"].as_str().unwrap_or_default().to_string();
                    let mut last = serde_json::Value::Null;
                    for approver in [a, b] {
                        let r = http
                            .post(format!("{base}/api/v1/requests/{id}/approve"))
                            .bearer_auth(approver)
                            .json(&json!({}))
                            .send()
                            .await?;
                        ensure!(r.status() == 200, "approve: {} {}", r.status(), r.text().await?);
                        last = r.json().await?;
                    }
                    ensure!(last["status"] == "approved", "two votes approve: {last}");
                    Ok(())
                }
            })
            .await?;

            println!("access request benchmark, {CONCURRENCY} at once, one nats-server (sync: always)");
            raw.print("raw JetStream publish (300 B)");
            request.print("submit + 2 approvals (one approved request)");
            println!(
                "requests approved/s: {:.0}; x {COMMITS_PER_REQUEST} commits / raw publish: {:.2}   (goal >= 0.2)",
                request.rate(),
                request.rate() * COMMITS_PER_REQUEST / raw.rate()
            );
            anyhow::Ok(())
        })
}
