//! Audit benchmark, one run: hash-chain verification over a large log against a raw
//! ordered-consumer read of the same log, and the latency of reconstructing a resource with
//! 10,000 events. `scripts/bench audit` (`BENCH_AUDIT_EVENTS`, default 1,000,000).
//!
//! Bounded: fixed counts, and every phase ends by itself. The log is filled with JetStream's
//! default sync (verification reads; it does not depend on how the log was written), and
//! Aegis runs the command API only, so no projector competes with the measured reads.

use aegis_command_api::app::Roles;
use aegis_tests::bench::{fill, raw_read, relaxed_conf};
use aegis_tests::world::BOOTSTRAP;
use aegis_tests::TestApp;
use anyhow::ensure;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::Value;
use std::time::Instant;
use uuid::Uuid;

const AGGREGATES: usize = 1_000;
const RECONSTRUCT_EVENTS: usize = 10_000;
const RECONSTRUCT_RUNS: usize = 50;

fn main() -> anyhow::Result<()> {
    // Before any thread starts: the test harness reads the server configuration from here.
    std::env::set_var("AEGIS_NATS_CONF", relaxed_conf()?);
    let events: usize = std::env::var("BENCH_AUDIT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let roles = Roles { command_api: true, projectors: false, reactors: false };
            let app = TestApp::spawn_configured(roles, |c| c.tenant_rate_limit = 0).await;
            let js = app.state().executor.store().jetstream().clone();
            let tenant = Uuid::now_v7();
            let started = Instant::now();
            fill(&js, tenant, AGGREGATES, events / AGGREGATES, 1).await?;
            let long = fill(&js, tenant, 1, RECONSTRUCT_EVENTS / 100, 100).await?;
            println!(
                "Audit benchmark: {} cores; log of {} events filled in {:.1}s",
                std::thread::available_parallelism()?.get(),
                events + RECONSTRUCT_EVENTS,
                started.elapsed().as_secs_f64()
            );
            let (raw, n) = raw_read(&js).await?;
            println!("(c) raw ordered-consumer read of {n} events:      {raw:>9.0} events/s");

            let started = Instant::now();
            let store = app.state().executor.store();
            let filter = format!("aegis.evt.{tenant}.>");
            let mut commits = Box::pin(store.read_range(vec![filter], 1, None).await?);
            let mut k = 0u64;
            while let Some(c) = commits.next().await {
                k += c?.events.len() as u64;
            }
            println!(
                "(c') EventStore::read_range with the tenant's filter: {:>9.0} events/s",
                k as f64 / started.elapsed().as_secs_f64()
            );
            let started = Instant::now();
            let mut commits = Box::pin(store.read_range(vec!["aegis.evt.>".into()], 1, None).await?);
            let mut k = 0u64;
            while let Some(c) = commits.next().await {
                k += c?.events.len() as u64;
            }
            println!(
                "(c'') EventStore::read_range, all subjects:         {:>9.0} events/s",
                k as f64 / started.elapsed().as_secs_f64()
            );
            let started = Instant::now();
            let r = app
                .http
                .get(app.url("/audit/verify"))
                .bearer_auth(BOOTSTRAP)
                .header("X-Tenant-ID", tenant.to_string())
                .send()
                .await?;
            ensure!(r.status() == 200, "verify answered {}", r.status());
            let body: Value = r.json().await?;
            let elapsed = started.elapsed().as_secs_f64();
            ensure!(body["status"] == "intact", "verify: {body}");
            let checked = body["events_checked"].as_u64().unwrap_or(0);
            let verify = checked as f64 / elapsed;
            println!(
                "(e) GET /audit/verify over {checked} events:         {verify:>9.0} events/s   e/c = {:.2}",
                verify / raw
            );

            let path = format!("/audit/reconstruct?resource=incident/{}", long[0].id);
            let mut hist = Histogram::<u64>::new(3)?;
            for _ in 0..RECONSTRUCT_RUNS {
                let t = Instant::now();
                let r = app
                    .http
                    .get(app.url(&path))
                    .bearer_auth(BOOTSTRAP)
                    .header("X-Tenant-ID", tenant.to_string())
                    .send()
                    .await?;
                ensure!(r.status() == 200, "reconstruct answered {}", r.status());
                let body: Value = r.json().await?;
                ensure!(body["version"] == RECONSTRUCT_EVENTS as u64, "reconstruct: version {}", body["version"]);
                hist.record(t.elapsed().as_micros() as u64)?;
            }
            println!(
                "(f) GET /audit/reconstruct, {RECONSTRUCT_EVENTS} events, {RECONSTRUCT_RUNS} runs: p50 {:.1} ms, p99 {:.1} ms",
                hist.value_at_quantile(0.5) as f64 / 1e3,
                hist.value_at_quantile(0.99) as f64 / 1e3
            );
            let mut app = app;
            app.stop().await;
            Ok(())
        })
}
