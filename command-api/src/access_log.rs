//! The decision log (`AEGIS_ACCESS`, DESIGN.md): every audited seed 003 request that returns
//! no secret leaves a record of who asked for what, and what was decided: principal, action
//! (the route), resource (the path asked), decision and status, correlation and request ids.
//! Records are appended in batches, one message per tenant per flush, on
//! `aegis.access.<tenant>`; the stream keeps them for a bounded time (limits retention) and
//! the audit checkpoint reactor signs the batches' hashes as it signs the event log's.
//!
//! Requests never wait for the log unless it falls behind: the queue is bounded, and a full
//! queue holds the answer (for up to `FULL_WAIT`) rather than dropping a record; a record that
//! still cannot be queued is counted and logged as lost.

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// Records queued before a request waits.
const QUEUE: usize = 10_000;
/// Records per flush, at most; a flush also happens every `FLUSH_EVERY`.
const BATCH: usize = 500;
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// How long a request waits for room in a full queue.
const FULL_WAIT: Duration = Duration::from_secs(2);

/// The id of a request on seed 003's surface (what its answer's `X-Request-ID` says), put
/// where authorization can log it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// One decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub at: DateTime<Utc>,
    pub tenant: Uuid,
    /// `user`, `api_key`, `agent`, ...
    pub principal_kind: String,
    pub principal: String,
    /// The route: `POST /v1/leakage-detection/scan`.
    pub action: String,
    /// The path asked for.
    pub resource: String,
    /// `allowed` or `denied`.
    pub decision: String,
    pub status: u16,
    pub correlation_id: Option<String>,
    pub request_id: Option<String>,
}

/// The subject a tenant's decisions are appended on.
pub fn subject(tenant: Uuid) -> String {
    format!("aegis.access.{tenant}")
}

pub struct AccessLog {
    tx: mpsc::Sender<Decision>,
    lost: AtomicU64,
}

impl AccessLog {
    /// The log and its writer, which runs until `stop` and then flushes what is queued.
    pub fn start(
        js: jetstream::Context,
        stop: watch::Receiver<bool>,
    ) -> (Self, impl std::future::Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (
            Self {
                tx,
                lost: AtomicU64::new(0),
            },
            write(js, rx, stop),
        )
    }

    /// Queues a decision; waits while the queue is full, up to `FULL_WAIT`.
    pub async fn record(&self, d: Decision) {
        let d = match self.tx.try_send(d) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(d)) => d,
            Err(mpsc::error::TrySendError::Closed(d)) => {
                return self.lose(&d, "the writer stopped")
            }
        };
        if let Err(e) = self.tx.send_timeout(d, FULL_WAIT).await {
            let (d, why) = match e {
                mpsc::error::SendTimeoutError::Timeout(d) => (d, "the queue stayed full"),
                mpsc::error::SendTimeoutError::Closed(d) => (d, "the writer stopped"),
            };
            self.lose(&d, why);
        }
    }

    fn lose(&self, d: &Decision, why: &str) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        tracing::error!(tenant = %d.tenant, action = %d.action, why, "a decision log record was lost");
    }

    /// Records lost since start (`aegis_access_log_lost_total`).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

async fn write(
    js: jetstream::Context,
    mut rx: mpsc::Receiver<Decision>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch: Vec<Decision> = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(d) => {
                    batch.push(d);
                    if batch.len() >= BATCH {
                        flush(&js, &mut batch).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => flush(&js, &mut batch).await,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                // No new records: take what is queued, then the last flush.
                rx.close();
                while let Some(d) = rx.recv().await {
                    batch.push(d);
                }
                break;
            }
        }
    }
    flush(&js, &mut batch).await;
}

/// Appends the batch, one message per tenant, each acknowledged by the stream (retried a
/// few times: a lost NATS server for a moment costs a delay, not the records).
async fn flush(js: &jetstream::Context, batch: &mut Vec<Decision>) {
    if batch.is_empty() {
        return;
    }
    let mut by_tenant: BTreeMap<Uuid, Vec<&Decision>> = BTreeMap::new();
    for d in batch.iter() {
        by_tenant.entry(d.tenant).or_default().push(d);
    }
    for (tenant, records) in by_tenant {
        let Ok(payload) = serde_json::to_vec(&records) else {
            continue;
        };
        let mut appended = false;
        for attempt in 0..5u32 {
            let sent = async {
                js.publish(subject(tenant), payload.clone().into())
                    .await?
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            };
            match sent.await {
                Ok(()) => {
                    appended = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(%tenant, attempt, error = %e, "decision log append failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        if !appended {
            tracing::error!(%tenant, records = records.len(), "decision log records lost: the stream did not take them");
        }
    }
    batch.clear();
}

/// Where a read of the decision log resumes: a batch's sequence, and how many of that
/// batch's records were already handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub seq: u64,
    pub skip: usize,
}

impl Cursor {
    pub const START: Cursor = Cursor { seq: 1, skip: 0 };

    pub fn parse(text: &str) -> Option<Cursor> {
        let (seq, skip) = text.split_once('-')?;
        Some(Cursor {
            seq: seq.parse().ok().filter(|s| *s >= 1)?,
            skip: skip.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.seq, self.skip)
    }
}

/// Reads a tenant's decisions from `from` on, at most `limit` that `keep` accepts (reading
/// at most 2,000 batches per call); answers them, each with its batch's sequence, and where
/// to go on from (none once the end was reached).
pub async fn read(
    js: &jetstream::Context,
    tenant: Uuid,
    from: Cursor,
    limit: usize,
    keep: impl Fn(&Decision) -> bool,
) -> Result<(Vec<(u64, Decision)>, Option<Cursor>), String> {
    let stream = js
        .get_stream(aegis_streams::provision::ACCESS_STREAM)
        .await
        .map_err(|e| e.to_string())?;
    let last = match stream
        .get_last_raw_message_by_subject(&subject(tenant))
        .await
    {
        Ok(m) => m.sequence,
        Err(e) if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {
            return Ok((Vec::new(), None))
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut out = Vec::new();
    let mut at = from;
    let mut budget = 2_000;
    while at.seq <= last && budget > 0 {
        budget -= 1;
        let m = stream
            .direct_get_next_for_subject(subject(tenant), Some(at.seq))
            .await
            .map_err(|e| e.to_string())?;
        let records: Vec<Decision> =
            serde_json::from_slice(&m.payload).map_err(|e| e.to_string())?;
        let mut taken = at.skip;
        // A batch before `from` (retention removed it, or the sequence was another tenant's)
        // starts from its first record.
        if m.sequence != at.seq {
            taken = 0;
        }
        for d in records.iter().skip(taken) {
            taken += 1;
            if keep(d) {
                out.push((m.sequence, d.clone()));
                if out.len() == limit {
                    let next = if taken < records.len() {
                        Cursor {
                            seq: m.sequence,
                            skip: taken,
                        }
                    } else {
                        Cursor {
                            seq: m.sequence + 1,
                            skip: 0,
                        }
                    };
                    return Ok((out, (next.seq <= last).then_some(next)));
                }
            }
        }
        at = Cursor {
            seq: m.sequence + 1,
            skip: 0,
        };
    }
    Ok((out, (at.seq <= last).then_some(at)))
}
