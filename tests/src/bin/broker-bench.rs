//! The broker benchmark (issue 18): claims/s with 16 agents polling a queue of jobs, against
//! raw JetStream publish at the same concurrency on the same nats-server. Prints the enqueue
//! rate, claims/s with p50/p99, and claims / raw publish (goal >= 0.5); then single-shot
//! wraps: each agent posts values for a request it holds a job on and retrieves each once
//! (consume p50/p99; goal p99 <= 10 ms).
//! `scripts/bench broker`; bounded by `AEGIS_BROKER_BENCH_JOBS` (jobs queued, default
//! 100,000), `AEGIS_BROKER_BENCH_CLAIMS` (claims made, default 8,000) and
//! `AEGIS_BROKER_BENCH_WRAPS` (wraps made and consumed, default 3,200).

use aegis_tests::TestApp;
use anyhow::ensure;
use async_nats::jetstream;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use std::time::{Duration, Instant};

use aegis_tests::bench::{phase, phase_with, CONCURRENCY};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let jobs = env("AEGIS_BROKER_BENCH_JOBS", 100_000);
    let claims = env("AEGIS_BROKER_BENCH_CLAIMS", 8_000).min(jobs);
    let wraps = env("AEGIS_BROKER_BENCH_WRAPS", 3_200);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let app = TestApp::spawn_with_config(|c| {
                c.tenant_rate_limit = 0;
                // The wrap phase's jobs stay claimed for the whole run.
                c.broker_job_lease_secs = 3600;
            })
            .await;
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

            // One agent per worker, each with a job of its own carrying a request: enqueued
            // before the queue, so each agent's first claim is that job.
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
                let id = v["data"]["id"].as_str().unwrap_or_default().to_string();
                let request = uuid::Uuid::now_v7();
                let r = http
                    .post(format!("{base}/api/v1/jobs"))
                    .bearer_auth(aegis_tests::world::BOOTSTRAP)
                    .header("X-Tenant-ID", tenant.to_string())
                    .json(&json!({ "job_type": "read_secret", "request_id": request, "agent_scope": { "agent_id": id } }))
                    .send()
                    .await?;
                ensure!(r.status() == 201, "enqueue: {}", r.text().await?);
                agents.push((id, v["data"]["agent_secret"].as_str().unwrap_or_default().to_string(), request));
            }
            for (id, secret, request) in &agents {
                let r = http
                    .post(format!("{base}/api/v1/agents/{id}/jobs/claim"))
                    .header("X-Agent-Secret", secret)
                    .send()
                    .await?;
                let job: serde_json::Value = r.json().await?;
                ensure!(job["request_id"] == request.to_string(), "the agent's own job first: {job}");
            }
            let agents = std::sync::Arc::new(agents);

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
            let a = agents.clone();
            let claim = phase((claims / CONCURRENCY).max(1), move |w, _| {
                let (http, base, agents) = (h.clone(), b.clone(), a.clone());
                async move {
                    let (id, secret, _) = &agents[w];
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

            let made = std::sync::Arc::new(std::sync::Mutex::new(vec![Vec::<String>::new(); CONCURRENCY]));
            let (h, b, m, a) = (http.clone(), base.clone(), made.clone(), agents.clone());
            let post = phase((wraps / CONCURRENCY).max(1), move |w, i| {
                let (http, base, made, agents) = (h.clone(), b.clone(), m.clone(), a.clone());
                async move {
                    let (id, secret, request) = &agents[w];
                    let r = http
                        .post(format!("{base}/api/v1/agents/{id}/wraps"))
                        .header("X-Agent-Secret", secret)
                        .json(&json!({ "request_id": request, "key_name": format!("k{i}"), "value": STANDARD.encode(format!("value-{w}-{i}-0123456789abcdef")) }))
                        .send()
                        .await?;
                    ensure!(r.status() == 201, "wrap: {} {}", r.status(), r.text().await?);
                    let v: serde_json::Value = r.json().await?;
                    let wrap = v["wrap_id"].as_str().unwrap_or_default().to_string();
                    made.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[w].push(wrap);
                    Ok(())
                }
            })
            .await?;
            // Consumed one at a time (agent 0's wraps: the latency a retrieval sees on its own),
            // then by the other agents at once.
            let consume_one = |workers: usize, first: usize| {
                let (h, b, m, a) = (http.clone(), base.clone(), made.clone(), agents.clone());
                phase_with(workers, (wraps / CONCURRENCY).max(1), move |w, i| {
                    let (http, base, made, agents) = (h.clone(), b.clone(), m.clone(), a.clone());
                    async move {
                        let w = w + first;
                        let (id, secret, _) = &agents[w];
                        let wrap = made.lock().map_err(|_| anyhow::anyhow!("poisoned"))?[w][i].clone();
                        let r = http
                            .get(format!("{base}/api/v1/agents/{id}/wraps/{wrap}"))
                            .header("X-Agent-Secret", secret)
                            .send()
                            .await?;
                        ensure!(r.status() == 200, "consume: {} {}", r.status(), r.text().await?);
                        Ok(())
                    }
                })
            };
            let alone = consume_one(1, 0).await?;
            let crowd = consume_one(CONCURRENCY - 1, 1).await?;

            println!("broker benchmark, {CONCURRENCY} agents, a queue of {jobs} jobs, one nats-server (sync: always)");
            raw.print("raw JetStream publish (300 B)");
            enqueue.print("POST /api/v1/jobs");
            println!("read models settled {:.1} s after the last enqueue", settled.as_secs_f64());
            claim.print("POST /api/v1/agents/{id}/jobs/claim");
            println!(
                "claims / raw publish: {:.2}   (goal >= 0.5)",
                claim.rate() / raw.rate()
            );
            post.print("POST /api/v1/agents/{id}/wraps");
            alone.print("GET .../wraps/{wrap_id}, one at a time");
            crowd.print(&format!("GET .../wraps/{{wrap_id}}, {} at once", CONCURRENCY - 1));
            println!(
                "wrap consume p99 one at a time: {:.2} ms   (goal <= 10 ms)",
                alone.latency.value_at_quantile(0.99) as f64 / 1000.0
            );
            anyhow::Ok(())
        })
}
