//! The read-your-writes benchmark (issue 17): read latency of `GET /incidents/{id}` and
//! `GET /credentials` while 500 commands/s are written, in one run, three ways: the default
//! (no header: the reader's own last write), with `Aegis-Min-Position` (the position the
//! reader's last write answered), and with no consistency wait at all (`Aegis-Min-Position: 0`,
//! for comparison only). Once for a reader who wrote nothing (an AUDITOR), once for a tenant
//! ADMIN who reads right after its own write (an incident's actions, a credential's
//! description); the internal service writes the load.
//! `scripts/bench reads`; bounded by `AEGIS_RW_BENCH_READS` (default 1,000 reads per line) and
//! stops its writer by itself.

use aegis_tests::world::{incident, position, BOOTSTRAP, INTERNAL};
use aegis_tests::TestApp;
use anyhow::{ensure, Context};
use hdrhistogram::Histogram;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Background writes per second while reads are measured.
const WRITES_PER_SECOND: u64 = 500;

/// How a read asks for consistency.
#[derive(Clone, Copy)]
enum Wait {
    /// No header: read-your-writes by default.
    Default,
    /// `Aegis-Min-Position` with the position the reader's last write answered.
    Sent,
    /// `Aegis-Min-Position: 0`: no wait at all.
    None,
}

/// Who sends a request.
#[derive(Clone, Copy)]
enum Who<'a> {
    /// The platform admin: reads only during the run.
    Reader,
    /// The internal service: the background writer.
    Writer,
    /// A tenant ADMIN who writes and reads its write back.
    Own(&'a str),
}

impl Wait {
    /// The request as this way of waiting sends it; `last` is the reader's last write.
    fn apply(self, r: reqwest::RequestBuilder, last: u64) -> reqwest::RequestBuilder {
        match self {
            Wait::Default => r,
            Wait::Sent => r.header("Aegis-Min-Position", last.to_string()),
            Wait::None => r.header("Aegis-Min-Position", "0"),
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    tenant: Uuid,
}

impl Client {
    fn request(&self, method: Method, path: &str, who: Who) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Tenant-ID", self.tenant.to_string());
        match who {
            Who::Reader => r.bearer_auth(BOOTSTRAP),
            Who::Writer => r.header("X-Internal-Secret", INTERNAL),
            Who::Own(token) => r.bearer_auth(token),
        }
    }

    async fn read(&self, path: &str, who: Who<'_>, wait: Wait, last: u64) -> anyhow::Result<bool> {
        let r = self.request(Method::GET, path, who);
        let r = wait.apply(r, last).send().await?;
        let status = r.status().as_u16();
        ensure!(
            status == 200 || status == 404,
            "{path}: {status} {}",
            r.text().await?
        );
        Ok(status == 200)
    }
}

struct Line {
    latency: Histogram<u64>,
    missed: usize,
}

impl Line {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new(3)?,
            missed: 0,
        })
    }

    fn print(&self, name: &str) {
        let ms = |q| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let n = self.latency.len() as usize;
        let missed = if self.missed > 0 {
            format!("   own write not seen in {} of {n}", self.missed)
        } else {
            String::new()
        };
        println!(
            "{name:<58} p50 {:>6.2} ms   p99 {:>6.2} ms{missed}",
            ms(0.5),
            ms(0.99)
        );
    }
}

fn main() -> anyhow::Result<()> {
    let reads: usize = std::env::var("AEGIS_RW_BENCH_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(reads))
}

async fn run(reads: usize) -> anyhow::Result<()> {
    let app = TestApp::spawn_with_config(|c| c.tenant_rate_limit = 0).await;
    let tenant = app.create_tenant("bench").await;
    app.set_plan(tenant, json!({ "addons": ["vault"] })).await;
    let client = Arc::new(Client {
        http: app.http.clone(),
        base: app.url(""),
        tenant,
    });

    // What the readers read: 50 credentials and 200 incidents, applied before the run.
    let mut setup_position = 0;
    for i in 0..50 {
        let r = client
            .request(Method::POST, "/credentials", Who::Reader)
            .json(&json!({ "name": format!("c-{i}"), "credential_type": "api_key", "provider": "api", "value": "v" }))
            .send()
            .await?;
        ensure!(r.status() == 201, "create credential: {}", r.status());
        setup_position = position(&r).unwrap_or(setup_position);
    }
    let mut incidents = Vec::new();
    for i in 0..200 {
        let (id, _, _) = app
            .open_incident(tenant, incident(&format!("seed {i}"), "low"))
            .await;
        incidents.push(id);
    }
    let own = app.user_with_role(tenant, Some("ADMIN")).await.token;
    // The reader who writes nothing: an AUDITOR. (The platform admin wrote the setup moments
    // ago, and a principal who wrote through this instance within seconds waits first.)
    let reader = app.user_with_role(tenant, Some("AUDITOR")).await.token;
    let (s, _) = app.caught_up(tenant, "/incidents").await;
    ensure!(s == 200, "the read models caught up");

    // The background writer: 500 incidents/s as the internal service, until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (client, stop, written) = (client.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_micros(1_000_000 / WRITES_PER_SECOND));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let (client, written) = (client.clone(), written.clone());
                tokio::spawn(async move {
                    let r = client
                        .request(Method::POST, "/incidents", Who::Writer)
                        .json(&incident(&format!("load {n}"), "low"))
                        .send()
                        .await;
                    if r.is_ok_and(|r| r.status() == 201) {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let before = written.load(Ordering::Relaxed);

    println!(
        "Aegis read-your-writes benchmark: 2 cores, {WRITES_PER_SECOND} incidents/s written meanwhile, {reads} sequential reads per line\n"
    );
    const MODES: [(&str, Wait); 3] = [
        ("default (no header)", Wait::Default),
        ("Aegis-Min-Position (its last write)", Wait::Sent),
        ("no wait (Aegis-Min-Position: 0)", Wait::None),
    ];
    // The three ways take turns read by read, so none is measured on a warmer system.
    let mut incident_lines = [Line::new()?, Line::new()?, Line::new()?];
    let mut list_lines = [Line::new()?, Line::new()?, Line::new()?];
    for i in 0..reads {
        for (m, (_, wait)) in MODES.iter().enumerate() {
            let path = format!("/incidents/{}", incidents[i % incidents.len()]);
            let t = Instant::now();
            let found = client
                .read(&path, Who::Own(&reader), *wait, setup_position)
                .await?;
            incident_lines[m]
                .latency
                .record(t.elapsed().as_micros() as u64)?;
            incident_lines[m].missed += usize::from(!found);
            let t = Instant::now();
            client
                .read("/credentials", Who::Own(&reader), *wait, setup_position)
                .await?;
            list_lines[m]
                .latency
                .record(t.elapsed().as_micros() as u64)?;
        }
    }
    println!("== a reader who wrote nothing (an AUDITOR) ==");
    for (m, (label, _)) in MODES.iter().enumerate() {
        incident_lines[m].print(&format!("GET /incidents/{{id}}, {label}"));
    }
    for (m, (label, _)) in MODES.iter().enumerate() {
        list_lines[m].print(&format!("GET /credentials, {label}"));
    }

    let mut incident_lines = [Line::new()?, Line::new()?, Line::new()?];
    let mut list_lines = [Line::new()?, Line::new()?, Line::new()?];
    for i in 0..reads {
        for (m, (label, wait)) in MODES.iter().enumerate() {
            // A tenant ADMIN appends an action to an incident and reads the incident back.
            let id = incidents[(i * MODES.len() + m) % incidents.len()];
            let action = format!("{label} {i}");
            let r = client
                .request(Method::PATCH, &format!("/incidents/{id}"), Who::Own(&own))
                .json(&json!({ "actions_taken": [action] }))
                .send()
                .await?;
            ensure!(r.status() == 200, "update: {}", r.status());
            let at = position(&r).context("the write's position")?;
            let t = Instant::now();
            let req = wait.apply(
                client.request(Method::GET, &format!("/incidents/{id}"), Who::Own(&own)),
                at,
            );
            let body: Value = req.send().await?.json().await?;
            incident_lines[m]
                .latency
                .record(t.elapsed().as_micros() as u64)?;
            let seen = body["data"]["actions_taken"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == action.as_str()));
            incident_lines[m].missed += usize::from(!seen);

            // The same ADMIN changes a credential and lists credentials at once.
            let name = format!("c-{}", i % 50);
            let description = format!("{label} {i}");
            let r = client
                .request(
                    Method::PATCH,
                    &format!("/credentials/{name}"),
                    Who::Own(&own),
                )
                .json(&json!({ "description": description }))
                .send()
                .await?;
            ensure!(r.status() == 200, "update: {}", r.status());
            let at = position(&r).context("the write's position")?;
            let t = Instant::now();
            let req = wait.apply(
                client.request(Method::GET, "/credentials?limit=100", Who::Own(&own)),
                at,
            );
            let list: Value = req.send().await?.json().await?;
            list_lines[m]
                .latency
                .record(t.elapsed().as_micros() as u64)?;
            let seen = list["credentials"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|c| c["name"] == name && c["description"] == description)
            });
            list_lines[m].missed += usize::from(!seen);
        }
    }
    println!("\n== a reader right after its own write ==");
    for (m, (label, _)) in MODES.iter().enumerate() {
        incident_lines[m].print(&format!("GET /incidents/{{id}} after PATCH, {label}"));
    }
    for (m, (label, _)) in MODES.iter().enumerate() {
        list_lines[m].print(&format!("GET /credentials after PATCH, {label}"));
    }

    stop.store(true, Ordering::Relaxed);
    writer.await?;
    let rate = (written.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    println!("\nbackground writes achieved: {rate:.0} incidents/s");
    Ok(())
}
