//! The broker benchmark (issue 18): claims/s with 16 agents polling a queue of jobs, against
//! raw JetStream publish at the same concurrency on the same nats-server. Prints the enqueue
//! rate, claims/s with p50/p99, and claims / raw publish (goal >= 0.5).
//! `scripts/bench broker`; bounded by `AEGIS_BROKER_BENCH_JOBS` (jobs queued, default
//! 100,000) and `AEGIS_BROKER_BENCH_CLAIMS` (claims made, default 8,000).

use aegis_tests::TestApp;
use anyhow::ensure;
use async_nats::jetstream;
use serde_json::json;
use std::time::{Duration, Instant};

use aegis_tests::bench::{phase, CONCURRENCY};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let jobs = env("AEGIS_BROKER_BENCH_JOBS", 100_000);
    let claims = env("AEGIS_BROKER_BENCH_CLAIMS", 8_000).min(jobs);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let app = TestApp::spawn_with_config(|c| c.tenant_rate_limit = 0).await;
            let tenant = app.create_tenant("bench").await;
            let base = app.url("");
            let http = app.http.clone();

            let js = jetstream::new(async_nats::connect(app.config.nats_url.clone()).await?);
            let mut cfg = aegis_streams::provision::events_config(&Default::default());
            cfg.name = "BENCH_RAW".into();
            cfg.subjects = vec!["bench.raw.>".into()];
            js.create_stream(cfg).await?;
            let payload = bytes::Bytes::from(vec![7u8; 300]);
            let raw = phase((claims / CONCURRENCY).max(1), move |w, i| {
                let (js, payload) = (js.clone(), payload.clone());
                async move {
                    js.publish(format!("bench.raw.{w}.{i}"), payload).await?.await?;
                    Ok(())
                }
            })
            .await?;

            let (h, b) = (http.clone(), base.clone());
            let enqueue = phase((jobs / CONCURRENCY).max(1), move |w, i| {
                let (http, base) = (h.clone(), b.clone());
                async move {
                    let r = http
                        .post(format!("{base}/api/v1/jobs"))
                        .bearer_auth(aegis_tests::world::BOOTSTRAP)
                        .header("X-Tenant-ID", tenant.to_string())
                        .json(&json!({ "job_type": "sync", "payload": { "secret": format!("s-{w}-{i}") } }))
                        .send()
                        .await?;
                    ensure!(r.status().is_success(), "enqueue: {}", r.text().await?);
                    Ok(())
                }
            })
            .await?;

            let mut agents = Vec::new();
            for n in 0..CONCURRENCY {
                let r = http
                    .post(format!("{base}/api/v1/agents"))
                    .bearer_auth(aegis_tests::world::BOOTSTRAP)
                    .header("X-Tenant-ID", tenant.to_string())
                    .json(&json!({ "name": format!("agent-{n}") }))
                    .send()
                    .await?;
                let v: serde_json::Value = r.json().await?;
                agents.push((
                    v["data"]["id"].as_str().unwrap_or_default().to_string(),
                    v["data"]["agent_secret"].as_str().unwrap_or_default().to_string(),
                ));
            }
            let agents = std::sync::Arc::new(agents);
            // A queue at rest: the read models have taken in all 100,000 enqueues before the
            // agents poll (bounded: ten minutes at most).
            let head = app.head().await as i64;
            let pool = sqlx::PgPool::connect(&app.config.database_url).await?;
            let settling = Instant::now();
            loop {
                let (behind,): (Option<i64>,) =
                    sqlx::query_as("SELECT min(position) FROM projector_checkpoints")
                        .fetch_one(&pool)
                        .await?;
                if behind.unwrap_or(0) >= head || settling.elapsed() > Duration::from_secs(600) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let settled = settling.elapsed();
            let (h, b) = (http.clone(), base.clone());
            let claim = phase((claims / CONCURRENCY).max(1), move |w, _| {
                let (http, base, agents) = (h.clone(), b.clone(), agents.clone());
                async move {
                    let (id, secret) = &agents[w];
                    let r = http
                        .post(format!("{base}/api/v1/agents/{id}/jobs/claim"))
                        .header("X-Agent-Secret", secret)
                        .send()
                        .await?;
                    ensure!(r.status() == 200, "claim: {} {}", r.status(), r.text().await?);
                    Ok(())
                }
            })
            .await?;

            println!("broker benchmark, {CONCURRENCY} agents, a queue of {jobs} jobs, one nats-server (sync: always)");
            raw.print("raw JetStream publish (300 B)");
            enqueue.print("POST /api/v1/jobs");
            println!("read models settled {:.1} s after the last enqueue", settled.as_secs_f64());
            claim.print("POST /api/v1/agents/{id}/jobs/claim");
            println!(
                "claims / raw publish: {:.2}   (goal >= 0.5)",
                claim.rate() / raw.rate()
            );
            anyhow::Ok(())
        })
}
