//! The spine benchmark: raw JetStream and Postgres limits side by side with Aegis on the same
//! machine and nats.conf, in one run. `cargo run --release -p aegis-tests --bin bench`
//! (scripts/bench sets up NATS and Postgres the way scripts/test does).
//!
//! Bounded: every phase has a fixed count, and every wait has a deadline.

use aegis_incidents::{Event, IncidentAggregate, IncidentId, NewIncident, Severity};
use aegis_kernel::Aggregate;
use aegis_schemas::envelope::v1::Commit;
use aegis_schemas::Message;
use aegis_streams::{AggregateRef, EventStore, Expected, Metadata};
use aegis_tests::bench::{Aegis, Runs};
use aegis_tests::world::{BOOTSTRAP, INTERNAL};
use aegis_tests::{NatsServer, TestDb};
use anyhow::{bail, Context as _};
use async_nats::jetstream;
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const CONCURRENCY: usize = 32;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn conf(durable: bool) -> anyhow::Result<PathBuf> {
    if durable {
        return Ok(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nats.conf"));
    }
    aegis_tests::bench::relaxed_conf()
}

/// (a) Raw JetStream publish with expected subject sequence over 1,000 subjects.
async fn raw_publish(nats: &NatsServer, count: usize) -> anyhow::Result<f64> {
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    let mut cfg = aegis_streams::provision::events_config(&Default::default());
    cfg.name = "BENCH_RAW".into();
    cfg.subjects = vec!["bench.raw.>".into()];
    js.create_stream(cfg).await?;
    let payload = bytes::Bytes::from(vec![7u8; 300]);
    let started = Instant::now();
    let workers = (0..CONCURRENCY).map(|w| {
        let (js, payload) = (js.clone(), payload.clone());
        async move {
            let subjects: Vec<usize> = (0..1000).filter(|s| s % CONCURRENCY == w).collect();
            let mut last = vec![0u64; subjects.len()];
            for i in 0..count / CONCURRENCY {
                let k = i % subjects.len();
                let publish = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .expected_last_subject_sequence(last[k]);
                let ack = js
                    .send_publish(format!("bench.raw.{}", subjects[k]), publish)
                    .await?
                    .await?;
                last[k] = ack.sequence;
            }
            anyhow::Ok(())
        }
    });
    futures::future::try_join_all(workers).await?;
    Ok((count / CONCURRENCY * CONCURRENCY) as f64 / started.elapsed().as_secs_f64())
}

async fn create_tenant(http: &reqwest::Client, base: &str) -> anyhow::Result<Uuid> {
    let r: Value = http
        .post(format!("{base}/admin/tenants"))
        .bearer_auth(BOOTSTRAP)
        .json(&json!({ "name": format!("bench-{}", Uuid::now_v7()) }))
        .send()
        .await?
        .json()
        .await?;
    Ok(Uuid::parse_str(
        r["data"]["id"].as_str().context("tenant id")?,
    )?)
}

async fn open(
    http: &reqwest::Client,
    base: &str,
    tenant: Uuid,
    i: usize,
) -> anyhow::Result<(u64, Instant)> {
    let r = http
        .post(format!("{base}/incidents"))
        .header("X-Internal-Secret", INTERNAL)
        .header("X-Tenant-ID", tenant.to_string())
        .json(&json!({ "title": format!("bench {i}"), "severity": "high", "source": "bench", "agent_id": "agent-1" }))
        .send()
        .await?;
    let at = Instant::now();
    if r.status() != 201 {
        bail!("POST /incidents answered {}", r.status());
    }
    let pos = aegis_tests::world::position(&r).context("Aegis-Position")?;
    Ok((pos, at))
}

/// (b) `POST /incidents` over HTTP at concurrency 32.
async fn http_commands(aegis: &Aegis, count: usize) -> anyhow::Result<(f64, f64)> {
    let http = reqwest::Client::new();
    let tenant = create_tenant(&http, &aegis.base).await?;
    let (cpu0, _) = aegis.usage();
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| open(&http, &aegis.base, tenant, i))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let (cpu1, _) = aegis.usage();
    Ok((rate, (cpu1 - cpu0) / count as f64 * 1e6))
}

/// Base64 of 32 bytes; a benchmark's own.
const SPLIT_MASTER_KEY: &str = "QUVHSVMtYmVuY2gtbWFzdGVyLWtleS0zMi1ieXRlcyE=";

/// The same commands as (b) with the roles in three processes: the CPU time per command of
/// the command API, the projectors and the reactors (which the all-in-one figure sums).
async fn split(count: usize) -> anyhow::Result<[f64; 3]> {
    let nats = NatsServer::start_with_conf(conf(true)?);
    let db = TestDb::create().await;
    // One master key for the three: each would otherwise make its own and refuse the root
    // secret the first one wrapped.
    let key = [("AEGIS_MASTER_KEY", SPLIT_MASTER_KEY)];
    let api = Aegis::start_role(&nats, &db, "command-api", &key).await?;
    let projectors = Aegis::start_role(&nats, &db, "projectors", &key).await?;
    let reactors = Aegis::start_role(&nats, &db, "reactors", &key).await?;
    let before = [api.usage().0, projectors.usage().0, reactors.usage().0];
    http_commands(&api, count).await?;
    // The read side finishes what the last commands appended.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = [api.usage().0, projectors.usage().0, reactors.usage().0];
    Ok(std::array::from_fn(|i| {
        (after[i] - before[i]) / count as f64 * 1e6
    }))
}

/// Projection lag under a steady `per_second` commands/s: append ack → visible in the read
/// model.
async fn lag(
    aegis: &Aegis,
    db: &TestDb,
    count: usize,
    per_second: u64,
) -> anyhow::Result<(u64, u64)> {
    let http = reqwest::Client::new();
    let tenant = create_tenant(&http, &aegis.base).await?;
    let pool = sqlx::PgPool::connect(&db.url()).await?;
    let seen: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (seen, stop, pool) = (seen.clone(), stop.clone(), pool.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let row: Result<(i64,), _> = sqlx::query_as(
                    "SELECT position FROM projector_checkpoints WHERE name = 'incidents'",
                )
                .fetch_one(&pool)
                .await;
                if let Ok((p,)) = row {
                    seen.lock()
                        .map(|mut s| s.push((p as u64, Instant::now())))
                        .ok();
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        })
    };
    // Below the timer's 1 ms resolution the interval bursts to catch up: the rate holds over
    // each millisecond.
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    let mut inflight = futures::stream::FuturesUnordered::new();
    let mut acks = Vec::with_capacity(count);
    for i in 0..count {
        ticker.tick().await;
        inflight.push(open(&http, &aegis.base, tenant, i));
        while let Some(done) = futures::FutureExt::now_or_never(inflight.next()).flatten() {
            acks.push(done?);
        }
    }
    while let Some(done) = inflight.next().await {
        acks.push(done?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.await?;
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut hist = Histogram::<u64>::new(3)?;
    for (pos, acked) in acks {
        if let Some((_, at)) = seen.iter().find(|(p, at)| *p >= pos && *at >= acked) {
            hist.record(at.duration_since(acked).as_micros() as u64)?;
        } else {
            // Visible before the client even got its answer.
            hist.record(0)?;
        }
    }
    Ok((hist.value_at_quantile(0.5), hist.value_at_quantile(0.99)))
}

/// Fills the log with `count` incident-opened commits (pipelined appends to new aggregates).
async fn fill(nats: &NatsServer, count: usize) -> anyhow::Result<()> {
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    let tenant = Uuid::now_v7();
    let meta = Metadata::system("bench");
    futures::stream::iter(0..count)
        .map(|i| {
            let (js, meta) = (js.clone(), meta.clone());
            async move {
                let id = IncidentId(Uuid::now_v7());
                let agg = AggregateRef::new(tenant, "incidents", "incident", id.to_string())?;
                let event = IncidentAggregate::encode(&Event::Opened(NewIncident {
                    id,
                    title: format!("filler {i}"),
                    severity: Severity::Low,
                    source: "bench".into(),
                    description: String::new(),
                    agent_id: None,
                    dedup_key: None,
                }));
                let commit = Commit {
                    events: EventStore::envelopes(&agg, &Expected::NEW, vec![event], &meta),
                };
                js.publish(agg.subject(), commit.encode_to_vec().into())
                    .await?
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(256)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// (c) Raw ordered-consumer read of the whole event stream.
async fn raw_read(nats: &NatsServer) -> anyhow::Result<(f64, u64)> {
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    aegis_tests::bench::raw_read(&js).await
}

/// Waits (up to two minutes) until every projection's checkpoint is at the log's head.
async fn caught_up(nats: &NatsServer, db: &TestDb) -> anyhow::Result<()> {
    let js = jetstream::new(async_nats::connect(nats.url()).await?);
    let mut stream = js
        .get_stream(aegis_streams::provision::events_stream_name())
        .await?;
    let head = stream.info().await?.state.last_sequence as i64;
    let pool = sqlx::PgPool::connect(&db.url()).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (low,): (Option<i64>,) =
            sqlx::query_as("SELECT min(position) FROM projector_checkpoints")
                .fetch_one(&pool)
                .await?;
        if low.unwrap_or(0) >= head {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the projections did not catch up with position {head}: {low:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (d) `aegis rebuild incidents` as an operator runs it.
fn rebuild(nats: &NatsServer, db: &TestDb) -> anyhow::Result<(f64, String)> {
    let exe = std::env::current_exe()?.with_file_name("aegis-under-test");
    let started = Instant::now();
    let out = Command::new(exe)
        .args(["rebuild", "incidents"])
        .env("NATS_URL", nats.url())
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .output()?;
    if !out.status.success() {
        bail!("rebuild failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let events: f64 = line
        .split(" commits, ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Ok((events / started.elapsed().as_secs_f64(), line))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs = Runs::count();
    println!(
        "Aegis spine benchmark: {} cores, concurrency {CONCURRENCY}, {runs} runs",
        std::thread::available_parallelism()?.get()
    );
    let mut figures = Runs::default();
    for run in 1..=runs {
        println!("\n######## run {run} of {runs}");
        run_once(&mut figures).await?;
    }
    figures.print();
    Ok(())
}

/// One run of every phase, each on a fresh nats-server and database.
async fn run_once(figures: &mut Runs) -> anyhow::Result<()> {
    let commands = env_count("BENCH_COMMANDS", 10_000);
    let log_events = env_count("BENCH_LOG_EVENTS", 100_000);
    let lag_commands = env_count("BENCH_LAG_COMMANDS", 5_000);
    for durable in [true, false] {
        let label = if durable {
            "sync_interval: always"
        } else {
            "JetStream default sync"
        };
        let nats = NatsServer::start_with_conf(conf(durable)?);
        let db = TestDb::create().await;
        let aegis = Aegis::start(&nats, &db).await?;
        let a = raw_publish(&nats, commands).await?;
        let (b, cpu_us) = http_commands(&aegis, commands).await?;
        println!("\n== {label} ==");
        println!("(a) raw JetStream publish, expected seq, 1,000 subjects: {a:>9.0} msg/s");
        println!(
            "(b) POST /incidents over HTTP:                          {b:>9.0} cmd/s   b/a = {:.2}",
            b / a
        );
        println!("    CPU time of the aegis process per command:          {cpu_us:>9.0} µs");
        if !durable {
            figures.record("(b) cmd/s, default sync", 0, b);
            figures.record("CPU per command, default sync (µs)", 0, cpu_us);
            let n = lag_commands * 2;
            let (p50, p99) = lag(&aegis, &db, n, 2_000).await?;
            println!(
                "    projection lag at 2,000 cmd/s ({n} commands):  p50 {:.1} ms, p99 {:.1} ms",
                p50 as f64 / 1e3,
                p99 as f64 / 1e3
            );
            figures.record(
                "projection lag p99 at 2,000 cmd/s, default sync (ms)",
                1,
                p99 as f64 / 1e3,
            );
            continue;
        }
        figures.record("(a) raw publish msg/s, always", 0, a);
        figures.record("(b) cmd/s, always", 0, b);
        figures.record("b/a, always", 2, b / a);
        figures.record("CPU per command, always (µs)", 0, cpu_us);
        let [api, projectors, reactors] = split(commands).await?;
        println!("    the same in three processes, CPU per command:       command API {api:.0} µs, projectors {projectors:.0} µs, reactors {reactors:.0} µs");
        figures.record("  of it the command API, own process (µs)", 0, api);
        figures.record("  the projectors, own process (µs)", 0, projectors);
        figures.record("  the reactors, own process (µs)", 0, reactors);
        let (p50, p99) = lag(&aegis, &db, lag_commands, 1_000).await?;
        println!("    projection lag at 1,000 cmd/s ({lag_commands} commands):  p50 {:.1} ms, p99 {:.1} ms", p50 as f64 / 1e3, p99 as f64 / 1e3);
        figures.record(
            "projection lag p99 at 1,000 cmd/s (ms)",
            1,
            p99 as f64 / 1e3,
        );
        let have = commands + lag_commands;
        fill(&nats, log_events.saturating_sub(have)).await?;
        // The running Aegis projects what the fill appended: (c) and (d) are measured once
        // it has, not against its catch-up.
        caught_up(&nats, &db).await?;
        let (c, n) = raw_read(&nats).await?;
        println!("(c) raw ordered-consumer read of {n} events:        {c:>9.0} events/s");
        // A rebuild takes about a second here: three of them tell its noise from a change.
        for _ in 0..3 {
            let (d, line) = rebuild(&nats, &db)?;
            println!("(d) aegis rebuild incidents:                            {d:>9.0} events/s   d/c = {:.2}", d / c);
            println!("    {line}");
            figures.record("d/c", 2, d / c);
        }
        let (_, rss) = aegis.usage();
        println!("    peak RSS of the aegis process:                      {rss:>9.1} MiB");
    }
    Ok(())
}
