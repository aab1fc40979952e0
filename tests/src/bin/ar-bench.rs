//! Auto-response benchmark, one run: `POST /auto-response/simulate` with a 10-condition rule
//! over the whole log against a raw ordered-consumer read of the same log, and the latency of
//! matching one event against 1,000 active rules, through the reactor's own code (rules folded
//! from the log by `load_rules`, events turned into documents by `document`).
//! `scripts/bench auto-response` (`BENCH_AR_EVENTS`, default 1,000,000).
//!
//! Bounded: fixed counts; every phase ends by itself. Aegis runs the command API only, so no
//! projector or reactor competes with the measured work.

use aegis_auto_response::document::document;
use aegis_command_api::app::Roles;
use aegis_reactors::auto_response::load_rules;
use aegis_tests::bench::{fill, raw_read, relaxed_conf};
use aegis_tests::world::BOOTSTRAP;
use aegis_tests::TestApp;
use anyhow::ensure;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::Instant;

const AGGREGATES: usize = 1_000;
const RULES: usize = 1_000;
const MATCHED_EVENTS: usize = 100_000;

/// Ten conditions, the selective one last, so nearly every event is checked against all.
fn ten_conditions() -> Value {
    json!({ "all": [
        { "context": "incidents" },
        { "aggregate_type": { "eq": "incident" } },
        { "event_type": { "in": ["incident.opened.v1", "incident.action_recorded.v1"] } },
        { "actor_kind": "system" },
        { "actor": { "ne": "nobody" } },
        { "aggregate_id": { "exists": true } },
        { "severity": { "not_in": ["critical"] } },
        { "title": { "ne": "ignored" } },
        { "action": { "exists": true } },
        { "action": { "glob": "step 99*" } }
    ]})
}

/// Rule `i` of the tenant's 1,000: four shapes, none matching the bench's events, so each
/// event is evaluated against all of them (the worst case for the matcher).
fn rule(i: usize) -> Value {
    let matcher = match i % 4 {
        0 => {
            json!({ "event_type": "incident.opened.v1", "severity": { "in": ["critical", format!("s{i}")] } })
        }
        1 => {
            json!({ "event_type": "incident.action_recorded.v1", "action": format!("step {}", 100_000 + i) })
        }
        2 => {
            json!({ "any": [ { "title": { "glob": format!("*breach {i}*") } }, { "agent_id": format!("agent-{i}") } ] })
        }
        _ => json!({ "all": [ { "context": "vault" }, { "version": { "gt": i } } ] }),
    };
    json!({
        "name": format!("rule {i}"),
        "match": matcher,
        "actions": [{ "type": "notify", "message": "{event.event_type}" }],
        "mode": "active"
    })
}

fn main() -> anyhow::Result<()> {
    // Before any thread starts: the test harness reads the server configuration from here.
    std::env::set_var("AEGIS_NATS_CONF", relaxed_conf()?);
    let events: usize = std::env::var("BENCH_AR_EVENTS")
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
            let tenant = app.create_tenant("Bench").await;
            app.set_plan(tenant, json!({ "addons": ["auto_response"] })).await;
            let started = Instant::now();
            fill(&js, tenant, AGGREGATES, events / AGGREGATES, 1).await?;
            println!(
                "Auto-response benchmark: {} cores; log of {events} events filled in {:.1}s",
                std::thread::available_parallelism()?.get(),
                started.elapsed().as_secs_f64()
            );
            let (raw, n) = raw_read(&js).await?;
            println!("(c) raw ordered-consumer read of {n} events:        {raw:>9.0} events/s");

            let started = Instant::now();
            let r = app
                .http
                .post(app.url("/auto-response/simulate"))
                .bearer_auth(BOOTSTRAP)
                .header("X-Tenant-ID", tenant.to_string())
                .json(&json!({ "rule": {
                    "name": "ten conditions",
                    "match": ten_conditions(),
                    "actions": [{ "type": "notify", "message": "{event.action}" }]
                }}))
                .send()
                .await?;
            ensure!(r.status() == 200, "simulate answered {}", r.status());
            let mut body = r.bytes_stream();
            let mut last = Vec::new();
            let mut lines = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
                last.extend_from_slice(&chunk);
                if let Some(cut) = last[..last.len().saturating_sub(1)].iter().rposition(|b| *b == b'\n') {
                    last.drain(..=cut);
                }
            }
            let elapsed = started.elapsed().as_secs_f64();
            let summary: Value = serde_json::from_slice(&last)?;
            ensure!(summary["type"] == "summary", "last line: {summary}");
            let scanned = summary["scanned"].as_u64().unwrap_or(0);
            let simulate = scanned as f64 / elapsed;
            println!(
                "(s) POST /auto-response/simulate, 10 conditions:  {simulate:>9.0} events/s   s/c = {:.2}   ({scanned} scanned, {} matched, {lines} lines)",
                simulate / raw,
                summary["matched"]
            );

            let started = Instant::now();
            for i in 0..RULES {
                let r = app
                    .http
                    .post(app.url("/auto-response/rules"))
                    .bearer_auth(BOOTSTRAP)
                    .header("X-Tenant-ID", tenant.to_string())
                    .json(&rule(i))
                    .send()
                    .await?;
                ensure!(r.status() == 201, "rule {i}: {}", r.status());
            }
            let store = app.state().executor.store();
            let head = store.head().await?;
            let loaded = Instant::now();
            let rules = load_rules(store, tenant, head).await.map_err(|e| anyhow::anyhow!(e.0))?;
            ensure!(rules.rules.len() == RULES, "{} rules loaded", rules.rules.len());
            println!(
                "{RULES} active rules created in {:.1}s; folded from the log in {:.0} ms",
                started.elapsed().as_secs_f64(),
                loaded.elapsed().as_secs_f64() * 1e3
            );
            let mut commits = Box::pin(store.read_range(vec![format!("aegis.evt.{tenant}.incidents.>")], 1, None).await?);
            let mut hist = Histogram::<u64>::new(3)?;
            let mut matched = 0usize;
            let mut seen = 0usize;
            while let Some(c) = commits.next().await {
                for env in &c?.events {
                    let t = Instant::now();
                    let doc = document(env);
                    matched += rules.matching(&doc).count();
                    hist.record(t.elapsed().as_nanos() as u64)?;
                    seen += 1;
                }
                if seen >= MATCHED_EVENTS {
                    break;
                }
            }
            ensure!(matched == 0, "the bench's rules should not match its events");
            println!(
                "(m) match one event against {RULES} rules ({seen} events): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
                hist.value_at_quantile(0.5) as f64 / 1e3,
                hist.value_at_quantile(0.99) as f64 / 1e3,
                hist.max() as f64 / 1e3
            );
            let mut app = app;
            app.stop().await;
            Ok(())
        })
}
