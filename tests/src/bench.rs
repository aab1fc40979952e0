//! What the benchmarks share: filling a log fast and reading it raw, the baseline every
//! benchmark compares with.

use crate::world::{BOOTSTRAP, INTERNAL};
use crate::{NatsServer, TestDb};
use aegis_incidents::{Event, IncidentAggregate, IncidentId, NewIncident, Severity};
use aegis_kernel::Aggregate;
use aegis_schemas::envelope::v1::Commit;
use aegis_schemas::Message;
use aegis_streams::chain::hash_of;
use aegis_streams::{AggregateRef, EventStore, Expected, Metadata, NewEvent};
use anyhow::{bail, Context as _};
use async_nats::jetstream;
use futures::StreamExt;
use hdrhistogram::Histogram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn opened(id: IncidentId, i: usize) -> NewEvent {
    IncidentAggregate::encode(&Event::Opened(NewIncident {
        id,
        title: format!("filler {i}"),
        severity: Severity::Low,
        source: "bench".into(),
        description: String::new(),
        agent_id: None,
        dedup_key: None,
    }))
}

fn action(i: usize) -> NewEvent {
    IncidentAggregate::encode(&Event::ActionRecorded {
        action: format!("step {i}"),
    })
}

/// Publishes `aggregates` incidents of `commits_each` commits of `per_commit` events (an
/// opening, then actions `step <n>`) over one connection, chaining each aggregate's hashes as
/// the store would; returns the aggregates.
pub async fn fill(
    js: &jetstream::Context,
    tenant: Uuid,
    aggregates: usize,
    commits_each: usize,
    per_commit: usize,
) -> anyhow::Result<Vec<AggregateRef>> {
    let meta = Metadata::system("bench");
    let mut heads: Vec<(AggregateRef, Expected, IncidentId)> = (0..aggregates)
        .map(|_| {
            let id = IncidentId(Uuid::now_v7());
            let agg = AggregateRef::new(tenant, "incidents", "incident", id.to_string())?;
            anyhow::Ok((agg, Expected::NEW, id))
        })
        .collect::<Result<_, _>>()?;
    let mut acks = Vec::new();
    for round in 0..commits_each {
        for (agg, expected, id) in heads.iter_mut() {
            let events: Vec<NewEvent> = (0..per_commit)
                .map(|k| {
                    if round == 0 && k == 0 {
                        opened(*id, round)
                    } else {
                        action(round * per_commit + k)
                    }
                })
                .collect();
            let envelopes = EventStore::envelopes(agg, expected, events, &meta);
            let last = envelopes.last().map(hash_of).unwrap_or_default();
            expected.version += envelopes.len() as u64;
            expected.head = last;
            acks.push(
                js.publish(
                    agg.subject(),
                    Commit { events: envelopes }.encode_to_vec().into(),
                )
                .await?,
            );
            if acks.len() >= 512 {
                for ack in acks.drain(..) {
                    ack.await?;
                }
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok(heads.into_iter().map(|h| h.0).collect())
}

/// Events/s of a raw ordered-consumer read of the whole log, and how many events it read.
pub async fn raw_read(js: &jetstream::Context) -> anyhow::Result<(f64, u64)> {
    let stream = js.get_stream("AEGIS_EVENTS").await?;
    let total = stream.get_info().await?.state.messages;
    let started = Instant::now();
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?.take(total as usize);
    let mut n = 0u64;
    while let Some(m) = messages.next().await {
        n += Commit::decode(m?.payload.as_ref())?.events.len() as u64;
    }
    Ok((n as f64 / started.elapsed().as_secs_f64(), n))
}

/// nats.conf without `sync_interval`: JetStream's default sync, for a fast fill.
pub fn relaxed_conf() -> anyhow::Result<std::path::PathBuf> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("nats.conf"))?;
    let relaxed: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("sync_interval"))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = std::env::temp_dir().join(format!("aegis-bench-{}.conf", std::process::id()));
    std::fs::write(&path, relaxed)?;
    Ok(path)
}

/// 16 concurrent workers, as the HTTP benchmarks run.
pub const CONCURRENCY: usize = 16;

/// One benchmark phase: operations done, how long they took, and their latencies.
pub struct Phase {
    pub ops: usize,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Phase {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    pub fn print(&self, name: &str) {
        println!(
            "{name:<38} {:>8.0} ops/s   p50 {:>6.2} ms   p99 {:>6.2} ms",
            self.rate(),
            self.latency.value_at_quantile(0.5) as f64 / 1000.0,
            self.latency.value_at_quantile(0.99) as f64 / 1000.0,
        );
    }
}

/// Runs `per_worker` operations on each of 16 workers; `op(worker, i)` returns when done.
pub async fn phase<F, Fut>(per_worker: usize, op: F) -> anyhow::Result<Phase>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    phase_with(CONCURRENCY, per_worker, op).await
}

/// [`phase`] with `workers` workers.
pub async fn phase_with<F, Fut>(workers: usize, per_worker: usize, op: F) -> anyhow::Result<Phase>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let started = Instant::now();
    let concurrency = workers;
    let workers = (0..workers).map(|w| {
        let op = op.clone();
        tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3)?;
            for i in 0..per_worker {
                let t = Instant::now();
                op(w, i).await?;
                h.record(t.elapsed().as_micros() as u64)?;
            }
            anyhow::Ok(h)
        })
    });
    let mut latency = Histogram::<u64>::new(3)?;
    for h in futures::future::try_join_all(workers).await? {
        latency.add(h?)?;
    }
    Ok(Phase {
        ops: per_worker * concurrency,
        elapsed: started.elapsed(),
        latency,
    })
}

/// `aegis serve` as a child process, so its CPU time and memory are its own.
pub struct Aegis {
    child: Child,
    pub base: String,
}

impl Aegis {
    pub async fn start(nats: &NatsServer, db: &TestDb) -> anyhow::Result<Self> {
        Self::start_with(nats, db, &[]).await
    }

    /// [`Aegis::start`] with `env` added.
    pub async fn start_with(
        nats: &NatsServer,
        db: &TestDb,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::start_role(nats, db, "serve", env).await
    }

    /// One role of Aegis (`serve`, `command-api`, `projectors`, `reactors`) as a process of its
    /// own, so each role's CPU time can be told apart. Roles without the HTTP API are given
    /// two seconds to start their consumers; their `base` is unusable.
    pub async fn start_role(
        nats: &NatsServer,
        db: &TestDb,
        role: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?.with_file_name("aegis-under-test");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(&exe);
        cmd.arg(role)
            .env("NATS_URL", nats.url())
            .env("DATABASE_URL", db.url())
            .env("AEGIS_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("AEGIS_METRICS_ADDR", "127.0.0.1:0")
            .env("AEGIS_BOOTSTRAP_TOKEN", BOOTSTRAP)
            .env("AEGIS_INTERNAL_SECRET", INTERNAL)
            .env("RUST_LOG", "warn")
            // The benchmark measures the pipeline, not the per-tenant limiter.
            .env("AEGIS_TENANT_RATE_LIMIT", "0")
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        if !matches!(role, "serve" | "command-api") {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Ok(Self { child, base });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{base}/health")).await.is_err() {
            if Instant::now() > deadline {
                bail!("aegis did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, base })
    }

    /// (user + system CPU seconds, peak RSS in MiB) from /proc.
    pub fn usage(&self) -> (f64, f64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map(|(_, r)| r.split(' ').collect())
            .unwrap_or_default();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat, 11 and 12 after the command name.
        let cpu = (ticks(11) + ticks(12)) / 100.0;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm_kb = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        (cpu, hwm_kb / 1024.0)
    }
}

impl Aegis {
    /// The process id, for a profiler to attach to.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in MiB.
    pub fn rss(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }
}

impl Drop for Aegis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The figures of several runs of one benchmark, printed with their medians at the end: this
/// machine's disk and CPU vary from run to run by more than most changes move a figure, so one
/// run proves little. `BENCH_RUNS` (default 3) sets how many.
#[derive(Default)]
pub struct Runs {
    figures: Vec<Figure>,
}

struct Figure {
    name: String,
    decimals: usize,
    values: Vec<f64>,
}

impl Runs {
    pub fn count() -> usize {
        std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(3)
    }

    /// Adds one run's `value` of the figure `name`, shown with `decimals` decimals.
    pub fn record(&mut self, name: &str, decimals: usize, value: f64) {
        match self.figures.iter_mut().find(|f| f.name == name) {
            Some(f) => f.values.push(value),
            None => self.figures.push(Figure {
                name: name.to_string(),
                decimals,
                values: vec![value],
            }),
        }
    }

    /// One line per figure: every run's value, then the median.
    pub fn print(&self) {
        println!("\n== every run, then the median ==");
        for f in &self.figures {
            let d = f.decimals;
            let runs: Vec<String> = f.values.iter().map(|v| format!("{v:.d$}")).collect();
            println!(
                "{:<52} {:<28} median {:.d$}",
                f.name,
                runs.join(", "),
                median(&f.values)
            );
        }
    }
}

/// The middle value (the mean of the two middle ones for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
