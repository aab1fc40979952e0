//! Overload (issue 21): what `aegis serve` does with ten times the command rate it sustains.
//! First the sustainable rate of `POST /incidents` (closed loop, 32 at once); then, for
//! `AEGIS_BURST_SECS` (30), an open-loop load offering `AEGIS_BURST_FACTOR` (10) times that
//! rate, each request on its own; resident memory sampled every 250 ms throughout.
//! `scripts/bench burst`. With `AEGIS_PROFILE_OUT` set, it records `perf` samples of the aegis
//! process during the sustained phase into that file instead, and stops there
//! (`scripts/bench profile`).
//!
//! Bounded: the offered count is rate × seconds, the generator holds at most `GENERATOR_CAP`
//! requests open (what it could not send is counted, not queued), and every wait has a deadline.

use aegis_tests::bench::Aegis;
use aegis_tests::world::{position, BOOTSTRAP, INTERNAL};
use aegis_tests::{NatsServer, TestDb};
use anyhow::Context as _;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Requests the generator holds open at most: past it, an offered request is counted as not
/// sent, so the generator's own memory stays bounded too.
const GENERATOR_CAP: usize = 4_096;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    shed: AtomicU64,
    other: AtomicU64,
    closed: AtomicU64,
    timed_out: AtomicU64,
    not_sent: AtomicU64,
    retry_after_missing: AtomicU64,
}

async fn open(
    http: &reqwest::Client,
    base: &str,
    tenant: Uuid,
    i: u64,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{base}/incidents"))
        .header("X-Internal-Secret", INTERNAL)
        .header("X-Tenant-ID", tenant.to_string())
        .json(&json!({ "title": format!("burst {i}"), "severity": "high", "source": "bench" }))
        .send()
        .await
}

async fn run() -> anyhow::Result<()> {
    let secs = env_or("AEGIS_BURST_SECS", 30);
    let factor = env_or("AEGIS_BURST_FACTOR", 10);
    let nats = NatsServer::start();
    let db = TestDb::create().await;
    let aegis = Aegis::start(&nats, &db).await?;
    let http = reqwest::Client::new();
    let r: Value = http
        .post(format!("{}/admin/tenants", aegis.base))
        .bearer_auth(BOOTSTRAP)
        .json(&json!({ "name": "burst" }))
        .send()
        .await?
        .json()
        .await?;
    let tenant: Uuid = r["data"]["id"].as_str().context("tenant id")?.parse()?;

    // The sustainable rate: closed loop, 32 at once, 10 s.
    let profile = std::env::var("AEGIS_PROFILE_OUT").ok();
    let perf = match &profile {
        Some(out) => Some(
            tokio::process::Command::new("perf")
                .args(["record", "-F", "999", "-g", "-o", out, "-p"])
                .arg(aegis.pid().to_string())
                .args(["--", "sleep", "10"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("perf record")?,
        ),
        None => None,
    };
    let warm = Instant::now();
    let mut n = 0u64;
    let mut last_position = 0;
    let mut sustained = futures::stream::iter(0..)
        .map(|i| open(&http, &aegis.base, tenant, i))
        .buffer_unordered(32);
    while warm.elapsed() < Duration::from_secs(10) {
        if let Some(r) = sustained.next().await {
            let r = r?;
            anyhow::ensure!(r.status() == 201, "sustained phase: {}", r.status());
            last_position = last_position.max(position(&r).unwrap_or(0));
            n += 1;
        }
    }
    drop(sustained);
    let rate = n as f64 / warm.elapsed().as_secs_f64();
    let before = aegis.rss();
    println!("sustainable rate (closed loop, 32 at once)   {rate:>9.0} cmd/s");
    println!("RSS after it                                 {before:>9.1} MiB");
    if let Some(mut perf) = perf {
        let (cpu, _) = aegis.usage();
        perf.wait().await.context("perf record")?;
        println!("CPU of the aegis process so far              {cpu:>9.1} s");
        return Ok(());
    }

    // The burst: open loop at factor × rate.
    let offered_rate = rate * factor as f64;
    let offered = (offered_rate * secs as f64) as u64;
    let tally = Arc::new(Tally::default());
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let open_now = Arc::new(tokio::sync::Semaphore::new(GENERATOR_CAP));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut peak_during = before;
    let mut next_sample = Instant::now();
    for i in 0..offered {
        // Request i is due at i / offered_rate seconds into the burst.
        let due = started + Duration::from_secs_f64(i as f64 / offered_rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        if Instant::now() >= next_sample {
            let rss = aegis.rss();
            peak_during = peak_during.max(rss);
            samples
                .lock()
                .map(|mut s| s.push((started.elapsed(), rss)))
                .ok();
            next_sample += Duration::from_millis(250);
        }
        let Ok(permit) = open_now.clone().try_acquire_owned() else {
            tally.not_sent.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let (http, base, tally, latency) = (
            http.clone(),
            aegis.base.clone(),
            tally.clone(),
            latency.clone(),
        );
        tasks.spawn(async move {
            let sent = Instant::now();
            let r =
                tokio::time::timeout(Duration::from_secs(30), open(&http, &base, tenant, i)).await;
            drop(permit);
            match r {
                Ok(Ok(r)) if r.status() == 201 => {
                    tally.accepted.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut h) = latency.lock() {
                        let _ = h.record(sent.elapsed().as_micros() as u64);
                    }
                }
                Ok(Ok(r)) if r.status() == 503 => {
                    tally.shed.fetch_add(1, Ordering::Relaxed);
                    if r.headers().get("retry-after").is_none() {
                        tally.retry_after_missing.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Ok(_)) => {
                    tally.other.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(_)) => {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    tally.timed_out.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // Reap what finished, so the set holds only what is open.
        while tasks.try_join_next().is_some() {}
    }
    let offered_for = started.elapsed();
    let drain = tokio::time::timeout(Duration::from_secs(60), async {
        while tasks.join_next().await.is_some() {}
    });
    let _ = drain.await;
    let end_of_burst = aegis.rss();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = aegis.rss();
    let (_, hwm) = aegis.usage();

    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let accepted = t(&tally.accepted);
    // Everything acknowledged is on the log: the commits past the sustained phase.
    let head = aegis_streams::EventStore::new(async_nats::jetstream::new(
        async_nats::connect(nats.url()).await?,
    ))
    .head()
    .await?;
    let h = latency.lock().map_err(|_| anyhow::anyhow!("latency"))?;
    println!(
        "offered {offered} commands at {offered_rate:.0}/s ({factor}× the sustainable rate) over {:.1} s",
        offered_for.as_secs_f64()
    );
    println!(
        "  accepted 201       {accepted:>9} ({:.0} cmd/s; p50 {:.1} ms, p99 {:.1} ms)",
        accepted as f64 / offered_for.as_secs_f64(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0
    );
    println!(
        "  shed 503           {:>9} ({} without Retry-After)",
        t(&tally.shed),
        t(&tally.retry_after_missing)
    );
    println!("  other status       {:>9}", t(&tally.other));
    println!("  closed, no answer  {:>9}", t(&tally.closed));
    println!("  no answer in 30 s  {:>9}", t(&tally.timed_out));
    println!(
        "  not sent (the generator held {GENERATOR_CAP} open) {:>9}",
        t(&tally.not_sent)
    );
    // One commit per accepted command, nothing else appends here: the two must be equal.
    println!(
        "  commits on the log since the sustained phase: {} (accepted {accepted})",
        head.saturating_sub(last_position)
    );
    println!("RSS during the burst, peak sampled           {peak_during:>9.1} MiB");
    println!("RSS at the end of the burst                  {end_of_burst:>9.1} MiB");
    println!("RSS 10 s later                               {after:>9.1} MiB");
    println!("peak RSS of the process (VmHWM)              {hwm:>9.1} MiB");
    if let Ok(s) = samples.lock() {
        let line: Vec<String> = s
            .iter()
            .step_by(8)
            .map(|(at, rss)| format!("{:.0}s {rss:.0}", at.as_secs_f64()))
            .collect();
        println!("RSS every 2 s (MiB): {}", line.join(", "));
    }
    Ok(())
}
