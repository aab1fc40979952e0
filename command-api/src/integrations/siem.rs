//! SIEM forwarding: the tenant's events, as CloudEvents, in each vendor's documented format,
//! and one forwarder per enabled connection.
//! - Splunk HEC: `POST <url>/services/collector/event`, `Authorization: Splunk <token>`, one
//!   JSON event object after another (`time`, `host`, `source`, `sourcetype`, `index`,
//!   `event`, `fields`);
//! - Datadog Logs: `POST <url>/api/v2/logs`, `DD-API-KEY`, a JSON array of log entries
//!   (`ddsource`, `ddtags`, `hostname`, `service`, `message`).
//!
//! A forwarder reads the log from its own checkpoint, sends batches, and moves the checkpoint
//! only when the SIEM acknowledged the batch: at least once, and every event carries its
//! event id so the SIEM can drop a repeat. A Postgres advisory lock keeps one forwarder per
//! connection across instances.

use super::webhooks::{send, Attempt, Request};
use crate::domain::integrations::siem::{secret_name, SiemKind};
use crate::domain::integrations::webhooks::SealedSecrets;
use crate::http::subscriptions::cloud_event;
use crate::state::AppState;
use aegis_streams::subject::tenant_filter;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Events per request at most (Datadog takes 1,000 entries; Splunk's default body limit is
/// 1 MB, which 500 events stay well under).
pub const BATCH: usize = 500;

/// A connection's URL and token, as sealed into its events.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiemSecrets {
    pub url: String,
    pub token: String,
}

impl SiemSecrets {
    pub async fn seal(
        &self,
        state: &AppState,
        tenant: Uuid,
        id: &str,
        version: u64,
    ) -> Result<SealedSecrets, crate::keys::KeyError> {
        super::seal_json(state, tenant, &secret_name(id), version, self).await
    }

    pub async fn open(
        state: &AppState,
        tenant: Uuid,
        id: &str,
        sealed: &SealedSecrets,
    ) -> Result<SiemSecrets, crate::keys::KeyError> {
        super::open_json(state, tenant, &secret_name(id), sealed).await
    }
}

/// Where and how a batch goes.
#[derive(Debug, Clone)]
pub struct Sink {
    pub tenant: Uuid,
    pub kind: SiemKind,
    pub secrets: SiemSecrets,
    pub index: String,
    pub sourcetype: String,
}

/// Datadog's intake for a site (`datadoghq.com`, `datadoghq.eu`, `us3.datadoghq.com`, ...).
pub fn datadog_url(site: &str) -> String {
    format!("https://http-intake.logs.{site}")
}

/// The request that carries `events` (CloudEvents JSON) to the sink.
pub fn render(sink: &Sink, events: &[Value]) -> Request {
    let base = sink.secrets.url.trim_end_matches('/');
    match sink.kind {
        SiemKind::Splunk => {
            #[derive(Serialize)]
            struct Fields<'a> {
                aegis_event_id: &'a Value,
                tenant_id: Uuid,
                event_type: &'a Value,
            }
            #[derive(Serialize)]
            struct HecEvent<'a> {
                time: Option<f64>,
                host: &'static str,
                source: &'a str,
                sourcetype: &'a str,
                #[serde(skip_serializing_if = "Option::is_none")]
                index: Option<&'a str>,
                event: &'a Value,
                fields: Fields<'a>,
            }
            let source = format!("aegis:{}", sink.tenant);
            let sourcetype = if sink.sourcetype.is_empty() {
                "aegis:event"
            } else {
                &sink.sourcetype
            };
            let index = (!sink.index.is_empty()).then_some(sink.index.as_str());
            let mut body = Vec::with_capacity(events.len() * 1024);
            for e in events {
                let time = e["time"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis() as f64 / 1000.0);
                let entry = HecEvent {
                    time,
                    host: "aegis",
                    source: &source,
                    sourcetype,
                    index,
                    event: e,
                    fields: Fields {
                        aegis_event_id: &e["id"],
                        tenant_id: sink.tenant,
                        event_type: &e["type"],
                    },
                };
                // Serializing plain data into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut body, &entry);
                body.push(b'\n');
            }
            Request {
                url: format!("{base}/services/collector/event"),
                headers: vec![
                    ("Authorization", format!("Splunk {}", sink.secrets.token)),
                    ("Content-Type", "application/json".into()),
                ],
                body,
            }
        }
        SiemKind::Datadog => {
            let entries: Vec<Value> = events
                .iter()
                .map(|e| {
                    let context = e["source"]
                        .as_str()
                        .and_then(|s| s.rsplit('/').next())
                        .unwrap_or_default();
                    json!({
                        "ddsource": "aegis",
                        "ddtags": format!("tenant_id:{},context:{context},event_type:{}", sink.tenant, e["type"].as_str().unwrap_or_default()),
                        "hostname": "aegis",
                        "service": "aegis",
                        "message": e.to_string(),
                        "aegis": { "event_id": e["id"], "position": e["aegisposition"] },
                    })
                })
                .collect();
            Request {
                url: format!("{base}/api/v2/logs"),
                headers: vec![
                    ("DD-API-KEY", sink.secrets.token.clone()),
                    ("Content-Type", "application/json".into()),
                ],
                body: Value::Array(entries).to_string().into_bytes(),
            }
        }
    }
}

/// One push of `events`, counted in `acp_siem_push_total` (by event).
pub async fn push(state: &AppState, sink: &Sink, events: &[Value]) -> Attempt {
    send_counted(state, sink, &render(sink, events), events.len()).await
}

async fn send_counted(state: &AppState, sink: &Sink, request: &Request, events: usize) -> Attempt {
    let attempt = send(state, request).await;
    let result = match attempt {
        Attempt::Delivered(_) => "delivered",
        _ => "failed",
    };
    state
        .siem_pushes
        .add(sink.tenant, sink.kind.as_str(), result, events as u64);
    attempt
}

/// A connection row as the forwarder needs it.
#[derive(sqlx::FromRow, Clone)]
pub struct ConnectionRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub index_name: String,
    pub sourcetype: String,
    pub contexts: Vec<String>,
    pub event_types: Vec<String>,
    pub start_position: i64,
    pub agg_version: i64,
    pub secret_version: i64,
    pub secret_nonce: Vec<u8>,
    pub secret_ciphertext: Vec<u8>,
}

pub const CONNECTION_COLUMNS: &str =
    "tenant_id, id, name, kind, index_name, sourcetype, contexts, event_types, \
     start_position, agg_version, secret_version, secret_nonce, secret_ciphertext";

impl ConnectionRow {
    pub async fn sink(&self, state: &AppState) -> Result<Sink, String> {
        let sealed = SealedSecrets {
            version: self.secret_version as u64,
            nonce: self.secret_nonce.clone(),
            ciphertext: self.secret_ciphertext.clone(),
        };
        let secrets = SiemSecrets::open(state, self.tenant_id, &self.id.to_string(), &sealed)
            .await
            .map_err(|e| format!("the connection's token cannot be opened: {e}"))?;
        Ok(Sink {
            tenant: self.tenant_id,
            kind: SiemKind::parse(&self.kind).ok_or("unknown SIEM kind")?,
            secrets,
            index: self.index_name.clone(),
            sourcetype: self.sourcetype.clone(),
        })
    }
}

/// Keeps one forwarder running per enabled connection: starts new ones, stops deleted or
/// disabled ones, and restarts one whose definition changed.
pub async fn run(state: AppState, tick: Duration, mut shutdown: watch::Receiver<bool>) {
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
    for (_, (_, task)) in running {
        task.abort();
    }
}

async fn forward(state: AppState, row: ConnectionRow, shutdown: watch::Receiver<bool>) {
    if let Err(e) = forward_inner(&state, &row, shutdown).await {
        tracing::warn!(connection = %row.id, error = %e, "SIEM forwarder stopped; it restarts on the next tick");
    }
}

async fn forward_inner(
    state: &AppState,
    row: &ConnectionRow,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // A session of its own holds the lock for as long as this forwarder lives, and ends it
    // if the process dies.
    let key = crate::leases::key("siem", row.id.as_bytes());
    let Some(_lease) = crate::leases::try_take(&state.config.database_url, key).await? else {
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
    let reader = Reader(tokio::spawn(read_batches(
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
    let policy = aegis_reactors::RetryPolicy {
        max_attempts: i64::MAX,
        base: Duration::from_millis(state.config.webhook_backoff_ms.max(1)),
        ..super::webhooks::retry_policy(state)
    };
    let (mut pending, mut recorded) = (0i64, std::time::Instant::now());
    loop {
        let next = tokio::select! {
            b = batches.recv() => b,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(rendering) = next else {
            drop(reader);
            return Err("the log subscription ended".into());
        };
        let batch = rendering.await?;
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
                        _ = shutdown.changed() => return Ok(()),
                    }
                }
            }
        }
        // The checkpoint moves at most every quarter second while a backlog drains, and at
        // once when the forwarder has caught up: a crash resends at most that much, and the
        // SIEM drops the repeats by event id.
        pending += batch.events as i64;
        if batch.events < BATCH || recorded.elapsed() >= CHECKPOINT_EVERY {
            record(state, row, Some(batch.last), pending, None).await;
            pending = 0;
            recorded = std::time::Instant::now();
        }
    }
}

const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// A rendered batch: the request (none when the filter left no event), how many events it
/// carries, and the last log position it covers.
struct Batch {
    request: Option<Request>,
    events: usize,
    last: u64,
}

/// Stops the reader with its forwarder.
struct Reader(JoinHandle<()>);

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
) {
    loop {
        let Some(Ok(first)) = commits.next().await else {
            return;
        };
        let mut batch = vec![first];
        let mut count = batch[0].events.len();
        while count < BATCH {
            match tokio::time::timeout(Duration::from_millis(20), commits.next()).await {
                Ok(Some(Ok(c))) => {
                    count += c.events.len();
                    batch.push(c);
                }
                Ok(Some(Err(_)) | None) => return,
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
            return;
        }
    }
}

/// Moves the checkpoint (when `position` is given) or records the last failure.
async fn record(
    state: &AppState,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(kind: SiemKind) -> Sink {
        Sink {
            tenant: Uuid::nil(),
            kind,
            secrets: SiemSecrets {
                url: "https://siem.example/".into(),
                token: "T0KEN".into(),
            },
            index: "security".into(),
            sourcetype: String::new(),
        }
    }

    fn event() -> Value {
        json!({"id": "e1", "type": "incident.opened.v1", "time": "2026-11-23T10:00:00.250Z",
               "source": "/aegis/tenants/t/incidents", "aegisposition": 9})
    }

    #[test]
    fn splunk_gets_one_hec_event_object_per_event_with_its_id() {
        let r = render(&sink(SiemKind::Splunk), &[event(), event()]);
        assert_eq!(r.url, "https://siem.example/services/collector/event");
        assert!(r
            .headers
            .contains(&("Authorization", "Splunk T0KEN".into())));
        let lines: Vec<Value> = String::from_utf8(r.body)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["time"], 1_795_428_000.25);
        assert_eq!(lines[0]["index"], "security");
        assert_eq!(lines[0]["sourcetype"], "aegis:event");
        assert_eq!(lines[0]["fields"]["aegis_event_id"], "e1");
        assert_eq!(lines[0]["event"]["id"], "e1");
    }

    #[test]
    fn datadog_gets_an_array_of_log_entries_tagged_by_context() {
        let r = render(&sink(SiemKind::Datadog), &[event()]);
        assert_eq!(r.url, "https://siem.example/api/v2/logs");
        assert!(r.headers.contains(&("DD-API-KEY", "T0KEN".into())));
        let body: Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(body[0]["ddsource"], "aegis");
        assert_eq!(
            body[0]["ddtags"],
            "tenant_id:00000000-0000-0000-0000-000000000000,context:incidents,event_type:incident.opened.v1"
        );
        let message: Value =
            serde_json::from_str(body[0]["message"].as_str().expect("string")).expect("json");
        assert_eq!(message["id"], "e1");
    }
}
