//! What the benchmarks share: filling a log fast and reading it raw, the baseline every
//! benchmark compares with.

use aegis_incidents::{Event, IncidentAggregate, IncidentId, NewIncident, Severity};
use aegis_kernel::Aggregate;
use aegis_schemas::envelope::v1::Commit;
use aegis_schemas::Message;
use aegis_streams::chain::hash_of;
use aegis_streams::{AggregateRef, EventStore, Expected, Metadata, NewEvent};
use async_nats::jetstream;
use futures::StreamExt;
use hdrhistogram::Histogram;
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
