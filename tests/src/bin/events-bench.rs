//! Live-subscription benchmark, one run: (c) a raw ordered-consumer read of a filled log,
//! (t) the events/s `GET /events/stream` delivers to 100 concurrent SSE clients replaying the
//! same log, and (l) the latency from append to each of 100 live clients, as each client sees
//! it (receive time minus the event's `time`), and (h) the events/s a SIEM forwarder delivers
//! to a local Splunk HEC receiver backfilling the same log. `scripts/bench events`
//! (`BENCH_EVENTS_LOG`, default 20,000 events; `BENCH_EVENTS_LIVE`, default 500 appends).
//!
//! Bounded: fixed counts, and every phase ends by itself (clients stop after their count).

use aegis_command_api::app::Roles;
use aegis_tests::bench::{fill, raw_read, relaxed_conf};
use aegis_tests::world::{incident, BOOTSTRAP};
use aegis_tests::TestApp;
use anyhow::ensure;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const CLIENTS: usize = 100;

/// A Splunk HEC stand-in that counts the event objects it accepts; its URL and the count.
async fn hec_receiver() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().route(
        "/services/collector/event",
        axum::routing::post(move |body: axum::body::Bytes| {
            let c = c.clone();
            async move {
                let n = body
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count();
                c.fetch_add(n, Ordering::Relaxed);
                axum::Json(serde_json::json!({"text": "Success", "code": 0}))
            }
        }),
    );
    (aegis_tests::world::serve(app).await, count)
}

/// Reads `count` events from the stream; each one's latency (µs) when `live`.
async fn client(
    http: reqwest::Client,
    url: String,
    tenant: Uuid,
    count: usize,
    live: bool,
) -> anyhow::Result<Vec<u64>> {
    let r = http
        .get(url)
        .bearer_auth(BOOTSTRAP)
        .header("X-Tenant-ID", tenant.to_string())
        .send()
        .await?;
    ensure!(r.status() == 200, "stream answered {}", r.status());
    let mut body = r.bytes_stream();
    let mut buf = Vec::new();
    let (mut seen, mut latencies) = (0usize, Vec::new());
    while seen < count {
        let chunk = tokio::time::timeout(Duration::from_secs(60), body.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            let Some(data) = std::str::from_utf8(&frame)?
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .map(str::to_string)
            else {
                continue;
            };
            seen += 1;
            if live {
                let event: Value = serde_json::from_str(&data)?;
                let at: chrono::DateTime<chrono::Utc> =
                    event["time"].as_str().unwrap_or_default().parse()?;
                let micros = (chrono::Utc::now() - at).num_microseconds().unwrap_or(0);
                latencies.push(micros.max(0) as u64);
            }
        }
    }
    Ok(latencies)
}

fn main() -> anyhow::Result<()> {
    std::env::set_var("AEGIS_NATS_CONF", relaxed_conf()?);
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let log = env("BENCH_EVENTS_LOG", 20_000);
    let live = env("BENCH_EVENTS_LIVE", 500);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let hec = hec_receiver().await;
            // The reactors stay off so that (t) and (l) measure the stream alone; (h) starts
            // the SIEM supervisor itself, the one reactor it measures.
            let roles = Roles { command_api: true, projectors: true, reactors: false };
            let app = TestApp::spawn_configured(roles, |c| {
                c.tenant_rate_limit = 0;
                c.egress_allow = vec!["127.0.0.1".into()];
                c.siem_tick_ms = 50;
            })
            .await;
            let js = app.state().executor.store().jetstream().clone();
            let tenant = app.create_tenant("Subscribers").await;
            fill(&js, tenant, 100, log / 100, 1).await?;
            // The projectors fold the filled log before anything is measured.
            app.caught_up(tenant, "/incidents?limit=1").await;
            println!(
                "Live-subscription benchmark: {} cores, {CLIENTS} SSE clients",
                std::thread::available_parallelism()?.get()
            );
            let (raw, n) = raw_read(&js).await?;
            println!("(c) raw ordered-consumer read of {n} events:            {raw:>9.0} events/s");

            let url = app.url("/events/stream?context=incidents&from=1");
            let started = Instant::now();
            let replays: Vec<_> = (0..CLIENTS)
                .map(|_| tokio::spawn(client(app.http.clone(), url.clone(), tenant, log, false)))
                .collect();
            for r in replays {
                r.await??;
            }
            let delivered = (CLIENTS * log) as f64 / started.elapsed().as_secs_f64();
            println!(
                "(t) /events/stream to {CLIENTS} clients, {log} events each:  {delivered:>9.0} events/s   t/c = {:.2}",
                delivered / raw
            );

            let url = app.url("/events/stream?context=incidents");
            let listeners: Vec<_> = (0..CLIENTS)
                .map(|_| tokio::spawn(client(app.http.clone(), url.clone(), tenant, live, true)))
                .collect();
            // Every client is connected (and its consumer created) before the first append.
            tokio::time::sleep(Duration::from_secs(2)).await;
            for i in 0..live {
                app.open_incident(tenant, incident(&format!("live {i}"), "low")).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let mut hist = Histogram::<u64>::new(3)?;
            for l in listeners {
                for micros in l.await?? {
                    hist.record(micros)?;
                }
            }
            println!(
                "(l) append -> SSE client, {live} appends x {CLIENTS} clients: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                hist.value_at_quantile(0.5) as f64 / 1e3,
                hist.value_at_quantile(0.99) as f64 / 1e3,
                hist.max() as f64 / 1e3
            );
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let supervisor = tokio::spawn(aegis_reactors::siem::run(
                app.state().runtime.clone(),
                Duration::from_millis(50),
                stopped,
            ));
            let started = Instant::now();
            let (status, body) = app
                .call(
                    tenant,
                    reqwest::Method::POST,
                    "/siem/config",
                    Some(serde_json::json!({"name": "bench", "kind": "splunk", "url": hec.0,
                        "token": "bench-token", "contexts": ["incidents"], "backfill": true})),
                )
                .await;
            ensure!(status == 201, "SIEM connection: {status} {body}");
            let want = log + live;
            let mut first = None;
            while hec.1.load(Ordering::Relaxed) < want {
                ensure!(started.elapsed() < Duration::from_secs(300), "HEC got {} of {want}", hec.1.load(Ordering::Relaxed));
                if first.is_none() && hec.1.load(Ordering::Relaxed) > 0 {
                    first = Some((Instant::now(), hec.1.load(Ordering::Relaxed)));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let (first_at, first_n) = first.unwrap_or((started, 0));
            let forwarded = (want - first_n) as f64 / first_at.elapsed().as_secs_f64();
            println!(
                "(h) SIEM forwarder to a local HEC receiver, {want} events: {forwarded:>9.0} events/s   h/c = {:.2}   (first batch {:.0} ms after the connection was saved)",
                forwarded / raw,
                (first_at - started).as_secs_f64() * 1e3
            );
            let _ = stop.send(true);
            let _ = supervisor.await;
            let mut app = app;
            app.stop().await;
            Ok(())
        })
}
