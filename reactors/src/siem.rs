//! SIEM forwarders: one per enabled connection. A forwarder reads the log from its own
//! checkpoint, renders batches in the vendor's format (`aegis_integrations_services::siem`),
//! and moves the checkpoint only when the SIEM acknowledged the batch: at least once, and
//! every event carries its event id so the SIEM can drop a repeat. A Postgres advisory lock
//! keeps one forwarder per connection across instances.

use aegis_integrations_services::cloud_event;
use aegis_integrations_services::siem::{
    render, send_counted, ConnectionRow, Sink, BATCH, CONNECTION_COLUMNS,
};
use aegis_integrations_services::webhooks::{self, Attempt, Request};
use aegis_runtime::Runtime;
use aegis_streams::subject::tenant_filter;
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Keeps one forwarder running per enabled connection: starts new ones, stops deleted or
/// disabled ones, and restarts one whose definition changed.
pub async fn run(state: Runtime, tick: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut running: HashMap<Uuid, (i64, JoinHandle<()>)> = HashMap::new();
    loop {
        let rows: Result<Vec<ConnectionRow>, _> = sqlx::query_as(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM siem_connections WHERE NOT deleted AND enabled"
        ))
        .fetch_all(&state.pool)
        .await;
        match rows {
            Ok(rows) => {
                let wanted: HashMap<Uuid, ConnectionRow> =
                    rows.into_iter().map(|r| (r.id, r)).collect();
                running.retain(|id, (version, task)| {
                    let keep = !task.is_finished()
                        && wanted.get(id).is_some_and(|r| r.agg_version == *version);
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (id, row) in wanted {
                    if running.contains_key(&id) {
                        continue;
                    }
                    let version = row.agg_version;
                    let task = tokio::spawn(forward(state.clone(), row, shutdown.clone()));
                    running.insert(id, (version, task));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read SIEM connections"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => break,
        }
    }
    // A forwarder stops at its next pause and records what it delivered first: a restart
    // sends nothing twice. One stuck in a send is cut off after a bound.
    for (_, (_, mut task)) in running {
        if tokio::time::timeout(STOP_WITHIN, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Why forwarding stops when the log's subscription ends without an error.
const ENDED: &str = "the log subscription ended";

/// How long a stopping forwarder may take to finish its send and record its checkpoint.
const STOP_WITHIN: Duration = Duration::from_secs(5);

async fn forward(state: Runtime, row: ConnectionRow, shutdown: watch::Receiver<bool>) {
    if let Err(e) = forward_inner(&state, &row, shutdown).await {
        tracing::warn!(connection = %row.id, error = %e, "SIEM forwarder stopped; it restarts on the next tick");
        // The connection says why it stands still (a lost log, a commit that does not decode
        // at a named position); the next success clears it.
        let why = format!("forwarding stopped: {e}");
        record(&state, &row, None, 0, Some(&why)).await;
    }
}

async fn forward_inner(
    state: &Runtime,
    row: &ConnectionRow,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A session of its own holds the lock for as long as this forwarder lives, and ends it
    // if the process dies.
    let key = aegis_runtime::leases::key("siem", row.id.as_bytes());
    let Some(_lease) = aegis_runtime::leases::try_take(&state.config.database_url, key).await?
    else {
        return Ok(());
    };
    let sink = row.sink(state).await?;
    let checkpoint: Option<(i64,)> =
        sqlx::query_as("SELECT position FROM siem_checkpoints WHERE connection_id = $1")
            .bind(row.id)
            .fetch_optional(&state.pool)
            .await?;
    let from = match checkpoint {
        Some((p,)) => p as u64 + 1,
        None => row.start_position.max(1) as u64,
    };
    let filters = if row.contexts.is_empty() {
        vec![tenant_filter(row.tenant_id, None)]
    } else {
        row.contexts
            .iter()
            .map(|c| tenant_filter(row.tenant_id, Some(c)))
            .collect()
    };
    // History up to the head is read as `/audit/verify` and simulation read it (the fastest
    // way through a tenant's share of the log); what follows, through the narrow live filter.
    let store = state.executor.store();
    let head = store.head().await?;
    let live = store.subscribe(filters, head.max(from - 1) + 1).await?;
    let commits: CommitStream = if from <= head {
        Box::pin(
            store
                .read_tenant_range(row.tenant_id, from, head)
                .await?
                .chain(live),
        )
    } else {
        Box::pin(live)
    };
    // Reading and rendering the next batch overlaps sending this one.
    let (tx, mut batches) = tokio::sync::mpsc::channel(3);
    let mut reader = Reader(tokio::spawn(read_batches(
        commits,
        sink.clone(),
        Filter {
            contexts: row.contexts.clone(),
            event_types: row.event_types.clone(),
        },
        tx,
    )));
    // A SIEM batch is retried until the SIEM takes it (the checkpoint waits for it), never
    // without a pause.
    let policy = crate::RetryPolicy {
        max_attempts: i64::MAX,
        base: Duration::from_millis(state.config.webhook_backoff_ms.max(1)),
        ..webhooks::retry_policy(state)
    };
    let mut delivered = Delivered::new(state, row);
    loop {
        let next = tokio::select! {
            b = batches.recv() => b,
            _ = shutdown.changed() => {
                delivered.flush().await;
                return Ok(());
            }
        };
        let Some(rendering) = next else {
            // The reader stopped after handing over everything before what stopped it.
            let why = match (&mut reader.0).await {
                Ok(Err(why)) => why,
                _ => ENDED.to_string(),
            };
            delivered.flush().await;
            return Err(why.into());
        };
        let batch = match rendering.await {
            Ok(b) => b,
            Err(e) => {
                delivered.flush().await;
                return Err(e.into());
            }
        };
        let mut attempt = 0;
        while let Some(request) = &batch.request {
            attempt += 1;
            match send_counted(state, &sink, request, batch.events).await {
                Attempt::Delivered(_) => break,
                failed => {
                    let error = failed.error().unwrap_or_default().to_string();
                    record(state, row, None, 0, Some(&error)).await;
                    let wait = policy.delay(attempt, &mut rand::thread_rng());
                    tracing::warn!(connection = %row.id, attempt, error = %error, retry_in_ms = wait.as_millis() as u64, "SIEM push failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => {
                            delivered.flush().await;
                            return Ok(());
                        }
                    }
                }
            }
        }
        delivered.add(batch.last, batch.events).await;
    }
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// What a forwarder delivered and has not yet checkpointed. The checkpoint moves at most every
/// quarter second while a backlog drains, at once when the forwarder has caught up, and
/// whenever the forwarder stops: only a crash resends, at most that quarter second, and the
/// SIEM drops the repeats by event id.
struct Delivered<'a> {
    state: &'a Runtime,
    row: &'a ConnectionRow,
    last: Option<u64>,
    events: i64,
    recorded: std::time::Instant,
}

impl<'a> Delivered<'a> {
    fn new(state: &'a Runtime, row: &'a ConnectionRow) -> Self {
        Self {
            state,
            row,
            last: None,
            events: 0,
            recorded: std::time::Instant::now(),
        }
    }

    async fn add(&mut self, last: u64, events: usize) {
        self.last = Some(last);
        self.events += events as i64;
        if events < BATCH || self.recorded.elapsed() >= CHECKPOINT_EVERY {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if let Some(last) = self.last.take() {
            record(self.state, self.row, Some(last), self.events, None).await;
        }
        self.events = 0;
        self.recorded = std::time::Instant::now();
    }
}

/// A rendered batch: the request (none when the filter left no event), how many events it
/// carries, and the last log position it covers.
struct Batch {
    request: Option<Request>,
    events: usize,
    last: u64,
}

/// Stops the reader with its forwarder.
struct Reader(JoinHandle<Result<(), String>>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type CommitStream = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = Result<aegis_streams::StoredCommit, aegis_streams::StoreError>>
            + Send,
    >,
>;

/// Which events a connection forwards (empty: all).
#[derive(Clone)]
struct Filter {
    contexts: Vec<String>,
    event_types: Vec<String>,
}

impl Filter {
    fn takes(&self, e: &aegis_schemas::envelope::v1::Envelope) -> bool {
        (self.contexts.is_empty() || self.contexts.contains(&e.context))
            && (self.event_types.is_empty() || self.event_types.contains(&e.event_type))
    }
}

/// Reads commits into batches of up to [`BATCH`] events (whole commits), filters and renders
/// them, and hands them on; ends when the subscription fails or the forwarder is gone.
async fn read_batches(
    mut commits: CommitStream,
    sink: Sink,
    filter: Filter,
    out: tokio::sync::mpsc::Sender<JoinHandle<Batch>>,
) -> Result<(), String> {
    // What stopped the reading, once the commits before it have been sent on.
    let mut stopped: Option<String> = None;
    loop {
        if let Some(why) = stopped {
            return Err(why);
        }
        let first = match commits.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err(ENDED.into()),
        };
        let mut batch = vec![first];
        let mut count = batch[0].events.len();
        while count < BATCH {
            match tokio::time::timeout(Duration::from_millis(20), commits.next()).await {
                Ok(Some(Ok(c))) => {
                    count += c.events.len();
                    batch.push(c);
                }
                Ok(Some(Err(e))) => {
                    stopped = Some(e.to_string());
                    break;
                }
                Ok(None) => {
                    stopped = Some(ENDED.into());
                    break;
                }
                Err(_) => break,
            }
        }
        let last = batch.last().map(|c| c.position).unwrap_or_default();
        // Rendering is the costly part (payloads to JSON, then the vendor's format): it runs
        // on the blocking pool, so consecutive batches render on every core, in order.
        let (sink, filter) = (sink.clone(), filter.clone());
        let rendering = tokio::task::spawn_blocking(move || {
            let events: Vec<Value> = batch
                .iter()
                .flat_map(|c| c.events.iter().map(move |e| (c.position, e)))
                .filter(|(_, e)| filter.takes(e))
                .map(|(p, e)| cloud_event(sink.tenant, p, e))
                .collect();
            Batch {
                request: (!events.is_empty()).then(|| render(&sink, &events)),
                events: events.len(),
                last,
            }
        });
        if out.send(rendering).await.is_err() {
            return Ok(());
        }
    }
}

/// Moves the checkpoint (when `position` is given) or records the last failure.
async fn record(
    state: &Runtime,
    row: &ConnectionRow,
    position: Option<u64>,
    forwarded: i64,
    error: Option<&str>,
) {
    let result = sqlx::query(
        "INSERT INTO siem_checkpoints (connection_id, tenant_id, position, forwarded, last_error, \
         last_success_at, updated_at) \
         VALUES ($1, $2, coalesce($3, $4 - 1), $5, $6, CASE WHEN $3 IS NULL THEN NULL ELSE now() END, now()) \
         ON CONFLICT (connection_id) DO UPDATE SET position = coalesce($3, siem_checkpoints.position), \
         forwarded = siem_checkpoints.forwarded + $5, last_error = $6, \
         last_success_at = CASE WHEN $3 IS NULL THEN siem_checkpoints.last_success_at ELSE now() END, \
         updated_at = now()",
    )
    .bind(row.id)
    .bind(row.tenant_id)
    .bind(position.map(|p| p as i64))
    .bind(row.start_position.max(1))
    .bind(forwarded)
    .bind(error)
    .execute(&state.pool)
    .await;
    if let Err(e) = result {
        tracing::warn!(connection = %row.id, error = %e, "cannot record the SIEM checkpoint");
    }
}
